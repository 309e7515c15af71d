/**
 * Keeps the inventory in the store and this collector's snapshot of it (Inventory) in step:
 * the configuration file's devices (loaded at start, reloaded when the file changes or on
 * SIGHUP) and the devices added, changed or removed through the API or `devices import`.
 * Every change is serialised here, then the snapshot is replaced as a whole.
 */
import { isAbsolute, relative, resolve } from 'node:path';
import type { Logger } from 'pino';
import { deviceConfigSchema, patchDevice, type DeviceConfig, type DevicePatch, type DeviceRecord } from '../../contract/devices.js';
import { fieldErrors, type FieldError } from '../../contract/settings.js';
import { ConfigError, loadDevice, type LoadedConfig, type KeyBuffers, type LoadedDevice, type SecretCache } from '../config/load.js';
import { DeviceIdTakenError, DeviceManagedByFileError, DeviceRejectedError, UnknownDevicesError } from '../errors.js';
import { API_SOURCE, DeviceExistsError, fileSource, type Store, type StoredDevice } from '../store/store.js';
import type { Inventory, InventoryDevice } from './inventory.js';

export interface DeviceCatalogDeps {
  store: Pick<Store, 'devices' | 'hostKeys'>;
  loaded: LoadedConfig;
  inventory: Inventory;
  /** the pools of the settings in effect */
  pools: () => string[];
  logger: Logger;
  /** reads the configuration file again (loadConfigFile) */
  readConfig: (path: string) => LoadedConfig;
}

const CREDENTIAL_FIELDS = ['privateKeyFile', 'passphraseFile', 'passwordFile'] as const;

export class DeviceCatalog {
  /** the devices of the configuration file, as last loaded without errors */
  private fileDevices: LoadedDevice[];
  /** the configuration last loaded without errors (to tell which keys changed) */
  private fileConfig: LoadedConfig;
  /** API devices with their secrets, by id, re-read only when their entry changes */
  private readonly apiLoaded = new Map<string, { json: string; device: LoadedDevice }>();
  private queue: Promise<unknown> = Promise.resolve();
  /** the SSH keys of API devices by their text, one Buffer each (most fleets use one key) */
  private keys: KeyBuffers = new Map();

  constructor(private readonly deps: DeviceCatalogDeps) {
    this.fileDevices = deps.loaded.devices;
    this.fileConfig = deps.loaded;
  }

  /** The store's source for this collector's file. */
  get source(): string {
    return fileSource(this.deps.loaded.config.group);
  }

  /** At start: the file's devices are written to the store, then the inventory is read back. */
  start(): Promise<void> {
    return this.serial(async () => {
      await this.writeFileDevices();
      await this.refreshNow();
    });
  }

  /** Reads the inventory from the store again (devices added through another collector's API). */
  refresh(): Promise<void> {
    return this.serial(() => this.refreshNow());
  }

  /**
   * Follows the changes other collectors make to the shared inventory (PostgreSQL), so that a
   * device added through any collector's API is listed, and can be run now, by every collector
   * at once rather than from its next round. Changes that arrive during a refresh bring one
   * more refresh after it, not one each. `stop` ends it and waits for a refresh under way.
   */
  async follow(): Promise<{ stop(): Promise<void> }> {
    const { store, logger } = this.deps;
    let running: Promise<void> | null = null;
    let again = false;
    const refreshAll = async (): Promise<void> => {
      do {
        again = false;
        await this.refresh().catch((err: unknown) =>
          logger.warn({ err: String(err) }, 'cannot read the devices another collector changed: they are read again before the next round'),
        );
      } while (again);
      running = null;
    };
    const unsubscribe = store.devices.onChange ? await store.devices.onChange(() => (running ? (again = true) : (running = refreshAll()))) : () => {};
    return {
      stop: async () => {
        unsubscribe();
        await running;
      },
    };
  }

  /**
   * Reads the configuration file again and applies its devices. A file with errors is logged
   * with the same messages as `check-config` and changes nothing. Returns whether it applied.
   */
  reloadFile(): Promise<boolean> {
    return this.serial(async () => {
      const { logger, loaded } = this.deps;
      let next: LoadedConfig;
      try {
        next = this.deps.readConfig(loaded.path);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        logger.error({ file: loaded.path, errors: err.fields }, `configuration not reloaded, the devices in use stay: ${err.message}`);
        return false;
      }
      const { devices: _old, ...before } = this.fileConfig.config;
      const { devices: _new, ...after } = next.config;
      if (JSON.stringify(before) !== JSON.stringify(after)) {
        logger.warn({ file: loaded.path }, 'only the devices: list is applied without a restart; restart the collector for the other changes to the file');
      }
      this.fileConfig = next;
      this.fileDevices = next.devices;
      const changes = await this.writeFileDevices();
      await this.refreshNow();
      logger.info({ file: loaded.path, ...changes, devices: this.deps.inventory.size }, 'configuration file reloaded: devices applied');
      return true;
    });
  }

  /** Adds a device managed by the API. Throws DeviceRejectedError, DeviceIdTakenError. */
  add(device: DeviceConfig): Promise<DeviceRecord> {
    return this.serial(async () => {
      this.check(device);
      let stored: StoredDevice;
      try {
        stored = await this.deps.store.devices.add(device);
      } catch (err) {
        if (err instanceof DeviceExistsError) throw new DeviceIdTakenError(device.id, err.existing.source === API_SOURCE ? 'api' : 'file');
        throw err;
      }
      await this.refreshNow();
      return { device: stored.device, managedBy: 'api' };
    });
  }

  /** Changes a device managed by the API. Throws UnknownDevicesError, DeviceManagedByFileError, DeviceRejectedError. */
  update(id: string, patch: DevicePatch): Promise<DeviceRecord> {
    return this.serial(async () => {
      const current = await this.apiEntry(id);
      const parsed = deviceConfigSchema.safeParse(patchDevice(current.device, patch));
      if (!parsed.success) throw new DeviceRejectedError(fieldErrors(parsed.error));
      this.check(parsed.data);
      // a concurrent DELETE through another collector: the device is gone
      const stored = await this.deps.store.devices.update(parsed.data);
      if (!stored) throw new UnknownDevicesError([id]);
      if (patch.resetHostKey) await this.deps.store.hostKeys.forget(id);
      await this.refreshNow();
      return { device: stored.device, managedBy: 'api' };
    });
  }

  /** Removes a device managed by the API; its history stays unless `deleteHistory`. */
  remove(id: string, deleteHistory: boolean): Promise<void> {
    return this.serial(async () => {
      await this.apiEntry(id);
      if (!(await this.deps.store.devices.remove(id, deleteHistory))) throw new UnknownDevicesError([id]);
      await this.refreshNow();
    });
  }

  /** Every device of the inventory with its configuration (no secrets), ordered by id. */
  records(): DeviceRecord[] {
    return [...this.deps.inventory.all()].map((d) => ({ device: d.config, managedBy: d.managedBy }));
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private writeFileDevices() {
    return this.deps.store.devices.replaceSource(
      this.source,
      this.fileDevices.map((d) => d.config),
    );
  }

  /** The API's entry for `id`, or the error that says who manages it. */
  private async apiEntry(id: string): Promise<StoredDevice> {
    const entries = await this.deps.store.devices.find(id);
    const api = entries.find((e) => e.source === API_SOURCE);
    const mine = entries.find((e) => e.source === this.source);
    if (mine) throw new DeviceManagedByFileError(id, { path: resolve(this.deps.loaded.path) });
    if (api) return api;
    const other = entries[0];
    if (other) throw new DeviceManagedByFileError(id, { group: other.source.slice('file:'.length) || null });
    throw new UnknownDevicesError([id]);
  }

  /** What the schema cannot see: the pool exists, the credential files are inside deviceCredentialsDir and readable. */
  private check(device: DeviceConfig): void {
    const errors: FieldError[] = [];
    const pools = this.deps.pools();
    if (device.pool !== undefined && !pools.includes(device.pool)) {
      errors.push({ field: 'pool', message: `unknown pool "${device.pool}"; known: ${pools.join(', ') || '(none)'}; or leave it out for the default servers` });
    }
    const dir = this.deps.loaded.credentialsDir;
    for (const field of CREDENTIAL_FIELDS) {
      const file = device[field];
      if (file === undefined) continue;
      if (dir === null) {
        errors.push({ field, message: `devices added through the API name their credential files inside deviceCredentialsDir; set deviceCredentialsDir in ${this.deps.loaded.path} and put the file there` });
      } else if (isAbsolute(file) || relative(dir, resolve(dir, file)).startsWith('..')) {
        errors.push({ field, message: `give a file name inside deviceCredentialsDir (${dir}), e.g. id_ed25519; other paths cannot be named through the API` });
      }
    }
    if (errors.length === 0 && dir !== null) loadDevice(device, dir, '', errors);
    if (errors.length > 0) throw new DeviceRejectedError(errors);
  }

  /** The file's devices, then API devices whose id the file does not list (the file wins, with a warning). */
  private async refreshNow(): Promise<void> {
    const { store, inventory, loaded, logger } = this.deps;
    const stored = await store.devices.list([API_SOURCE]);
    const fromFile = new Set(this.fileDevices.map((d) => d.config.id));
    const devices: InventoryDevice[] = this.fileDevices.map((d) => ({ ...d, managedBy: 'file' }));
    const seen = new Set<string>();
    // a key file named by many API devices is read once per refresh and shared
    const secrets: SecretCache = new Map();
    for (const entry of stored) {
      const { id } = entry.device;
      if (fromFile.has(id)) {
        logger.warn({ device: id, file: loaded.path }, 'device is both in the configuration file and added through the API: the file entry is used; delete the API one');
        continue;
      }
      seen.add(id);
      devices.push({ ...this.loadApiDevice(entry.device, secrets), managedBy: 'api' });
    }
    for (const id of this.apiLoaded.keys()) if (!seen.has(id)) this.apiLoaded.delete(id);
    // keys no device holds any more are let go
    const inUse = new Set([...this.apiLoaded.values()].map((e) => e.device.target.privateKey));
    for (const [text, key] of this.keys) if (!inUse.has(key)) this.keys.delete(text);
    inventory.replace(devices);
  }

  private loadApiDevice(device: DeviceConfig, secrets: SecretCache): LoadedDevice {
    const json = JSON.stringify(device);
    const cached = this.apiLoaded.get(device.id);
    if (cached?.json === json) return cached.device;
    const errors: FieldError[] = [];
    const dir = this.deps.loaded.credentialsDir;
    // without the folder (removed from the configuration), the device has no credentials: its runs fail with ssh-auth
    const loaded = dir === null ? { config: device, target: { id: device.id, host: device.host, port: device.port, username: device.username, hostKey: device.hostKey } } : loadDevice(device, dir, '', errors, secrets, this.keys);
    if (dir === null || errors.length > 0) {
      this.deps.logger.error({ device: device.id, errors }, 'credentials of a device added through the API cannot be read: its runs fail until the files are back in deviceCredentialsDir');
    }
    this.apiLoaded.set(device.id, { json, device: loaded });
    return loaded;
  }
}
