/**
 * A real collector API (collector/api buildApi over a SqliteStore in a temp dir) on a
 * loopback port, filled with known runs, for the backend's tests. The control part (inventory,
 * servers, schedule) is a small in-memory implementation of CollectorControl.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../collector/api/app.js';
import type { CollectorStatus, DeviceSummary } from '../../collector/api/types.js';
import { SqliteStore } from '../../collector/store/sqlite/sqliteStore.js';
import { TestControl } from './fakeControl.js';
import { failedOutcome, okOutcome, SERVER_A, SERVER_B } from './storeFixtures.js';
import { Telemetry } from '../../collector/telemetry.js';
import type { CurrentTest, ServerInfo } from '../../contract/api.js';
import { settingsSchema, type Settings } from '../../contract/settings.js';

export const COLLECTOR_TOKEN = 'collector-token-0123456789abcdef';
export const COLLECTOR_VERSION = '9.8.7';
export const DAY = 86_400_000;
/** The first seeded night; runs follow at 02:00 UTC on the next nights. */
export const NIGHT0 = Date.parse('2025-02-01T02:00:00.000Z');
/** "now" for the tests: a few hours after the last seeded night */
export const NOW = NIGHT0 + 3 * DAY + 6 * 3600_000;

/** The fleet the plugin tests query: three devices, two servers (the second unreachable), settings from the file. */
export class FixtureControl extends TestControl {
  override deviceList: DeviceSummary[] = [
    { id: 'r1', host: '192.0.2.1', port: 22, labels: { site: 'rome', kind: 'openwrt' }, pool: null, enabled: true },
    { id: 'r2', host: '192.0.2.2', port: 22, labels: { site: 'milan', kind: 'openwrt' }, pool: null, enabled: true },
    { id: 'h3', host: 'h3.example.net', port: 2222, labels: { site: 'rome', kind: 'linux' }, pool: null, enabled: true },
  ];
  override serverList: ServerInfo[] = [
    { host: '10.0.0.1', port: 5201, key: SERVER_A, pool: null, busy: false, busySeconds: 0 },
    { host: '10.0.0.2', port: 5201, label: 'backup', key: SERVER_B, pool: null, busy: false, busySeconds: 0 },
  ];
  override statusValue: CollectorStatus = {
    running: false,
    queueLength: 0,
    nextRun: new Date(NIGHT0 + 4 * DAY),
    lastScheduledRun: new Date(NIGHT0 + 3 * DAY),
    settingsSource: 'file',
  };
  override current: { settings: Settings; source: 'file' | 'api'; updatedAt: string | null } = {
    settings: settingsSchema.parse({ servers: [{ host: '10.0.0.1' }, { host: '10.0.0.2', label: 'backup' }] }),
    source: 'file',
    updatedAt: null,
  };
  /** every settings push, in order */
  applied: Settings[] = [];
  /** what currentTest answers, by run id */
  currentTests = new Map<number, CurrentTest>();
  override currentTest = (runId: number): CurrentTest | undefined => this.currentTests.get(runId);

  constructor() {
    super();
    this.checks.set('10.0.0.2', { reachable: false, error: 'connect ECONNREFUSED 10.0.0.2:5201' });
  }

  /** a push replaces the servers the API lists, as the collector does */
  override applySettings(settings: Settings, updatedAt: string): void {
    super.applySettings(settings, updatedAt);
    this.applied.push(settings);
    this.serverList = settings.servers.map((s) => ({
      host: s.host,
      port: s.port,
      ...(s.label ? { label: s.label } : {}),
      key: `${s.host}:${s.port}`,
      pool: null,
      busy: false,
      busySeconds: 0,
    }));
  }
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface RunningCollector {
  url: string;
  token: string;
  store: SqliteStore;
  control: FixtureControl;
  app: FastifyInstance;
  close(): Promise<void>;
}

/**
 * r1: ok on three nights (upload 100..300 Mbit/s, download 200..600), then failed on the
 *     fourth; r2: ok on the first night only; h3: never ran.
 */
export async function seedFleet(store: SqliteStore): Promise<void> {
  for (let night = 0; night < 3; night++) {
    const at = NIGHT0 + night * DAY;
    const r1 = await store.runs.start({ device: 'r1', trigger: 'schedule', roundId: null, startedAt: new Date(at) });
    await store.runs.finish(r1, okOutcome(at, (night + 1) * 100e6, (night + 1) * 200e6));
  }
  const failedAt = NIGHT0 + 3 * DAY;
  const r1f = await store.runs.start({ device: 'r1', trigger: 'schedule', roundId: null, startedAt: new Date(failedAt) });
  await store.runs.finish(r1f, failedOutcome(failedAt));
  const r2 = await store.runs.start({ device: 'r2', trigger: 'schedule', roundId: null, startedAt: new Date(NIGHT0 + 60_000) });
  await store.runs.finish(r2, okOutcome(NIGHT0 + 60_000, 50e6, 80e6, SERVER_B));
}

export async function startCollector(
  options: { token?: string; seed?: (store: SqliteStore) => void | Promise<void>; /** told of every request's URL */ onRequest?: (url: string) => void } = {},
): Promise<RunningCollector> {
  const dir = mkdtempSync(join(tmpdir(), 'iperf3-backend-collector-'));
  const store = SqliteStore.open(join(dir, 'collector.db'));
  await (options.seed ?? seedFleet)(store);
  const control = new FixtureControl();
  const token = options.token ?? COLLECTOR_TOKEN;
  const app = buildApi({ store, telemetry: new Telemetry(), token, version: COLLECTOR_VERSION, control });
  const { onRequest } = options;
  if (onRequest) app.addHook('onRequest', async (request) => onRequest(request.url));
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url: address,
    token,
    store,
    control,
    app,
    close: async () => {
      await app.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
