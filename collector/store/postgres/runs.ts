import type { Direction } from '../../../contract/metrics.js';
import type { IntervalPoint, RunRecord, TestProtocol } from '../../../contract/api.js';
import type { RunStart } from '../../model.js';
import { RUN_COLUMNS, runRecords, TEST_COLUMNS, type RunRow, type TestRow } from '../rows.js';
import { RoundClaimedError, type RunQuery, type RunStore } from '../store.js';
import type { Settled } from '../groupCommit.js';
import { GroupCommittedRuns, type Finish } from '../groupCommittedRuns.js';
import type { PgDatabase } from './database.js';
import { ROUND_PROGRESS_CHANNEL } from './rounds.js';



export const INTERRUPTED_MESSAGE = 'the collector stopped while this run was in progress';

/** Runs whose collector session no longer exists: that collector died or lost its connection. */
export const ORPHANED = `status = 'running' AND NOT EXISTS (
  SELECT 1 FROM pg_stat_activity a WHERE a.pid = runs.owner_pid AND date_trunc('milliseconds', a.backend_start) = runs.owner_since)`;


/** The lock key of a (round, device) claim; the same text in every collector (see start). */
const CLAIM_KEY = (r: string, d: string) => `hashtextextended('round-device:' || ${r}::text || ':' || ${d}, 0)`;

/**
 * A failed batch that a member may have caused: the database refused data (SQLSTATE classes 22
 * data exception, 23 integrity constraint, P0 raised by PL/pgSQL) or a transaction lost a
 * conflict (40). Anything else (no connection, a broken session, a timeout) is no member's fault.
 */
export function oneMembersFault(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23|P0|40)/.test(code);
}

/**
 * Starts and finishes are group-committed (../groupCommit.ts): those that arrive in one turn of the
 * event loop, or while the previous batch commits, share one transaction, written with one
 * statement per table for the whole batch (arrays and unnest), so a batch costs a fixed number of
 * round trips whatever its size. A member the batch refuses (a claimed device, a run that is not
 * running, a metric that is not a number) fails alone; when the transaction fails for something
 * a member may have caused (oneMembersFault), each member is written again alone.
 */
export class PgRuns extends GroupCommittedRuns implements RunStore {
  constructor(
    private readonly db: PgDatabase,
    maxBatch?: number,
  ) {
    super({ maxBatch, oneMembersFault });
  }

  /**
   * The run belongs to this collector's session: if that session ends, the run is orphaned. In
   * a round, a device is claimed once across collectors: a transaction-scoped advisory lock per
   * (round, device) serialises the claim; an orphaned run is marked interrupted and taken over.
   */
  protected async startBatch(items: RunStart[]): Promise<Settled<number>[]> {
    const owner = this.db.identity();
    return this.db.tx(async (client) => {
      const results: Settled<number>[] = items.map(() => ({ ok: true, value: 0 }));
      const inRound = items.filter((s) => s.roundId !== null);
      const claimed = new Set<string>();
      const key = (roundId: number | null, device: string) => `${roundId}\u0000${device}`;
      if (inRound.length > 0) {
        const rounds = inRound.map((s) => s.roundId);
        const devices = inRound.map((s) => s.device);
        // every collector takes the locks of a batch in the same order: two batches cannot deadlock
        await client.query(
          `SELECT pg_advisory_xact_lock(${CLAIM_KEY('k.r', 'k.d')})
           FROM (SELECT DISTINCT r, d FROM unnest($1::bigint[], $2::text[]) AS u(r, d) ORDER BY r, d) AS k`,
          [rounds, devices],
        );
        await client.query(
          `UPDATE runs SET status = 'interrupted', error_class = 'interrupted', message = $3, ended_at = $4
           FROM unnest($1::bigint[], $2::text[]) AS k(r, d)
           WHERE runs.round_id = k.r AND runs.device = k.d AND ${ORPHANED}`,
          [rounds, devices, INTERRUPTED_MESSAGE, this.db.now()],
        );
        const found = await client.query<{ round_id: number; device: string }>(
          `SELECT DISTINCT runs.round_id, runs.device FROM runs JOIN unnest($1::bigint[], $2::text[]) AS k(r, d) ON runs.round_id = k.r AND runs.device = k.d
           WHERE runs.status IN ('running', 'ok', 'failed', 'skipped')`,
          [rounds, devices],
        );
        for (const row of found.rows) claimed.add(key(row.round_id, row.device));
      }
      const inserted: number[] = [];
      items.forEach((s, i) => {
        if (s.roundId === null) return void inserted.push(i);
        const k = key(s.roundId, s.device);
        // claimed by a stored run, or by an earlier member of this batch
        if (claimed.has(k)) results[i] = { ok: false, error: new RoundClaimedError(s.device, s.roundId) };
        else {
          claimed.add(k);
          inserted.push(i);
        }
      });
      if (inserted.length > 0) {
        const rows = inserted.map((i) => items[i]);
        const { rows: ids } = await client.query<{ id: number }>(
          `INSERT INTO runs (device, trigger, round_id, status, started_at, owner_pid, owner_since)
           SELECT u.device, u.trigger, u.round_id, 'running', u.started_at, $5, $6
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS u(device, trigger, round_id, started_at, n)
           ORDER BY u.n RETURNING id`,
          [rows.map((s) => s.device), rows.map((s) => s.trigger), rows.map((s) => s.roundId), rows.map((s) => s.startedAt.getTime()), owner.pid, owner.since],
        );
        // identities are drawn in insertion order, which is the members' order
        const sorted = ids.map((r) => r.id).sort((a, b) => a - b);
        inserted.forEach((i, j) => (results[i] = { ok: true, value: sorted[j] }));
      }
      return results;
    });
  }

  protected async finishBatch(items: Finish[]): Promise<Settled<void>[]> {
    return this.db.tx(async (client) => {
      const results: Settled<void>[] = items.map(() => ({ ok: true, value: undefined }));
      // FOR UPDATE: a collector marking orphaned runs interrupted waits for this transaction, and then sees it finished
      const found = await client.query<{ id: number; device: string; started_at: number; round_id: number | null }>(
        "SELECT id, device, started_at, round_id FROM runs WHERE id = ANY($1::bigint[]) AND status = 'running' ORDER BY id FOR UPDATE",
        [items.map((f) => f.runId)],
      );
      const running = new Map(found.rows.map((r) => [r.id, r]));
      const runs = { id: [] as number[], status: [] as string[], errorClass: [] as (string | null)[], message: [] as (string | null)[], server: [] as (string | null)[], endedAt: [] as number[] };
      const tests = {
        runId: [] as number[],
        protocol: [] as string[],
        direction: [] as string[],
        server: [] as string[],
        status: [] as string[],
        errorClass: [] as (string | null)[],
        message: [] as (string | null)[],
        startedAt: [] as number[],
        endedAt: [] as number[],
        iperfVersion: [] as (string | null)[],
        raw: [] as (string | null)[],
      };
      /** per test inserted (in order): its intervals */
      const testIntervals: { start: number; end: number; bitsPerSecond: number; omitted: boolean }[][] = [];
      const metrics = {
        runId: [] as number[],
        device: [] as string[],
        server: [] as (string | null)[],
        direction: [] as (Direction | null)[],
        name: [] as string[],
        value: [] as number[],
        timeMs: [] as number[],
        failed: [] as number[],
      };
      const rounds = new Set<number>();
      items.forEach(({ runId, outcome }, i) => {
        const run = running.get(runId);
        // a run is finished once: a second finish of it in this batch fails as it would after the first
        running.delete(runId);
        if (!run) return void (results[i] = { ok: false, error: new Error(`run ${runId} is not running (unknown id, or finished already)`) });
        const runMetrics: [string, number, string | null, Direction | null, boolean][] = [];
        for (const test of outcome.tests) if (test.outcome.ok) for (const m of test.outcome.metrics) runMetrics.push([m.name, m.value, test.server, test.direction, false]);
        for (const m of outcome.metrics) runMetrics.push([m.name, m.value, outcome.server, m.direction, m.failed]);
        const bad = runMetrics.find(([, value]) => !Number.isFinite(value));
        if (bad) return void (results[i] = { ok: false, error: new Error(`run ${runId}: metric ${bad[0]} has value ${bad[1]}, not a finite number`) });
        runs.id.push(runId);
        runs.status.push(outcome.status);
        runs.errorClass.push(outcome.errorClass);
        runs.message.push(outcome.message);
        runs.server.push(outcome.server);
        runs.endedAt.push(outcome.endedAt.getTime());
        for (const test of outcome.tests) {
          const o = test.outcome;
          tests.runId.push(runId);
          tests.protocol.push(test.protocol);
          tests.direction.push(test.direction);
          tests.server.push(test.server);
          tests.status.push(o.ok ? 'ok' : 'failed');
          tests.errorClass.push(o.ok ? null : o.errorClass);
          tests.message.push(o.ok ? null : o.message);
          tests.startedAt.push(test.startedAt.getTime());
          tests.endedAt.push(test.endedAt.getTime());
          tests.iperfVersion.push(o.ok ? o.iperfVersion : null);
          tests.raw.push(o.raw);
          testIntervals.push(o.ok ? o.intervals : []);
        }
        for (const [name, value, server, direction, failed] of runMetrics) {
          metrics.runId.push(runId);
          metrics.device.push(run.device);
          metrics.server.push(server);
          metrics.direction.push(direction);
          metrics.name.push(name);
          metrics.value.push(value);
          metrics.timeMs.push(run.started_at);
          metrics.failed.push(failed ? 1 : 0);
        }
        if (run.round_id !== null) rounds.add(run.round_id);
      });
      if (runs.id.length === 0) return results;
      await client.query(
        `UPDATE runs SET status = u.status, error_class = u.error_class, message = u.message, server = u.server, ended_at = u.ended_at
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[]) AS u(id, status, error_class, message, server, ended_at)
         WHERE runs.id = u.id`,
        [runs.id, runs.status, runs.errorClass, runs.message, runs.server, runs.endedAt],
      );
      if (tests.runId.length > 0) {
        // WITH ORDINALITY keeps the members' order in the identity column
        const inserted = await client.query<{ id: number }>(
          `INSERT INTO tests (run_id, protocol, direction, server, status, error_class, message, started_at, ended_at, iperf_version, raw_json)
           SELECT t.run_id, t.protocol, t.direction, t.server, t.status, t.error_class, t.message, t.started_at, t.ended_at, t.iperf_version, t.raw_json
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::text[], $11::text[])
             WITH ORDINALITY AS t(run_id, protocol, direction, server, status, error_class, message, started_at, ended_at, iperf_version, raw_json, n)
           ORDER BY t.n RETURNING id`,
          [tests.runId, tests.protocol, tests.direction, tests.server, tests.status, tests.errorClass, tests.message, tests.startedAt, tests.endedAt, tests.iperfVersion, tests.raw],
        );
        const testIds = inserted.rows.map((r) => r.id).sort((a, b) => a - b);
        const intervals = { testId: [] as number[], start: [] as number[], end: [] as number[], bps: [] as number[], omitted: [] as boolean[] };
        testIntervals.forEach((list, t) => {
          for (const i of list) {
            intervals.testId.push(testIds[t]);
            intervals.start.push(i.start);
            intervals.end.push(i.end);
            intervals.bps.push(i.bitsPerSecond);
            intervals.omitted.push(i.omitted);
          }
        });
        if (intervals.testId.length > 0) {
          await client.query(
            `INSERT INTO intervals (test_id, start, "end", bps, omitted)
             SELECT * FROM unnest($1::bigint[], $2::float8[], $3::float8[], $4::float8[], $5::boolean[])`,
            [intervals.testId, intervals.start, intervals.end, intervals.bps, intervals.omitted],
          );
        }
      }
      if (metrics.runId.length > 0) {
        await client.query(
          `INSERT INTO metrics (run_id, device, server, direction, name, value, time_ms, failed)
           SELECT m.run_id, m.device, m.server, m.direction, m.name, m.value, m.time_ms, m.failed
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::float8[], $7::bigint[], $8::smallint[]) WITH ORDINALITY AS m(run_id, device, server, direction, name, value, time_ms, failed, n)
           ORDER BY m.n`,
          [metrics.runId, metrics.device, metrics.server, metrics.direction, metrics.name, metrics.value, metrics.timeMs, metrics.failed],
        );
      }
      // collectors waiting for the end of a round look again at once (delivered when this commits)
      if (rounds.size > 0) await client.query('SELECT pg_notify($1, r) FROM unnest($2::text[]) AS r', [ROUND_PROGRESS_CHANNEL, [...rounds].map(String)]);
      return results;
    });
  }

  async list(query: RunQuery = {}): Promise<RunRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (v: unknown): string => {
      params.push(v);
      return `$${params.length}`;
    };
    if (query.devices) where.push(`device = ANY(${param(query.devices)}::text[])`);
    if (query.status) where.push(`status = ANY(${param(query.status)}::text[])`);
    if (query.fromMs !== undefined) where.push(`started_at >= ${param(query.fromMs)}`);
    if (query.toMs !== undefined) where.push(`started_at <= ${param(query.toMs)}`);
    const text = `SELECT ${RUN_COLUMNS} FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
                  ORDER BY started_at DESC, id DESC LIMIT ${param(query.limit ?? 100)}`;
    return this.withTests((await this.db.query<RunRow>(text, params)).rows);
  }

  async get(id: number): Promise<RunRecord | null> {
    const { rows } = await this.db.query<RunRow>(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = $1`, [id]);
    return rows.length ? (await this.withTests(rows))[0] : null;
  }

  async lastOf(devices: string[]): Promise<Map<string, RunRecord>> {
    // one index probe per device on runs (device, started_at)
    const { rows } = await this.db.query<RunRow>(
      `SELECT r.* FROM unnest($1::text[]) AS d(device)
       CROSS JOIN LATERAL (SELECT ${RUN_COLUMNS} FROM runs WHERE runs.device = d.device ORDER BY started_at DESC, id DESC LIMIT 1) r`,
      [devices],
    );
    return new Map((await this.withTests(rows)).map((r) => [r.device, r]));
  }

  async intervals(runId: number): Promise<IntervalPoint[]> {
    const { rows } = await this.db.query<{ protocol: TestProtocol; direction: Direction; started_at: number; start: number; end: number; bps: number; omitted: boolean }>(
      `SELECT t.protocol, t.direction, t.started_at, i.start, i."end", i.bps, i.omitted
       FROM intervals i JOIN tests t ON t.id = i.test_id WHERE t.run_id = $1 ORDER BY t.id, i.start`,
      [runId],
    );
    return rows.map((r) => ({
      protocol: r.protocol,
      direction: r.direction,
      start: r.start,
      end: r.end,
      timeMs: r.started_at + Math.round(r.end * 1000),
      bitsPerSecond: r.bps,
      omitted: r.omitted,
    }));
  }

  private async withTests(rows: RunRow[]): Promise<RunRecord[]> {
    if (rows.length === 0) return [];
    const { rows: testRows } = await this.db.query<TestRow>(`SELECT ${TEST_COLUMNS} FROM tests WHERE run_id = ANY($1::bigint[]) ORDER BY run_id, id`, [
      rows.map((r) => r.id),
    ]);
    return runRecords(rows, testRows);
  }

}
