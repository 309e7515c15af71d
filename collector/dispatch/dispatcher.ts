/**
 * Queues device runs per server pool and runs them with a bounded number of workers per pool.
 * Workers are started on demand and end when their queue is empty (no polling loop). A pool
 * with N servers gets 2N workers: N run tests while N more connect over SSH, so that a server
 * freed by one device is taken at once by the next. The set of pending devices is the single
 * guard against two runs of one device: a device is never queued while it is queued or running.
 * One dispatcher serves the schedule, "run now" and the `run` command.
 */
import type { Trigger } from '../../contract/api.js';

export interface DispatchJob {
  device: string;
  /** named pool, or null for the default pool */
  pool: string | null;
  trigger: Trigger;
  roundId: number | null;
}

export interface DispatcherDeps<R> {
  /** runs one device; must not throw for device faults (they are stored as runs) */
  runDevice(job: DispatchJob): Promise<R>;
  /** how many servers a pool has right now */
  poolSize(pool: string | null): number;
  onQueueLength?(length: number): void;
  onError?(job: DispatchJob, err: unknown): void;
}

interface QueuedJob<R> {
  job: DispatchJob;
  /** undefined: the job did not run (dropped by stop, or its run threw) */
  done: (result?: R) => void;
}

export class AlreadyQueuedError extends Error {
  constructor(readonly devices: string[]) {
    super(`already queued or running: ${devices.join(', ')}`);
    this.name = 'AlreadyQueuedError';
  }
}

export class Dispatcher<R> {
  private readonly queues = new Map<string, QueuedJob<R>[]>();
  private readonly workers = new Map<string, number>();
  private readonly pending = new Set<string>();
  private readonly inflight = new Set<Promise<void>>();
  private stopped = false;

  constructor(private readonly deps: DispatcherDeps<R>) {}

  /** Devices queued or running. */
  isPending(device: string): boolean {
    return this.pending.has(device);
  }

  get queueLength(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  get running(): boolean {
    return this.pending.size > 0;
  }

  /**
   * Queues jobs and resolves, in the order of `jobs`, with their results once all of them have
   * run (undefined for a job dropped by `stop` or whose run threw). Manual runs go to the front,
   * so a "run now" does not wait for a whole night's round. Throws AlreadyQueuedError (and
   * queues nothing) when one of the devices is already queued or running.
   */
  enqueue(jobs: DispatchJob[], options: { front?: boolean } = {}): Promise<(R | undefined)[]> {
    const dupes = jobs.filter((j) => this.pending.has(j.device)).map((j) => j.device);
    if (dupes.length > 0) throw new AlreadyQueuedError(dupes);
    if (this.stopped) return Promise.resolve(jobs.map(() => undefined));
    const byPool = new Map<string, QueuedJob<R>[]>();
    const promises = jobs.map(
      (job) =>
        new Promise<R | undefined>((done) => {
          this.pending.add(job.device);
          const key = job.pool ?? '';
          // pushed, not copied: a round of 10,000 devices queued in one call stays O(n)
          const items = byPool.get(key);
          if (items) items.push({ job, done });
          else byPool.set(key, [{ job, done }]);
        }),
    );
    for (const [key, items] of byPool) {
      const queue = this.queues.get(key) ?? [];
      this.queues.set(key, queue);
      if (options.front) queue.unshift(...items);
      else queue.push(...items);
    }
    this.deps.onQueueLength?.(this.queueLength);
    for (const key of new Set(jobs.map((j) => j.pool ?? ''))) this.spawnWorkers(key);
    return Promise.all(promises);
  }

  private spawnWorkers(key: string): void {
    const queue = this.queues.get(key) as QueuedJob<R>[];
    const limit = Math.max(1, 2 * this.deps.poolSize(key === '' ? null : key));
    const active = this.workers.get(key) ?? 0;
    const spawn = Math.min(limit - active, queue.length);
    if (spawn <= 0) return;
    this.workers.set(key, active + spawn);
    for (let i = 0; i < spawn; i++) {
      const worker: Promise<void> = this.work(key).finally(() => this.inflight.delete(worker));
      this.inflight.add(worker);
    }
  }

  private async work(key: string): Promise<void> {
    const queue = this.queues.get(key) as QueuedJob<R>[];
    for (;;) {
      const next = this.stopped ? undefined : queue.shift();
      if (!next) break;
      this.deps.onQueueLength?.(this.queueLength);
      let result: R | undefined;
      try {
        result = await this.deps.runDevice(next.job);
      } catch (err) {
        this.deps.onError?.(next.job, err);
      } finally {
        this.pending.delete(next.job.device);
        next.done(result);
      }
    }
    this.workers.set(key, (this.workers.get(key) as number) - 1);
  }

  /** Stops taking queued jobs; running ones finish (each test has its own deadline). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const queue of this.queues.values()) {
      for (const q of queue.splice(0)) {
        this.pending.delete(q.job.device);
        q.done();
      }
    }
    this.deps.onQueueLength?.(0);
    await Promise.all(this.inflight);
  }
}
