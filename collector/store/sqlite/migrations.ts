/**
 * Versioned schema of the collector's SQLite database. The version lives in SQLite's own
 * `PRAGMA user_version`; migrations are an ordered list, each applied in its own transaction
 * together with the version bump, so a crash mid-migration leaves the previous version intact.
 * Times are stored as Unix epoch milliseconds (INTEGER).
 */
import type Database from 'better-sqlite3';
import { StartupError } from '../../errors.js';

export interface Migration {
  /** 1, 2, 3, ... in order; the database's `user_version` after this migration */
  version: number;
  description: string;
  up(db: Database.Database): void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'rounds, runs, tests, metrics, intervals, host keys, settings',
    up(db) {
      db.exec(`
        CREATE TABLE rounds (
          id          INTEGER PRIMARY KEY,
          planned_at  INTEGER NOT NULL,
          started_at  INTEGER NOT NULL,
          ended_at    INTEGER,
          status      TEXT NOT NULL CHECK (status IN ('running', 'done', 'interrupted'))
        );
        CREATE INDEX rounds_planned_at ON rounds (planned_at);

        CREATE TABLE runs (
          id          INTEGER PRIMARY KEY,
          device      TEXT NOT NULL,
          server      TEXT,
          trigger     TEXT NOT NULL CHECK (trigger IN ('schedule', 'manual')),
          round_id    INTEGER REFERENCES rounds (id) ON DELETE SET NULL,
          status      TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'skipped', 'interrupted')),
          error_class TEXT,
          message     TEXT,
          started_at  INTEGER NOT NULL,
          ended_at    INTEGER
        );
        CREATE INDEX runs_device_started_at ON runs (device, started_at);
        CREATE INDEX runs_started_at ON runs (started_at);
        CREATE INDEX runs_status ON runs (status);
        CREATE INDEX runs_round_id ON runs (round_id);

        CREATE TABLE tests (
          id            INTEGER PRIMARY KEY,
          run_id        INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          protocol      TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),
          direction     TEXT NOT NULL CHECK (direction IN ('upload', 'download')),
          server        TEXT NOT NULL,
          status        TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
          error_class   TEXT,
          message       TEXT,
          started_at    INTEGER NOT NULL,
          ended_at      INTEGER NOT NULL,
          iperf_version TEXT,
          raw_json      TEXT
        );
        CREATE INDEX tests_run_id ON tests (run_id);

        CREATE TABLE metrics (
          run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          device    TEXT NOT NULL,
          server    TEXT,
          direction TEXT CHECK (direction IN ('upload', 'download')),
          name      TEXT NOT NULL,
          -- NaN arrives as NULL; the range check rejects +-Infinity
          value     REAL NOT NULL CHECK (value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308),
          time_ms   INTEGER NOT NULL,
          failed    INTEGER NOT NULL CHECK (failed IN (0, 1))
        );
        -- Covering index of the series and latest queries (answered from the index alone,
        -- time range in the seek). Every metrics query names its metrics, so there is no
        -- (device, time) index: it only tempted the planner away from this one.
        CREATE INDEX metrics_name_device_time ON metrics (name, device, time_ms, direction, server, value, failed, run_id);
        CREATE INDEX metrics_run_id ON metrics (run_id);

        CREATE TABLE intervals (
          test_id INTEGER NOT NULL REFERENCES tests (id) ON DELETE CASCADE,
          start   REAL NOT NULL,
          "end"   REAL NOT NULL,
          bps     REAL NOT NULL,
          omitted INTEGER NOT NULL CHECK (omitted IN (0, 1))
        );
        CREATE INDEX intervals_test_id ON intervals (test_id);

        CREATE TABLE host_keys (
          device      TEXT PRIMARY KEY,
          fingerprint TEXT NOT NULL,
          recorded_at INTEGER NOT NULL
        );

        CREATE TABLE settings (
          id         INTEGER PRIMARY KEY CHECK (id = 1),
          json       TEXT NOT NULL,
          updated_at INTEGER NOT NULL
        );
      `);
    },
  },
  {
    version: 2,
    description: 'settings: the pushed iperf3 password encrypted in its own column, never in the JSON',
    up(db) {
      db.exec('ALTER TABLE settings ADD COLUMN secret TEXT');
    },
  },
  {
    version: 3,
    description: 'devices: the inventory, by source (the API, or the configuration file of a collector group)',
    up(db) {
      db.exec(`
        CREATE TABLE devices (
          source     TEXT NOT NULL,
          id         TEXT NOT NULL,
          json       TEXT NOT NULL,
          updated_at INTEGER NOT NULL,
          PRIMARY KEY (source, id)
        );
        CREATE INDEX devices_id ON devices (id);
      `);
    },
  },
];

export class SchemaTooNewError extends StartupError {
  constructor(
    readonly path: string,
    readonly found: number,
    readonly known: number,
  ) {
    super(
      `database ${path} has schema version ${found}, but this collector knows versions up to ${known}: ` +
        'it was written by a newer collector. Run that newer version, or point the collector at another database file.',
    );
    this.name = 'SchemaTooNewError';
  }
}

/**
 * Brings the database to the last version of `migrations`. Returns the versions applied.
 * Refuses a database whose version is newer than the last migration known.
 */
export function applyMigrations(db: Database.Database, migrations: readonly Migration[], path: string): number[] {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration list out of order: position ${i + 1} has version ${m.version}`);
  });
  const known = migrations.length;
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > known) throw new SchemaTooNewError(path, current, known);
  const applied: number[] = [];
  for (const m of migrations.slice(current)) {
    db.transaction(() => {
      m.up(db);
      // PRAGMA cannot take parameters; the version is an integer from our own list.
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
    applied.push(m.version);
  }
  return applied;
}
