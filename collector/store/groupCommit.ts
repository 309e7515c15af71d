/**
 * Group commit for the store's hot path (runs.start, runs.finish): the writes that arrive in one
 * turn of the event loop, or while the previous batch is committing, go to the database in one
 * transaction. Each caller's promise settles only once that transaction has committed (or
 * failed): nothing is acknowledged before it is stored.
 *
 * One bad write does not fail the others of its batch: `commit` answers each member on its own
 * (a member it refuses, such as an unknown run, is an error for that member only), and when the
 * whole transaction fails for something a member may have caused, every member is committed
 * again alone, in order, so that the error reaches only the caller whose write caused it.
 */

export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Writes `items` in one transaction; one answer per item, in order. Throws when the transaction fails. */
export type CommitBatch<I, O> = (items: I[]) => Promise<Settled<O>[]>;

export interface GroupCommitStats {
  /** writes answered */
  writes: number;
  /** transactions committed or tried, retries of single members included */
  transactions: number;
  /** batches whose transaction failed and whose members were committed again one by one */
  retriedBatches: number;
}

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit<I, O> {
  private queue: Pending<I, O>[] = [];
  private scheduled = false;
  private inflight: Promise<void> | null = null;
  readonly stats: GroupCommitStats = { writes: 0, transactions: 0, retriedBatches: 0 };

  /**
   * `maxBatch`: most writes per transaction (a bound on its size and on the time it holds locks).
   * `oneMembersFault`: whether a failed transaction may be the fault of one member, so that
   * writing each alone gives the others their chance; false (the database is away, the
   * connection broke) answers every member with the error at once, rather than trying each
   * against a database that is not there (a connection timeout each) and, when a COMMIT's answer
   * was lost, writing again what may have been stored.
   */
  constructor(
    private readonly commit: CommitBatch<I, O>,
    private readonly maxBatch = 100,
    private readonly oneMembersFault: (error: unknown) => boolean = () => true,
  ) {}

  /** Queues one write; resolves with its result once its transaction has committed. */
  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once every write submitted so far is answered. */
  async drain(): Promise<void> {
    while (this.inflight || this.queue.length > 0 || this.scheduled) {
      if (this.inflight) await this.inflight;
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private schedule(): void {
    if (this.scheduled || this.inflight) return;
    this.scheduled = true;
    // the rest of this turn of the event loop is the window: writes made by the same timers and I/O join the batch
    setImmediate(() => {
      this.scheduled = false;
      this.inflight = this.flush().finally(() => {
        this.inflight = null;
        if (this.queue.length > 0) this.schedule();
      });
    });
  }

  private async flush(): Promise<void> {
    const batch = this.queue.splice(0, this.maxBatch);
    const results = await this.commitBatch(batch.map((p) => p.item));
    this.stats.writes += batch.length;
    batch.forEach((p, i) => {
      const r = results[i];
      if (r.ok) p.resolve(r.value);
      else p.reject(r.error);
    });
  }

  private async commitBatch(items: I[]): Promise<Settled<O>[]> {
    this.stats.transactions++;
    try {
      return await this.commit(items);
    } catch (error) {
      if (items.length === 1 || !this.oneMembersFault(error)) return items.map(() => ({ ok: false, error }));
      // the transaction failed as a whole: each member alone, so that only the bad one fails
      this.stats.retriedBatches++;
      const results: Settled<O>[] = [];
      for (const item of items) results.push((await this.commitBatch([item]))[0]);
      return results;
    }
  }
}

/** Runs `fn`, as a settled answer. */
export function settle<T>(fn: () => T): Settled<T> {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    return { ok: false, error };
  }
}
