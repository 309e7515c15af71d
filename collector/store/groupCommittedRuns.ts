/**
 * The hot path of both run stores, runs.start and runs.finish, group-committed (./groupCommit.ts):
 * each store writes a batch its own way (startBatch, finishBatch); the queues, the answers, the
 * drain and the counters are this one piece.
 */
import type { RunOutcome, RunStart } from '../model.js';
import { GroupCommit, type Settled } from './groupCommit.js';
import type { RunWriteStats } from './store.js';

export interface Finish {
  runId: number;
  outcome: RunOutcome;
}

export interface GroupCommitOptions {
  /** most writes per transaction (default 100; 1 = a transaction each) */
  maxBatch?: number;
  /** whether a failed transaction may be one member's fault (GroupCommit) */
  oneMembersFault?: (error: unknown) => boolean;
}

export abstract class GroupCommittedRuns {
  private readonly starts: GroupCommit<RunStart, number>;
  private readonly finishes: GroupCommit<Finish, void>;

  protected constructor({ maxBatch, oneMembersFault }: GroupCommitOptions = {}) {
    // the batch functions are called when a batch is flushed, after the subclass is built
    this.starts = new GroupCommit((items) => this.startBatch(items), maxBatch, oneMembersFault);
    this.finishes = new GroupCommit((items) => this.finishBatch(items), maxBatch, oneMembersFault);
  }

  /** Writes `items` in one transaction: one answer per item (its run id), in order. */
  protected abstract startBatch(items: RunStart[]): Promise<Settled<number>[]>;
  /** Writes `items` in one transaction: one answer per item, in order. */
  protected abstract finishBatch(items: Finish[]): Promise<Settled<void>[]>;

  /** Writes and transactions so far (the group commit's counters). */
  get writeStats(): RunWriteStats {
    return { starts: this.starts.stats, finishes: this.finishes.stats };
  }

  start(start: RunStart): Promise<number> {
    return this.starts.submit(start);
  }

  finish(runId: number, outcome: RunOutcome): Promise<void> {
    return this.finishes.submit({ runId, outcome });
  }

  /** Resolves once every start and finish submitted so far is committed or failed. */
  async drain(): Promise<void> {
    await this.starts.drain();
    await this.finishes.drain();
  }
}
