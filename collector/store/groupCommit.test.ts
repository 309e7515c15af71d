/**
 * The batching of GroupCommit on its own (the store contract suite runs it on SQLite and a real
 * PostgreSQL): which writes share a transaction, and who is answered with what when one fails.
 */
import { describe, expect, it } from 'vitest';
import { GroupCommit, settle, type Settled } from './groupCommit.js';

/** A "database" that records each transaction's members and doubles them; odd members or whole batches can be refused. */
function recorder(opts: { failTransactionsWith?: (items: number[]) => boolean; slowMs?: number } = {}) {
  const transactions: number[][] = [];
  const commit = async (items: number[]): Promise<Settled<number>[]> => {
    transactions.push(items);
    if (opts.slowMs) await new Promise((r) => setTimeout(r, opts.slowMs));
    if (opts.failTransactionsWith?.(items)) throw new Error(`transaction of ${items.join(',')} failed`);
    return items.map((i) => settle(() => {
      if (i < 0) throw new Error(`member ${i} refused`);
      return i * 2;
    }));
  };
  return { transactions, commit };
}

describe('GroupCommit', () => {
  it('puts the writes of one turn of the event loop in one transaction and answers each with its own result', async () => {
    const db = recorder();
    const group = new GroupCommit(db.commit);
    expect(await Promise.all([1, 2, 3].map((i) => group.submit(i)))).toEqual([2, 4, 6]);
    expect(db.transactions).toEqual([[1, 2, 3]]);
    expect(group.stats).toEqual({ writes: 3, transactions: 1, retriedBatches: 0 });
  });

  it('collects the writes that arrive while a transaction commits into the next one', async () => {
    const db = recorder({ slowMs: 20 });
    const group = new GroupCommit(db.commit);
    const first = group.submit(1);
    await new Promise((r) => setImmediate(r));
    // the first transaction is in flight now
    const later = [group.submit(2), new Promise((r) => setTimeout(r, 5)).then(() => group.submit(3))];
    expect(await Promise.all([first, ...later])).toEqual([2, 4, 6]);
    expect(db.transactions).toEqual([[1], [2, 3]]);
  });

  it('splits a burst into transactions of at most maxBatch writes, in order', async () => {
    const db = recorder();
    const group = new GroupCommit(db.commit, 2);
    expect(await Promise.all([1, 2, 3, 4, 5].map((i) => group.submit(i)))).toEqual([2, 4, 6, 8, 10]);
    expect(db.transactions).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('fails only the member the transaction refuses', async () => {
    const db = recorder();
    const group = new GroupCommit(db.commit);
    const results = await Promise.allSettled([1, -2, 3].map((i) => group.submit(i)));
    expect(results).toEqual([
      { status: 'fulfilled', value: 2 },
      { status: 'rejected', reason: new Error('member -2 refused') },
      { status: 'fulfilled', value: 6 },
    ]);
    expect(db.transactions).toEqual([[1, -2, 3]]);
  });

  it('writes each member alone when the whole transaction fails, so the error reaches only its caller', async () => {
    // the transaction fails whenever it holds 7
    const db = recorder({ failTransactionsWith: (items) => items.includes(7) });
    const group = new GroupCommit(db.commit);
    const results = await Promise.allSettled([1, 7, 3].map((i) => group.submit(i)));
    expect(results).toEqual([
      { status: 'fulfilled', value: 2 },
      { status: 'rejected', reason: new Error('transaction of 7 failed') },
      { status: 'fulfilled', value: 6 },
    ]);
    expect(db.transactions).toEqual([[1, 7, 3], [1], [7], [3]]);
    expect(group.stats).toEqual({ writes: 3, transactions: 4, retriedBatches: 1 });
  });

  it('drains: resolves once every write submitted is answered', async () => {
    const db = recorder({ slowMs: 10 });
    const group = new GroupCommit(db.commit);
    await group.drain();
    const answered: number[] = [];
    for (const i of [1, 2]) void group.submit(i).then((v) => answered.push(v));
    await group.drain();
    expect(answered).toEqual([2, 4]);
  });
  it('answers every member with the error at once when the store says a failed transaction is not one member\'s fault (the database is away)', async () => {
    const db = recorder({ failTransactionsWith: () => true });
    const oneMembersFault = (error: unknown) => !(error instanceof Error && error.message.startsWith('transaction'));
    const group = new GroupCommit(db.commit, 100, oneMembersFault);
    const results = await Promise.allSettled([1, 2, 3].map((i) => group.submit(i)));
    expect(results.map((r) => (r as PromiseRejectedResult).reason.message)).toEqual(Array(3).fill('transaction of 1,2,3 failed'));
    // one transaction, no retry of each member alone
    expect(db.transactions).toEqual([[1, 2, 3]]);
    expect(group.stats).toEqual({ writes: 3, transactions: 1, retriedBatches: 0 });
  });
});
