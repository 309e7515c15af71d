import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Direction } from '../../../contract/metrics.js';
import { SqliteStore } from './sqliteStore.js';
import { StoredSettingsError } from '../store.js';
import { DatabaseInUseError, StartupError } from '../../errors.js';
import type { TestOutcome } from '../../model.js';
import { failedOutcome, failedTest, okOutcome, skippedOutcome } from '../../../tests/support/storeFixtures.js';

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

});

describe('group commit', () => {
  it('writes every start and finish in a transaction of its own with maxWriteBatch 1 (the benchmarks compare both)', async () => {
    await store.close();
    store = SqliteStore.open(path, { clock: () => now, maxWriteBatch: 1 });
    const ids = await Promise.all([0, 1, 2].map((i) => store.runs.start({ device: `d${i}`, trigger: 'manual', roundId: null, startedAt: new Date(T0 + i) })));
    await Promise.all(ids.map((id) => store.runs.finish(id, okOutcome(T0, 1e6, 2e6))));
    expect(store.runs.writeStats.starts).toEqual({ writes: 3, transactions: 3, retriedBatches: 0 });
    expect(store.runs.writeStats.finishes).toEqual({ writes: 3, transactions: 3, retriedBatches: 0 });
    expect(count('tests')).toBe(6);
  });
});

describe('group commit when SQLite rolls back the whole transaction (disk full, I/O error)', () => {
  /** A trigger that aborts like SQLITE_FULL does: the statement fails and the transaction is rolled back. */
  function rollbackOn(table: string, when: string): void {
    const db = new Database(path);
    db.exec(`CREATE TRIGGER simulated_full BEFORE INSERT ON ${table} WHEN ${when} BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full (simulated)'); END`);
    db.close();
  }
  const devices = () => new Database(path, { readonly: true }).prepare('SELECT device FROM runs ORDER BY device').pluck().all();

  it('stores each start of the batch once and gives the bad one its own error', async () => {
    rollbackOn('runs', "NEW.device = 'bad'");
    const results = await Promise.allSettled(
      ['a', 'bad', 'c', 'd'].map((device, i) => store.runs.start({ device, trigger: 'manual', roundId: null, startedAt: new Date(T0 + i) })),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toEqual(expect.objectContaining({ message: 'database or disk is full (simulated)' }));
    expect(devices()).toEqual(['a', 'c', 'd']);
  });

  it('stores each finish of the batch once, answers the stored ones as stored and the bad one with its own error', async () => {
    const ids = [];
    for (const device of ['a', 'bad', 'c']) ids.push(await store.runs.start({ device, trigger: 'manual', roundId: null, startedAt: new Date(T0) }));
    rollbackOn('tests', `NEW.run_id = ${ids[1]}`);
    const results = await Promise.allSettled(ids.map((id) => store.runs.finish(id, okOutcome(T0, 90e6, 50e6))));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toEqual(expect.objectContaining({ message: 'database or disk is full (simulated)' }));
    expect((await Promise.all(ids.map((id) => store.runs.get(id)))).map((r) => [r!.status, r!.tests.length])).toEqual([
      ['ok', 2],
      ['running', 0],
      ['ok', 2],
    ]);
    expect(count('tests')).toBe(4);
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

describe('settings', () => {

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
