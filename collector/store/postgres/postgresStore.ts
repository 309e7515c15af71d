/**
 * The store for fleets that outgrow one machine: one PostgreSQL database shared by any number of
 * collectors. Inventory-independent data (settings, host keys, rounds, runs, metrics) is shared,
 * so any collector's API answers for the whole fleet.
 */
import type { Store } from '../store.js';
import { SecretBox } from '../secretBox.js';
import { LIVENESS_LOCK, PgDatabase, type PostgresOptions } from './database.js';
import { PgDevices } from './devices.js';
import { PgHostKeys } from './hostKeys.js';
import { PgMetrics } from './metrics.js';
import { PgRounds } from './rounds.js';
import { INTERRUPTED_MESSAGE, ORPHANED, PgRuns } from './runs.js';
import { PgServerLocks } from './serverLocks.js';
import { PgSettings } from './settings.js';

export type { PostgresOptions } from './database.js';

export class PostgresStore implements Store {
  readonly devices: PgDevices;
  readonly rounds: PgRounds;
  readonly runs: PgRuns;
  readonly metrics: PgMetrics;
  readonly hostKeys: PgHostKeys;
  readonly settings: PgSettings;
  readonly serverLocks: PgServerLocks;

  private constructor(
    readonly db: PgDatabase,
    secrets: SecretBox,
    maxWriteBatch: number | undefined,
  ) {
    this.devices = new PgDevices(db);
    this.rounds = new PgRounds(db);
    this.runs = new PgRuns(db, maxWriteBatch);
    this.metrics = new PgMetrics(db);
    this.hostKeys = new PgHostKeys(db);
    this.settings = new PgSettings(db, secrets);
    this.serverLocks = new PgServerLocks(db);
  }

  /** Connects to `url` and brings the schema up to date (under the migration lock). */
  static async open(url: string, opts: PostgresOptions = {}): Promise<PostgresStore> {
    return new PostgresStore(await PgDatabase.open(url, opts), opts.secrets ?? SecretBox.ephemeral(), opts.maxWriteBatch);
  }

  async schemaVersion(): Promise<number> {
    const { rows } = await this.db.query<{ v: number }>('SELECT COALESCE(max(version), 0) AS v FROM schema_migrations');
    return rows[0].v;
  }

  /**
   * Runs left `running` by a collector whose database session is gone become `interrupted`;
   * runs of live collectors are theirs to finish. Rounds are shared: a round left `running`
   * becomes `interrupted` only when no other collector is connected to carry it on.
   */
  async markInterrupted(): Promise<number> {
    const now = this.db.now();
    return this.db.tx(async (client) => {
      const others = await client.query<{ n: number }>(
        `SELECT count(DISTINCT pid)::int AS n FROM pg_locks
         WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid = $1 AND objid = $2 AND objsubid = 2 AND granted AND pid <> $3`,
        [...LIVENESS_LOCK, this.db.identity().pid],
      );
      if (others.rows[0].n === 0) await client.query("UPDATE rounds SET status = 'interrupted', ended_at = $1 WHERE status = 'running'", [now]);
      const runs = await client.query(
        `UPDATE runs SET status = 'interrupted', error_class = 'interrupted', message = $1, ended_at = $2 WHERE ${ORPHANED}`,
        [INTERRUPTED_MESSAGE, now],
      );
      return Number(runs.rowCount);
    });
  }

  async applyRetention(olderThan: Date): Promise<number> {
    const cutoff = olderThan.getTime();
    return this.db.tx(async (client) => {
      const runs = await client.query("DELETE FROM runs WHERE started_at < $1 AND status <> 'running'", [cutoff]);
      await client.query("DELETE FROM rounds WHERE planned_at < $1 AND status <> 'running'", [cutoff]);
      return Number(runs.rowCount);
    });
  }

  async close(): Promise<void> {
    // writes already submitted are committed (and their callers answered) before the pool ends
    await this.runs.drain();
    await this.db.close();
  }
}
