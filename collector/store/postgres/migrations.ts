/**
 * Versioned schema of the collector's PostgreSQL database, shared by every collector of a fleet.
 * Applied at start-up under a session advisory lock, so collectors starting together do not race:
 * the first applies the missing versions, the others wait and then find nothing to do. Each
 * migration runs in its own transaction with its row in `schema_migrations`.
 * Times are Unix epoch milliseconds (bigint), as in the SQLite store.
 */
import type pg from 'pg';

export interface PgMigration {
  version: number;
  description: string;
  sql: string;
}

/** The advisory lock key (two int4 halves) that serialises migrations across collectors. */
export const MIGRATION_LOCK: readonly [number, number] = [0x69706633, 1];

export const PG_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    description: 'rounds, runs, tests, metrics, intervals, host keys, settings',
    sql: `
      CREATE TABLE rounds (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        -- one round per planned time, however many collectors fire the cron
        planned_at  bigint NOT NULL UNIQUE,
        started_at  bigint NOT NULL,
        ended_at    bigint,
        status      text NOT NULL CHECK (status IN ('running', 'done', 'interrupted'))
      );

      CREATE TABLE runs (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        device      text COLLATE "C" NOT NULL,
        server      text,
        trigger     text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
        round_id    bigint REFERENCES rounds (id) ON DELETE SET NULL,
        status      text NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'skipped', 'interrupted')),
        error_class text,
        message     text,
        started_at  bigint NOT NULL,
        ended_at    bigint,
        -- the database session of the collector running it: when that session is gone (the
        -- collector died or lost its connection), the run is orphaned
        owner_pid   integer,
        owner_since timestamptz
      );
      CREATE INDEX runs_device_started_at ON runs (device, started_at);
      CREATE INDEX runs_started_at ON runs (started_at);
      CREATE INDEX runs_running ON runs (status) WHERE status = 'running';
      CREATE INDEX runs_round_id ON runs (round_id);

      CREATE TABLE tests (
        id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id        bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        protocol      text NOT NULL CHECK (protocol IN ('tcp', 'udp')),
        direction     text NOT NULL CHECK (direction IN ('upload', 'download')),
        server        text NOT NULL,
        status        text NOT NULL CHECK (status IN ('ok', 'failed')),
        error_class   text,
        message       text,
        started_at    bigint NOT NULL,
        ended_at      bigint NOT NULL,
        iperf_version text,
        raw_json      text
      );
      CREATE INDEX tests_run_id ON tests (run_id);

      -- byte order (COLLATE "C") for names, as in SQLite: results sort the same on both stores
      CREATE TABLE metrics (
        id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id    bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        device    text COLLATE "C" NOT NULL,
        server    text COLLATE "C",
        direction text COLLATE "C" CHECK (direction IN ('upload', 'download')),
        name      text COLLATE "C" NOT NULL,
        value     double precision NOT NULL CHECK (value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308),
        time_ms   bigint NOT NULL,
        failed    smallint NOT NULL CHECK (failed IN (0, 1))
      );
      -- covering index of the series and latest queries (index-only scans)
      CREATE INDEX metrics_name_device_time ON metrics (name, device, time_ms) INCLUDE (direction, server, value, failed);
      CREATE INDEX metrics_run_id ON metrics (run_id);

      CREATE TABLE intervals (
        test_id bigint NOT NULL REFERENCES tests (id) ON DELETE CASCADE,
        start   double precision NOT NULL,
        "end"   double precision NOT NULL,
        bps     double precision NOT NULL,
        omitted boolean NOT NULL
      );
      CREATE INDEX intervals_test_id ON intervals (test_id);

      CREATE TABLE host_keys (
        device      text PRIMARY KEY,
        fingerprint text NOT NULL,
        recorded_at bigint NOT NULL
      );

      CREATE TABLE settings (
        id         integer PRIMARY KEY CHECK (id = 1),
        json       text NOT NULL,
        updated_at bigint NOT NULL
      );
    `,
  },
  {
    version: 2,
    description: 'settings: the pushed iperf3 password encrypted in its own column, never in the JSON',
    sql: 'ALTER TABLE settings ADD COLUMN secret text',
  },
  {
    version: 3,
    description: 'devices: the inventory, by source (the API, or the configuration file of a collector group)',
    sql: `
      CREATE TABLE devices (
        source     text COLLATE "C" NOT NULL,
        id         text COLLATE "C" NOT NULL,
        json       text NOT NULL,
        updated_at bigint NOT NULL,
        PRIMARY KEY (source, id)
      );
      CREATE INDEX devices_id ON devices (id);
    `,
  },
];

export class PgSchemaTooNewError extends Error {
  constructor(
    readonly found: number,
    readonly known: number,
  ) {
    super(
      `the PostgreSQL database has schema version ${found}, but this collector knows versions up to ${known}: ` +
        'it was migrated by a newer collector. Upgrade this collector to the version the others run.',
    );
    this.name = 'PgSchemaTooNewError';
  }
}

/**
 * Brings the database to the last version of `migrations` while holding the migration lock on
 * `client` (a dedicated connection). Returns the versions applied by this call.
 */
export async function applyPgMigrations(client: pg.ClientBase, migrations: readonly PgMigration[] = PG_MIGRATIONS): Promise<number[]> {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration list out of order: position ${i + 1} has version ${m.version}`);
  });
  await client.query('SELECT pg_advisory_lock($1, $2)', [...MIGRATION_LOCK]);
  try {
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version     integer PRIMARY KEY,
         description text NOT NULL,
         applied_at  timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
    const current = rows[0].v ?? 0;
    if (current > migrations.length) throw new PgSchemaTooNewError(current, migrations.length);
    const applied: number[] = [];
    for (const m of migrations.slice(current)) {
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, description) VALUES ($1, $2)', [m.version, m.description]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      }
      applied.push(m.version);
    }
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1, $2)', [...MIGRATION_LOCK]);
  }
}
