import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Direction } from '../../contract/metrics.js';
import { settingsSchema } from '../../contract/settings.js';
import { SqliteStore, StoredSettingsError } from './sqlite-store.js';
import { failedOutcome, failedTest, okOutcome, okTcpTest, SERVER_A, SERVER_B, skippedOutcome } from '../../tests/support/storeFixtures.js';

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
afterEach(() => {
  store.close();
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
  it('starts a run as running and stores a finished run with tests, raw JSON, metrics and intervals', () => {
    const id = store.startRun({ device: 'r1', trigger: 'schedule', roundId: null, startedAt: new Date(T0) });
    expect(store.isRunning('r1')).toBe(true);
    expect(store.isRunning('r2')).toBe(false);
    expect(store.getRun(id)).toEqual({
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

    store.finishRun(id, okOutcome(T0, 90e6, 50e6));
    expect(store.isRunning('r1')).toBe(false);
    const run = store.getRun(id)!;
    expect(run).toMatchObject({ status: 'ok', server: SERVER_A, errorClass: null, endedAt: '2025-02-01T02:00:25.000Z' });
    expect(run.tests).toEqual([
      {
        id: expect.any(Number),
        protocol: 'tcp',
        direction: 'upload',
        status: 'ok',
        errorClass: null,
        message: null,
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

    expect(store.intervals(id)).toEqual([
      { protocol: 'tcp', direction: 'upload', start: 0, end: 1, timeMs: T0 + 2000, bitsPerSecond: 90e6 - 10, omitted: true },
      { protocol: 'tcp', direction: 'upload', start: 1, end: 2.5, timeMs: T0 + 3500, bitsPerSecond: 90e6 + 10, omitted: false },
      { protocol: 'tcp', direction: 'download', start: 0, end: 1, timeMs: T0 + 13_000, bitsPerSecond: 50e6 - 10, omitted: true },
      { protocol: 'tcp', direction: 'download', start: 1, end: 2.5, timeMs: T0 + 14_500, bitsPerSecond: 50e6 + 10, omitted: false },
    ]);
    expect(store.intervals(id + 100)).toEqual([]);
  });

  it('stores a failed test with its error and raw text, and the zeros flagged failed', () => {
    const id = store.startRun({ device: 'r1', trigger: 'manual', roundId: null, startedAt: new Date(T0) });
    store.finishRun(id, failedOutcome(T0));
    const run = store.getRun(id)!;
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
    expect(store.intervals(id)).toEqual([]);
  });

  it('refuses to finish a run twice or a run that does not exist', () => {
    const id = store.startRun({ device: 'r1', trigger: 'manual', roundId: null, startedAt: new Date(T0) });
    store.finishRun(id, skippedOutcome(T0));
    expect(() => store.finishRun(id, okOutcome(T0, 1, 1))).toThrow(`run ${id} is not running (unknown id, or finished already)`);
    expect(() => store.finishRun(999, okOutcome(T0, 1, 1))).toThrow('run 999 is not running');
    expect(store.getRun(id)!.status).toBe('skipped');
    expect(store.getRun(999)).toBeNull();
  });
});

describe('finishRun is atomic', () => {
  function expectNothingWritten(id: number): void {
    const run = store.getRun(id)!;
    expect(run.status).toBe('running');
    expect(run.endedAt).toBeNull();
    expect(run.server).toBeNull();
    expect(run.tests).toEqual([]);
    expect(count('tests')).toBe(0);
    expect(count('metrics')).toBe(0);
    expect(count('intervals')).toBe(0);
  }

  it('writes nothing when a test metric in the middle of the run is not a number', () => {
    const id = store.startRun({ device: 'r1', trigger: 'schedule', roundId: null, startedAt: new Date(T0) });
    const outcome = okOutcome(T0, 90e6, 50e6);
    // the first test (with its metrics and intervals) is written before the second one breaks
    const second = outcome.tests[1].outcome;
    if (!second.ok) throw new Error('fixture');
    second.metrics.push({ name: 'tcp_bytes', value: Number.NaN });
    expect(() => store.finishRun(id, outcome)).toThrow(`run ${id}: metric tcp_bytes has value NaN, not a finite number`);
    expectNothingWritten(id);
  });

  it('writes nothing when the last extra metric is infinite', () => {
    const id = store.startRun({ device: 'r1', trigger: 'schedule', roundId: null, startedAt: new Date(T0) });
    const outcome = okOutcome(T0, 90e6, 50e6);
    outcome.metrics.push({ name: 'duration_s', direction: null, value: Number.POSITIVE_INFINITY, failed: false });
    expect(() => store.finishRun(id, outcome)).toThrow('metric duration_s has value Infinity');
    expectNothingWritten(id);
  });

  it('writes nothing when the database rejects a row (a constraint fails mid-way)', () => {
    const id = store.startRun({ device: 'r1', trigger: 'schedule', roundId: null, startedAt: new Date(T0) });
    const outcome = okOutcome(T0, 90e6, 50e6);
    outcome.tests.push(failedTest('udp', 'sideways' as Direction, T0 + 23_000, 'timeout'));
    expect(() => store.finishRun(id, outcome)).toThrow(/CHECK constraint failed/);
    expectNothingWritten(id);
    // the run can still be finished properly afterwards
    store.finishRun(id, okOutcome(T0, 90e6, 50e6));
    expect(store.getRun(id)!.tests).toHaveLength(2);
  });
});

describe('interruption and rounds', () => {
  it('marks runs and rounds left running as interrupted, once', () => {
    const round = store.startRound(new Date(T0));
    const a = store.startRun({ device: 'a', trigger: 'schedule', roundId: round, startedAt: new Date(T0) });
    const b = store.startRun({ device: 'b', trigger: 'manual', roundId: null, startedAt: new Date(T0 + 1) });
    const c = store.startRun({ device: 'c', trigger: 'schedule', roundId: round, startedAt: new Date(T0 + 2) });
    store.finishRun(c, okOutcome(T0 + 2, 1, 1));

    now = new Date('2025-03-02T00:00:00.000Z');
    expect(store.markInterrupted()).toBe(2);
    for (const id of [a, b]) {
      expect(store.getRun(id)).toMatchObject({
        status: 'interrupted',
        errorClass: 'interrupted',
        message: 'the collector stopped while this run was in progress',
        endedAt: '2025-03-02T00:00:00.000Z',
      });
    }
    expect(store.getRun(c)!.status).toBe('ok');
    expect(store.lastRound()).toEqual({
      id: round,
      plannedAt: new Date(T0),
      startedAt: new Date('2025-03-01T00:00:00.000Z'),
      endedAt: new Date('2025-03-02T00:00:00.000Z'),
      status: 'interrupted',
    });
    expect(store.markInterrupted()).toBe(0);
  });

  it('tracks rounds and tells which devices a round has done, for resuming it', () => {
    expect(store.lastRound()).toBeNull();
    const first = store.startRound(new Date(T0));
    now = new Date('2025-03-01T01:00:00.000Z');
    store.finishRound(first);
    expect(store.lastRound()).toMatchObject({ id: first, status: 'done', endedAt: now });

    const second = store.startRound(new Date(T0 + 86_400_000));
    expect(store.lastRound()).toMatchObject({ id: second, status: 'running', endedAt: null, plannedAt: new Date(T0 + 86_400_000) });
    const run = (device: string, roundId: number | null) =>
      store.startRun({ device, trigger: 'schedule', roundId, startedAt: new Date(T0 + 86_400_000) });
    store.finishRun(run('ok-dev', second), okOutcome(T0, 1, 1));
    store.finishRun(run('failed-dev', second), failedOutcome(T0));
    store.finishRun(run('skipped-dev', second), skippedOutcome(T0));
    run('running-dev', second);
    store.finishRun(run('other-round', first), okOutcome(T0, 1, 1));
    store.finishRun(run('manual', null), okOutcome(T0, 1, 1));
    const interrupted = run('interrupted-dev', second);
    store.markInterrupted();
    expect(interrupted).toBeGreaterThan(0);

    expect(store.devicesDoneInRound(second)).toEqual(['failed-dev', 'ok-dev', 'skipped-dev']);
    expect(store.lastRound()!.status).toBe('interrupted');
    store.reopenRound(second);
    expect(store.lastRound()).toMatchObject({ id: second, status: 'running', endedAt: null });
  });
});

describe('host keys', () => {
  it('records, replaces, reads and clears a fingerprint per device', () => {
    expect(store.getHostKey('r1')).toBeUndefined();
    store.recordHostKey('r1', 'SHA256:first');
    store.recordHostKey('r2', 'SHA256:other');
    store.recordHostKey('r1', 'SHA256:second');
    expect(store.getHostKey('r1')).toBe('SHA256:second');
    expect(store.getHostKey('r2')).toBe('SHA256:other');
    expect(store.clearHostKey('r1')).toBe(true);
    expect(store.clearHostKey('r1')).toBe(false);
    expect(store.getHostKey('r1')).toBeUndefined();
  });
});

describe('settings', () => {
  const settings = settingsSchema.parse({ servers: [{ host: '192.0.2.10' }], schedule: { cron: '30 3 * * *' } });

  it('returns null before any save, then what was saved with the time of the save', () => {
    expect(store.getSettings()).toBeNull();
    expect(store.saveSettings(settings)).toBe('2025-03-01T00:00:00.000Z');
    expect(store.getSettings()).toEqual({ settings, updatedAt: '2025-03-01T00:00:00.000Z' });
    now = new Date('2025-03-05T00:00:00.000Z');
    const changed = { ...settings, servers: [{ host: '192.0.2.11', port: 5202 }] };
    let seen = '';
    store.saveSettings(changed, (updatedAt) => (seen = updatedAt));
    expect(seen).toBe('2025-03-05T00:00:00.000Z');
    expect(store.getSettings()).toEqual({ settings: changed, updatedAt: '2025-03-05T00:00:00.000Z' });
  });

  it('keeps the previous settings when applying the new ones fails', () => {
    store.saveSettings(settings);
    now = new Date('2025-03-05T00:00:00.000Z');
    const changed = { ...settings, servers: [{ host: '192.0.2.11', port: 5202 }] };
    expect(() =>
      store.saveSettings(changed, () => {
        throw new Error('scheduler refused');
      }),
    ).toThrow('scheduler refused');
    expect(store.getSettings()).toEqual({ settings, updatedAt: '2025-03-01T00:00:00.000Z' });
  });

  it('names the invalid fields when the stored settings no longer validate', () => {
    const db = new Database(path);
    db.prepare('INSERT INTO settings (id, json, updated_at) VALUES (1, ?, 0)').run(JSON.stringify({ servers: [] }));
    db.close();
    expect(() => store.getSettings()).toThrow(StoredSettingsError);
    expect(() => store.getSettings()).toThrow(
      'the settings stored in the database are not valid for this collector version (servers: add at least one iperf3 server); save the data source in Grafana again',
    );
  });
});

describe('retention', () => {
  it('deletes finished runs and rounds older than the cut-off with everything they wrote, and keeps running runs', () => {
    const day = 86_400_000;
    const oldRound = store.startRound(new Date(T0));
    store.finishRound(oldRound);
    const runningRound = store.startRound(new Date(T0 + day));
    const old = store.startRun({ device: 'a', trigger: 'schedule', roundId: oldRound, startedAt: new Date(T0) });
    store.finishRun(old, okOutcome(T0, 1, 2));
    const oldRunning = store.startRun({ device: 'b', trigger: 'schedule', roundId: runningRound, startedAt: new Date(T0) });
    const recent = store.startRun({ device: 'a', trigger: 'manual', roundId: null, startedAt: new Date(T0 + 10 * day) });
    store.finishRun(recent, okOutcome(T0 + 10 * day, 3, 4));
    expect(count('metrics')).toBe(12);
    expect(count('intervals')).toBe(8);

    expect(store.applyRetention(new Date(T0 + 5 * day))).toBe(1);
    expect(store.getRun(old)).toBeNull();
    expect(store.getRun(oldRunning)!.status).toBe('running');
    expect(store.getRun(recent)!.tests).toHaveLength(2);
    expect(count('tests')).toBe(2);
    expect(count('metrics')).toBe(6);
    expect(count('intervals')).toBe(4);
    expect(count('rounds')).toBe(1);
    expect(store.lastRound()!.id).toBe(runningRound);
    expect(store.applyRetention(new Date(T0 + 5 * day))).toBe(0);
  });
});

describe('run queries', () => {
  const day = 86_400_000;
  let ids: Record<string, number>;
  beforeEach(() => {
    ids = {};
    const add = (key: string, device: string, startMs: number, finish?: 'ok' | 'failed' | 'skipped', server = SERVER_A) => {
      ids[key] = store.startRun({ device, trigger: 'schedule', roundId: null, startedAt: new Date(startMs) });
      if (finish === 'ok') store.finishRun(ids[key], okOutcome(startMs, 10, 20, server));
      if (finish === 'failed') store.finishRun(ids[key], failedOutcome(startMs, server));
      if (finish === 'skipped') store.finishRun(ids[key], skippedOutcome(startMs));
    };
    add('a1', 'a', T0, 'ok');
    add('b1', 'b', T0 + 1000, 'failed', SERVER_B);
    add('a2', 'a', T0 + day, 'failed');
    add('b2', 'b', T0 + day + 1000, 'skipped');
    add('c2', 'c', T0 + day + 2000);
  });

  it('lists runs newest first with their tests, filtered by device, status, time and limit', () => {
    const all = store.listRuns();
    expect(all.map((r) => r.id)).toEqual([ids.c2, ids.b2, ids.a2, ids.b1, ids.a1]);
    expect(all.map((r) => r.tests.length)).toEqual([0, 0, 1, 1, 2]);
    expect(all[3]).toMatchObject({ device: 'b', server: SERVER_B, status: 'failed' });

    expect(store.listRuns({ devices: ['a'] }).map((r) => r.id)).toEqual([ids.a2, ids.a1]);
    expect(store.listRuns({ devices: ['a', 'c'], status: ['failed', 'running'] }).map((r) => r.id)).toEqual([ids.c2, ids.a2]);
    expect(store.listRuns({ fromMs: T0 + 1000, toMs: T0 + day + 1000 }).map((r) => r.id)).toEqual([ids.b2, ids.a2, ids.b1]);
    expect(store.listRuns({ limit: 2 }).map((r) => r.id)).toEqual([ids.c2, ids.b2]);
    expect(store.listRuns({ devices: ['nobody'] })).toEqual([]);
  });

  it('gives the newest run of each device', () => {
    const last = store.lastRuns(['a', 'b', 'c', 'nobody']);
    expect([...last.keys()].sort()).toEqual(['a', 'b', 'c']);
    expect(last.get('a')).toMatchObject({ id: ids.a2, status: 'failed', tests: [expect.objectContaining({ status: 'failed' })] });
    expect(last.get('c')).toMatchObject({ id: ids.c2, status: 'running' });
  });
});
