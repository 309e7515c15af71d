/**
 * One contract for every Store implementation: the same tests run against SQLite and against a
 * real PostgreSQL cluster (started by tests/support/postgresCluster.ts, one per file).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Direction } from '../../contract/metrics.js';
import { settingsSchema } from '../../contract/settings.js';
import { failedOutcome, failedTest, okOutcome, okTcpTest, SERVER_A, SERVER_B, skippedOutcome } from '../../tests/support/storeFixtures.js';
import { startPostgresCluster, type PostgresCluster } from '../../tests/support/postgresCluster.js';
import { PostgresStore } from './postgres/postgresStore.js';
import { SqliteStore } from './sqlite/sqliteStore.js';
import { DeviceExistsError, StoredSettingsError, type Store } from './store.js';
import { deviceConfigSchema, type DeviceConfig } from '../../contract/devices.js';

/** Opens a fresh, empty store and reads its tables behind its back (as another process would). */
interface Harness {
  open(clock: () => Date): Promise<Store>;
  /** rows of a plain SQL statement (no parameters), as objects */
  rows(sql: string): Promise<Record<string, unknown>[]>;
  count(table: string): Promise<number>;
  /** the column that orders metrics as they were inserted */
  insertionOrder: string;
  dispose(): Promise<void>;
}

function sqliteHarness(): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'store-contract-'));
  const path = join(dir, 'collector.db');
  const rows = async (sql: string) => {
    const db = new Database(path);
    try {
      const stmt = db.prepare(sql);
      return stmt.reader ? (stmt.all() as Record<string, unknown>[]) : (stmt.run(), []);
    } finally {
      db.close();
    }
  };
  return {
    open: async (clock) => SqliteStore.open(path, { clock, busyTimeoutMs: 1000 }),
    rows,
    count: async (table) => Number((await rows(`SELECT count(*) AS n FROM ${table}`))[0].n),
    insertionOrder: 'rowid',
    dispose: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

let cluster: PostgresCluster | undefined;

async function postgresHarness(): Promise<Harness> {
  cluster ??= await startPostgresCluster();
  const pgCluster = cluster;
  const url = await pgCluster.createDatabase();
  const database = new URL(url).pathname.slice(1);
  const rows = async (sql: string) => {
    const c = await pgCluster.admin(database);
    try {
      return (await c.query(sql)).rows as Record<string, unknown>[];
    } finally {
      await c.end();
    }
  };
  return {
    open: async (clock) => {
      // a restarted collector: the database has ended the previous one's sessions
      for (let i = 0; i < 500; i++) {
        const left = await rows(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = '${database}' AND application_name = 'iperf3-collector'`);
        if (Number(left[0].n) === 0) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      return PostgresStore.open(url, { clock, password: pgCluster.password });
    },
    rows,
    count: async (table) => Number((await rows(`SELECT count(*) AS n FROM ${table}`))[0].n),
    insertionOrder: 'id',
    dispose: async () => {},
  };
}

afterAll(() => cluster?.destroy());

const T0 = Date.parse('2025-02-01T02:00:00.000Z');
const DAY = 86_400_000;
const D0 = T0;
const D1 = D0 + DAY;
const D2 = D0 + 2 * DAY;
const END = D2 + 999;

describe.each([
  ['SQLite', async () => sqliteHarness()],
  ['PostgreSQL', postgresHarness],
] as const)('Store contract: %s', (_name, makeHarness) => {
  let h: Harness;
  let now: Date;
  let store: Store;

  beforeEach(async () => {
    h = await makeHarness();
    now = new Date('2025-03-01T00:00:00.000Z');
    store = await h.open(() => now);
  });
  afterEach(async () => {
    await store.close();
    await h.dispose();
  });
  /** The collector stops (its database session ends) and starts again on the same database. */
  async function restart(): Promise<void> {
    await store.close();
    store = await h.open(() => now);
  }


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

      const tests = await h.rows('SELECT server, iperf_version, raw_json FROM tests ORDER BY id');
      expect(tests).toEqual([
        { server: SERVER_A, iperf_version: '3.12', raw_json: okTcpTest('upload', 0, 90e6).outcome.raw },
        { server: SERVER_A, iperf_version: '3.12', raw_json: okTcpTest('download', 0, 50e6).outcome.raw },
      ]);
      const metrics = (await h.rows(`SELECT device, server, direction, name, value, time_ms, failed FROM metrics ORDER BY ${h.insertionOrder}`)).map(Object.values);
      // every metric carries the run's start time, so the points of one run line up
      expect(metrics).toEqual([
        ['r1', SERVER_A, 'upload', 'tcp_received_bps', 90e6, T0, 0],
        ['r1', SERVER_A, 'upload', 'tcp_sent_bps', 90e6 + 1000, T0, 0],
        ['r1', SERVER_A, 'download', 'tcp_received_bps', 50e6, T0, 0],
        ['r1', SERVER_A, 'download', 'tcp_sent_bps', 50e6 + 1000, T0, 0],
        ['r1', SERVER_A, null, 'result', 1, T0, 0],
        ['r1', SERVER_A, null, 'duration_s', 25, T0, 0],
      ]);

      expect(await store.runs.intervals(id)).toEqual([
        { protocol: 'tcp', direction: 'upload', start: 0, end: 1, timeMs: T0 + 2000, bitsPerSecond: 90e6 - 10, omitted: true },
        { protocol: 'tcp', direction: 'upload', start: 1, end: 2.5, timeMs: T0 + 3500, bitsPerSecond: 90e6 + 10, omitted: false },
        { protocol: 'tcp', direction: 'download', start: 0, end: 1, timeMs: T0 + 13_000, bitsPerSecond: 50e6 - 10, omitted: true },
        { protocol: 'tcp', direction: 'download', start: 1, end: 2.5, timeMs: T0 + 14_500, bitsPerSecond: 50e6 + 10, omitted: false },
      ]);
      expect(await store.runs.intervals(id + 100)).toEqual([]);
    });

    it('stores a failed test with its error and raw text, and the zeros flagged failed', async () => {
      const id = await store.runs.start({ device: 'r1', trigger: 'manual', roundId: null, startedAt: new Date(T0) });
      await store.runs.finish(id, failedOutcome(T0));
      const run = (await store.runs.get(id))!;
      expect(run).toMatchObject({ status: 'failed', errorClass: 'server-busy', message: 'the server is busy running a test', trigger: 'manual' });
      expect(run.tests).toEqual([
        expect.objectContaining({ status: 'failed', errorClass: 'server-busy', message: 'iperf3 said server-busy', protocol: 'tcp' }),
      ]);
      expect(await h.rows('SELECT raw_json, iperf_version FROM tests')).toEqual([{ raw_json: '{"error":"the server is busy"}', iperf_version: null }]);
      expect((await h.rows(`SELECT name, direction, value, failed FROM metrics ORDER BY ${h.insertionOrder}`)).map(Object.values)).toEqual([
        ['tcp_received_bps', 'upload', 0, 1],
        ['result', null, 0, 1],
      ]);
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
      expect(await h.count('tests')).toBe(0);
      expect(await h.count('metrics')).toBe(0);
      expect(await h.count('intervals')).toBe(0);
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
      await expect(store.runs.finish(id, outcome)).rejects.toThrow(/check constraint/i);
      await expectNothingWritten(id);
      // the run can still be finished properly afterwards
      await store.runs.finish(id, okOutcome(T0, 90e6, 50e6));
      expect((await store.runs.get(id))!.tests).toHaveLength(2);
    });
  });

  describe('group commit of starts and finishes', () => {
    const startOf = (device: string, i: number) => ({ device, trigger: 'schedule' as const, roundId: null, startedAt: new Date(T0 + i) });

    it('stores concurrent starts together, with ids in the order of the calls', async () => {
      const before = { ...store.runs.writeStats.starts };
      const ids = await Promise.all(Array.from({ length: 30 }, (_, i) => store.runs.start(startOf(`c${i}`, i))));
      // the 30 calls of one turn of the event loop share one transaction
      expect(store.runs.writeStats.starts.writes - before.writes).toBe(30);
      expect(store.runs.writeStats.starts.transactions - before.transactions).toBe(1);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(new Set(ids).size).toBe(30);
      const rows = await h.rows('SELECT id, device, started_at, status FROM runs ORDER BY id');
      expect(rows.map((r) => [Number(r.id), r.device, Number(r.started_at), r.status])).toEqual(ids.map((id, i) => [id, `c${i}`, T0 + i, 'running']));
    });

    it('stores concurrent finishes together, each run with its own tests, metrics and intervals in order', async () => {
      const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => store.runs.start(startOf(`f${i}`, i * 1000))));
      const outcomes = ids.map((_, i) => (i % 3 === 0 ? okOutcome(T0 + i * 1000, 1e6 * (i + 1), 2e6 * (i + 1)) : i % 3 === 1 ? failedOutcome(T0 + i * 1000) : skippedOutcome(T0 + i * 1000)));
      const before = { ...store.runs.writeStats.finishes };
      await Promise.all(ids.map((id, i) => store.runs.finish(id, outcomes[i])));
      expect(store.runs.writeStats.finishes.writes - before.writes).toBe(12);
      expect(store.runs.writeStats.finishes.transactions - before.transactions).toBe(1);
      for (const [i, id] of ids.entries()) {
        const run = (await store.runs.get(id))!;
        expect(run).toMatchObject({ device: `f${i}`, status: outcomes[i].status, errorClass: outcomes[i].errorClass, endedAt: outcomes[i].endedAt.toISOString() });
        expect(run.tests.map((t) => [t.protocol, t.direction, t.status, t.startedAt])).toEqual(
          outcomes[i].tests.map((t) => [t.protocol, t.direction, t.outcome.ok ? 'ok' : 'failed', t.startedAt.toISOString()]),
        );
        // metrics in the order the run produced them: its tests' first, then the extra ones
        const metrics = await h.rows(`SELECT name, direction, value, time_ms FROM metrics WHERE run_id = ${id} ORDER BY ${h.insertionOrder}`);
        const expected = [
          ...outcomes[i].tests.flatMap((t) => (t.outcome.ok ? t.outcome.metrics.map((m) => [m.name, t.direction, m.value]) : [])),
          ...outcomes[i].metrics.map((m) => [m.name, m.direction, m.value]),
        ];
        expect(metrics.map((m) => [m.name, m.direction, Number(m.value)])).toEqual(expected);
        expect(metrics.every((m) => Number(m.time_ms) === T0 + i * 1000)).toBe(true);
        const intervals = (await store.runs.intervals(id)).map((p) => [p.direction, p.start, p.end, p.bitsPerSecond]);
        expect(intervals).toEqual(outcomes[i].tests.flatMap((t) => (t.outcome.ok ? t.outcome.intervals.map((p) => [t.direction, p.start, p.end, p.bitsPerSecond]) : [])));
      }
    });

    it('answers each caller after its transaction committed: another connection sees the write when the promise resolves', async () => {
      const [a, b] = await Promise.all([store.runs.start(startOf('seen-a', 0)), store.runs.start(startOf('seen-b', 1))]);
      expect((await h.rows(`SELECT device, status FROM runs WHERE id IN (${a}, ${b}) ORDER BY id`)).map((r) => [r.device, r.status])).toEqual([
        ['seen-a', 'running'],
        ['seen-b', 'running'],
      ]);
      await Promise.all([store.runs.finish(a, okOutcome(T0, 5e6, 6e6)), store.runs.finish(b, skippedOutcome(T0))]);
      expect((await h.rows(`SELECT status FROM runs WHERE id IN (${a}, ${b}) ORDER BY id`)).map((r) => r.status)).toEqual(['ok', 'skipped']);
      expect(await h.count('tests')).toBe(2);
      expect(await h.count('intervals')).toBe(4);
    });

    it('fails only the bad members of a batch, each with its own error, and stores the others', async () => {
      const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => store.runs.start(startOf(`m${i}`, i))));
      const nan = okOutcome(T0, 1e6, 2e6);
      nan.metrics.push({ name: 'duration_s', direction: null, value: Number.NaN, failed: false });
      // refused by the database itself (a check constraint): the whole transaction fails on PostgreSQL
      const rejected = okOutcome(T0, 1e6, 2e6);
      rejected.tests.push(failedTest('udp', 'sideways' as Direction, T0 + 23_000, 'timeout'));
      const results = await Promise.allSettled([
        store.runs.finish(ids[0], okOutcome(T0, 10e6, 20e6)),
        store.runs.finish(ids[1], nan),
        store.runs.finish(ids[2], rejected),
        store.runs.finish(999_999, okOutcome(T0, 1, 1)),
        store.runs.finish(ids[3], failedOutcome(T0)),
        store.runs.finish(ids[3], okOutcome(T0, 1, 1)),
        store.runs.finish(ids[4], okOutcome(T0, 30e6, 40e6)),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
      const reason = (i: number) => String((results[i] as PromiseRejectedResult).reason);
      expect(reason(1)).toContain(`run ${ids[1]}: metric duration_s has value NaN, not a finite number`);
      expect(reason(2)).toMatch(/check constraint/i);
      expect(reason(3)).toContain('run 999999 is not running (unknown id, or finished already)');
      expect(reason(5)).toContain(`run ${ids[3]} is not running (unknown id, or finished already)`);
      const status = async (id: number) => (await store.runs.get(id))!;
      expect(await status(ids[0])).toMatchObject({ status: 'ok', tests: [{ direction: 'upload' }, { direction: 'download' }] });
      expect(await status(ids[1])).toMatchObject({ status: 'running', tests: [] });
      expect(await status(ids[2])).toMatchObject({ status: 'running', tests: [] });
      expect(await status(ids[3])).toMatchObject({ status: 'failed', tests: [{ protocol: 'tcp', status: 'failed' }] });
      expect(await status(ids[4])).toMatchObject({ status: 'ok', tests: [{ direction: 'upload' }, { direction: 'download' }] });
      expect(await status(ids[5])).toMatchObject({ status: 'running', tests: [] });
      const runOfMetric = (await h.rows('SELECT run_id FROM metrics')).map((r) => Number(r.run_id));
      expect(new Set(runOfMetric)).toEqual(new Set([ids[0], ids[3], ids[4]]));
      // the refused runs can still be finished
      await Promise.all([store.runs.finish(ids[1], okOutcome(T0, 1, 1)), store.runs.finish(ids[2], okOutcome(T0, 1, 1))]);
      expect((await status(ids[2])).status).toBe('ok');
    });

    it('fails only the bad start of a batch', async () => {
      const results = await Promise.allSettled([
        store.runs.start(startOf('s0', 0)),
        store.runs.start({ ...startOf('s1', 1), trigger: 'sometimes' as 'manual' }),
        store.runs.start(startOf('s2', 2)),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/check constraint/i);
      expect((await h.rows('SELECT device FROM runs ORDER BY id')).map((r) => r.device)).toEqual(['s0', 's2']);
    });

    it('commits what was submitted before the store closes', async () => {
      const pending = [store.runs.start(startOf('late-a', 0)), store.runs.start(startOf('late-b', 1))];
      await store.close();
      const ids = await Promise.all(pending);
      expect((await h.rows('SELECT id, device FROM runs ORDER BY id')).map((r) => [Number(r.id), r.device])).toEqual([
        [ids[0], 'late-a'],
        [ids[1], 'late-b'],
      ]);
      store = await h.open(() => now);
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
      await restart();
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
      await restart();
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

  describe('devices', () => {
    const dev = (id: string, extra: Partial<DeviceConfig> = {}): DeviceConfig =>
      deviceConfigSchema.parse({ id, host: `${id}.example.net`, username: 'root', privateKeyFile: 'id_ed25519', ...extra });

    it('keeps each source to exactly the devices it was given, reporting what changed; an unchanged device keeps its time', async () => {
      expect(await store.devices.replaceSource('file:', [dev('a'), dev('b')])).toEqual({ added: ['a', 'b'], changed: [], removed: [] });
      const first = await store.devices.list(['file:']);
      expect(first.map((d) => [d.source, d.device.id, d.updatedAt])).toEqual([
        ['file:', 'a', now.toISOString()],
        ['file:', 'b', now.toISOString()],
      ]);
      now = new Date(now.getTime() + 60_000);
      expect(await store.devices.replaceSource('file:', [dev('a'), dev('b', { enabled: false }), dev('c')])).toEqual({ added: ['c'], changed: ['b'], removed: [] });
      expect(await store.devices.replaceSource('file:', [dev('b', { enabled: false })])).toEqual({ added: [], changed: [], removed: ['a', 'c'] });
      const [b] = await store.devices.list(['file:']);
      expect(b).toEqual({ source: 'file:', device: dev('b', { enabled: false }), updatedAt: now.toISOString() });
      // another group's file may list the same id: sources do not touch each other
      await store.devices.replaceSource('file:eu', [dev('b', { group: 'eu' })]);
      expect((await store.devices.find('b')).map((d) => [d.source, d.device.group])).toEqual([
        ['file:', undefined],
        ['file:eu', 'eu'],
      ]);
      expect((await store.devices.list(['file:eu', 'api'])).map((d) => d.source)).toEqual(['file:eu']);
      await restart();
      expect((await store.devices.list(['file:', 'file:eu'])).map((d) => `${d.source}/${d.device.id}`)).toEqual(['file:/b', 'file:eu/b']);
    });

    it('adds API devices under ids no source holds, changes only API devices', async () => {
      await store.devices.replaceSource('file:eu', [dev('f')]);
      expect(await store.devices.add(dev('x', { labels: { site: 'rome' } }))).toEqual({ source: 'api', device: dev('x', { labels: { site: 'rome' } }), updatedAt: now.toISOString() });
      const taken = await store.devices.add(dev('f')).catch((e: unknown) => e);
      expect(taken).toBeInstanceOf(DeviceExistsError);
      expect((taken as DeviceExistsError).existing.source).toBe('file:eu');
      await expect(store.devices.add(dev('x'))).rejects.toThrow('device x exists already');

      now = new Date(now.getTime() + 1000);
      expect(await store.devices.update(dev('x', { pool: 'edge' }))).toEqual({ source: 'api', device: dev('x', { pool: 'edge' }), updatedAt: now.toISOString() });
      expect(await store.devices.update(dev('f', { enabled: false }))).toBeNull();
      expect(await store.devices.update(dev('nope'))).toBeNull();
      expect((await store.devices.list(['api', 'file:eu'])).map((d) => [d.device.id, d.device.pool, d.device.enabled])).toEqual([
        ['f', undefined, true],
        ['x', 'edge', true],
      ]);
      // the API does not remove a file's device
      expect(await store.devices.remove('f', true)).toBe(false);
      expect(await store.devices.remove('nope', false)).toBe(false);
    });

    it('removes an API device keeping its history, or deleting its runs, metrics and host key on request', async () => {
      for (const id of ['keep', 'drop']) {
        await store.devices.add(dev(id));
        const run = await store.runs.start({ device: id, trigger: 'manual', roundId: null, startedAt: new Date(T0) });
        await store.runs.finish(run, okOutcome(T0, 90e6, 50e6));
        await store.hostKeys.record(id, 'SHA256:key');
      }
      const other = await store.runs.start({ device: 'other', trigger: 'manual', roundId: null, startedAt: new Date(T0) });
      await store.runs.finish(other, okOutcome(T0, 10e6, 5e6));

      expect(await store.devices.remove('keep', false)).toBe(true);
      expect(await store.devices.find('keep')).toEqual([]);
      expect((await store.runs.list({ devices: ['keep'] })).length).toBe(1);
      const series = await store.metrics.series({ devices: ['keep'], metrics: ['tcp_received_bps'], fromMs: T0 - 1, toMs: T0 + 1, maxPoints: 10 });
      expect(series.map((x) => x.direction)).toEqual(['download', 'upload']);
      expect(await store.hostKeys.get('keep')).toBe('SHA256:key');

      expect(await store.devices.remove('drop', true)).toBe(true);
      expect(await store.runs.list({ devices: ['drop'] })).toEqual([]);
      expect(await store.metrics.latest({ devices: ['drop'], metrics: ['tcp_received_bps'] })).toEqual([]);
      expect(Number((await h.rows("SELECT count(*) AS n FROM metrics WHERE device = 'drop'"))[0].n)).toBe(0);
      expect(Number((await h.rows("SELECT count(*) AS n FROM metrics WHERE device = 'keep'"))[0].n)).toBeGreaterThan(0);
      expect(await store.hostKeys.get('drop')).toBeUndefined();
      // other devices' history is untouched
      expect((await store.runs.list({ devices: ['other'] })).length).toBe(1);
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
      await h.rows(`INSERT INTO settings (id, json, updated_at) VALUES (1, '${JSON.stringify({ servers: [] })}', 0)`);
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
      expect(await h.count('metrics')).toBe(12);
      expect(await h.count('intervals')).toBe(8);

      expect(await store.applyRetention(new Date(T0 + 5 * day))).toBe(1);
      expect(await store.runs.get(old)).toBeNull();
      expect((await store.runs.get(oldRunning))!.status).toBe('running');
      expect((await store.runs.get(recent))!.tests).toHaveLength(2);
      expect(await h.count('tests')).toBe(2);
      expect(await h.count('metrics')).toBe(6);
      expect(await h.count('intervals')).toBe(4);
      expect(await h.count('rounds')).toBe(1);
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

  describe('metrics', () => {
    /**
     * Device a: D0 ok on A (up 100, down 200), D1 failed on A (upload zero, failed), D2 ok on B (up 300, down 400).
     * Device b: D0 ok on B (up 10, down 20).
     */
    beforeEach(async () => {
      const run = async (device: string, startMs: number) => store.runs.start({ device, trigger: 'schedule', roundId: null, startedAt: new Date(startMs) });
      await store.runs.finish(await run('a', D0), okOutcome(D0, 100, 200));
      await store.runs.finish(await run('a', D1), failedOutcome(D1));
      await store.runs.finish(await run('a', D2), okOutcome(D2, 300, 400, SERVER_B));
      await store.runs.finish(await run('b', D0), okOutcome(D0, 10, 20, SERVER_B));
    });

    describe('metric series', () => {
      it('gives one time-sorted series per device, metric and direction', async () => {
        expect(await store.metrics.series({ devices: ['a'], metrics: ['tcp_received_bps'], fromMs: D0, toMs: END, maxPoints: 1000 })).toEqual([
          { device: 'a', metric: 'tcp_received_bps', server: null, direction: 'download', points: [[D0, 200, 0], [D2, 400, 0]] },
          { device: 'a', metric: 'tcp_received_bps', server: null, direction: 'upload', points: [[D0, 100, 0], [D1, 0, 1], [D2, 300, 0]] },
        ]);
      });

      it('covers every device with "all", and orders series by device, metric, direction (null first)', async () => {
        const series = await store.metrics.series({ devices: 'all', metrics: ['result', 'tcp_sent_bps'], fromMs: D0, toMs: END, maxPoints: 1000 });
        expect(series.map((s) => [s.device, s.metric, s.direction, s.points.length])).toEqual([
          ['a', 'result', null, 3],
          ['a', 'tcp_sent_bps', 'download', 2],
          ['a', 'tcp_sent_bps', 'upload', 2],
          ['b', 'result', null, 1],
          ['b', 'tcp_sent_bps', 'download', 1],
          ['b', 'tcp_sent_bps', 'upload', 1],
        ]);
        expect(series[0].points).toEqual([[D0, 1, 0], [D1, 0, 1], [D2, 1, 0]]);
      });

      it('splits by server on request, and filters by server, direction and time', async () => {
        expect(
          await store.metrics.series({ devices: ['a'], metrics: ['tcp_received_bps'], direction: 'upload', splitByServer: true, fromMs: D0, toMs: END, maxPoints: 10 }),
        ).toEqual([
          { device: 'a', metric: 'tcp_received_bps', server: SERVER_A, direction: 'upload', points: [[D0, 100, 0], [D1, 0, 1]] },
          { device: 'a', metric: 'tcp_received_bps', server: SERVER_B, direction: 'upload', points: [[D2, 300, 0]] },
        ]);
        expect(
          await store.metrics.series({ devices: ['a', 'b'], metrics: ['tcp_received_bps'], server: SERVER_B, direction: 'download', fromMs: D0, toMs: END, maxPoints: 10 }),
        ).toEqual([
          { device: 'a', metric: 'tcp_received_bps', server: null, direction: 'download', points: [[D2, 400, 0]] },
          { device: 'b', metric: 'tcp_received_bps', server: null, direction: 'download', points: [[D0, 20, 0]] },
        ]);
        // per-run metrics have no direction and stay in when a direction is asked for
        expect(
          await store.metrics.series({ devices: ['a'], metrics: ['result', 'tcp_received_bps'], direction: 'download', fromMs: D1, toMs: D2, maxPoints: 10 }),
        ).toEqual([
          { device: 'a', metric: 'result', server: null, direction: null, points: [[D1, 0, 1], [D2, 1, 0]] },
          { device: 'a', metric: 'tcp_received_bps', server: null, direction: 'download', points: [[D2, 400, 0]] },
        ]);
        expect(await store.metrics.series({ devices: ['nobody'], metrics: ['result'], fromMs: D0, toMs: END, maxPoints: 10 })).toEqual([]);
      });

      it('averages over equal time buckets when a series has more than maxPoints points', async () => {
        // two buckets of (END - D0 + 1) / 2 = DAY + 500 ms: D0 and D1 share the first, D2 is alone in the second
        expect(
          await store.metrics.series({ devices: ['a'], metrics: ['tcp_received_bps'], direction: 'upload', fromMs: D0, toMs: END, maxPoints: 2 }),
        ).toEqual([{ device: 'a', metric: 'tcp_received_bps', server: null, direction: 'upload', points: [[D0, 50, 1], [D2, 300, 0]] }]);
        expect(
          (await store.metrics.series({ devices: ['a'], metrics: ['tcp_received_bps'], direction: 'upload', fromMs: D0, toMs: END, maxPoints: 1 }))[0].points,
        ).toEqual([[D0, 400 / 3, 1]]);
      });
    });

    describe('bucketing in SQL against a reference', () => {
      /**
       * Seeded on top of the runs above, all inside [F, F + 999]: device p on server A at the
       * times of P_A and on server B at 550 (two points at one time in its unsplit series), device
       * q at the times of Q; a failed run at 199; points just outside the range at F - 1 and F + 1000.
       * Gaps: nothing between 300 and 549 for p. Edges: 100, 200 (width 100), 125, 250, 375
       * (width 125) and 333, 666 (width 333 of a 999 ms range).
       */
      const F = D2 + DAY;
      const P_A = [0, 99, 100, 125, 199, 200, 250, 299, 333, 375, 550, 666, 998, 999];
      const Q = [1, 2, 3, 500, 501, 999];
      type Seeded = { device: string; server: string; direction: Direction; t: number; value: number; failed: 0 | 1 };
      const seeded: Seeded[] = [];

      beforeEach(async () => {
        seeded.length = 0;
        const add = async (device: string, at: number, server: string, failed = false) => {
          const t = F + at;
          const runId = await store.runs.start({ device, trigger: 'schedule', roundId: null, startedAt: new Date(t) });
          // values: small integers, so every order of summation gives the same mean
          const up = at % 7;
          const down = 100 + (at % 13);
          await store.runs.finish(runId, failed ? failedOutcome(t, server) : okOutcome(t, up, down, server));
          seeded.push({ device, server, direction: 'upload', t, value: failed ? 0 : up, failed: failed ? 1 : 0 });
          if (!failed) seeded.push({ device, server, direction: 'download', t, value: down, failed: 0 });
        };
        for (const at of P_A) await add('p', at, SERVER_A, at === 199);
        await add('p', 550, SERVER_B);
        for (const at of Q) await add('q', at, SERVER_B);
        await add('q', -1, SERVER_B);
        await add('q', 1000, SERVER_B);
      });

      /** The documented downsampling (docs/api.md), computed in JavaScript with exact integer buckets. */
      function reference(fromMs: number, toMs: number, maxPoints: number, split: boolean) {
        const groups = new Map<string, { device: string; server: string | null; direction: Direction; points: [number, number, 0 | 1][] }>();
        for (const r of seeded.filter((r) => r.t >= fromMs && r.t <= toMs)) {
          const server = split ? r.server : null;
          const key = `${r.device} ${r.direction} ${server}`;
          const g = groups.get(key) ?? { device: r.device, server, direction: r.direction, points: [] };
          g.points.push([r.t, r.value, r.failed]);
          groups.set(key, g);
        }
        const out = [...groups.values()].map((g) => {
          g.points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
          if (g.points.length <= maxPoints) return g;
          const buckets = new Map<bigint, [number, number, 0 | 1][]>();
          for (const p of g.points) {
            const b = (BigInt(p[0] - fromMs) * BigInt(maxPoints)) / BigInt(toMs - fromMs + 1);
            buckets.set(b, [...(buckets.get(b) ?? []), p]);
          }
          const points = [...buckets.values()].map((ps): [number, number, 0 | 1] => [
            ps[0][0],
            ps.reduce((sum, p) => sum + p[1], 0) / ps.length,
            ps.some((p) => p[2] === 1) ? 1 : 0,
          ]);
          return { ...g, points };
        });
        return out
          .sort((a, b) => a.device.localeCompare(b.device) || a.direction.localeCompare(b.direction) || String(a.server).localeCompare(String(b.server)))
          .map((g) => ({ device: g.device, metric: 'tcp_received_bps', server: g.server, direction: g.direction, points: g.points }));
      }

      it.each([
        ['100 ms buckets (edges at 100, 200, ...), p reduced, q kept whole', F, F + 999, 10, false],
        ['125 ms buckets', F, F + 999, 8, false],
        ['333 ms buckets of a 999 ms range', F, F + 998, 3, false],
        ['one bucket', F, F + 999, 1, false],
        ['maxPoints above the point count: every point, two at one time included', F, F + 999, 15, false],
        // p upload (15 points) goes over only at its last row: the rows read so far are dropped and it is bucketed; p download (14) and q stay whole
        ['maxPoints 14: one series over by one point, found at its last row', F, F + 999, 14, false],
        ['split by server, every series whole', F, F + 999, 14, true],
        ['split by server, 7 uneven buckets', F, F + 999, 7, true],
        ['a range starting mid-way, offset buckets', F + 150, F + 849, 4, false],
      ] as const)('%s', async (_label, fromMs, toMs, maxPoints, split) => {
        const got = await store.metrics.series({ devices: ['p', 'q'], metrics: ['tcp_received_bps'], fromMs, toMs, maxPoints, splitByServer: split });
        for (const s of got) s.points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        const want = reference(fromMs, toMs, maxPoints, split);
        expect(got).toEqual(want);
        expect(got.every((s) => s.points.length <= maxPoints)).toBe(true);
      });

      it('reduces a series only when it has more points than asked for, and then never merges two buckets', async () => {
        const whole = await store.metrics.series({ devices: ['p'], metrics: ['tcp_received_bps'], direction: 'upload', fromMs: F, toMs: F + 999, maxPoints: 15 });
        // 15 points fit: 0, 99 (same 100 ms bucket) stay two points
        expect(whole[0].points.slice(0, 2)).toEqual([[F, 0, 0], [F + 99, 99 % 7, 0]]);
        const reduced = await store.metrics.series({ devices: ['p'], metrics: ['tcp_received_bps'], direction: 'upload', fromMs: F, toMs: F + 999, maxPoints: 10 });
        // buckets [0, 100), [100, 200), [200, 300): the first time of each, the mean, failed when any point is
        expect(reduced[0].points.slice(0, 3)).toEqual([
          [F, (0 + 1) / 2, 0],
          [F + 100, (2 + 6 + 0) / 3, 1],
          [F + 200, (4 + 5 + 5) / 3, 0],
        ]);
        // 550 on server A and on server B share a bucket of the unsplit series
        expect(reduced[0].points.find((p) => p[0] === F + 550)).toEqual([F + 550, 550 % 7, 0]);
        expect(reduced[0].points).toHaveLength(7);
      });
    });

    describe('latest values', () => {
      it('gives the newest point per device, metric and direction, with the server it was measured against', async () => {
        expect(await store.metrics.latest({ devices: ['a', 'b'], metrics: ['tcp_received_bps'] })).toEqual([
          { device: 'a', metric: 'tcp_received_bps', server: SERVER_B, direction: 'download', timeMs: D2, value: 400, failed: 0 },
          { device: 'a', metric: 'tcp_received_bps', server: SERVER_B, direction: 'upload', timeMs: D2, value: 300, failed: 0 },
          { device: 'b', metric: 'tcp_received_bps', server: SERVER_B, direction: 'download', timeMs: D0, value: 20, failed: 0 },
          { device: 'b', metric: 'tcp_received_bps', server: SERVER_B, direction: 'upload', timeMs: D0, value: 10, failed: 0 },
        ]);
      });

      it('looks back from a time, and filters by server and direction', async () => {
        expect(await store.metrics.latest({ devices: ['a'], metrics: ['tcp_received_bps'], beforeMs: D1 })).toEqual([
          { device: 'a', metric: 'tcp_received_bps', server: SERVER_A, direction: 'download', timeMs: D0, value: 200, failed: 0 },
          { device: 'a', metric: 'tcp_received_bps', server: SERVER_A, direction: 'upload', timeMs: D1, value: 0, failed: 1 },
        ]);
        expect(await store.metrics.latest({ devices: 'all', metrics: ['result', 'tcp_received_bps'], server: SERVER_A, direction: 'upload' })).toEqual([
          { device: 'a', metric: 'result', server: SERVER_A, direction: null, timeMs: D1, value: 0, failed: 1 },
          { device: 'a', metric: 'tcp_received_bps', server: SERVER_A, direction: 'upload', timeMs: D1, value: 0, failed: 1 },
        ]);
      });
    });
  });
});
