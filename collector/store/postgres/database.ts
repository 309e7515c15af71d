/**
 * The PostgreSQL connections shared by the store's parts: a pool (node-postgres) for queries and
 * transactions, and one long-lived session that identifies this collector to the others. Work the
 * database must release when the collector dies (run ownership, and later the server locks) is
 * tied to that session: PostgreSQL ends it, and with it everything it held, when the process dies
 * or its connection is lost.
 */
import pg from 'pg';
import type { SecretBox } from '../secretBox.js';
import { StoreUnavailableError } from '../store.js';
import { applyPgMigrations, PG_MIGRATIONS } from './migrations.js';

export interface PostgresOptions {
  /** the password (read from a file or the environment by the configuration); null: libpq rules (PGPASSWORD) */
  password?: string | null;
  /** the time written for `recorded_at`, `updated_at`, round and interruption times */
  clock?: () => Date;
  /** pool size (default 10) */
  maxConnections?: number;
  /** encrypts the secrets the store keeps (default: a key for this process only) */
  secrets?: SecretBox;
  /** how long to wait for a connection (default 10000 ms) */
  connectTimeoutMs?: number;
  /** first and longest wait between reconnections of the session (default 500 ms, 2000 ms: a database that is back is found within 2 s; an attempt costs one refused connection) */
  reconnectMs?: { first: number; max: number };
  /** most run starts (or finishes) written in one transaction by the group commit (default 100; 1 turns it off, for benchmarks) */
  maxWriteBatch?: number;
}

/** Advisory lock keys (two int4 halves): every collector session holds LIVENESS shared. */
export const LIVENESS_LOCK: readonly [number, number] = [0x69706633, 2];

const INT8_OID = 20;
// Epoch milliseconds and identities fit a double exactly; node-postgres returns int8 as text by default.
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/** This collector's database session, as stored on the runs it owns. */
export interface SessionIdentity {
  pid: number;
  since: Date;
}

export class PostgresUnavailableError extends StoreUnavailableError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PostgresUnavailableError';
  }
}

function withPassword(url: string, password: string | null | undefined): string {
  if (!password) return url;
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}

export class PgDatabase {
  private readonly clock: () => Date;
  private session: { client: pg.Client; identity: SessionIdentity } | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private reconnectDelay: number;
  private closed = false;
  private connecting = false;
  private lastAttemptMs = 0;
  private everConnected = false;
  private sessionQueue: Promise<unknown> = Promise.resolve();
  /**
   * channel -> listeners; a null payload means "the session reconnected, anything may have changed";
   * `own`: this collector's session sent it
   */
  private readonly channels = new Map<string, Set<(payload: string | null, own: boolean) => void>>();

  private constructor(
    readonly pool: pg.Pool,
    private readonly config: pg.ClientConfig,
    private readonly opts: PostgresOptions,
  ) {
    this.clock = opts.clock ?? (() => new Date());
    this.reconnectDelay = opts.reconnectMs?.first ?? 500;
  }

  /** Connects, migrates (under the migration lock) and opens this collector's session. */
  static async open(url: string, opts: PostgresOptions = {}): Promise<PgDatabase> {
    const config: pg.ClientConfig = {
      // node-postgres lets the URL's fields override separate ones, so the password joins the URL (in memory only)
      connectionString: withPassword(url, opts.password),
      types,
      application_name: 'iperf3-collector',
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
    };
    const pool = new pg.Pool({ ...config, max: opts.maxConnections ?? 10 });
    // An idle pooled connection that the server drops must not crash the process; the next query reconnects.
    pool.on('error', () => {});
    const db = new PgDatabase(pool, config, opts);
    try {
      const client = await pool.connect();
      try {
        await applyPgMigrations(client, PG_MIGRATIONS);
      } finally {
        client.release();
      }
      await db.connectSession();
    } catch (err) {
      await db.close();
      throw err;
    }
    return db;
  }

  private async connectSession(): Promise<void> {
    const client = new pg.Client(this.config);
    client.on('error', () => this.sessionLost(client));
    client.on('end', () => this.sessionLost(client));
    try {
      await client.connect();
      await client.query('SELECT pg_advisory_lock_shared($1, $2)', [...LIVENESS_LOCK]);
      const { rows } = await client.query<{ pid: number; since: Date }>(
        // milliseconds, as a JavaScript Date holds it and as runs store it
        "SELECT pid, date_trunc('milliseconds', backend_start) AS since FROM pg_stat_activity WHERE pid = pg_backend_pid()",
      );
      if (this.closed) throw new PostgresUnavailableError('the store closed while reconnecting');
      for (const channel of this.channels.keys()) await client.query(`LISTEN ${channel}`);
      client.on('notification', (n) => this.channels.get(n.channel)?.forEach((listener) => listener(n.payload ?? '', n.processId === rows[0].pid)));
      const reconnected = this.session === null && this.everConnected;
      this.session = { client, identity: rows[0] };
      this.everConnected = true;
      // notifications sent while the session was away are lost: tell listeners to look again
      if (reconnected) for (const listeners of this.channels.values()) listeners.forEach((listener) => listener(null, false));
      this.reconnectDelay = this.opts.reconnectMs?.first ?? 500;
    } catch (err) {
      client.removeAllListeners('end');
      await client.end().catch(() => {});
      throw err;
    }
  }

  private sessionLost(client: pg.Client): void {
    if (this.session?.client !== client) return;
    this.session = null;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(delay * 2, this.opts.reconnectMs?.max ?? 2000);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.attemptReconnect();
    }, delay);
    this.reconnectTimer.unref();
  }

  private attemptReconnect(): void {
    this.connecting = true;
    this.lastAttemptMs = Date.now();
    this.connectSession().then(
      () => (this.connecting = false),
      () => {
        this.connecting = false;
        this.scheduleReconnect();
      },
    );
  }

  /**
   * The session is needed while lost: try now instead of at the next backoff step, since the
   * database may be back (the backoff grows to `reconnectMs.max`, 2 s by default). At most one
   * attempt at a time, and at most one per `reconnectMs.first` (500 ms by default).
   */
  private lost(): PostgresUnavailableError {
    const spacing = this.opts.reconnectMs?.first ?? 500;
    if (!this.closed && !this.connecting && Date.now() - this.lastAttemptMs >= spacing) {
      if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
      this.attemptReconnect();
    }
    return new PostgresUnavailableError('the PostgreSQL session is lost; reconnecting');
  }

  /** The session this collector holds now; throws when it is lost (the database is unreachable). */
  identity(): SessionIdentity {
    if (!this.session) throw this.lost();
    return this.session.identity;
  }

  /** A query on this collector's session (session-level advisory locks live there). */
  sessionQuery<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    if (!this.session) return Promise.reject(this.lost());
    const client = this.session.client;
    // one query at a time on the session, in call order (an unlock is sent before a later lock)
    const run = this.sessionQueue.then(() => client.query<R>(text, values));
    this.sessionQueue = run.catch(() => {});
    return run;
  }

  /**
   * LISTENs on `channel` (a plain identifier) on the session, now and after every reconnection.
   * `own` is true for a notification this collector's session sent.
   */
  async listen(channel: string, listener: (payload: string | null, own: boolean) => void): Promise<void> {
    let listeners = this.channels.get(channel);
    if (!listeners) {
      listeners = new Set();
      this.channels.set(channel, listeners);
      await this.sessionQuery(`LISTEN ${channel}`);
    }
    listeners.add(listener);
  }

  get connected(): boolean {
    return this.session !== null;
  }

  now(): number {
    return this.clock().getTime();
  }

  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.pool.query<R>(text, values);
  }

  /** Runs `fn` in one transaction on one pooled connection; rolls back when it throws. */
  async tx<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: unknown;
    // a checked-out connection that the server ends emits 'error'; the query in flight fails with it anyway
    const ignore = (): void => {};
    client.on('error', ignore);
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: unknown) => (broken = rollbackErr));
      throw err;
    } finally {
      // a connection that could not roll back is destroyed rather than reused
      client.off('error', ignore);
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const session = this.session;
    this.session = null;
    if (session) {
      session.client.removeAllListeners('end');
      await session.client.end().catch(() => {});
    }
    await this.pool.end();
  }
}

export const iso = (ms: number): string => new Date(ms).toISOString();
