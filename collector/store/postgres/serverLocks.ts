/**
 * Cross-collector exclusivity of iperf3 servers: a session-level advisory lock per server, held
 * on the collector's database session while a test runs. PostgreSQL releases it by itself when
 * the collector dies or loses its connection. A release is announced with NOTIFY so that a
 * collector waiting for a server takes it at once (no polling).
 */
import type { ServerLocks } from '../store.js';
import type { PgDatabase } from './database.js';

export const SERVER_FREED_CHANNEL = 'iperf3_server_freed';

export class PgServerLocks implements ServerLocks {
  private readonly listeners = new Set<(key: string | null) => void>();
  private listening: Promise<void> | null = null;

  constructor(private readonly db: PgDatabase) {}

  async tryLock(key: string): Promise<boolean> {
    // one bigint key per server (hashtextextended): a keyspace apart from the store's own two-int keys
    const { rows } = await this.db.sessionQuery<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [key]);
    return rows[0].ok;
  }

  async unlock(key: string): Promise<void> {
    // one round trip on the session (every lock of this collector queues on it): the notification is sent when the unlock is done
    await this.db.sessionQuery('SELECT pg_advisory_unlock(hashtextextended($1, 0)), pg_notify($2, $1)', [key, SERVER_FREED_CHANNEL]);
  }

  /** Releases by other collectors; this collector's own are known to it already (the registry wakes its waiters itself). */
  async onFreed(listener: (key: string | null) => void): Promise<void> {
    this.listeners.add(listener);
    // a LISTEN that fails now (database away) is made again by the session when it reconnects
    this.listening ??= this.db
      .listen(SERVER_FREED_CHANNEL, (key, own) => {
        if (!own) this.listeners.forEach((l) => l(key));
      })
      .catch(() => {});
    await this.listening;
  }
}
