/**
 * The SQLite connection shared by the store's parts (better-sqlite3, WAL). Synchronous by
 * design: SQLite calls are short, and a synchronous transaction cannot interleave with other
 * work on the event loop. The parts wrap it in the store's asynchronous interface.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { applyMigrations, MIGRATIONS } from './migrations.js';

export interface SqliteOptions {
  /** the time written for `recorded_at`, `updated_at`, round and interruption times */
  clock?: () => Date;
  /** how long a writer waits for a lock held by another connection (default 5000 ms) */
  busyTimeoutMs?: number;
}

export class SqliteDatabase {
  private readonly statements = new Map<string, Database.Statement>();
  private readonly clock: () => Date;

  private constructor(
    readonly db: Database.Database,
    opts: SqliteOptions,
  ) {
    this.clock = opts.clock ?? (() => new Date());
  }

  /** Opens (creating it and its folder when missing) and migrates the database at `path`. */
  static open(path: string, opts: SqliteOptions = {}): SqliteDatabase {
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
    return new SqliteDatabase(db, opts);
  }

  now(): number {
    return this.clock().getTime();
  }

  /** Prepared statements are cached by their SQL text (a handful of shapes). */
  stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /** Runs `fn` in an IMMEDIATE transaction (the write lock is taken at the start). */
  write<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** The schema version of the open database. */
  schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  close(): void {
    this.db.close();
  }
}

export const iso = (ms: number): string => new Date(ms).toISOString();
