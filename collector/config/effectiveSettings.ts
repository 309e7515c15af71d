/**
 * The settings in effect: those of the YAML file until the Grafana data source pushes its own,
 * which are persisted and win from then on. Resolves the iperf3 secrets a run needs.
 */
import { poolGroup, poolServerList, type FieldError, type Settings } from '../../contract/settings.js';
import { SettingsRejectedError } from '../errors.js';
import type { Inventory } from '../inventory/inventory.js';
import type { Iperf3AuthSecrets, ServerAddress } from '../model.js';
import type { SettingsStore } from '../store/store.js';
import type { LoadedConfig } from './load.js';

export type SettingsSource = 'file' | 'api';

export class EffectiveSettings {
  private constructor(
    private settings: Settings,
    private settingsSource: SettingsSource,
    private settingsUpdatedAt: string | null,
    private readonly loaded: LoadedConfig,
    private readonly inventory: Inventory,
    /** the stored iperf3 password was sealed with another API token */
    readonly secretLost = false,
  ) {}

  /** The stored settings when Grafana pushed some, else the file's. */
  static async load(loaded: LoadedConfig, store: SettingsStore, inventory: Inventory): Promise<EffectiveSettings> {
    const { config } = loaded;
    const stored = await store.get();
    if (stored) return new EffectiveSettings(stored.settings, 'api', stored.updatedAt, loaded, inventory, stored.secretLost === true);
    const fileSettings: Settings = { servers: config.servers, pools: config.pools, clientOptions: config.clientOptions, schedule: config.schedule };
    return new EffectiveSettings(fileSettings, 'file', null, loaded, inventory);
  }

  get current(): Settings {
    return this.settings;
  }

  get source(): SettingsSource {
    return this.settingsSource;
  }

  get updatedAt(): string | null {
    return this.settingsUpdatedAt;
  }

  /** The servers of a pool (null: the default pool). */
  poolServers(pool: string | null): ServerAddress[] {
    if (pool === null) return this.settings.servers;
    const servers = this.settings.pools[pool];
    return servers === undefined ? [] : poolServerList(servers);
  }

  /** The group a device is pinned to: its own `group`, else its pool's (undefined: unpinned). */
  groupOf(device: { config: { group?: string; pool?: string } } | undefined): string | undefined {
    if (!device) return undefined;
    const pool = device.config.pool;
    return device.config.group ?? (pool === undefined ? undefined : poolGroup(this.settings.pools[pool]));
  }

  /**
   * iperf3 auth: pushed values win over the files of the YAML configuration. Settings are only
   * accepted when this resolves (see `errors`), so a run never lacks a secret.
   */
  authSecrets(settings: Settings = this.settings, source: SettingsSource = this.settingsSource): Iperf3AuthSecrets | null {
    const auth = settings.clientOptions.auth;
    if (!auth) return null;
    return {
      username: auth.username,
      // The file's password goes only to the servers of the file: pushed settings bring their own,
      // or a pushed server and key could receive it.
      password: auth.password ?? (source === 'file' ? this.loaded.iperf3Password : undefined) ?? '',
      // a public key is no secret: the file's may serve pushed settings
      rsaPublicKey: auth.rsaPublicKey ?? this.loaded.iperf3RsaPublicKey ?? '',
    };
  }

  /** Field errors of pushed settings that the schema cannot see: secrets that must come with them, pools devices use. */
  errors(settings: Settings): FieldError[] {
    const errors: FieldError[] = [];
    const secrets = this.authSecrets(settings, 'api');
    if (secrets && secrets.password === '') {
      errors.push({
        field: 'clientOptions.auth.password',
        message:
          'pushed iperf3 authentication needs its own password (the data source\'s secure field); the passwordFile of the collector configuration is used only with the settings of that file',
      });
    }
    if (secrets && secrets.rsaPublicKey === '') {
      errors.push({ field: 'clientOptions.auth.rsaPublicKey', message: "iperf3 authentication needs the server's RSA public key (PEM)" });
    }
    const pools = new Set(Object.keys(settings.pools));
    for (const d of this.inventory.all()) {
      if (d.config.pool !== undefined && !pools.has(d.config.pool)) {
        errors.push({ field: 'pools', message: `device ${d.config.id} uses pool "${d.config.pool}", which these settings do not define` });
      }
      const pinned = d.config.pool === undefined ? undefined : poolGroup(settings.pools[d.config.pool]);
      if (pinned !== undefined && d.config.group !== undefined && d.config.group !== pinned) {
        errors.push({
          field: `pools.${d.config.pool}.group`,
          message: `device ${d.config.id} is pinned to group "${d.config.group}" but its pool to "${pinned}"; pin both to the same group`,
        });
      }
    }
    return errors;
  }

  /**
   * Makes pushed settings effective for the runs that start from now on. Throws
   * SettingsRejectedError (nothing applied) when they cannot work. Returns whether the schedule changed.
   */
  apply(settings: Settings, updatedAt: string): { scheduleChanged: boolean } {
    const errors = this.errors(settings);
    if (errors.length > 0) throw new SettingsRejectedError(errors);
    const scheduleChanged = JSON.stringify(settings.schedule) !== JSON.stringify(this.settings.schedule);
    this.settings = settings;
    this.settingsSource = 'api';
    this.settingsUpdatedAt = updatedAt;
    return { scheduleChanged };
  }
}
