/**
 * Devices without restarts, through the real HTTP API of a real collector core on SQLite:
 * adding, changing and removing devices, the configuration file's devices refused, history kept,
 * the file watched. Device connections are fault-injected (every device unreachable, or held
 * until released); the same paths run against real sshd devices in tests/integration/devices-lab.test.ts.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../config/load.js';
import { ClassifiedError, type DeviceConnector } from '../model.js';
import { startService, type Service } from '../service.js';
import { okOutcome } from '../../tests/support/storeFixtures.js';

const T0 = Date.parse('2025-02-01T02:00:00.000Z');

const TOKEN = 'devices-token-0123456789abcdef';
let dir: string;
let service: Service;
let connects: string[];
let lines: string[];
/** connections to these devices wait until release() */
let held: Map<string, () => void>;

const connector: DeviceConnector = {
  connect: async (target) => {
    connects.push(`${target.id}@${target.host}`);
    if (held.has(target.id)) await new Promise<void>((resolve) => held.set(target.id, resolve));
    throw new ClassifiedError('unreachable', `no route to ${target.host}`);
  },
};

function writeConfig(devices: string): string {
  const path = join(dir, 'collector.yaml');
  const tmp = join(dir, '.collector.yaml.tmp');
  // as editors save: a new file renamed over the old one
  writeFileSync(tmp, `apiTokenFile: token\nlisten: 127.0.0.1:0\ndatabase: ./db.sqlite\ndeviceCredentialsDir: creds\nservers: [{ host: 10.9.0.1 }]\ndevices:\n${devices}`);
  renameSync(tmp, path);
  return path;
}

async function start(options: { watch?: boolean } = {}) {
  const path = writeConfig('  - { id: f1, host: 10.9.0.10, username: root, privateKeyFile: key, labels: { site: hq } }\n');
  service = await startService(loadConfigFile(path), pino({ level: 'info' }, { write: (l: string) => lines.push(l) }), {
    connector,
    schedule: false,
    watchConfig: options.watch ?? false,
  });
  return path;
}

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(`${service.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { devices?: { id: string }[] } };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const runsOf = async (device: string) => ((await api('GET', `/runs?device=${device}`)).body.runs as { status: string; device: string }[]).filter((r) => r.status !== 'running');

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'devices-api-'));
  connects = [];
  lines = [];
  held = new Map();
  writeFileSync(join(dir, 'token'), TOKEN);
  writeFileSync(join(dir, 'key'), 'k');
  mkdirSync(join(dir, 'creds'));
  writeFileSync(join(dir, 'creds', 'id_ed25519'), 'k2');
});
afterEach(async () => {
  for (const release of held.values()) release();
  await service?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('devices through the API', () => {
  it('adds a device that is listed and tested at once, without a restart', async () => {
    await start();
    const added = await api('POST', '/devices', { id: 'new-1', host: '10.9.0.50', username: 'root', privateKeyFile: 'id_ed25519', labels: { site: 'lab' } });
    expect(added.status).toBe(201);
    expect(added.body).toEqual({
      device: { id: 'new-1', host: '10.9.0.50', port: 22, username: 'root', privateKeyFile: 'id_ed25519', labels: { site: 'lab' }, enabled: true },
      managedBy: 'api',
    });
    const listed = (await api('GET', '/devices')).body.devices as unknown[];
    expect(listed).toEqual([
      { id: 'f1', host: '10.9.0.10', port: 22, labels: { site: 'hq' }, pool: null, enabled: true, managedBy: 'file', lastRun: null },
      { id: 'new-1', host: '10.9.0.50', port: 22, labels: { site: 'lab' }, pool: null, enabled: true, managedBy: 'api', lastRun: null },
    ]);
    expect((await api('POST', '/runs', { devices: ['new-1'] })).status).toBe(202);
    const run = await until('the run of the new device', async () => (await runsOf('new-1'))[0]);
    expect(run).toMatchObject({ device: 'new-1', status: 'skipped' });
    expect(connects).toEqual(['new-1@10.9.0.50']);
    expect((await api('GET', '/devices/export')).body.devices).toEqual([
      { device: { id: 'f1', host: '10.9.0.10', port: 22, username: 'root', privateKeyFile: 'key', labels: { site: 'hq' }, enabled: true }, managedBy: 'file' },
      added.body,
    ]);
  });

  it('validates bodies field by field, and refuses taken ids', async () => {
    await start();
    const bad = await api('POST', '/devices', { id: 'x y', host: '999.1.1.1', port: 0, extra: 1 });
    expect(bad.status).toBe(400);
    expect((bad.body.fields as { field: string }[]).map((f) => f.field).sort()).toEqual(['extra', 'host', 'id', 'port', 'username'].sort());
    const rejected = await api('POST', '/devices', { id: 'x', host: '10.9.0.60', username: 'root', privateKeyFile: '/etc/shadow' });
    expect(rejected).toMatchObject({ status: 400, body: { error: 'device-rejected', fields: [{ field: 'privateKeyFile' }] } });
    expect(await api('POST', '/devices', { id: 'f1', host: '10.9.0.60', username: 'root', privateKeyFile: 'id_ed25519' })).toMatchObject({
      status: 409,
      body: { error: 'device-exists' },
    });
    expect((await api('PATCH', '/devices/f1', {})).body).toMatchObject({ error: 'invalid-request', fields: [{ field: '(root)', message: 'name at least one field to change' }] });
    expect((await api('DELETE', '/devices/f1?history=maybe')).status).toBe(400);
  });

  it("refuses to change or remove the file's devices, pointing to the file", async () => {
    const path = await start();
    for (const [method, body] of [
      ['PATCH', { enabled: false }],
      ['DELETE', undefined],
    ] as const) {
      const res = await api(method, '/devices/f1', body);
      expect(res).toEqual({
        status: 409,
        body: { error: 'managed-by-file', message: `device f1 is managed by the configuration file ${path} (its devices: list): edit the file there; the collector reloads it when it is saved` },
      });
    }
    expect(await api('PATCH', '/devices/nope', { enabled: false })).toMatchObject({ status: 404, body: { error: 'unknown-device' } });
  });

  it('changes an API device; a disabled device leaves the schedule; a removed device keeps its history unless asked', async () => {
    await start();
    await api('POST', '/devices', { id: 'a1', host: '10.9.0.51', username: 'root', privateKeyFile: 'id_ed25519' });
    await api('POST', '/devices', { id: 'a2', host: '10.9.0.52', username: 'root', privateKeyFile: 'id_ed25519' });
    const patched = await api('PATCH', '/devices/a1', { enabled: false, labels: { site: 'attic' }, host: '10.9.0.61', resetHostKey: true });
    expect(patched).toMatchObject({ status: 200, body: { device: { id: 'a1', host: '10.9.0.61', enabled: false, labels: { site: 'attic' } }, managedBy: 'api' } });
    expect((await api('GET', '/health')).body).toMatchObject({ devices: 3, enabledDevices: 2 });

    for (const id of ['a1', 'a2']) {
      await api('POST', '/runs', { devices: [id] });
      await until(`the run of ${id}`, async () => (await runsOf(id))[0]);
      // and a measured night before
      const run = await service.store.runs.start({ device: id, trigger: 'schedule', roundId: null, startedAt: new Date(T0) });
      await service.store.runs.finish(run, okOutcome(T0, 90e6, 50e6));
    }
    // the run used the changed host
    expect(connects).toEqual(['a1@10.9.0.61', 'a2@10.9.0.52']);

    expect(await api('DELETE', '/devices/a1')).toEqual({ status: 200, body: { removed: 'a1', history: 'kept' } });
    expect(await api('DELETE', '/devices/a2?history=delete')).toEqual({ status: 200, body: { removed: 'a2', history: 'deleted' } });
    expect((await api('GET', '/devices')).body.devices!.map((d) => d.id)).toEqual(['f1']);
    expect((await runsOf('a1')).length).toBe(2);
    const latest = await api('GET', '/latest?device=a1&metric=tcp_received_bps');
    expect(latest.body.values).toEqual([expect.objectContaining({ device: 'a1', direction: 'download', value: 50e6 }), expect.objectContaining({ device: 'a1', direction: 'upload', value: 90e6 })]);
    const series = await api('GET', `/series?device=a1&metric=tcp_received_bps&from=${T0 - 1}&to=${T0 + 1}`);
    expect((series.body.series as unknown[]).length).toBe(2);
    expect(await runsOf('a2')).toEqual([]);
    expect((await api('GET', '/latest?device=a2&metric=tcp_received_bps')).body.values).toEqual([]);
    expect((await api('DELETE', '/devices/a1')).status).toBe(404);
  });

  it('a running test finishes when its device is removed; a queued one is not started', async () => {
    await start();
    // one server: two workers (one tests, one connects), so the third device waits in the queue
    for (const [id, host] of [['slow', '10.9.0.70'], ['mid', '10.9.0.71'], ['next', '10.9.0.72']]) {
      await api('POST', '/devices', { id, host, username: 'root', privateKeyFile: 'id_ed25519' });
    }
    held.set('slow', () => undefined);
    held.set('mid', () => undefined);
    expect((await api('POST', '/runs', { devices: ['slow', 'mid', 'next'] })).status).toBe(202);
    await until('two devices connecting', async () => (connects.length === 2 ? true : undefined));
    for (const id of ['slow', 'next']) expect((await api('DELETE', `/devices/${id}`)).status).toBe(200);
    held.get('slow')!();
    held.get('mid')!();
    const run = await until('the run of the removed device', async () => (await runsOf('slow'))[0]);
    expect(run).toMatchObject({ status: 'skipped' });
    await until('the queue to drain', async () => {
      const health = (await api('GET', '/health')).body;
      return health.queueLength === 0 && health.running === false ? true : undefined;
    });
    expect(connects.sort()).toEqual(['mid@10.9.0.71', 'slow@10.9.0.70']);
    expect(await runsOf('next')).toEqual([]);
    expect(lines.map((l) => JSON.parse(l) as { msg: string }).some((l) => l.msg === 'device next left the inventory before its run started: not tested')).toBe(true);
  });
});

describe("the configuration file's devices without restarts", () => {
  it('picks up an edit of the watched file (saved by rename), keeps the inventory on a bad edit, and reloads on demand', async () => {
    await start({ watch: true });
    writeConfig('  - { id: f1, host: 10.9.0.10, username: root, privateKeyFile: key }\n  - { id: f2, host: 10.9.0.11, username: root, privateKeyFile: key }\n');
    const ids = async () => (await api('GET', '/devices')).body.devices!.map((d) => d.id);
    await until('the watcher to add f2', async () => ((await ids()).includes('f2') ? true : undefined));

    writeConfig('  - { id: f1, host: 10.9.0.10, username: root }\n');
    await until('the bad edit to be logged', async () => (lines.some((l) => l.includes('configuration not reloaded')) ? true : undefined));
    expect(await ids()).toEqual(['f1', 'f2']);

    expect(await service.reload()).toBe(false);
    const path = join(dir, 'collector.yaml');
    rmSync(path);
    expect(await service.reload()).toBe(false);
    expect(lines.some((l) => l.includes(`cannot read configuration file ${path}`))).toBe(true);
    expect(await ids()).toEqual(['f1', 'f2']);
  });

  it('a reload that fails for another reason is logged and changes nothing', async () => {
    await start();
    await service.store.close();
    expect(await service.reload()).toBe(false);
    expect(lines.some((l) => l.includes('configuration reload failed: the devices in use stay'))).toBe(true);
  });
});
