/**
 * The composition root: builds the store, telemetry, SSH connector, collector core and HTTP
 * API from a loaded configuration, and tears them down in order.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApi } from './api/app.js';
import { Collector } from './collector.js';
import type { LoadedConfig } from './config/load.js';
import type { RunSummary } from './dispatch/deviceRun.js';
import type { DeviceConnector } from './model.js';
import { SshConnector } from './ssh/connector.js';
import { PostgresStore } from './store/postgres/postgresStore.js';
import { SqliteStore } from './store/sqlite/sqliteStore.js';
import { SecretBox } from './store/secretBox.js';
import type { Store } from './store/store.js';
import type { DeviceAdmin } from './inventory/bulk.js';
import { watchConfigFile } from './inventory/configWatch.js';
import { apiDeviceAdmin, apiUrl, storeDeviceAdmin } from './inventory/deviceAdmin.js';
import { DatabaseInUseError } from './errors.js';
import { Telemetry } from './telemetry.js';
import { COLLECTOR_VERSION } from './version.js';

export interface ServiceOptions {
  /** replaces the SSH connector (fault injection in tests) */
  connector?: DeviceConnector;
  clock?: () => Date;
  /** false: do not start the schedule (tests drive rounds themselves) */
  schedule?: boolean;
  /** false: do not watch the configuration file for changes to its devices */
  watchConfig?: boolean;
}

export interface Service {
  app: FastifyInstance;
  collector: Collector;
  store: Store;
  /** `http://host:port` the API listens on */
  url: string;
  /** Reads the configuration file again and applies its devices (SIGHUP); false when it has errors (logged). */
  reload(): Promise<boolean>;
  /** idempotent: schedule off, queue dropped, running tests finish, API closed, store closed */
  close(): Promise<void>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const at = listen.lastIndexOf(':');
  return { host: listen.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(listen.slice(at + 1)) };
}

/** SQLite by default; PostgreSQL when `database` is a postgres:// URL (several collectors share it). */
export async function openStore(loaded: LoadedConfig, clock?: () => Date): Promise<Store> {
  // the secrets a store keeps are sealed with a key derived from the API token (never stored)
  const secrets = SecretBox.fromToken(loaded.apiToken);
  if (loaded.postgres) return PostgresStore.open(loaded.postgres.url, { password: loaded.postgres.password, clock, secrets });
  return SqliteStore.open(loaded.databasePath, { clock, owner: true, secrets });
}

async function openCore(loaded: LoadedConfig, logger: Logger, options: ServiceOptions) {
  const store = await openStore(loaded, options.clock);
  const interrupted = await store.markInterrupted();
  if (interrupted > 0) logger.warn({ interrupted }, 'runs cut off by the last stop were marked interrupted');
  const telemetry = new Telemetry({ store, clock: options.clock });
  const connector = options.connector ?? new SshConnector({ hostKeys: store.hostKeys, connectTimeoutMs: loaded.config.ssh.connectTimeoutMs, logger });
  try {
    const collector = await Collector.open({ loaded, store, connector, logger, telemetry, clock: options.clock });
    return { store, telemetry, collector };
  } catch (err) {
    await store.close();
    throw err;
  }
}

export async function startService(loaded: LoadedConfig, logger: Logger, options: ServiceOptions = {}): Promise<Service> {
  const { store, telemetry, collector } = await openCore(loaded, logger, options);
  const app = buildApi({ store, telemetry, token: loaded.apiToken, version: COLLECTOR_VERSION, control: collector, logger });
  const { host, port } = parseListen(loaded.config.listen);
  try {
    await app.listen({ host, port });
  } catch (err) {
    await store.close();
    throw err;
  }
  // listening on TCP: the address is an object (port 0 in the config means any free port)
  const boundPort = (app.server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
  logger.info({ url, devices: collector.deviceCount, version: COLLECTOR_VERSION }, 'collector API listening');
  if (options.schedule !== false) {
    collector.startSchedule().catch((err: unknown) => logger.error({ err }, 'schedule failed to start'));
  }
  const reload = () =>
    collector.reloadConfig().catch((err: unknown) => {
      logger.error({ err }, 'configuration reload failed: the devices in use stay');
      return false;
    });
  const watcher = options.watchConfig === false ? null : watchConfigFile(loaded.path, () => void reload(), logger);
  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      watcher?.close();
      await collector.shutdown();
      await app.close();
      await store.close();
      logger.info('collector stopped');
    })());
  return { app, collector, store, url, reload, close };
}

/** The `forget-host-key` command: works beside a running `serve` (a single small write). */
/**
 * `forget-host-key`: forgets the host key recorded for a device, beside a running collector or
 * not, on either store. `none` when no key is recorded for a device the configuration or the
 * API inventory has; `unknown` when neither has the id and no key is recorded for it.
 */
export async function forgetHostKey(loaded: LoadedConfig, device: string): Promise<'forgotten' | 'none' | 'unknown'> {
  // not the owner: a running collector may hold the SQLite database
  const store = loaded.postgres ? await PostgresStore.open(loaded.postgres.url, { password: loaded.postgres.password }) : SqliteStore.open(loaded.databasePath);
  try {
    if (await store.hostKeys.forget(device)) return 'forgotten';
    const known = loaded.devices.some((d) => d.config.id === device) || (await store.devices.find(device)).length > 0;
    return known ? 'none' : 'unknown';
  } finally {
    await store.close();
  }
}

/** The `run` command: test devices now, store the runs, return their summaries. */
export async function runOnce(loaded: LoadedConfig, logger: Logger, devices: string[], options: ServiceOptions = {}): Promise<RunSummary[]> {
  const { store, collector } = await openCore(loaded, logger, options);
  try {
    return await collector.runDevices(devices);
  } finally {
    await collector.shutdown();
    await store.close();
  }
}

/**
 * `devices import/export`: through the API of the collector that owns the SQLite database (or,
 * on PostgreSQL, of the collector this configuration runs, when it answers), else through the
 * store itself.
 */
export async function openDeviceAdmin(loaded: LoadedConfig, logger: Logger): Promise<DeviceAdmin> {
  const api = apiDeviceAdmin(apiUrl(loaded.config.listen), loaded.apiToken);
  if (loaded.postgres) {
    const answered = await fetch(`${apiUrl(loaded.config.listen)}/api/v1/health`, { headers: { authorization: `Bearer ${loaded.apiToken}` } }).then(
      (r) => r.ok,
      () => false,
    );
    if (answered) return api;
  }
  let store: Store;
  try {
    store = await openStore(loaded);
  } catch (err) {
    if (err instanceof DatabaseInUseError) return api;
    throw err;
  }
  // a failure ends the command, and with it the process that holds the store
  return storeDeviceAdmin(loaded, store, logger);
}
