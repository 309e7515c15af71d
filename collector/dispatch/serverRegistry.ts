/**
 * Mutual exclusion per iperf3 server: one async-mutex per `host:port`, kept for the life of the
 * process so that a settings change (new pool lists) can never put two tests on one server.
 * `acquireFree` is work-conserving: it takes any free server of the caller's list, and when all
 * are taken it waits for the next release (an event, not a polling loop).
 * With `ServerLocks` (several collectors on PostgreSQL) a server must also be free across
 * collectors: a release by another collector arrives as an event too.
 *
 * A release in this process wakes one waiter: the longest-waiting caller whose list holds the
 * freed server, which tries that server first. Waking every waiter to rescan every server cost
 * O(waiters x servers) per release, a quarter of a core at 100 servers (docs/benchmarks.md).
 * With `ServerLocks` the same holds for a release in this process (its unlock is queued on the
 * database session before the woken waiter's lock attempt; if another collector takes the server
 * in between, the waiter waits again for the next release). A release by another collector
 * wakes every waiter, because a server free there may be held here, and the reverse.
 */
import { Mutex } from 'async-mutex';
import { serverKey, type ServerAddress } from '../model.js';
import type { ServerLocks } from '../store/store.js';

export interface ServerLease {
  key: string;
  server: ServerAddress;
  /** idempotent */
  release(): void;
}

export interface ServerUsageListener {
  /** `seconds`: on release, how long this lease held the server; 0 on take */
  serverUsage(key: string, busy: boolean, seconds: number): void;
}

interface ServerState {
  mutex: Mutex;
  busySinceMs: number | null;
  busyMs: number;
}

interface Waiter {
  /** keys of the servers this caller can take */
  keys: ReadonlySet<string>;
  /** `freed`: the server released for this waiter to try first */
  wake(freed?: string): void;
}

export class NoServerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoServerError';
  }
}

/** Thrown to callers waiting for a server when the registry stops. */
export class RegistryStoppedError extends Error {
  constructor() {
    super('the collector is stopping: no more servers are handed out');
    this.name = 'RegistryStoppedError';
  }
}

export class ServerRegistry {
  private readonly states = new Map<string, ServerState>();
  /** in arrival order (a Set keeps insertion order and deletes in O(1)) */
  private readonly waiters = new Set<Waiter>();
  /**
   * Bumped on every release, here or by another collector: a scan awaits (a lock round trip per
   * candidate with locks), and a server freed behind it while no waiter was registered would
   * otherwise stay idle until the next release or the re-check.
   */
  private releases = 0;
  private subscribed: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly nowMs: () => number = Date.now,
    private readonly listener?: ServerUsageListener,
    private readonly locks?: ServerLocks,
    /** with locks: a waiter looks again after this long, because a collector that dies releases its servers without a NOTIFY */
    private readonly recheckMs = 5000,
  ) {}

  private wakeAll(): void {
    const waiting = [...this.waiters];
    this.waiters.clear();
    for (const w of waiting) w.wake();
  }

  /** A release in this process: the first waiter that can take `key`. */
  private wakeOneFor(key: string): void {
    for (const w of this.waiters) {
      if (!w.keys.has(key)) continue;
      this.waiters.delete(w);
      w.wake(key);
      return;
    }
  }

  private state(key: string): ServerState {
    let s = this.states.get(key);
    if (!s) {
      s = { mutex: new Mutex(), busySinceMs: null, busyMs: 0 };
      this.states.set(key, s);
    }
    return s;
  }

  isBusy(key: string): boolean {
    return this.states.get(key)?.mutex.isLocked() ?? false;
  }

  /** Seconds the server has spent running tests, including a test in progress. */
  busySeconds(key: string): number {
    const s = this.states.get(key);
    if (!s) return 0;
    const running = s.busySinceMs === null ? 0 : this.nowMs() - s.busySinceMs;
    return (s.busyMs + running) / 1000;
  }

  /**
   * Takes a free server among `servers` (list order breaks ties), skipping `exclude`d keys.
   * Throws NoServerError when every candidate is excluded (nothing could ever be handed out).
   */
  async acquireFree(servers: readonly ServerAddress[], exclude: ReadonlySet<string> = new Set()): Promise<ServerLease> {
    const candidates: { key: string; server: ServerAddress }[] = [];
    for (const server of servers) {
      const key = serverKey(server);
      if (!exclude.has(key)) candidates.push({ key, server });
    }
    if (candidates.length === 0) {
      throw new NoServerError(
        servers.length === 0 ? 'no iperf3 server is configured for this device' : 'every iperf3 server of this pool is excluded',
      );
    }
    if (this.locks) {
      this.subscribed ??= this.locks.onFreed(() => {
        this.releases++;
        this.wakeAll();
      });
      await this.subscribed;
    }
    const keys = new Set(candidates.map((c) => c.key));
    let freed: string | undefined;
    for (;;) {
      if (this.stopped) throw new RegistryStoppedError();
      const seen = this.releases;
      // the server released for this waiter first: a newcomer may have taken it meanwhile
      const first = freed === undefined ? undefined : candidates.find((c) => c.key === freed);
      for (const c of first ? [first, ...candidates] : candidates) {
        const st = this.state(c.key);
        if (st.mutex.isLocked()) continue;
        const lease = await this.take(c.key, c.server, st);
        if (lease) return lease;
      }
      if (this.releases !== seen) continue;
      freed = await new Promise<string | undefined>((resolve) => {
        const waiter: Waiter = { keys, wake: resolve };
        this.waiters.add(waiter);
        if (this.locks) {
          setTimeout(() => {
            this.waiters.delete(waiter);
            resolve(undefined);
          }, this.recheckMs).unref();
        }
      });
    }
  }

  /**
   * Refuses every later acquisition and wakes the callers waiting for a server with
   * RegistryStoppedError: stopping never waits for a server, which another collector, or a
   * database that is away, may withhold for long. Leases already held are not touched.
   */
  stop(): void {
    this.stopped = true;
    this.wakeAll();
  }

  /** null: another collector holds the server (or the database cannot tell) */
  private async take(key: string, server: ServerAddress, st: ServerState): Promise<ServerLease | null> {
    // An unlocked async-mutex is taken synchronously by acquire(): no other caller can slip in.
    const unlock = await st.mutex.acquire();
    if (this.locks && !(await this.locks.tryLock(key).catch(() => false))) {
      // not free across collectors: local waiters could not have it either, so nobody is woken
      unlock();
      return null;
    }
    st.busySinceMs = this.nowMs();
    this.listener?.serverUsage(key, true, 0);
    let released = false;
    return {
      key,
      server,
      release: () => {
        if (released) return;
        released = true;
        const leaseMs = this.nowMs() - (st.busySinceMs as number);
        st.busyMs += leaseMs;
        st.busySinceMs = null;
        // queued on the same database session before any later tryLock of this process
        this.locks?.unlock(key).catch(() => {
          // the session is gone, and the database released the lock with it
        });
        unlock();
        this.listener?.serverUsage(key, false, leaseMs / 1000);
        this.releases++;
        this.wakeOneFor(key);
      },
    };
  }
}
