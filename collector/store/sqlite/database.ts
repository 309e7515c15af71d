/**
 * The SQLite connection shared by the store's parts (better-sqlite3, WAL). Synchronous by
 * design: SQLite calls are short, and a synchronous transaction cannot interleave with other
 * work on the event loop. The parts wrap it in the store's asynchronous interface.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StartupError } from '../../errors.js';
import type { SecretBox } from '../secretBox.js';
import { applyMigrations, MIGRATIONS, SchemaTooNewError } from './migrations.js';
import { acquireOwnership, type Ownership } from './ownership.js';

export interface SqliteOptions {
  /** the time written for `recorded_at`, `updated_at`, round and interruption times */
  clock?: () => Date;
  /** how long a writer waits for a lock held by another connection (default 5000 ms) */
  busyTimeoutMs?: number;
  /** take ownership of the database for this process (serve and run do; readers such as tests do not) */
  owner?: boolean;
  /** encrypts the secrets the store keeps (default: a key for this process only) */
  secrets?: SecretBox;
  /** worker threads reading metric series and latest values off the event loop (default 2) */
  readers?: number;
  /** metric reads that may wait for a reader before new ones get 503 (default 64) */
  maxQueuedReads?: number;
  /** most run starts (or finishes) written in one transaction by the group commit (default 100; 1 turns it off, for benchmarks) */
  maxWriteBatch?: number;
}

export class SqliteDatabase {
  private readonly statements = new Map<string, Database.Statement>();
  private readonly clock: () => Date;

  private constructor(
    readonly db: Database.Database,
    opts: SqliteOptions,
    private readonly ownership: Ownership | null,
  ) {
    this.clock = opts.clock ?? (() => new Date());
  }

  /** Opens (creating it and its folder when missing) and migrates the database at `path`. */
  static open(path: string, opts: SqliteOptions = {}): SqliteDatabase {
    mkdirSync(dirname(path), { recursive: true });
    const ownership = opts.owner ? acquireOwnership(path) : null;
    privateFiles(path);
    let db: Database.Database;
    try {
      db = new Database(path);
    } catch (err) {
      ownership?.release();
      throw unusable(path, err);
    }
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('foreign_keys = ON');
      db.pragma(`busy_timeout = ${Math.trunc(opts.busyTimeoutMs ?? 5000)}`);
      // WAL makes NORMAL durable against application crashes; only an OS crash may lose the last commits.
      db.pragma('synchronous = NORMAL');
      applyMigrations(db, MIGRATIONS, path);
    } catch (err) {
      db.close();
      ownership?.release();
      throw err instanceof SchemaTooNewError ? err : unusable(path, err);
    }
    return new SqliteDatabase(db, opts, ownership);
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
    this.ownership?.release();
  }
}

export const iso = (ms: number): string => new Date(ms).toISOString();

/** What SQLite's error codes mean for an operator, and what to do. */
const FIXES: Record<string, string> = {
  SQLITE_NOTADB: 'the file is not a SQLite database (or it is damaged): move it aside and start again to create a new one, or restore a backup',
  SQLITE_CORRUPT: 'the database is damaged: restore a backup, or move it aside and start again to create a new one',
  SQLITE_READONLY: 'the collector cannot write it: check the owner and mode of the file and its folder (the collector needs to write both)',
  SQLITE_CANTOPEN: 'the collector cannot open or create it: check that the folder exists and is writable by the collector',
  SQLITE_PERM: 'the collector is not allowed to open it: check the owner and mode of the file and its folder',
};

function unusable(path: string, err: unknown): StartupError {
  const code = (err as { code?: string }).code ?? '';
  const base = Object.keys(FIXES).find((k) => code === k || code.startsWith(`${k}_`));
  const fix = base ? FIXES[base] : 'check the file, its folder and the disk';
  return new StartupError(`cannot use database ${path}: ${(err as Error).message} (${code || 'unknown error'}); ${fix}`, { cause: err });
}

/**
 * The database holds the fleet's history and host keys: only the collector's user may read it.
 * A new file is created 0600 (SQLite gives its -wal and -shm files the mode of the database);
 * files left more open by an earlier version are tightened.
 */
function privateFiles(path: string): void {
  try {
    if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
    for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}.owner`]) {
      if (existsSync(file) && (statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    }
  } catch {
    // a read-only or foreign-owned file: opening it reports the problem with its fix
  }
}
