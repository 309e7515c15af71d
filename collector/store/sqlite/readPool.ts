/**
 * Heavy SQLite reads (metric series and latest values) off the event loop: a small pool of
 * worker threads, each with its own read-only better-sqlite3 connection to the database file.
 * WAL lets them read while the store's own connection writes; a reader sees the last committed
 * state. The main thread only sends the SQL and its parameters and receives the rows (series
 * as columns in transferred buffers), so `/healthz`, the scheduler and SSH sessions keep running
 * while a long query scans.
 *
 * Bounded: at most `size` queries run at once, at most `maxQueued` wait; beyond that a read
 * fails at once with StoreBusyError (503) instead of piling up memory.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { StoreBusyError } from '../../errors.js';
import { packSeries, type SeriesBlock } from '../../../contract/seriesBlock.js';

export interface ReadPoolOptions {
  /** worker threads, each with one connection (default 2) */
  size?: number;
  /** reads waiting for a worker before new ones are refused (default 64) */
  maxQueued?: number;
  /** how long a reader waits for a lock (default 5000 ms; WAL readers rarely wait) */
  busyTimeoutMs?: number;
}

/**
 * A series read inside one read transaction (one snapshot): `plain` first, its rows counted
 * per series as they come; as soon as one series has more than `maxPoints`, that read stops and
 * `count` answers rows of (series key, point count) pairs, one or more pairs per row; `buckets`
 * then runs with `params`, the JSON list of the keys with at most `maxPoints` points (0
 * excluded), and `bucketParams`. The answer: a SeriesBlock, packed in the worker.
 */
export interface SeriesRead {
  count: string;
  buckets: string;
  /** the rows themselves (same columns as buckets, same params as count): the answer while no series needs reducing */
  plain: string;
  params: unknown[];
  maxPoints: number;
  bucketParams: unknown[];
}

interface Job {
  sql: string;
  params: unknown[];
  /** a series read (answered as a SeriesBlock) instead of `sql` */
  series?: SeriesRead;
  resolve(answer: unknown): void;
  reject(err: Error): void;
}

interface Reader {
  worker: Worker;
  job: Job | null;
}

type Reply = { rows: unknown[][] } | { block: SeriesBlock } | { error: { message: string; code?: string } };

// Plain CommonJS evaluated in the worker (no TypeScript, no bundling step): opens the file
// read-only, caches prepared statements by their text and answers rows in array form.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const packSeries = (${packSeries.toString()});
const db = new Database(workerData.path, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
const statements = new Map();
// Metric rows packed: the distinct (device, name, direction, server) once, four doubles per
// row (key index, time, value, failed). Null when a series gets more than maxPoints rows.
// Rows come in the covering index's order (name, device, time): the keys of the current
// device and name are looked up in a small map of their own, without building a string per row.
function columns(stmt, params, maxPoints) {
  const byDevice = new Map();
  const keys = [];
  const counts = [];
  let data = new Float64Array(4096);
  let n = 0;
  let lastDevice = null;
  let lastName = null;
  let own = null;
  for (const [device, name, direction, server, time, value, failed] of stmt.iterate(...params)) {
    if (device !== lastDevice || name !== lastName) {
      const id = device + '\\0' + name;
      own = byDevice.get(id);
      if (own === undefined) {
        own = new Map();
        byDevice.set(id, own);
      }
      lastDevice = device;
      lastName = name;
    }
    const sub = server === null ? direction : direction + '\\0' + server;
    let k = own.get(sub);
    if (k === undefined) {
      k = keys.length;
      own.set(sub, k);
      keys.push([device, name, direction, server]);
      counts.push(0);
    }
    if (++counts[k] > maxPoints) return null;
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
  return packSeries(keys, data.subarray(0, n));
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
  // the rows as they are, in index order, without grouping (no sort), while every series fits
  const plain = columns(prepared(read.plain), read.params, read.maxPoints);
  if (plain) return plain;
  // a series has more than maxPoints points: count them all, then bucket those that do not fit
  const whole = [];
  for (const row of prepared(read.count).iterate(...read.params)) {
    for (let i = 0; i < row.length; i += 2) {
      if (row[i + 1] > 0 && row[i + 1] <= read.maxPoints) whole.push(row[i]);
    }
  }
  return columns(prepared(read.buckets), [...read.params, JSON.stringify(whole), ...read.bucketParams], Infinity);
});
parentPort.on('message', ({ sql, params, series: read }) => {
  try {
    if (read) {
      const answer = series(read);
      parentPort.postMessage({ block: answer }, [answer.times.buffer, answer.values.buffer, answer.failed.buffer]);
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

  /** The bucketed points of a series query (SeriesRead), as a block of columns. */
  series(read: SeriesRead): Promise<SeriesBlock> {
    return this.submit('', [], read) as Promise<SeriesBlock>;
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
      else if ('block' in reply) job.resolve(reply.block);
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
