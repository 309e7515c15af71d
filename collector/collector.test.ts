/**
 * The collector core behind its real HTTP API and a real SQLite file: settings pushed the way
 * the Grafana data source pushes them, run-now validation, the server list and busy state.
 * (Runs against real devices are in tests/integration/collector-lab.test.ts.)
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunRecord } from '../contract/api.js';
import { loadConfigText } from './config/load.js';
import { ClassifiedError, type DeviceConnector } from './model.js';
import { forgetHostKey, parseListen, startService, type Service } from './service.js';
import { SqliteStore } from './store/sqlite/sqliteStore.js';

const TOKEN = 'core-token-0123456789abcdef';
const logger = pino({ level: 'silent' });
let dir: string;
let service: Service;
let connects: string[];

/** Fault injection: every device is unreachable, so runs end at once as `skipped`. */
const unreachable: DeviceConnector = {
  connect: async (target) => {
    connects.push(target.id);
    throw new ClassifiedError('unreachable', `no route to ${target.host}`);
  },
};

function loaded(extra = '') {
  writeFileSync(join(dir, 'token'), TOKEN);
  writeFileSync(join(dir, 'key'), 'k');
  writeFileSync(join(dir, 'iperf-pass'), 'file-password');
  return loadConfigText(
    `apiTokenFile: token
listen: 127.0.0.1:0
database: ./db.sqlite
servers: [{ host: 10.9.0.1, label: one }]
pools: { org-a: [{ host: 10.9.1.1, port: 5202 }] }
devices:
  - { id: a, host: 10.9.0.10, username: root, privateKeyFile: key, labels: { site: hq } }
  - { id: b, host: 10.9.0.11, username: root, privateKeyFile: key, pool: org-a, enabled: false }
${extra}`,
    join(dir, 'collector.yaml'),
  );
}

async function api(path: string, init: RequestInit = {}) {
  const res = await fetch(`${service.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...init.headers },
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'core-'));
  connects = [];
});
afterEach(async () => {
  await service?.close();
});

describe('collector core behind the API', () => {
  it('lists devices without credentials and servers of every pool', async () => {
    service = await startService(loaded(), logger, { connector: unreachable, schedule: false });
    const devices = (await api('/api/v1/devices')).body.devices as Record<string, unknown>[];
    expect(devices.map((d) => [d.id, d.pool, d.enabled, d.labels])).toEqual([
      ['a', null, true, { site: 'hq' }],
      ['b', 'org-a', false, {}],
    ]);
    expect(JSON.stringify(devices)).not.toMatch(/privateKey|key/i);
    const servers = (await api('/api/v1/servers')).body.servers as Record<string, unknown>[];
    expect(servers.map((s) => [s.key, s.pool, s.label, s.busy])).toEqual([
      ['10.9.0.1:5201', null, 'one', false],
      ['10.9.1.1:5202', 'org-a', undefined, false],
    ]);
  });

  it('takes settings pushed by Grafana, persists them, masks the password and restarts the schedule', async () => {
    service = await startService(loaded(), logger, { connector: unreachable });
    expect((await api('/api/v1/settings')).body.source).toBe('file');
    const before = (await service.collector.status()).nextRun;
    const pushed = {
      servers: [{ host: '2001:db8::5', port: 5201 }],
      pools: { 'org-a': [{ host: 'iperf.org-a.example', port: 5201 }] },
      clientOptions: { time: 5, auth: { username: 'mon', password: 'grafana-secret', rsaPublicKey: 'PEM' } },
      schedule: { cron: '30 3 * * *', timezone: 'UTC' },
    };
    const put = await api('/api/v1/settings', { method: 'PUT', body: JSON.stringify(pushed) });
    expect(put.status).toBe(200);
    expect(JSON.stringify(put.body)).not.toContain('grafana-secret');
    const got = await api('/api/v1/settings');
    expect(got.body.source).toBe('api');
    expect(JSON.stringify(got.body)).not.toContain('grafana-secret');
    expect((await service.collector.status()).nextRun?.toISOString()).toMatch(/T03:30:00/);
    expect((await service.collector.status()).nextRun).not.toEqual(before);
    expect(service.collector.servers().map((s) => s.key)).toEqual(['[2001:db8::5]:5201', 'iperf.org-a.example:5201']);

    // a restart keeps what Grafana pushed, secrets included (they stay inside the collector)
    await service.close();
    service = await startService(loaded(), logger, { connector: unreachable, schedule: false });
    expect(service.collector.currentSettings().source).toBe('api');
    expect(service.collector.currentSettings().settings.clientOptions.auth?.password).toBe('grafana-secret');
  });

  it('rejects settings that cannot work, naming the field, and keeps the stored ones', async () => {
    service = await startService(loaded(), logger, { connector: unreachable, schedule: false });
    const noPool = await api('/api/v1/settings', { method: 'PUT', body: JSON.stringify({ servers: [{ host: '10.9.0.1' }] }) });
    expect(noPool.status).toBe(400);
    expect(noPool.body.fields).toEqual([{ field: 'pools', message: 'device b uses pool "org-a", which these settings do not define' }]);
    const noSecret = await api('/api/v1/settings', {
      method: 'PUT',
      body: JSON.stringify({ servers: [{ host: '10.9.0.1' }], pools: { 'org-a': [{ host: '10.9.1.1' }] }, clientOptions: { auth: { username: 'mon' } } }),
    });
    expect(noSecret.status).toBe(400);
    expect((noSecret.body.fields as { field: string }[]).map((f) => f.field)).toEqual(['clientOptions.auth.password', 'clientOptions.auth.rsaPublicKey']);
    expect((await api('/api/v1/settings')).body.source).toBe('file');
    expect(await service.store.settings.get()).toBeNull();
  });

  it('never hands the password of its own file to pushed settings, and refuses pushed file paths', async () => {
    writeFileSync(join(dir, 'pem'), 'PEM');
    service = await startService(
      loaded('clientOptions: { auth: { username: mon, passwordFile: iperf-pass, rsaPublicKeyFile: pem } }'),
      logger,
      { connector: unreachable, schedule: false },
    );
    const pools = { 'org-a': [{ host: '10.9.1.1' }] };
    // a pushed server and key without a password would receive the file's password: refused
    const harvest = await api('/api/v1/settings', {
      method: 'PUT',
      body: JSON.stringify({ servers: [{ host: '203.0.113.66' }], pools, clientOptions: { auth: { username: 'mon', rsaPublicKey: 'ATTACKER PEM' } } }),
    });
    expect(harvest.status).toBe(400);
    expect(harvest.body.fields).toEqual([
      {
        field: 'clientOptions.auth.password',
        message: expect.stringMatching(/^pushed iperf3 authentication needs its own password .*passwordFile of the collector configuration is used only with the settings of that file/),
      },
    ]);
    // file paths belong to the collector's own configuration
    const paths = await api('/api/v1/settings', {
      method: 'PUT',
      body: JSON.stringify({ servers: [{ host: '10.9.0.1' }], pools, clientOptions: { auth: { username: 'mon', password: 'p', passwordFile: '/etc/shadow' } } }),
    });
    expect(paths.status).toBe(400);
    expect(paths.body.fields).toEqual([{ field: 'clientOptions.auth.passwordFile', message: expect.stringMatching(/^file paths cannot be pushed/) }]);
    expect(await service.store.settings.get()).toBeNull();
    // with its own password, the public key may still come from the file
    const own = await api('/api/v1/settings', {
      method: 'PUT',
      body: JSON.stringify({ servers: [{ host: '10.9.0.1' }], pools, clientOptions: { auth: { username: 'other', password: 'pushed-secret' } } }),
    });
    expect(own.status).toBe(200);
    expect(JSON.stringify(own.body)).not.toContain('pushed-secret');
  });

  it('queues run-now requests, refuses unknown devices (404) and devices already queued (409)', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const slow: DeviceConnector = { connect: (t) => gate.then(() => unreachable.connect(t)) };
    service = await startService(loaded(), logger, { connector: slow, schedule: false });
    expect((await api('/api/v1/runs', { method: 'POST', body: JSON.stringify({ devices: ['zz'] }) })).status).toBe(404);
    const queued = await api('/api/v1/runs', { method: 'POST', body: JSON.stringify({ devices: ['a', 'b', 'a'] }) });
    expect(queued).toEqual({ status: 202, body: { queued: ['a', 'b'] } });
    expect((await api('/api/v1/runs', { method: 'POST', body: JSON.stringify({ devices: ['a'] }) })).status).toBe(409);
    expect(await service.collector.status()).toMatchObject({ running: true, settingsSource: 'file' });
    open();
    for (let i = 0; i < 50 && (await service.collector.status()).running; i++) await new Promise((r) => setTimeout(r, 20));
    const runs = (await api('/api/v1/runs')).body.runs as { device: string; status: string; errorClass: string; trigger: string }[];
    expect(runs.map((r) => [r.device, r.status, r.errorClass, r.trigger]).sort()).toEqual([
      ['a', 'skipped', 'unreachable', 'manual'],
      ['b', 'skipped', 'unreachable', 'manual'],
    ]);
    expect(connects.sort()).toEqual(['a', 'b']);
  });

  it('says in GET /api/v1/runs which test a running run is in, until the run is stored', async () => {
    let finish!: () => void;
    const hold = new Promise<void>((r) => (finish = r));
    // fault injection: a device whose iperf3 never answers until the test lets it fail
    const hanging: DeviceConnector = {
      connect: async () => ({
        exec: () => hold.then(() => ({ stdout: '', stderr: 'iperf3: error - unable to connect to server', exitCode: 1, timedOut: false })),
        writeTempFile: async () => '/tmp/k',
        removeFile: async () => undefined,
        close: () => undefined,
      }),
    };
    service = await startService(loaded(), logger, { connector: hanging, schedule: false });
    await api('/api/v1/runs', { method: 'POST', body: JSON.stringify({ devices: ['a'] }) });
    let runs: RunRecord[] = [];
    for (let i = 0; i < 100 && runs[0]?.current === undefined; i++) {
      await new Promise((r) => setTimeout(r, 20));
      runs = (await api('/api/v1/runs?device=a')).body.runs as RunRecord[];
    }
    expect(runs[0]).toMatchObject({ device: 'a', status: 'running', current: { protocol: 'tcp', direction: 'upload', index: 1, of: 4 } });
    expect(service.collector.currentTest(runs[0].id)).toEqual(runs[0].current);
    finish();
    for (let i = 0; i < 100 && (await service.collector.status()).running; i++) await new Promise((r) => setTimeout(r, 20));
    const done = (await api(`/api/v1/runs/${runs[0].id}`)).body as unknown as RunRecord;
    expect(done.status).toBe('failed');
    expect(done.current).toBeUndefined();
    expect(service.collector.currentTest(runs[0].id)).toBeUndefined();
  });

  it('runs a round at start when asked, applies retention, and checks servers over TCP', async () => {
    const store = SqliteStore.open(join(dir, 'db.sqlite'));
    const old = await store.runs.start({ device: 'a', trigger: 'schedule', roundId: null, startedAt: new Date('2020-01-01T00:00:00Z') });
    await store.runs.finish(old, { status: 'skipped', errorClass: 'unreachable', message: 'x', server: null, endedAt: new Date('2020-01-01T00:00:01Z'), tests: [], metrics: [] });
    await store.close();
    service = await startService(loaded('schedule: { cron: "0 2 * * *", runAtStart: true }'), logger, { connector: unreachable });
    for (let i = 0; i < 100 && (await service.store.rounds.last())?.status !== 'done'; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await service.store.rounds.last())?.status).toBe('done');
    expect(connects).toEqual(['a']); // b is disabled
    // the 2020 run is past retention (400 days) and was deleted after the round
    expect((await service.store.runs.list({})).map((r) => r.startedAt.slice(0, 4))).toEqual([String(new Date().getFullYear())]);
    const { port } = parseListen(service.url.replace('http://', ''));
    expect(await service.collector.checkServer('127.0.0.1', port)).toEqual({ reachable: true });
    const closed = await service.collector.checkServer('127.0.0.1', 1);
    expect(closed).toEqual({ reachable: false, error: 'ECONNREFUSED' });
  });

  it('resumes an interrupted round at start-up with the devices it had not finished', async () => {
    const store = SqliteStore.open(join(dir, 'db.sqlite'));
    const now = new Date();
    const round = await store.rounds.start(new Date(now.getTime() - 60_000));
    await store.runs.start({ device: 'a', trigger: 'schedule', roundId: round, startedAt: now }); // cut off by a crash
    await store.close();
    // b is disabled: only a is resumed; the cron is far from now, so the window is open
    const minute = (now.getUTCMinutes() + 30) % 60;
    service = await startService(loaded(`schedule: { cron: "${minute} * * * *" }`), logger, { connector: unreachable });
    for (let i = 0; i < 100 && (await service.store.rounds.last())?.status !== 'done'; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await service.store.rounds.last()).toMatchObject({ id: round, status: 'done' });
    expect(connects).toEqual(['a']);
    expect((await service.store.runs.list({})).map((r) => [r.device, r.status]).sort()).toEqual([
      ['a', 'interrupted'],
      ['a', 'skipped'],
    ]);
  });

  it('gives the port back and closes the database when it cannot listen, and serves on IPv6', async () => {
    const v6 = loaded();
    v6.config.listen = '[::1]:0';
    service = await startService(v6, logger, { connector: unreachable, schedule: false });
    expect(service.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    const busy = { ...loaded(), config: { ...loaded().config, listen: service.url.replace('http://', '') } };
    busy.databasePath = join(dir, 'other.sqlite');
    await expect(startService(busy, logger, { connector: unreachable, schedule: false })).rejects.toThrow(/EADDRINUSE/);
    // the second service's store was closed: the file can be opened and written again
    const again = SqliteStore.open(join(dir, 'other.sqlite'));
    await again.rounds.start(new Date());
    await again.close();
  });

  it('logs a run whose results could not be stored, and keeps serving', async () => {
    const lines: string[] = [];
    const capture = pino({ level: 'error' }, { write: (l: string) => lines.push(l) });
    service = await startService(loaded(), capture, { connector: unreachable, schedule: false });
    // fault injection: the disk fails when the run is written
    service.store.runs.finish = async () => {
      throw new Error('disk I/O error');
    };
    expect((await api('/api/v1/runs', { method: 'POST', body: JSON.stringify({ devices: ['a'] }) })).status).toBe(202);
    for (let i = 0; i < 50 && (await service.collector.status()).running; i++) await new Promise((r) => setTimeout(r, 20));
    const logged = lines.map((l) => JSON.parse(l) as { msg: string; device: string; err: { message: string } });
    expect(logged).toContainEqual(expect.objectContaining({ msg: 'run crashed', device: 'a', err: expect.objectContaining({ message: 'disk I/O error' }) }));
    // nothing half-written: the run stays `running` until the next start marks it interrupted
    expect((await service.store.runs.list({})).map((r) => r.status)).toEqual(['running']);
    expect((await api('/api/v1/runs', { method: 'POST', body: JSON.stringify({ devices: ['a'] }) })).status).toBe(202);
    for (let i = 0; i < 50 && (await service.collector.status()).running; i++) await new Promise((r) => setTimeout(r, 20));
    // the run command waits through the same queue: a run that crashed has no summary
    expect(await service.collector.runDevices(['a'])).toEqual([]);
  });

  it('refuses to start on stored settings this version cannot read, naming the fix, and closes the database', async () => {
    const config = loaded();
    const seeded = SqliteStore.open(config.databasePath);
    await seeded.close();
    const raw = new Database(config.databasePath);
    raw.prepare('INSERT INTO settings (id, json, updated_at) VALUES (1, ?, 0)').run(JSON.stringify({ servers: 'not a list' }));
    raw.close();
    await expect(startService(config, logger, { connector: unreachable, schedule: false })).rejects.toThrow(
      /settings stored in the database are not valid .*PUT \/api\/v1\/settings/,
    );
    // closed: another connection can take the write lock at once
    const again = new Database(config.databasePath, { timeout: 0 });
    again.prepare('DELETE FROM settings').run();
    again.close();
  });

  it('takes a push of unchanged settings as a no-op: nothing written, nothing restarted', async () => {
    service = await startService(loaded(), logger, { connector: unreachable, schedule: false });
    const body = JSON.stringify({ servers: [{ host: '10.9.0.1' }], pools: { 'org-a': [{ host: '10.9.1.1' }] }, clientOptions: { auth: { username: 'u', password: 'pw', rsaPublicKey: 'PEM' } } });
    const first = await api('/api/v1/settings', { method: 'PUT', body });
    expect(first.status).toBe(200);
    await new Promise((r) => setTimeout(r, 20));
    const again = await api('/api/v1/settings', { method: 'PUT', body });
    expect(again.body.updatedAt).toBe(first.body.updatedAt);
    expect((await service.store.settings.get())?.updatedAt).toBe(first.body.updatedAt);
    // another password is a change
    await new Promise((r) => setTimeout(r, 20));
    const changed = await api('/api/v1/settings', { method: 'PUT', body: body.replace('"pw"', '"pw2"') });
    expect(changed.body.updatedAt).not.toBe(first.body.updatedAt);
  });

  it('keeps the pushed iperf3 password encrypted at rest, readable only with the API token it was saved under', async () => {
    const config = loaded();
    service = await startService(config, logger, { connector: unreachable, schedule: false });
    const body = { servers: [{ host: '10.9.0.1' }], pools: { 'org-a': [{ host: '10.9.1.1' }] }, clientOptions: { auth: { username: 'u', password: 'top-secret-pw', rsaPublicKey: 'PEM' } } };
    expect((await api('/api/v1/settings', { method: 'PUT', body: JSON.stringify(body) })).status).toBe(200);
    await service.close();
    // nowhere in the database files, in any form sqlite writes
    for (const file of [config.databasePath, `${config.databasePath}-wal`].filter((f) => existsSync(f))) {
      expect(readFileSync(file).includes(Buffer.from('top-secret-pw')), file).toBe(false);
    }
    service = await startService(config, logger, { connector: unreachable, schedule: false });
    expect(service.collector.currentSettings().settings.clientOptions.auth?.password).toBe('top-secret-pw');
    await service.close();
    // a new API token: the password cannot be read any more, and the log says what to do
    const lines: string[] = [];
    const capture = pino({ level: 'warn' }, { write: (l: string) => lines.push(l) });
    service = await startService({ ...config, apiToken: 'another-token-0123456789abcdef' }, capture, { connector: unreachable, schedule: false });
    expect(service.collector.currentSettings().settings.clientOptions.auth?.password).toBeUndefined();
    expect(lines.join('')).toContain('encrypted with another API token');
  });

  it('forgets a recorded host key beside a running service, once, for a device of the file or of the API', async () => {
    const config = loaded();
    service = await startService(config, logger, { connector: unreachable, schedule: false });
    await service.store.hostKeys.record('a', 'SHA256:old');
    expect(await forgetHostKey(config, 'a')).toBe('forgotten');
    expect(await service.store.hostKeys.get('a')).toBeUndefined();
    expect(await forgetHostKey(config, 'a')).toBe('none');
    // a device the API added (the store's inventory, not the file's)
    await service.store.devices.add({ id: 'api-1', host: '10.9.0.12', port: 22, username: 'root', privateKeyFile: 'key', enabled: true, labels: {} });
    expect(await forgetHostKey(config, 'api-1')).toBe('none');
    await service.store.hostKeys.record('api-1', 'SHA256:old');
    expect(await forgetHostKey(config, 'api-1')).toBe('forgotten');
    expect(await forgetHostKey(config, 'nope')).toBe('unknown');
    // a key left behind by a device that is gone is still forgotten
    await service.store.hostKeys.record('gone', 'SHA256:old');
    expect(await forgetHostKey(config, 'gone')).toBe('forgotten');
  });

  it('parses listen addresses, IPv6 included', () => {
    expect(parseListen('[::1]:8686')).toEqual({ host: '::1', port: 8686 });
    expect(parseListen('0.0.0.0:80')).toEqual({ host: '0.0.0.0', port: 80 });
  });
});
