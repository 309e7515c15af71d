/**
 * One process owns a SQLite database: `serve` and `run` hold an exclusive lock on a companion
 * file (`<database>.owner`) for as long as they have the database open. The operating system
 * releases it when the process dies, so a crash never leaves a stale lock. Without it, a second
 * process would mark the first one's running runs as interrupted and throw their results away.
 */
import { closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { DatabaseInUseError, StartupError } from '../../errors.js';

export interface Ownership {
  release(): void;
}

export function acquireOwnership(databasePath: string): Ownership {
  const path = `${databasePath}.owner`;
  if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  let lock: Database.Database | undefined;
  try {
    lock = new Database(path, { timeout: 0 });
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    lock?.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new DatabaseInUseError(databasePath);
    throw new StartupError(`cannot lock database ${databasePath} (${path}): ${(err as Error).message}; check that the collector may write the database's folder`, { cause: err });
  }
  const held = lock;
  return { release: () => held.close() };
}
