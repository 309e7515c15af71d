/**
 * The two ways `collector devices import/export` reach the inventory: over the API of the
 * collector that owns the database (its URL and token from the configuration), or through the
 * store itself when no collector runs.
 */
import type { Logger } from 'pino';
import type { ApiErrorBody } from '../../contract/api.js';
import type { DeviceConfig, DevicePatch, DeviceRecord } from '../../contract/devices.js';
import { loadConfigFile, type LoadedConfig } from '../config/load.js';
import { DeviceIdTakenError, DeviceManagedByFileError, DeviceRejectedError, UnknownDevicesError } from '../errors.js';
import type { Store } from '../store/store.js';
import { DeviceAdminError, type DeviceAdmin } from './bulk.js';
import { DeviceCatalog } from './catalog.js';
import { Inventory } from './inventory.js';

/** The URL a local client reaches the API at: a wildcard listen address means loopback. */
export function apiUrl(listen: string): string {
  const at = listen.lastIndexOf(':');
  const host = listen.slice(0, at);
  const port = listen.slice(at + 1);
  const local = host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host;
  return `http://${local}:${port}`;
}

export function apiDeviceAdmin(url: string, token: string): DeviceAdmin {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    let res: Response;
    try {
      res = await fetch(`${url}/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new DeviceAdminError(`cannot reach the collector API at ${url} (${(err as Error).message}); is \`collector serve\` running with this configuration?`);
    }
    const json = (await res.json()) as unknown;
    if (!res.ok) {
      const e = json as ApiErrorBody;
      throw new DeviceAdminError(e.message, e.fields ?? []);
    }
    return json as T;
  };
  return {
    records: async () => (await call<{ devices: DeviceRecord[] }>('GET', '/devices/export')).devices,
    add: async (device) => void (await call('POST', '/devices', device)),
    update: async (id, patch) => void (await call('PATCH', `/devices/${encodeURIComponent(id)}`, patch)),
    close: async () => {},
  };
}

/** The catalog's typed errors as DeviceAdminErrors (the same messages and fields the API answers with). */
async function adminCall(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof DeviceRejectedError) throw new DeviceAdminError(err.message, err.fields);
    if (err instanceof DeviceIdTakenError || err instanceof DeviceManagedByFileError || err instanceof UnknownDevicesError) throw new DeviceAdminError(err.message);
    throw err;
  }
}

/** The inventory through an open store: the file's devices are written first, as `serve` does at start. */
export async function storeDeviceAdmin(loaded: LoadedConfig, store: Store, logger: Logger): Promise<DeviceAdmin> {
  const stored = await store.settings.get();
  const pools = Object.keys((stored?.settings ?? loaded.config).pools);
  const catalog = new DeviceCatalog({ store, loaded, inventory: new Inventory(), pools: () => pools, logger, readConfig: loadConfigFile });
  await catalog.start();
  return {
    records: async () => catalog.records(),
    add: (device: DeviceConfig) => adminCall(() => catalog.add(device)),
    update: (id: string, patch: DevicePatch) => adminCall(() => catalog.update(id, patch)),
    close: () => store.close(),
  };
}
