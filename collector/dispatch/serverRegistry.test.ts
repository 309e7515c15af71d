import { describe, expect, it } from 'vitest';
import type { ServerLocks } from '../store/store.js';
import { NoServerError, RegistryStoppedError, ServerRegistry } from './serverRegistry.js';
import { serverKey } from '../model.js';

const A = { host: '10.0.0.1', port: 5201 };
const B = { host: '2001:db8::1', port: 5202 };

describe('ServerRegistry', () => {
  it('hands out each free server once and makes the next caller wait for a release', async () => {
    let now = 0;
    const events: string[] = [];
    const reg = new ServerRegistry(() => now, { serverUsage: (k, busy, s) => events.push(`${k} ${busy} ${s}`) });
    const l1 = await reg.acquireFree([A, B]);
    const l2 = await reg.acquireFree([A, B]);
    expect([l1.key, l2.key]).toEqual(['10.0.0.1:5201', '[2001:db8::1]:5202']);
    expect(reg.isBusy(l1.key) && reg.isBusy(l2.key)).toBe(true);

    let third: string | null = null;
    const waiting = reg.acquireFree([A, B]).then((l) => {
      third = l.key;
      return l;
    });
    await new Promise((r) => setImmediate(r));
    expect(third).toBeNull();
    now = 5000;
    l2.release();
    l2.release(); // idempotent
    const l3 = await waiting;
    expect(l3.key).toBe('[2001:db8::1]:5202');
    expect(reg.busySeconds(l2.key)).toBe(5);
    now = 7000;
    expect(reg.busySeconds(l1.key)).toBe(7); // a lease in progress counts
    expect(reg.busySeconds('unknown:1')).toBe(0);
    expect(reg.isBusy('unknown:1')).toBe(false);
    expect(events).toContain('[2001:db8::1]:5202 false 5');
    l1.release();
    l3.release();
  });

  it('stops: callers waiting for a server get RegistryStoppedError, later ones too, leases held stay valid', async () => {
    const reg = new ServerRegistry();
    const held = await reg.acquireFree([A]);
    const waiting = reg.acquireFree([A]);
    await new Promise((r) => setImmediate(r));
    reg.stop();
    await expect(waiting).rejects.toThrow(RegistryStoppedError);
    await expect(reg.acquireFree([B])).rejects.toThrow('the collector is stopping');
    expect(reg.isBusy(held.key)).toBe(true);
    held.release();
    expect(reg.isBusy(held.key)).toBe(false);
  });

  it('skips excluded servers and refuses when nothing can ever be handed out', async () => {
    const reg = new ServerRegistry();
    const l = await reg.acquireFree([A, B], new Set(['10.0.0.1:5201']));
    expect(l.key).toBe('[2001:db8::1]:5202');
    l.release();
    await expect(reg.acquireFree([A], new Set(['10.0.0.1:5201']))).rejects.toThrow(NoServerError);
    await expect(reg.acquireFree([])).rejects.toThrow(/no iperf3 server is configured/);
  });

  it('never lets two holders share one server under contention', async () => {
    const reg = new ServerRegistry();
    const holders = new Map<string, number>();
    let maxConcurrent = 0;
    let active = 0;
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        const lease = await reg.acquireFree([A, B]);
        holders.set(lease.key, (holders.get(lease.key) ?? 0) + 1);
        expect(holders.get(lease.key)).toBe(1);
        active++;
        maxConcurrent = Math.max(maxConcurrent, active);
        await new Promise((r) => setTimeout(r, 1));
        active--;
        holders.set(lease.key, (holders.get(lease.key) as number) - 1);
        lease.release();
      }),
    );
    expect(maxConcurrent).toBe(2);
  });

  it('a release wakes a waiter that can take the freed server, not one that waits for another', async () => {
    const reg = new ServerRegistry();
    const a = await reg.acquireFree([A]);
    const b = await reg.acquireFree([B]);
    const onlyA = reg.acquireFree([A]); // waits first, cannot use B
    await new Promise((r) => setImmediate(r));
    const onlyB = reg.acquireFree([B]);
    await new Promise((r) => setImmediate(r));
    b.release();
    const got = await Promise.race([onlyB, new Promise<null>((r) => setTimeout(() => r(null), 200))]);
    expect(got?.key).toBe('[2001:db8::1]:5202');
    a.release();
    const l = await onlyA;
    expect(l.key).toBe('10.0.0.1:5201');
    l.release();
    got?.release();
  });

  it('two servers freed back to back go to the two waiters: the first woken takes the server freed for it, not its list\'s first', async () => {
    const reg = new ServerRegistry();
    const a = await reg.acquireFree([A]);
    const b = await reg.acquireFree([B]);
    const first = reg.acquireFree([B, A]); // prefers B, can take A
    await new Promise((r) => setImmediate(r));
    const second = reg.acquireFree([B]); // only B
    await new Promise((r) => setImmediate(r));
    a.release(); // wakes the first waiter, for A
    b.release(); // the first is already woken: wakes the second, for B
    const both = await Promise.race([
      Promise.all([first, second]),
      new Promise<null>((r) => setTimeout(() => r(null), 200)),
    ]);
    expect(both?.map((l) => l.key)).toEqual(['10.0.0.1:5201', '[2001:db8::1]:5202']);
    for (const l of both ?? []) l.release();
  });

  it('with cross-collector locks: skips a server another collector holds, waits for its release, and survives a database fault', async () => {
    // fault injection: the database answers "held elsewhere", then fails, then grants
    const answers: (boolean | Error)[] = [false, new Error('connection lost'), true];
    let freed: ((key: string | null) => void) | undefined;
    const unlocked: string[] = [];
    const locks: ServerLocks = {
      tryLock: async () => {
        const next = answers.shift() as boolean | Error;
        if (next instanceof Error) throw next;
        return next;
      },
      unlock: async (key) => {
        unlocked.push(key);
        throw new Error('session gone');
      },
      onFreed: async (listener) => {
        freed = listener;
      },
    };
    const reg = new ServerRegistry(Date.now, undefined, locks, 60_000);
    let got: string | null = null;
    const waiting = reg.acquireFree([A]).then((l) => {
      got = l.key;
      return l;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toBeNull();
    expect(reg.isBusy('10.0.0.1:5201')).toBe(false);
    freed!('10.0.0.1:5201'); // a release elsewhere: the retry meets the database fault and waits again
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toBeNull();
    freed!(null); // the session came back
    const lease = await waiting;
    expect(lease.key).toBe('10.0.0.1:5201');
    lease.release();
    await new Promise((r) => setTimeout(r, 0));
    expect(unlocked).toEqual(['10.0.0.1:5201']);
  });

  it('with cross-collector locks: a waiter looks again after recheckMs when a server is freed without a NOTIFY (a collector died)', async () => {
    const answers = [false, true]; // held by a collector that then dies: its lock goes with its session, no NOTIFY
    const locks: ServerLocks = {
      tryLock: async () => answers.shift() as boolean,
      unlock: async () => undefined,
      onFreed: async () => undefined,
    };
    const reg = new ServerRegistry(Date.now, undefined, locks, 30);
    const lease = await Promise.race([reg.acquireFree([A]), new Promise<null>((r) => setTimeout(() => r(null), 1000))]);
    expect(lease?.key).toBe('10.0.0.1:5201');
    expect(answers).toEqual([]);
    lease?.release();
  });
  it('with cross-collector locks: a server this collector frees while a waiter is still scanning (a lock round trip in flight) goes to that waiter', async () => {
    // the waiter's scan: A is held here (skipped), B's lock answer takes 50 ms and is "held
    // elsewhere"; A is released during that round trip, before the waiter has gone to sleep
    let answerB!: (held: boolean) => void;
    const locks: ServerLocks = {
      tryLock: (key) => (key === serverKey(B) ? new Promise<boolean>((resolve) => (answerB = resolve)) : Promise.resolve(true)),
      unlock: async () => undefined,
      onFreed: async () => undefined,
    };
    // no NOTIFY of its own release reaches a collector, and the backstop re-check is an hour away
    const reg = new ServerRegistry(Date.now, undefined, locks, 3_600_000);
    const holding = await reg.acquireFree([A]);
    const waiting = reg.acquireFree([A, B]);
    while (!answerB) await new Promise((r) => setImmediate(r));
    holding.release();
    answerB(false);
    const lease = await Promise.race([waiting, new Promise<null>((r) => setTimeout(() => r(null), 2000))]);
    expect(lease?.key).toBe(serverKey(A));
    lease?.release();
  });
});
