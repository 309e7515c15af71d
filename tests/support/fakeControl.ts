/** A small CollectorControl for the API tests, and a store seeded with known runs. */
import type { CurrentTest, ServerInfo } from '../../contract/api.js';
import type { DeviceConfig, DeviceRecord } from '../../contract/devices.js';
import { settingsSchema, type Settings } from '../../contract/settings.js';
import type { SqliteStore } from '../../collector/store/sqlite/sqliteStore.js';
import { failedOutcome, okOutcome, SERVER_A, SERVER_B } from './storeFixtures.js';
import { DeviceIdTakenError, DeviceManagedByFileError, DevicesBusyError, UnknownDevicesError } from '../../collector/errors.js';
import type { CollectorControl, CollectorStatus, DeviceSummary, ServerCheck } from '../../collector/api/types.js';

export const FILE_SETTINGS: Settings = settingsSchema.parse({ servers: [{ host: '10.0.0.1' }, { host: '10.0.0.2' }] });

export class TestControl implements CollectorControl {
  deviceList: DeviceSummary[] = [
    { id: 'a', host: '192.0.2.1', port: 22, labels: { site: 'rome' }, pool: null, enabled: true },
    { id: 'b', host: '192.0.2.2', port: 2222, labels: {}, pool: 'edge', enabled: true },
    { id: 'c', host: 'c.example.net', port: 22, labels: {}, pool: null, enabled: false },
  ];
  serverList: ServerInfo[] = [
    { host: '10.0.0.1', port: 5201, key: SERVER_A, pool: null, busy: true, busySeconds: 12.5 },
    { host: '10.0.0.2', port: 5201, label: 'second', key: SERVER_B, pool: null, busy: false, busySeconds: 0 },
  ];
  /** how checkServer answers, by host; missing hosts are reachable */
  checks = new Map<string, ServerCheck | 'never' | Error | string>();
  checkCalls: [string, number, number][] = [];
  statusValue: CollectorStatus = {
    running: true,
    queueLength: 3,
    nextRun: new Date('2025-03-02T02:00:00.000Z'),
    lastScheduledRun: new Date('2025-03-01T02:00:00.000Z'),
    settingsSource: 'file',
  };
  running = new Set<string>();
  /** what currentTest answers; unset: the control does not know (as a collector sharing the store) */
  currentTest?: (runId: number) => CurrentTest | undefined;
  queued: string[][] = [];
  current: { settings: Settings; source: 'file' | 'api'; updatedAt: string | null } = {
    settings: FILE_SETTINGS,
    source: 'file',
    updatedAt: null,
  };
  /** thrown by the next applySettings */
  applyError: Error | null = null;

  devices(): DeviceSummary[] {
    return this.deviceList;
  }
  /** every device is the configuration file's: the API's device routes are tested on the real collector (collector/api/devices.test.ts) */
  deviceRecords(): DeviceRecord[] {
    return this.deviceList.map((d) => ({
      device: { id: d.id, host: d.host, port: d.port, username: 'root', privateKeyFile: 'key', labels: d.labels, ...(d.pool ? { pool: d.pool } : {}), enabled: d.enabled },
      managedBy: 'file',
    }));
  }
  async addDevice(device: DeviceConfig): Promise<DeviceRecord> {
    if (this.deviceList.some((d) => d.id === device.id)) throw new DeviceIdTakenError(device.id, 'file');
    this.deviceList.push({ id: device.id, host: device.host, port: device.port, labels: device.labels, pool: device.pool ?? null, enabled: device.enabled, managedBy: 'api' });
    return { device, managedBy: 'api' };
  }
  async updateDevice(id: string): Promise<DeviceRecord> {
    throw this.deviceList.some((d) => d.id === id) ? new DeviceManagedByFileError(id, { path: 'collector.yaml' }) : new UnknownDevicesError([id]);
  }
  async removeDevice(id: string): Promise<void> {
    await this.updateDevice(id);
  }
  servers(): ServerInfo[] {
    return this.serverList;
  }
  async status(): Promise<CollectorStatus> {
    return this.statusValue;
  }
  runNow(devices: string[]): { queued: string[] } {
    const unknown = devices.filter((d) => !this.deviceList.some((x) => x.id === d));
    if (unknown.length > 0) throw new UnknownDevicesError(unknown);
    const busy = devices.filter((d) => this.running.has(d));
    if (busy.length > 0) throw new DevicesBusyError(busy);
    this.queued.push(devices);
    return { queued: devices };
  }
  applySettings(settings: Settings, updatedAt: string): void {
    if (this.applyError) throw this.applyError;
    this.current = { settings, source: 'api', updatedAt };
  }
  currentSettings(): { settings: Settings; source: 'file' | 'api'; updatedAt: string | null } {
    return this.current;
  }
  checkServer(host: string, port: number, timeoutMs: number): Promise<ServerCheck> {
    this.checkCalls.push([host, port, timeoutMs]);
    const answer = this.checks.get(host) ?? { reachable: true };
    if (answer === 'never') return new Promise(() => undefined);
    if (answer instanceof Error || typeof answer === 'string') return Promise.reject(answer);
    return Promise.resolve(answer);
  }
}

export const DAY = 86_400_000;
export const D0 = Date.parse('2025-02-01T02:00:00.000Z');

/** a: ok on A at D0, failed on A at D0+1d; b: ok on B at D0. Returns the run ids. */
export async function seedRuns(store: SqliteStore): Promise<{ a1: number; a2: number; b1: number }> {
  const a1 = await store.runs.start({ device: 'a', trigger: 'schedule', roundId: null, startedAt: new Date(D0) });
  await store.runs.finish(a1, okOutcome(D0, 100, 200));
  const b1 = await store.runs.start({ device: 'b', trigger: 'schedule', roundId: null, startedAt: new Date(D0 + 1000) });
  await store.runs.finish(b1, okOutcome(D0 + 1000, 10, 20, SERVER_B));
  const a2 = await store.runs.start({ device: 'a', trigger: 'manual', roundId: null, startedAt: new Date(D0 + DAY) });
  await store.runs.finish(a2, failedOutcome(D0 + DAY));
  return { a1, a2, b1 };
}
