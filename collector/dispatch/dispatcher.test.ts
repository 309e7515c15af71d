import { describe, expect, it } from 'vitest';
import { AlreadyQueuedError, Dispatcher, type DispatchJob } from './dispatcher.js';

const job = (device: string, pool: string | null = null): DispatchJob => ({ device, pool, trigger: 'schedule', roundId: 1 });

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('Dispatcher', () => {
  it('runs at most 2 x pool size devices at once and every device exactly once', async () => {
    let active = 0;
    let peak = 0;
    const ran: string[] = [];
    const lengths: number[] = [];
    const d = new Dispatcher({
      poolSize: (pool) => (pool === 'big' ? 3 : 1),
      onQueueLength: (n) => lengths.push(n),
      runDevice: async (j) => {
        active++;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 2));
        ran.push(j.device);
        active--;
      },
    });
    const devices = Array.from({ length: 20 }, (_, i) => job(`d${i}`, 'big'));
    const p = d.enqueue(devices);
    expect(d.running).toBe(true);
    expect(d.isPending('d5')).toBe(true);
    await p;
    expect(peak).toBe(6);
    expect(ran.sort()).toEqual(devices.map((x) => x.device).sort());
    expect(d.running).toBe(false);
    expect(lengths[0]).toBe(20);
    expect(lengths.at(-1)).toBe(0);
  });

  it('refuses a device that is already queued or running, queueing nothing', async () => {
    const gate = deferred();
    const d = new Dispatcher({ poolSize: () => 1, runDevice: () => gate.promise });
    const first = d.enqueue([job('a')]);
    expect(() => d.enqueue([job('b'), job('a')])).toThrow(AlreadyQueuedError);
    expect(d.isPending('b')).toBe(false);
    gate.resolve();
    await first;
  });

  it('puts manual runs in front of a queued round, in their own order', async () => {
    const order: string[] = [];
    const gate = deferred();
    const d = new Dispatcher({
      poolSize: () => 0, // no server: a single worker still drains the queue
      runDevice: async (j) => {
        if (j.device === 'r0') await gate.promise;
        order.push(j.device);
      },
    });
    const round = d.enqueue([job('r0'), job('r1'), job('r2')]);
    const manual = d.enqueue([{ ...job('m1'), trigger: 'manual' }, { ...job('m2'), trigger: 'manual' }], { front: true });
    expect(d.queueLength).toBe(4);
    gate.resolve();
    await Promise.all([round, manual]);
    expect(order).toEqual(['r0', 'm1', 'm2', 'r1', 'r2']);
  });

  it('reports a crashing run and goes on with the queue', async () => {
    const errors: string[] = [];
    const ran: string[] = [];
    const d = new Dispatcher({
      poolSize: () => 1,
      runDevice: async (j) => {
        if (j.device === 'bad') throw new Error('boom');
        ran.push(j.device);
      },
      onError: (j, err) => errors.push(`${j.device}: ${(err as Error).message}`),
    });
    await d.enqueue([job('bad'), job('good'), job('x', 'other')]);
    expect(errors).toEqual(['bad: boom']);
    expect(ran.sort()).toEqual(['good', 'x']);
  });

  it('stop drops queued devices, waits for running ones, and refuses new work', async () => {
    const gate = deferred();
    const ran: string[] = [];
    const d = new Dispatcher({
      poolSize: () => 0,
      runDevice: async (j) => {
        await gate.promise;
        ran.push(j.device);
      },
    });
    const all = d.enqueue([job('a'), job('b'), job('c')]);
    const stopped = d.stop();
    gate.resolve();
    await stopped;
    await all;
    expect(ran).toEqual(['a']);
    await d.enqueue([job('z')]);
    expect(ran).toEqual(['a']);
    expect(d.isPending('b')).toBe(false);
  });
});
