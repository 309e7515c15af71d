import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Direction } from '../../../contract/metrics.js';
import { settingsSchema } from '../../../contract/settings.js';
import { SqliteStore } from './sqliteStore.js';
import { StoredSettingsError } from '../store.js';
import { DatabaseInUseError, StartupError } from '../../errors.js';
import type { TestOutcome } from '../../model.js';
import { failedOutcome, failedTest, okOutcome, okTcpTest, SERVER_A, SERVER_B, skippedOutcome } from '../../../tests/support/storeFixtures.js';

let dir: string;
let path: string;
let now: Date;
let store: SqliteStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'store-'));
  path = join(dir, 'collector.db');
  now = new Date('2025-03-01T00:00:00.000Z');
  store = SqliteStore.open(path, { clock: () => now, busyTimeoutMs: 1000 });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Reads the file through a second connection, as another process would. */
function count(table: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
  } finally {
    db.close();
  }
}

const T0 = Date.parse('2025-02-01T02:00:00.000Z');

describe('runs', () => {
  it('starts a run as running and stores a finished run with tests, raw JSON, metrics and intervals', async () => {
    const id = await store.runs.start({ device: 'r1', trigger: 'schedule', roundId: null, startedAt: new Date(T0) });
    expect(await store.runs.get(id)).toEqual({
      id,
      device: 'r1',
      server: null,
      trigger: 'schedule',
      status: 'running',
      errorClass: null,
      message: null,
      startedAt: '2025-02-01T02:00:00.000Z',
      endedAt: null,
      tests: [],
    });

    await store.runs.finish(id, okOutcome(T0, 90e6, 50e6));
    const run = (await store.runs.get(id))!;
    expect(run).toMatchObject({ status: 'ok', server: SERVER_A, errorClass: null, endedAt: '2025-02-01T02:00:25.000Z' });
    expect(run.tests).toEqual([
      {
        id: expect.any(Number),
        protocol: 'tcp',
        direction: 'upload',
        status: 'ok',
        errorClass: null,
        message: null,
        iperfVersion: '3.12',
        startedAt: '2025-02-01T02:00:01.000Z',
        endedAt: '2025-02-01T02:00:11.000Z',
      },
      {
        id: expect.any(Number),
        protocol: 'tcp',
        direction: 'download',
        status: 'ok',
        errorClass: null,
        message: null,
        iperfVersion: '3.12',
        startedAt: '2025-02-01T02:00:12.000Z',
        endedAt: '2025-02-01T02:00:22.000Z',
      },
    ]);

    const db = new Database(path, { readonly: true });
    const tests = db.prepare('SELECT server, iperf_version, raw_json FROM tests ORDER BY id').all();
    expect(tests).toEqual([
      { server: SERVER_A, iperf_version: '3.12', raw_json: okTcpTest('upload', 0, 90e6).outcome.raw },
      { server: SERVER_A, iperf_version: '3.12', raw_json: okTcpTest('download', 0, 50e6).outcome.raw },
    ]);
    const metrics = db
      .prepare('SELECT device, server, direction, name, value, time_ms, failed FROM metrics ORDER BY rowid')
      .raw()
      .all();
    // every metric carries the run's start time, so the points of one run line up
    expect(metrics).toEqual([
      ['r1', SERVER_A, 'upload', 'tcp_received_bps', 90e6, T0, 0],
      ['r1', SERVER_A, 'upload', 'tcp_sent_bps', 90e6 + 1000, T0, 0],
      ['r1', SERVER_A, 'download', 'tcp_received_bps', 50e6, T0, 0],
      ['r1', SERVER_A, 'download', 'tcp_sent_bps', 50e6 + 1000, T0, 0],
      ['r1', SERVER_A, null, 'result', 1, T0, 0],
      ['r1', SERVER_A, null, 'duration_s', 25, T0, 0],
    ]);
    db.close();

    expect(await store.runs.intervals(id)).toEqual([
      { protocol: 'tcp', direction: 'upload', start: 0, end: 1, timeMs: T0 + 2000, bitsPerSecond: 90e6 - 10, omitted: true },
      { protocol: 'tcp', direction: 'upload', start: 1, end: 2.5, timeMs: T0 + 3500, bitsPerSecond: 90e6 + 10, omitted: false },
      { protocol: 'tcp', direction: 'download', start: 0, end: 1, timeMs: T0 + 13_000, bitsPerSecond: 50e6 - 10, omitted: true },
      { protocol: 'tcp', direction: 'download', start: 1, end: 2.5, timeMs: T0 + 14_500, bitsPerSecond: 50e6 + 10, omitted: false },
    ]);
    expect(await store.runs.intervals(id + 100)).toEqual([]);
  });

  it("stores the iperf3 version of a failed test when iperf3 printed it (e.g. 3.9's busy server)", async () => {
    const id = await store.runs.start({ device: 'r1', trigger: 'manual', roundId: null, startedAt: new Date(T0) });
    const outcome = failedOutcome(T0);
    outcome.tests[0] = { ...outcome.tests[0], outcome: { ...outcome.tests[0].outcome, iperfVersion: 'iperf 3.9' } as TestOutcome };
    await store.runs.finish(id, outcome);
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT iperf_version FROM tests').get()).toEqual({ iperf_version: 'iperf 3.9' });
    db.close();
  });

  it('stores a failed test with its error and raw text, and the zeros flagged failed', async () => {
    const id = await store.runs.start({ device: 'r1', trigger: 'manual', roundId: null, startedAt: new Date(T0) });
    await store.runs.finish(id, failedOutcome(T0));
    const run = (await store.runs.get(id))!;
    expect(run).toMatchObject({ status: 'failed', errorClass: 'server-busy', message: 'the server is busy running a test', trigger: 'manual' });
    expect(run.tests).toEqual([
      expect.objectContaining({ status: 'failed', errorClass: 'server-busy', message: 'iperf3 said server-busy', protocol: 'tcp' }),
    ]);
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT raw_json, iperf_version FROM tests').get()).toEqual({
      raw_json: '{"error":"the server is busy"}',
      iperf_version: null,
    });
    expect(db.prepare('SELECT name, direction, value, failed FROM metrics ORDER BY rowid').raw().all()).toEqual([
      ['tcp_received_bps', 'upload', 0, 1],
      ['result', null, 0, 1],
    ]);
    db.close();
    expect(await store.runs.intervals(id)).toEqual([]);
  });

  it('refuses to finish a run twice or a run that does not exist', async () => {
    const id = await store.runs.start({ device: 'r1', trigger: 'manual', roundId: null, startedAt: new Date(T0) });
    await store.runs.finish(id, skippedOutcome(T0));
    await expect(store.runs.finish(id, okOutcome(T0, 1, 1))).rejects.toThrow(`run ${id} is not running (unknown id, or finished already)`);
    await expect(store.runs.finish(999, okOutcome(T0, 1, 1))).rejects.toThrow('run 999 is not running');
    expect((await store.runs.get(id))!.status).toBe('skipped');
    expect(await store.runs.get(999)).toBeNull();
  });
});

describe('finishRun is atomic', () => {
  async function expectNothingWritten(id: number): Promise<void> {
    const run = (await store.runs.get(id))!;
    expect(run.status).toBe('running');
    expect(run.endedAt).toBeNull();
    expect(run.server).toBeNull();
    expect(run.tests).toEqual([]);
    expect(count('tests')).toBe(0);
    expect(count('metrics')).toBe(0);
    expect(count('intervals')).toBe(0);
  }

  it('writes nothing when a test metric in the middle of the run is not a number', async () => {
    const id = await store.runs.start({ device: 'r1', trigger: 'schedule', roundId: null, startedAt: new Date(T0) });
    const outcome = okOutcome(T0, 90e6, 50e6);
    // the first test (with its metrics and intervals) is written before the second one breaks
    const second = outcome.tests[1].outcome;
    if (!second.ok) throw new Error('fixture');
    second.metrics.push({ name: 'tcp_bytes', value: Number.NaN });
    await expect(store.runs.finish(id, outcome)).rejects.toThrow(`run ${id}: metric tcp_bytes has value NaN, not a finite number`);
    await expectNothingWritten(id);
  });

  it('writes nothing when the last extra metric is infinite', async () => {
    const id = await store.runs.start({ device: 'r1', trigger: 'schedule', roundId: null, startedAt: new Date(T0) });
    const outcome = okOutcome(T0, 90e6, 50e6);
    outcome.metrics.push({ name: 'duration_s', direction: null, value: Number.POSITIVE_INFINITY, failed: false });
    await expect(store.runs.finish(id, outcome)).rejects.toThrow('metric duration_s has value Infinity');
    await expectNothingWritten(id);
  });

  it('writes nothing when the database rejects a row (a constraint fails mid-way)', async () => {
    const id = await store.runs.start({ device: 'r1', trigger: 'schedule', roundId: null, startedAt: new Date(T0) });
    const outcome = okOutcome(T0, 90e6, 50e6);
    outcome.tests.push(failedTest('udp', 'sideways' as Direction, T0 + 23_000, 'timeout'));
    await expect(store.runs.finish(id, outcome)).rejects.toThrow(/CHECK constraint failed/);
    await expectNothingWritten(id);
    // the run can still be finished properly afterwards
    await store.runs.finish(id, okOutcome(T0, 90e6, 50e6));
    expect((await store.runs.get(id))!.tests).toHaveLength(2);
  });
});

describe('interruption and rounds', () => {
  it('marks runs and rounds left running as interrupted, once', async () => {
    const round = await store.rounds.start(new Date(T0));
    const a = await store.runs.start({ device: 'a', trigger: 'schedule', roundId: round, startedAt: new Date(T0) });
    const b = await store.runs.start({ device: 'b', trigger: 'manual', roundId: null, startedAt: new Date(T0 + 1) });
    const c = await store.runs.start({ device: 'c', trigger: 'schedule', roundId: round, startedAt: new Date(T0 + 2) });
    await store.runs.finish(c, okOutcome(T0 + 2, 1, 1));

    now = new Date('2025-03-02T00:00:00.000Z');
    expect(await store.markInterrupted()).toBe(2);
    for (const id of [a, b]) {
      expect(await store.runs.get(id)).toMatchObject({
        status: 'interrupted',
        errorClass: 'interrupted',
        message: 'the collector stopped while this run was in progress',
        endedAt: '2025-03-02T00:00:00.000Z',
      });
    }
    expect((await store.runs.get(c))!.status).toBe('ok');
    expect(await store.rounds.last()).toEqual({
      id: round,
      plannedAt: new Date(T0),
      startedAt: new Date('2025-03-01T00:00:00.000Z'),
      endedAt: new Date('2025-03-02T00:00:00.000Z'),
      status: 'interrupted',
    });
    expect(await store.markInterrupted()).toBe(0);
  });

  it('tracks rounds and tells which devices a round has done, for resuming it', async () => {
    expect(await store.rounds.last()).toBeNull();
    const first = await store.rounds.start(new Date(T0));
    now = new Date('2025-03-01T01:00:00.000Z');
    await store.rounds.finish(first);
    expect(await store.rounds.last()).toMatchObject({ id: first, status: 'done', endedAt: now });

    const second = await store.rounds.start(new Date(T0 + 86_400_000));
    expect(await store.rounds.last()).toMatchObject({ id: second, status: 'running', endedAt: null, plannedAt: new Date(T0 + 86_400_000) });
    const run = (device: string, roundId: number | null) =>
      store.runs.start({ device, trigger: 'schedule', roundId, startedAt: new Date(T0 + 86_400_000) });
    await store.runs.finish(await run('ok-dev', second), okOutcome(T0, 1, 1));
    await store.runs.finish(await run('failed-dev', second), failedOutcome(T0));
    await store.runs.finish(await run('skipped-dev', second), skippedOutcome(T0));
    await run('running-dev', second);
    await store.runs.finish(await run('other-round', first), okOutcome(T0, 1, 1));
    await store.runs.finish(await run('manual', null), okOutcome(T0, 1, 1));
    const interrupted = await run('interrupted-dev', second);
    await store.markInterrupted();
    expect(interrupted).toBeGreaterThan(0);

    expect(await store.rounds.devicesDone(second)).toEqual(['failed-dev', 'ok-dev', 'skipped-dev']);
    expect((await store.rounds.last())!.status).toBe('interrupted');
    await store.rounds.reopen(second);
    expect(await store.rounds.last()).toMatchObject({ id: second, status: 'running', endedAt: null });
  });
});

describe('host keys', () => {
  it('records, replaces, reads and clears a fingerprint per device', async () => {
    expect(await store.hostKeys.get('r1')).toBeUndefined();
    await store.hostKeys.record('r1', 'SHA256:first');
    await store.hostKeys.record('r2', 'SHA256:other');
    await store.hostKeys.record('r1', 'SHA256:second');
    expect(await store.hostKeys.get('r1')).toBe('SHA256:second');
    expect(await store.hostKeys.get('r2')).toBe('SHA256:other');
    expect(await store.hostKeys.forget('r1')).toBe(true);
    expect(await store.hostKeys.forget('r1')).toBe(false);
    expect(await store.hostKeys.get('r1')).toBeUndefined();
  });
});

describe('settings', () => {
  const settings = settingsSchema.parse({ servers: [{ host: '192.0.2.10' }], schedule: { cron: '30 3 * * *' } });

  it('returns null before any save, then what was saved with the time of the save', async () => {
    expect(await store.settings.get()).toBeNull();
    expect(await store.settings.save(settings)).toBe('2025-03-01T00:00:00.000Z');
    expect(await store.settings.get()).toEqual({ settings, updatedAt: '2025-03-01T00:00:00.000Z' });
    now = new Date('2025-03-05T00:00:00.000Z');
    const changed = { ...settings, servers: [{ host: '192.0.2.11', port: 5202 }] };
    let seen = '';
    await store.settings.save(changed, (updatedAt) => (seen = updatedAt));
    expect(seen).toBe('2025-03-05T00:00:00.000Z');
    expect(await store.settings.get()).toEqual({ settings: changed, updatedAt: '2025-03-05T00:00:00.000Z' });
  });

  it('keeps the previous settings when applying the new ones fails', async () => {
    await store.settings.save(settings);
    now = new Date('2025-03-05T00:00:00.000Z');
    const changed = { ...settings, servers: [{ host: '192.0.2.11', port: 5202 }] };
    await expect(store.settings.save(changed, () => {
        throw new Error('scheduler refused');
      })).rejects.toThrow('scheduler refused');
    expect(await store.settings.get()).toEqual({ settings, updatedAt: '2025-03-01T00:00:00.000Z' });
  });

  it('names the invalid fields when the stored settings no longer validate', async () => {
    const db = new Database(path);
    db.prepare('INSERT INTO settings (id, json, updated_at) VALUES (1, ?, 0)').run(JSON.stringify({ servers: [] }));
    db.close();
    await expect(store.settings.get()).rejects.toThrow(StoredSettingsError);
    await expect(store.settings.get()).rejects.toThrow(
      'the settings stored in the database are not valid for this collector version (servers: add at least one iperf3 server); save the data source in Grafana again',
    );
  });
});

describe('retention', () => {
  it('deletes finished runs and rounds older than the cut-off with everything they wrote, and keeps running runs', async () => {
    const day = 86_400_000;
    const oldRound = await store.rounds.start(new Date(T0));
    await store.rounds.finish(oldRound);
    const runningRound = await store.rounds.start(new Date(T0 + day));
    const old = await store.runs.start({ device: 'a', trigger: 'schedule', roundId: oldRound, startedAt: new Date(T0) });
    await store.runs.finish(old, okOutcome(T0, 1, 2));
    const oldRunning = await store.runs.start({ device: 'b', trigger: 'schedule', roundId: runningRound, startedAt: new Date(T0) });
    const recent = await store.runs.start({ device: 'a', trigger: 'manual', roundId: null, startedAt: new Date(T0 + 10 * day) });
    await store.runs.finish(recent, okOutcome(T0 + 10 * day, 3, 4));
    expect(count('metrics')).toBe(12);
    expect(count('intervals')).toBe(8);

    expect(await store.applyRetention(new Date(T0 + 5 * day))).toBe(1);
    expect(await store.runs.get(old)).toBeNull();
    expect((await store.runs.get(oldRunning))!.status).toBe('running');
    expect((await store.runs.get(recent))!.tests).toHaveLength(2);
    expect(count('tests')).toBe(2);
    expect(count('metrics')).toBe(6);
    expect(count('intervals')).toBe(4);
    expect(count('rounds')).toBe(1);
    expect((await store.rounds.last())!.id).toBe(runningRound);
    expect(await store.applyRetention(new Date(T0 + 5 * day))).toBe(0);
  });
});

describe('run queries', () => {
  const day = 86_400_000;
  let ids: Record<string, number>;
  beforeEach(async () => {
    ids = {};
    const add = async (key: string, device: string, startMs: number, finish?: 'ok' | 'failed' | 'skipped', server = SERVER_A) => {
      ids[key] = await store.runs.start({ device, trigger: 'schedule', roundId: null, startedAt: new Date(startMs) });
      if (finish === 'ok') await store.runs.finish(ids[key], okOutcome(startMs, 10, 20, server));
      if (finish === 'failed') await store.runs.finish(ids[key], failedOutcome(startMs, server));
      if (finish === 'skipped') await store.runs.finish(ids[key], skippedOutcome(startMs));
    };
    await add('a1', 'a', T0, 'ok');
    await add('b1', 'b', T0 + 1000, 'failed', SERVER_B);
    await add('a2', 'a', T0 + day, 'failed');
    await add('b2', 'b', T0 + day + 1000, 'skipped');
    await add('c2', 'c', T0 + day + 2000);
  });

  it('lists runs newest first with their tests, filtered by device, status, time and limit', async () => {
    const all = await store.runs.list();
    expect(all.map((r) => r.id)).toEqual([ids.c2, ids.b2, ids.a2, ids.b1, ids.a1]);
    expect(all.map((r) => r.tests.length)).toEqual([0, 0, 1, 1, 2]);
    expect(all[3]).toMatchObject({ device: 'b', server: SERVER_B, status: 'failed' });

    expect((await store.runs.list({ devices: ['a'] })).map((r) => r.id)).toEqual([ids.a2, ids.a1]);
    expect((await store.runs.list({ devices: ['a', 'c'], status: ['failed', 'running'] })).map((r) => r.id)).toEqual([ids.c2, ids.a2]);
    expect((await store.runs.list({ fromMs: T0 + 1000, toMs: T0 + day + 1000 })).map((r) => r.id)).toEqual([ids.b2, ids.a2, ids.b1]);
    expect((await store.runs.list({ limit: 2 })).map((r) => r.id)).toEqual([ids.c2, ids.b2]);
    expect(await store.runs.list({ devices: ['nobody'] })).toEqual([]);
  });

  it('gives the newest run of each device', async () => {
    const last = await store.runs.lastOf(['a', 'b', 'c', 'nobody']);
    expect([...last.keys()].sort()).toEqual(['a', 'b', 'c']);
    expect(last.get('a')).toMatchObject({ id: ids.a2, status: 'failed', tests: [expect.objectContaining({ status: 'failed' })] });
    expect(last.get('c')).toMatchObject({ id: ids.c2, status: 'running' });
  });
});

describe('the database file', () => {
  it('is created 0600 with its WAL, and an older world-readable file is tightened', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'store-mode-')), 'fresh.db');
    const fresh = SqliteStore.open(path);
    await fresh.rounds.start(new Date(T0)); // a write creates the WAL
    for (const file of [path, `${path}-wal`, `${path}-shm`]) expect(statSync(file).mode & 0o777, file).toBe(0o600);
    await fresh.close();
    chmodSync(path, 0o644);
    const reopened = SqliteStore.open(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await reopened.close();
  });

  it('belongs to one owner process at a time; readers may still open it', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'store-owner-')), 'owned.db');
    const owner = SqliteStore.open(path, { owner: true });
    expect(() => SqliteStore.open(path, { owner: true })).toThrow(DatabaseInUseError);
    const reader = SqliteStore.open(path);
    expect(await reader.rounds.last()).toBeNull();
    await reader.close();
    await owner.close();
    const next = SqliteStore.open(path, { owner: true }); // released on close
    await next.close();
  });

  it('names an unusable file and what to do about it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'store-bad-'));
    writeFileSync(join(dir, 'text.db'), 'not a database '.repeat(20));
    expect(() => SqliteStore.open(join(dir, 'text.db'))).toThrow(/cannot use database .*text\.db: .*\(SQLITE_NOTADB\); the file is not a SQLite database/);
    expect(() => SqliteStore.open(join(dir, 'text.db'))).toThrow(StartupError);
    mkdirSync(join(dir, 'folder.db'));
    expect(() => SqliteStore.open(join(dir, 'folder.db'))).toThrow(/cannot use database .*folder\.db: .*the collector cannot open or create it|cannot use database .*folder\.db/);
    mkdirSync(join(dir, 'locked.db.owner'));
    expect(() => SqliteStore.open(join(dir, 'locked.db'), { owner: true })).toThrow(/^cannot lock database .*locked\.db/);
  });
});
