/** The default store: one SQLite file (WAL), for one collector process. */
import { SecretBox } from '../secretBox.js';
import type { Store } from '../store.js';
import { SqliteDatabase, type SqliteOptions } from './database.js';
import { SqliteDevices } from './devices.js';
import { SqliteHostKeys } from './hostKeys.js';
import { SqliteMetrics } from './metrics.js';
import { ReadPool } from './readPool.js';
import { SqliteRounds } from './rounds.js';
import { SqliteRuns } from './runs.js';
import { SqliteSettings } from './settings.js';

export type { SqliteOptions } from './database.js';

const INTERRUPTED_MESSAGE = 'the collector stopped while this run was in progress';

export class SqliteStore implements Store {
  readonly devices: SqliteDevices;
  readonly rounds: SqliteRounds;
  readonly runs: SqliteRuns;
  readonly metrics: SqliteMetrics;
  readonly hostKeys: SqliteHostKeys;
  readonly settings: SqliteSettings;

  private constructor(
    private readonly sql: SqliteDatabase,
    secrets: SecretBox,
    private readonly reads: ReadPool,
    maxWriteBatch: number | undefined,
  ) {
    this.devices = new SqliteDevices(sql);
    this.rounds = new SqliteRounds(sql);
    this.runs = new SqliteRuns(sql, maxWriteBatch);
    this.metrics = new SqliteMetrics(reads);
    this.hostKeys = new SqliteHostKeys(sql);
    this.settings = new SqliteSettings(sql, secrets);
  }

  /** Opens (creating it and its folder when missing) and migrates the database at `path`. */
  static open(path: string, opts: SqliteOptions = {}): SqliteStore {
    const sql = SqliteDatabase.open(path, opts);
    const reads = new ReadPool(path, { size: opts.readers, maxQueued: opts.maxQueuedReads, busyTimeoutMs: opts.busyTimeoutMs });
    return new SqliteStore(sql, opts.secrets ?? SecretBox.ephemeral(), reads, opts.maxWriteBatch);
  }

  /** The schema version of the open database. */
  schemaVersion(): number {
    return this.sql.schemaVersion();
  }

  async markInterrupted(): Promise<number> {
    const now = this.sql.now();
    return this.sql.write(() => {
      this.sql.stmt("UPDATE rounds SET status = 'interrupted', ended_at = ? WHERE status = 'running'").run(now);
      return this.sql
        .stmt("UPDATE runs SET status = 'interrupted', error_class = 'interrupted', message = ?, ended_at = ? WHERE status = 'running'")
        .run(INTERRUPTED_MESSAGE, now).changes;
    });
  }

  async applyRetention(olderThan: Date): Promise<number> {
    const cutoff = olderThan.getTime();
    return this.sql.write(() => {
      const runs = this.sql.stmt("DELETE FROM runs WHERE started_at < ? AND status <> 'running'").run(cutoff).changes;
      this.sql.stmt("DELETE FROM rounds WHERE planned_at < ? AND status <> 'running'").run(cutoff);
      return runs;
    });
  }

  async close(): Promise<void> {
    // writes already submitted are committed (and their callers answered) before the file closes
    await this.runs.drain();
    await this.reads.close();
    this.sql.close();
  }
}
