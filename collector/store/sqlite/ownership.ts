/**
 * One process owns a SQLite database: `serve` and `run` hold an exclusive lock on a companion
 * file (`<database>.owner`) for as long as they have the database open. The operating system
 * releases it when the process dies, so a crash never leaves a stale lock. Without it, a second
 * process would mark the first one's running runs as interrupted and throw their results away.
 */
import { closeSync, existsSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { DatabaseInUseError } from '../../errors.js';

export interface Ownership {
  release(): void;
}

export function acquireOwnership(databasePath: string): Ownership {
  const path = `${databasePath}.owner`;
  if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  const lock = new Database(path, { timeout: 0 });
  try {
    lock.pragma('locking_mode = EXCLUSIVE');
    lock.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    lock.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') throw new DatabaseInUseError(databasePath);
    throw err;
  }
  return { release: () => lock.close() };
}
