/**
 * Cross-collector exclusivity of iperf3 servers: a session-level advisory lock per server, held
 * on the collector's database session while a test runs. PostgreSQL releases it by itself when
 * the collector dies or loses its connection. A release is announced with NOTIFY so that a
 * collector waiting for a server takes it at once (no polling).
 */
import type { ServerLocks } from '../store.js';
import { GroupCommit, type GroupCommitStats } from '../groupCommit.js';
import type { PgDatabase } from './database.js';

export const SERVER_FREED_CHANNEL = 'iperf3_server_freed';

type LockOp = { op: 'lock' | 'unlock'; key: string };

/**
 * Every lock and unlock of this collector goes through its one database session, one round trip
 * at a time. The operations queued while one is in flight are sent together as one statement, in
 * order (a group commit of lock operations: ../groupCommit.ts), so that at 100 servers the session
 * does not become the queue the servers wait in.
 */
export class PgServerLocks implements ServerLocks {
  private readonly listeners = new Set<(key: string | null) => void>();
  private listening: Promise<void> | null = null;
  private readonly ops = new GroupCommit<LockOp, boolean>(async (items) => {
    // one bigint key per server (hashtextextended): a keyspace apart from the store's own two-int keys;
    // an unlock announces the release (the notification is sent when the statement ends)
    const { rows } = await this.db.sessionQuery<{ ok: boolean }>(
      `SELECT CASE WHEN o.op = 'lock' THEN pg_try_advisory_lock(hashtextextended(o.key, 0))
              ELSE pg_advisory_unlock(hashtextextended(o.key, 0)) AND pg_notify($3, o.key)::text = '' END AS ok
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS o(op, key, n) ORDER BY o.n`,
      [items.map((i) => i.op), items.map((i) => i.key), SERVER_FREED_CHANNEL],
    );
    return rows.map((r) => ({ ok: true, value: r.ok }));
  });

  constructor(private readonly db: PgDatabase) {}

  /** Lock operations and the statements that carried them so far. */
  get stats(): GroupCommitStats {
    return this.ops.stats;
  }

  tryLock(key: string): Promise<boolean> {
    return this.ops.submit({ op: 'lock', key });
  }

  async unlock(key: string): Promise<void> {
    await this.ops.submit({ op: 'unlock', key });
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
