/**
 * The collector's store on SQLite (better-sqlite3, WAL). Synchronous by design: SQLite calls
 * are short, and a synchronous transaction cannot interleave with other work on the event loop.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Direction, MetricName } from '../../contract/metrics.js';
import type {
  ErrorClass,
  IntervalPoint,
  LatestParams,
  LatestValue,
  RunRecord,
  RunStatus,
  Series,
  SeriesParams,
  SeriesPoint,
  TestProtocol,
  TestRecord,
  Trigger,
} from '../../contract/api.js';
import { fieldErrors, formatFieldErrors, settingsSchema, type Settings } from '../../contract/settings.js';
import type { HostKeyStore, RunOutcome, RunStart } from '../model.js';
import { applyMigrations, MIGRATIONS } from './migrations.js';
import { downsample } from './downsample.js';

export interface StoreOptions {
  /** the time written for `recorded_at`, `updated_at`, round and interruption times */
  clock?: () => Date;
  /** how long a writer waits for a lock held by another connection (default 5000 ms) */
  busyTimeoutMs?: number;
}

export type RoundStatus = 'running' | 'done' | 'interrupted';

export interface RoundRecord {
  id: number;
  plannedAt: Date;
  startedAt: Date;
  endedAt: Date | null;
  status: RoundStatus;
}

export interface RunQuery {
  devices?: string[];
  status?: RunStatus[];
  /** runs started at or after this time */
  fromMs?: number;
  /** runs started at or before this time */
  toMs?: number;
  /** default 100 */
  limit?: number;
}

export type SeriesQuery = Omit<SeriesParams, 'devices'> & { devices: string[] | 'all' };

export type LatestQuery = Omit<LatestParams, 'devices'> & {
  devices: string[] | 'all';
  /** the latest point at or before this time (default: no bound) */
  beforeMs?: number;
};


export interface StoredSettings {
  settings: Settings;
  /** ISO time of the last save */
  updatedAt: string;
}

export class StoredSettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoredSettingsError';
  }
}

interface RunRow {
  id: number;
  device: string;
  server: string | null;
  trigger: Trigger;
  status: RunStatus;
  error_class: ErrorClass | null;
  message: string | null;
  started_at: number;
  ended_at: number | null;
}

interface TestRow {
  id: number;
  run_id: number;
  protocol: TestProtocol;
  direction: Direction;
  status: 'ok' | 'failed';
  error_class: ErrorClass | null;
  message: string | null;
  started_at: number;
  ended_at: number;
}

interface RoundRow {
  id: number;
  planned_at: number;
  started_at: number;
  ended_at: number | null;
  status: RoundStatus;
}

type MetricRow = [device: string, name: MetricName, direction: Direction | null, server: string | null, timeMs: number, value: number, failed: 0 | 1];

const iso = (ms: number): string => new Date(ms).toISOString();

const INTERRUPTED_MESSAGE = 'the collector stopped while this run was in progress';

const RUN_COLUMNS = 'id, device, server, trigger, status, error_class, message, started_at, ended_at';
const TEST_COLUMNS = 'id, run_id, protocol, direction, status, error_class, message, started_at, ended_at';

export class SqliteStore implements HostKeyStore {
  private readonly clock: () => Date;
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(
    private readonly db: Database.Database,
    opts: StoreOptions,
  ) {
    this.clock = opts.clock ?? (() => new Date());
  }

  /** Opens (creating it and its folder when missing) and migrates the database at `path`. */
  static open(path: string, opts: StoreOptions = {}): SqliteStore {
    mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('foreign_keys = ON');
      db.pragma(`busy_timeout = ${Math.trunc(opts.busyTimeoutMs ?? 5000)}`);
      // WAL makes NORMAL durable against application crashes; only an OS crash may lose the last commits.
      db.pragma('synchronous = NORMAL');
      applyMigrations(db, MIGRATIONS, path);
    } catch (err) {
      db.close();
      throw err;
    }
    return new SqliteStore(db, opts);
  }

  /** The schema version of the open database. */
  schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  close(): void {
    this.db.close();
  }

  // ---- rounds ---------------------------------------------------------------------------

  startRound(plannedAt: Date): number {
    const info = this.stmt('INSERT INTO rounds (planned_at, started_at, status) VALUES (?, ?, ?)').run(
      plannedAt.getTime(),
      this.now(),
      'running',
    );
    return Number(info.lastInsertRowid);
  }

  finishRound(id: number): void {
    this.stmt("UPDATE rounds SET status = 'done', ended_at = ? WHERE id = ?").run(this.now(), id);
  }

  /** Puts an interrupted round back to `running`, to resume it after a restart. */
  reopenRound(id: number): void {
    this.stmt("UPDATE rounds SET status = 'running', ended_at = NULL WHERE id = ?").run(id);
  }

  /** The round planned last (null before the first round). */
  lastRound(): RoundRecord | null {
    const row = this.stmt('SELECT * FROM rounds ORDER BY planned_at DESC, id DESC LIMIT 1').get() as RoundRow | undefined;
    if (!row) return null;
    return {
      id: row.id,
      plannedAt: new Date(row.planned_at),
      startedAt: new Date(row.started_at),
      endedAt: row.ended_at === null ? null : new Date(row.ended_at),
      status: row.status,
    };
  }

  /**
   * Devices that finished a run (ok, failed or skipped) in the round; devices whose run was
   * interrupted or is still running are not done and should run again when the round resumes.
   */
  devicesDoneInRound(roundId: number): string[] {
    return this.stmt(
      "SELECT DISTINCT device FROM runs WHERE round_id = ? AND status IN ('ok', 'failed', 'skipped') ORDER BY device",
    )
      .pluck()
      .all(roundId) as string[];
  }

  // ---- runs -----------------------------------------------------------------------------

  startRun(start: RunStart): number {
    const info = this.stmt(
      "INSERT INTO runs (device, trigger, round_id, status, started_at) VALUES (?, ?, ?, 'running', ?)",
    ).run(start.device, start.trigger, start.roundId, start.startedAt.getTime());
    return Number(info.lastInsertRowid);
  }

  isRunning(device: string): boolean {
    return this.stmt("SELECT EXISTS (SELECT 1 FROM runs WHERE device = ? AND status = 'running')").pluck().get(device) === 1;
  }

  /**
   * Stores everything a run produced in one transaction: the final status, every test with
   * its raw JSON, the tests' metrics (time = run start), their intervals and the extra
   * metrics of the outcome. On any error nothing is written and the run stays `running`.
   */
  finishRun(runId: number, outcome: RunOutcome): void {
    this.db.transaction(() => {
      const run = this.stmt('SELECT device, started_at FROM runs WHERE id = ? AND status = ?').get(runId, 'running') as
        | { device: string; started_at: number }
        | undefined;
      if (!run) throw new Error(`run ${runId} is not running (unknown id, or finished already)`);
      this.stmt('UPDATE runs SET status = ?, error_class = ?, message = ?, server = ?, ended_at = ? WHERE id = ?').run(
        outcome.status,
        outcome.errorClass,
        outcome.message,
        outcome.server,
        outcome.endedAt.getTime(),
        runId,
      );
      const insertTest = this.stmt(
        `INSERT INTO tests (run_id, protocol, direction, server, status, error_class, message, started_at, ended_at, iperf_version, raw_json)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      const insertMetric = this.stmt(
        'INSERT INTO metrics (run_id, device, server, direction, name, value, time_ms, failed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      );
      const insertInterval = this.stmt('INSERT INTO intervals (test_id, start, "end", bps, omitted) VALUES (?, ?, ?, ?, ?)');
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
            o.ok ? o.iperfVersion : null,
            o.raw,
          ).lastInsertRowid,
        );
        if (!o.ok) continue;
        for (const m of o.metrics) metric(m.name, m.value, test.server, test.direction, false);
        for (const i of o.intervals) insertInterval.run(testId, i.start, i.end, i.bitsPerSecond, i.omitted ? 1 : 0);
      }
      for (const m of outcome.metrics) metric(m.name, m.value, outcome.server, m.direction, m.failed);
    }).immediate();
  }

  /** At start-up: runs and rounds left `running` by a crash become `interrupted`. Returns the runs changed. */
  markInterrupted(): number {
    const now = this.now();
    return this.db.transaction(() => {
      this.stmt("UPDATE rounds SET status = 'interrupted', ended_at = ? WHERE status = 'running'").run(now);
      return this.stmt(
        "UPDATE runs SET status = 'interrupted', error_class = 'interrupted', message = ?, ended_at = ? WHERE status = 'running'",
      ).run(INTERRUPTED_MESSAGE, now).changes;
    }).immediate();
  }

  /** Runs, newest first, with their tests. */
  listRuns(query: RunQuery = {}): RunRecord[] {
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
    const sql = `SELECT ${RUN_COLUMNS} FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
                 ORDER BY started_at DESC, id DESC LIMIT ?`;
    return this.withTests(this.stmt(sql).all(...params) as RunRow[]);
  }

  getRun(id: number): RunRecord | null {
    const row = this.stmt(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = ?`).get(id) as RunRow | undefined;
    return row ? this.withTests([row])[0] : null;
  }

  /** The newest run of each device that has one. */
  lastRuns(devices: string[]): Map<string, RunRecord> {
    // One index probe per device on runs(device, started_at): a window over every run would
    // grow with the history (about 0.6 s for 500 devices x a year, against 1-2 ms).
    const rows = this.stmt(
      `SELECT ${RUN_COLUMNS} FROM runs WHERE id IN (
         SELECT (SELECT r.id FROM runs r WHERE r.device = d.value ORDER BY r.started_at DESC, r.id DESC LIMIT 1)
         FROM json_each(?) d
       )`,
    ).all(JSON.stringify(devices)) as RunRow[];
    return new Map(this.withTests(rows).map((r) => [r.device, r]));
  }



  /** Per-second data of a run's tests, in test order. */
  intervals(runId: number): IntervalPoint[] {
    const rows = this.stmt(
      `SELECT t.protocol, t.direction, t.started_at, i.start, i."end", i.bps, i.omitted
       FROM intervals i JOIN tests t ON t.id = i.test_id WHERE t.run_id = ? ORDER BY t.id, i.start`,
    ).all(runId) as { protocol: TestProtocol; direction: Direction; started_at: number; start: number; end: number; bps: number; omitted: 0 | 1 }[];
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

  /** Deletes finished runs started before `olderThan` (with their tests, metrics and intervals) and finished rounds planned before it. Returns the runs deleted. */
  applyRetention(olderThan: Date): number {
    const cutoff = olderThan.getTime();
    return this.db.transaction(() => {
      const runs = this.stmt("DELETE FROM runs WHERE started_at < ? AND status <> 'running'").run(cutoff).changes;
      this.stmt("DELETE FROM rounds WHERE planned_at < ? AND status <> 'running'").run(cutoff);
      return runs;
    }).immediate();
  }

  // ---- metrics --------------------------------------------------------------------------

  /**
   * Time series of metrics, one per device+metric+direction (+server when `splitByServer`),
   * points sorted by time and reduced to at most `maxPoints` by `downsample`. One query for
   * all devices. Series are ordered by device, metric, direction (null first), server.
   */
  series(query: SeriesQuery): Series[] {
    const { where, params } = this.metricFilter(query.devices, query.metrics, query.server, query.direction);
    where.push('time_ms BETWEEN ? AND ?');
    params.push(query.fromMs, query.toMs);
    const split = query.splitByServer === true;
    // No ORDER BY: SQLite would sort every row in a temporary b-tree; grouping here and
    // sorting each (already nearly sorted) series is cheaper and keeps the covering index.
    const sql = `SELECT device, name, direction, server, time_ms, value, failed FROM metrics WHERE ${where.join(' AND ')}`;
    const byKey = new Map<string, Series>();
    for (const [device, name, direction, server, timeMs, value, failed] of this.stmt(sql).raw().iterate(...params) as IterableIterator<MetricRow>) {
      const seriesServer = split ? server : null;
      const key = `${device}\u0000${name}\u0000${direction ?? ''}\u0000${seriesServer ?? ''}`;
      let s = byKey.get(key);
      if (!s) {
        s = { device, metric: name, server: seriesServer, direction, points: [] };
        byKey.set(key, s);
      }
      s.points.push([timeMs, value, failed] as SeriesPoint);
    }
    // Keys are unique and order like (device, metric, direction, server) with null first.
    const out = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, s]) => s);
    for (const s of out) s.points = downsample(s.points.sort((a, b) => a[0] - b[0]), query.fromMs, query.toMs, query.maxPoints);
    return out;
  }

  /** The latest point of each device+metric+direction, ordered by device, metric, direction. */
  latest(query: LatestQuery): LatestValue[] {
    const { where, params } = this.metricFilter(query.devices, query.metrics, query.server, query.direction);
    if (query.beforeMs !== undefined) {
      where.push('time_ms <= ?');
      params.push(query.beforeMs);
    }
    // SQLite takes the bare columns of a max() aggregate from the row holding the maximum.
    const sql = `SELECT device, name, direction, server, max(time_ms), value, failed FROM metrics
                 WHERE ${where.join(' AND ')} GROUP BY device, name, direction ORDER BY device, name, direction`;
    return (this.stmt(sql).raw().all(...params) as MetricRow[]).map(([device, metric, direction, server, timeMs, value, failed]) => ({
      device,
      metric,
      server,
      direction,
      timeMs,
      value,
      failed,
    }));
  }

  // ---- host keys ------------------------------------------------------------------------

  getHostKey(deviceId: string): string | undefined {
    return this.stmt('SELECT fingerprint FROM host_keys WHERE device = ?').pluck().get(deviceId) as string | undefined;
  }

  recordHostKey(deviceId: string, fingerprint: string): void {
    this.stmt(
      `INSERT INTO host_keys (device, fingerprint, recorded_at) VALUES (?, ?, ?)
       ON CONFLICT (device) DO UPDATE SET fingerprint = excluded.fingerprint, recorded_at = excluded.recorded_at`,
    ).run(deviceId, fingerprint, this.now());
  }

  /** Forgets a device's key (after an operator re-keyed it); true when one was recorded. */
  clearHostKey(deviceId: string): boolean {
    return this.stmt('DELETE FROM host_keys WHERE device = ?').run(deviceId).changes === 1;
  }

  // ---- settings -------------------------------------------------------------------------

  /** The settings last saved through the API, or null when none were. */
  getSettings(): StoredSettings | null {
    const row = this.stmt('SELECT json, updated_at FROM settings WHERE id = 1').get() as { json: string; updated_at: number } | undefined;
    if (!row) return null;
    const parsed = settingsSchema.safeParse(JSON.parse(row.json));
    if (!parsed.success) {
      throw new StoredSettingsError(
        `the settings stored in the database are not valid for this collector version (${formatFieldErrors(fieldErrors(parsed.error))}); ` +
          'save the data source in Grafana again (PUT /api/v1/settings) to replace them',
      );
    }
    return { settings: parsed.data, updatedAt: iso(row.updated_at) };
  }

  /**
   * Saves the settings and returns the ISO time of the save. `apply` runs inside the same
   * transaction: when it throws, the previous settings stay stored.
   */
  saveSettings(settings: Settings, apply?: (updatedAt: string) => void): string {
    const now = this.now();
    this.db.transaction(() => {
      this.stmt(
        `INSERT INTO settings (id, json, updated_at) VALUES (1, ?, ?)
         ON CONFLICT (id) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at`,
      ).run(JSON.stringify(settings), now);
      apply?.(iso(now));
    }).immediate();
    return iso(now);
  }

  // ---- internals ------------------------------------------------------------------------

  private now(): number {
    return this.clock().getTime();
  }

  /** Prepared statements are cached by their SQL text (a handful of shapes). */
  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private metricFilter(
    devices: string[] | 'all',
    metrics: MetricName[],
    server: string | undefined,
    direction: Direction | undefined,
  ): { where: string[]; params: unknown[] } {
    const where = ['name IN (SELECT value FROM json_each(?))'];
    const params: unknown[] = [JSON.stringify(metrics)];
    if (devices !== 'all') {
      where.push('device IN (SELECT value FROM json_each(?))');
      params.push(JSON.stringify(devices));
    }
    if (server !== undefined) {
      where.push('server = ?');
      params.push(server);
    }
    if (direction !== undefined) {
      where.push('(direction IS NULL OR direction = ?)');
      params.push(direction);
    }
    return { where, params };
  }

  private withTests(rows: RunRow[]): RunRecord[] {
    const tests = new Map<number, TestRecord[]>();
    if (rows.length > 0) {
      const testRows = this.stmt(
        `SELECT ${TEST_COLUMNS} FROM tests WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY run_id, id`,
      ).all(JSON.stringify(rows.map((r) => r.id))) as TestRow[];
      for (const t of testRows) {
        const list = tests.get(t.run_id) ?? [];
        list.push({
          id: t.id,
          protocol: t.protocol,
          direction: t.direction,
          status: t.status,
          errorClass: t.error_class,
          message: t.message,
          startedAt: iso(t.started_at),
          endedAt: iso(t.ended_at),
        });
        tests.set(t.run_id, list);
      }
    }
    return rows.map((r) => ({
      id: r.id,
      device: r.device,
      server: r.server,
      trigger: r.trigger,
      status: r.status,
      errorClass: r.error_class,
      message: r.message,
      startedAt: iso(r.started_at),
      endedAt: r.ended_at === null ? null : iso(r.ended_at),
      tests: tests.get(r.id) ?? [],
    }));
  }
}
