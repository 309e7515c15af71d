import type { Direction } from '../../../contract/metrics.js';
import type { IntervalPoint, RunRecord, TestProtocol } from '../../../contract/api.js';
import type { RunOutcome, RunStart } from '../../model.js';
import { RUN_COLUMNS, runRecords, TEST_COLUMNS, type RunRow, type TestRow } from '../rows.js';
import type { RunQuery, RunStore } from '../store.js';
import { settle, type Settled } from '../groupCommit.js';
import { GroupCommittedRuns, type Finish } from '../groupCommittedRuns.js';
import type { SqliteDatabase } from './database.js';

/**
 * Starts and finishes are group-committed (../groupCommit.ts): those of one turn of the event loop
 * share one write transaction, and each finish runs in a savepoint of its own inside it, so that a
 * finish that fails leaves the others of its batch stored.
 */
export class SqliteRuns extends GroupCommittedRuns implements RunStore {
  /** a finish inside the batch's transaction: a transaction of better-sqlite3 there is a savepoint, which rolls back only its own writes */
  private readonly finishInSavepoint: (f: Finish) => void;

  constructor(
    private readonly sql: SqliteDatabase,
    maxBatch?: number,
  ) {
    super({ maxBatch });
    this.finishInSavepoint = this.sql.db.transaction((f: Finish) => this.finishOne(f.runId, f.outcome));
  }

  protected async startBatch(items: RunStart[]): Promise<Settled<number>[]> {
    return this.sql.write(() => items.map((s) => this.member(() => this.insertRun(s))));
  }

  protected async finishBatch(items: Finish[]): Promise<Settled<void>[]> {
    return this.sql.write(() => items.map((f) => this.member(() => this.finishInSavepoint(f))));
  }

  /**
   * One write of a batch, settled. Some errors (disk full, I/O error, out of memory) make SQLite
   * roll back the whole transaction: the batch stops there (the later writes would each commit
   * on their own, and then once more when the batch is retried) and GroupCommit writes each
   * member alone, so that only the bad one fails and with its own error.
   */
  private member<T>(fn: () => T): Settled<T> {
    const result = settle(fn);
    if (!result.ok && !this.sql.db.inTransaction) throw result.error;
    return result;
  }

  private insertRun(start: RunStart): number {
    const info = this.sql
      .stmt("INSERT INTO runs (device, trigger, round_id, status, started_at) VALUES (?, ?, ?, 'running', ?)")
      .run(start.device, start.trigger, start.roundId, start.startedAt.getTime());
    return Number(info.lastInsertRowid);
  }

  private finishOne(runId: number, outcome: RunOutcome): void {
    const sql = this.sql;
    const run = sql.stmt('SELECT device, started_at FROM runs WHERE id = ? AND status = ?').get(runId, 'running') as
      | { device: string; started_at: number }
      | undefined;
    if (!run) throw new Error(`run ${runId} is not running (unknown id, or finished already)`);
    sql
      .stmt('UPDATE runs SET status = ?, error_class = ?, message = ?, server = ?, ended_at = ? WHERE id = ?')
      .run(outcome.status, outcome.errorClass, outcome.message, outcome.server, outcome.endedAt.getTime(), runId);
    const insertTest = sql.stmt(
      `INSERT INTO tests (run_id, protocol, direction, server, status, error_class, message, started_at, ended_at, iperf_version, raw_json)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const insertMetric = sql.stmt(
      'INSERT INTO metrics (run_id, device, server, direction, name, value, time_ms, failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const insertInterval = sql.stmt('INSERT INTO intervals (test_id, start, "end", bps, omitted) VALUES (?, ?, ?, ?, ?)');
    const metric = (name: string, value: number, server: string | null, direction: Direction | null, failed: boolean): void => {
      // SQLite would store NaN as NULL and the NOT NULL constraint would name only the column.
      if (!Number.isFinite(value)) throw new Error(`run ${runId}: metric ${name} has value ${value}, not a finite number`);
      insertMetric.run(runId, run.device, server, direction, name, value, run.started_at, failed ? 1 : 0);
    };
    for (const test of outcome.tests) {
      const o = test.outcome;
      const testId = Number(
        insertTest.run(
          runId,
          test.protocol,
          test.direction,
          test.server,
          o.ok ? 'ok' : 'failed',
          o.ok ? null : o.errorClass,
          o.ok ? null : o.message,
          test.startedAt.getTime(),
          test.endedAt.getTime(),
          o.iperfVersion ?? null,
          o.raw,
        ).lastInsertRowid,
      );
      if (!o.ok) continue;
      for (const m of o.metrics) metric(m.name, m.value, test.server, test.direction, false);
      for (const i of o.intervals) insertInterval.run(testId, i.start, i.end, i.bitsPerSecond, i.omitted ? 1 : 0);
    }
    for (const m of outcome.metrics) metric(m.name, m.value, outcome.server, m.direction, m.failed);
  }

  async list(query: RunQuery = {}): Promise<RunRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.devices) {
      where.push('device IN (SELECT value FROM json_each(?))');
      params.push(JSON.stringify(query.devices));
    }
    if (query.status) {
      where.push('status IN (SELECT value FROM json_each(?))');
      params.push(JSON.stringify(query.status));
    }
    if (query.fromMs !== undefined) {
      where.push('started_at >= ?');
      params.push(query.fromMs);
    }
    if (query.toMs !== undefined) {
      where.push('started_at <= ?');
      params.push(query.toMs);
    }
    params.push(query.limit ?? 100);
    const text = `SELECT ${RUN_COLUMNS} FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
                  ORDER BY started_at DESC, id DESC LIMIT ?`;
    return this.withTests(this.sql.stmt(text).all(...params) as RunRow[]);
  }

  async get(id: number): Promise<RunRecord | null> {
    const row = this.sql.stmt(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = ?`).get(id) as RunRow | undefined;
    return row ? this.withTests([row])[0] : null;
  }

  async lastOf(devices: string[]): Promise<Map<string, RunRecord>> {
    // One index probe per device on runs(device, started_at): a window over every run would
    // grow with the history (about 0.6 s for 500 devices x a year, against 1-2 ms).
    const rows = this.sql
      .stmt(
        `SELECT ${RUN_COLUMNS} FROM runs WHERE id IN (
           SELECT (SELECT r.id FROM runs r WHERE r.device = d.value ORDER BY r.started_at DESC, r.id DESC LIMIT 1)
           FROM json_each(?) d
         )`,
      )
      .all(JSON.stringify(devices)) as RunRow[];
    return new Map(this.withTests(rows).map((r) => [r.device, r]));
  }

  async intervals(runId: number): Promise<IntervalPoint[]> {
    const rows = this.sql
      .stmt(
        `SELECT t.protocol, t.direction, t.started_at, i.start, i."end", i.bps, i.omitted
         FROM intervals i JOIN tests t ON t.id = i.test_id WHERE t.run_id = ? ORDER BY t.id, i.start`,
      )
      .all(runId) as { protocol: TestProtocol; direction: Direction; started_at: number; start: number; end: number; bps: number; omitted: 0 | 1 }[];
    return rows.map((r) => ({
      protocol: r.protocol,
      direction: r.direction,
      start: r.start,
      end: r.end,
      timeMs: r.started_at + Math.round(r.end * 1000),
      bitsPerSecond: r.bps,
      omitted: r.omitted === 1,
    }));
  }

  private withTests(rows: RunRow[]): RunRecord[] {
    if (rows.length === 0) return [];
    const testRows = this.sql
      .stmt(`SELECT ${TEST_COLUMNS} FROM tests WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY run_id, id`)
      .all(JSON.stringify(rows.map((r) => r.id))) as TestRow[];
    return runRecords(rows, testRows);
  }

}
