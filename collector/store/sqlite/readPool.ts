/**
 * Heavy SQLite reads (metric series and latest values) off the event loop: a small pool of
 * worker threads, each with its own read-only better-sqlite3 connection to the database file.
 * WAL lets them read while the store's own connection writes; a reader sees the last committed
 * state. The main thread only sends the SQL and its parameters and receives the rows (series
 * packed in one transferred buffer), so `/healthz`, the scheduler and SSH sessions keep running
 * while a long query scans.
 *
 * Bounded: at most `size` queries run at once, at most `maxQueued` wait; beyond that a read
 * fails at once with StoreBusyError (503) instead of piling up memory.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { StoreBusyError } from '../../errors.js';

export interface ReadPoolOptions {
  /** worker threads, each with one connection (default 2) */
  size?: number;
  /** reads waiting for a worker before new ones are refused (default 64) */
  maxQueued?: number;
  /** how long a reader waits for a lock (default 5000 ms; WAL readers rarely wait) */
  busyTimeoutMs?: number;
}

/**
 * A series read in two steps inside one read transaction (one snapshot): `count` answers rows of
 * (series key, point count) pairs, one or more pairs per row; `buckets` then runs with `params`,
 * the JSON list of the keys with at most `maxPoints` points (0 excluded), and `bucketParams`.
 */
export interface SeriesRead {
  count: string;
  buckets: string;
  /** the rows themselves (same columns as buckets, same params as count): read instead of buckets when no series needs reducing */
  plain: string;
  params: unknown[];
  maxPoints: number;
  bucketParams: unknown[];
}

interface Job {
  sql: string;
  params: unknown[];
  /** a series read (answered as MetricColumns) instead of `sql` */
  series?: SeriesRead;
  resolve(answer: unknown): void;
  reject(err: Error): void;
}

/**
 * Metric rows packed for the trip from the worker: the distinct (device, name, direction,
 * server) of the rows once, and per row four doubles (key index, time, value, failed) in one
 * transferred buffer: no per-row objects are built in the worker or cloned to the main thread.
 */
export interface MetricColumns {
  keys: [device: string, name: string, direction: string | null, server: string | null][];
  data: Float64Array;
}

interface Reader {
  worker: Worker;
  job: Job | null;
}

type Reply = { rows: unknown[][] } | { columns: MetricColumns } | { error: { message: string; code?: string } };

// Plain CommonJS evaluated in the worker (no TypeScript, no bundling step): opens the file
// read-only, caches prepared statements by their text and answers rows in array form.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
const statements = new Map();
function columns(stmt, params) {
  const index = new Map();
  const keys = [];
  let data = new Float64Array(4096);
  let n = 0;
  for (const [device, name, direction, server, time, value, failed] of stmt.iterate(...params)) {
    const key = device + '\0' + name + '\0' + (direction === null ? '\u0001' : direction) + '\0' + (server === null ? '\u0001' : server);
    let k = index.get(key);
    if (k === undefined) {
      k = keys.length;
      index.set(key, k);
      keys.push([device, name, direction, server]);
    }
    if (n + 4 > data.length) {
      const grown = new Float64Array(data.length * 2);
      grown.set(data);
      data = grown;
    }
    data[n++] = k;
    data[n++] = time;
    data[n++] = value;
    data[n++] = failed;
  }
  return { keys, data: data.slice(0, n) };
}
function prepared(sql) {
  let stmt = statements.get(sql);
  if (!stmt) {
    stmt = db.prepare(sql).raw();
    statements.set(sql, stmt);
  }
  return stmt;
}
const series = db.transaction((read) => {
  const whole = [];
  let reduce = false;
  for (const row of prepared(read.count).iterate(...read.params)) {
    for (let i = 0; i < row.length; i += 2) {
      if (row[i + 1] > read.maxPoints) reduce = true;
      else if (row[i + 1] > 0) whole.push(row[i]);
    }
  }
  // every series fits: its rows as they are, in index order, without grouping (no sort)
  if (!reduce) return columns(prepared(read.plain), read.params);
  return columns(prepared(read.buckets), [...read.params, JSON.stringify(whole), ...read.bucketParams]);
});
parentPort.on('message', ({ sql, params, series: read }) => {
  try {
    if (read) {
      const answer = series(read);
      parentPort.postMessage({ columns: answer }, [answer.data.buffer]);
    } else parentPort.postMessage({ rows: prepared(sql).all(...params) });
  } catch (err) {
    parentPort.postMessage({ error: { message: String(err && err.message), code: err && err.code } });
  }
});
`;

/** Where this process loads better-sqlite3 from (the worker loads the same copy). */
const DRIVER = createRequire(import.meta.url).resolve('better-sqlite3');

export class ReadPool {
  private readonly readers: Reader[] = [];
  private readonly queue: Job[] = [];
  private readonly size: number;
  private readonly maxQueued: number;
  private readonly busyTimeoutMs: number;
  private closed = false;

  constructor(
    private readonly path: string,
    opts: ReadPoolOptions = {},
  ) {
    this.size = Math.max(1, Math.trunc(opts.size ?? 2));
    this.maxQueued = Math.max(0, Math.trunc(opts.maxQueued ?? 64));
    this.busyTimeoutMs = Math.trunc(opts.busyTimeoutMs ?? 5000);
  }

  /** Rows of a SELECT in array form (better-sqlite3's raw mode), read in a worker thread. */
  all<Row extends unknown[]>(sql: string, params: unknown[]): Promise<Row[]> {
    return this.submit(sql, params) as Promise<Row[]>;
  }

  /** The bucketed points of a series query (SeriesRead), packed (MetricColumns). */
  series(read: SeriesRead): Promise<MetricColumns> {
    return this.submit('', [], read) as Promise<MetricColumns>;
  }

  private submit(sql: string, params: unknown[], series?: SeriesRead): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('the store is closed'));
    return new Promise<unknown>((resolve, reject) => {
      const job: Job = { sql, params, series, resolve, reject };
      const idle = this.readers.find((r) => r.job === null) ?? this.spawn();
      if (idle) return this.run(idle, job);
      if (this.queue.length >= this.maxQueued) {
        return reject(new StoreBusyError(`${this.size} metric queries are running and ${this.queue.length} are waiting`));
      }
      this.queue.push(job);
    });
  }

  /** Stops the workers; queued and running reads fail. */
  async close(): Promise<void> {
    this.closed = true;
    const closed = new Error('the store is closed');
    for (const job of this.queue.splice(0)) job.reject(closed);
    await Promise.all(
      this.readers.splice(0).map(({ worker, job }) => {
        job?.reject(closed);
        return worker.terminate();
      }),
    );
  }

  /** A new reader while the pool has room for one. */
  private spawn(): Reader | undefined {
    if (this.readers.length >= this.size) return undefined;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { path: this.path, driver: DRIVER, busyTimeoutMs: this.busyTimeoutMs },
    });
    const reader: Reader = { worker, job: null };
    worker.on('message', (reply: Reply) => {
      const job = reader.job as Job;
      reader.job = null;
      if ('rows' in reply) job.resolve(reply.rows);
      else if ('columns' in reply) job.resolve(reply.columns);
      else job.reject(Object.assign(new Error(reply.error.message), { code: reply.error.code }));
      this.next(reader);
    });
    // a worker that dies (cannot open the file, out of memory) fails its read and is replaced on demand
    worker.on('error', (err: unknown) => this.lost(reader, new Error(`cannot read the database ${this.path}: ${(err as Error | undefined)?.message ?? String(err)}`)));
    worker.on('exit', (code) => this.lost(reader, new Error(`the database reader stopped (exit code ${code})`)));
    this.readers.push(reader);
    return reader;
  }

  private run(reader: Reader, job: Job): void {
    reader.job = job;
    reader.worker.postMessage({ sql: job.sql, params: job.params, series: job.series });
  }

  private next(reader: Reader): void {
    const job = this.queue.shift();
    if (job) this.run(reader, job);
  }

  private lost(reader: Reader, err: Error): void {
    const i = this.readers.indexOf(reader);
    if (i < 0) return;
    this.readers.splice(i, 1);
    reader.job?.reject(err);
    reader.job = null;
    const job = this.queue.shift();
    if (job && !this.closed) {
      const replacement = this.spawn() as Reader;
      this.run(replacement, job);
    }
  }
}
