import type { Direction } from '../../../contract/metrics.js';
import type { IntervalPoint, RunRecord, TestProtocol } from '../../../contract/api.js';
import type { RunOutcome, RunStart } from '../../model.js';
import { RUN_COLUMNS, runRecords, TEST_COLUMNS, type RunRow, type TestRow } from '../rows.js';
import { RoundClaimedError, type RunQuery, type RunStore } from '../store.js';
import type { PgDatabase } from './database.js';
import { ROUND_PROGRESS_CHANNEL } from './rounds.js';



export const INTERRUPTED_MESSAGE = 'the collector stopped while this run was in progress';

/** Runs whose collector session no longer exists: that collector died or lost its connection. */
export const ORPHANED = `status = 'running' AND NOT EXISTS (
  SELECT 1 FROM pg_stat_activity a WHERE a.pid = runs.owner_pid AND date_trunc('milliseconds', a.backend_start) = runs.owner_since)`;


export class PgRuns implements RunStore {
  constructor(private readonly db: PgDatabase) {}

  /**
   * The run belongs to this collector's session: if that session ends, the run is orphaned.
   * In a round, a device is claimed once across collectors: a transaction-scoped advisory lock
   * per (round, device) serialises the claim; an orphaned run is marked interrupted and taken over.
   */
  async start(start: RunStart): Promise<number> {
    const owner = this.db.identity();
    return this.db.tx(async (client) => {
      if (start.roundId !== null) {
        await client.query("SELECT pg_advisory_xact_lock(hashtextextended('round-device:' || $1::text || ':' || $2, 0))", [start.roundId, start.device]);
        await client.query(
          `UPDATE runs SET status = 'interrupted', error_class = 'interrupted', message = $3, ended_at = $4
           WHERE round_id = $1 AND device = $2 AND ${ORPHANED}`,
          [start.roundId, start.device, INTERRUPTED_MESSAGE, this.db.now()],
        );
        const claimed = await client.query(
          "SELECT 1 FROM runs WHERE round_id = $1 AND device = $2 AND status IN ('running', 'ok', 'failed', 'skipped') LIMIT 1",
          [start.roundId, start.device],
        );
        if (claimed.rows.length > 0) throw new RoundClaimedError(start.device, start.roundId);
      }
      const { rows } = await client.query<{ id: number }>(
        `INSERT INTO runs (device, trigger, round_id, status, started_at, owner_pid, owner_since)
         VALUES ($1, $2, $3, 'running', $4, $5, $6) RETURNING id`,
        [start.device, start.trigger, start.roundId, start.startedAt.getTime(), owner.pid, owner.since],
      );
      return rows[0].id;
    });
  }

  async finish(runId: number, outcome: RunOutcome): Promise<void> {
    await this.db.tx(async (client) => {
      // FOR UPDATE: a collector marking orphaned runs interrupted waits for this transaction, and then sees it finished
      const found = await client.query<{ device: string; started_at: number; round_id: number | null }>(
        "SELECT device, started_at, round_id FROM runs WHERE id = $1 AND status = 'running' FOR UPDATE",
        [runId],
      );
      if (found.rows.length === 0) throw new Error(`run ${runId} is not running (unknown id, or finished already)`);
      const run = found.rows[0];
      await client.query('UPDATE runs SET status = $1, error_class = $2, message = $3, server = $4, ended_at = $5 WHERE id = $6', [
        outcome.status,
        outcome.errorClass,
        outcome.message,
        outcome.server,
        outcome.endedAt.getTime(),
        runId,
      ]);
      const metrics: { server: (string | null)[]; direction: (Direction | null)[]; name: string[]; value: number[]; failed: number[] } = {
        server: [],
        direction: [],
        name: [],
        value: [],
        failed: [],
      };
      const metric = (name: string, value: number, server: string | null, direction: Direction | null, failed: boolean): void => {
        if (!Number.isFinite(value)) throw new Error(`run ${runId}: metric ${name} has value ${value}, not a finite number`);
        metrics.server.push(server);
        metrics.direction.push(direction);
        metrics.name.push(name);
        metrics.value.push(value);
        metrics.failed.push(failed ? 1 : 0);
      };
      for (const test of outcome.tests) {
        const o = test.outcome;
        const inserted = await client.query<{ id: number }>(
          `INSERT INTO tests (run_id, protocol, direction, server, status, error_class, message, started_at, ended_at, iperf_version, raw_json)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
          [
            runId,
            test.protocol,
            test.direction,
            test.server,
            o.ok ? 'ok' : 'failed',
            o.ok ? null : o.errorClass,
            o.ok ? null : o.message,
            test.startedAt.getTime(),
            test.endedAt.getTime(),
            o.ok ? o.iperfVersion : null,
            o.raw,
          ],
        );
        if (!o.ok) continue;
        for (const m of o.metrics) metric(m.name, m.value, test.server, test.direction, false);
        await client.query(
          `INSERT INTO intervals (test_id, start, "end", bps, omitted)
           SELECT $1, * FROM unnest($2::float8[], $3::float8[], $4::float8[], $5::boolean[])`,
          [inserted.rows[0].id, o.intervals.map((i) => i.start), o.intervals.map((i) => i.end), o.intervals.map((i) => i.bitsPerSecond), o.intervals.map((i) => i.omitted)],
        );
      }
      for (const m of outcome.metrics) metric(m.name, m.value, outcome.server, m.direction, m.failed);
      // WITH ORDINALITY keeps the insertion order in the identity column
      await client.query(
        `INSERT INTO metrics (run_id, device, server, direction, name, value, time_ms, failed)
         SELECT $1, $2, m.server, m.direction, m.name, m.value, $3, m.failed
         FROM unnest($4::text[], $5::text[], $6::text[], $7::float8[], $8::smallint[]) WITH ORDINALITY AS m(server, direction, name, value, failed, n)
         ORDER BY m.n`,
        [runId, run.device, run.started_at, metrics.server, metrics.direction, metrics.name, metrics.value, metrics.failed],
      );
      // collectors waiting for the end of the round look again at once (delivered when this commits)
      if (run.round_id !== null) await client.query('SELECT pg_notify($1, $2)', [ROUND_PROGRESS_CHANNEL, String(run.round_id)]);
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
