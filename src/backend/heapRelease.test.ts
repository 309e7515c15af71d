/**
 * Giving memory back after a large answer: when the collection runs (a clock, and a gc that
 * records its calls, stand in for V8's), and that exposeGc() is V8's own gc.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { exposeGc, HeapRelease, LARGE_ANSWER_BYTES, RELEASE_DELAY_MS, type GcFunction } from './heapRelease.js';

describe('HeapRelease', () => {
  let calls: Parameters<GcFunction>[0][];
  let released: number[];
  let release: HeapRelease;

  beforeEach(() => {
    vi.useFakeTimers();
    calls = [];
    released = [];
    release = new HeapRelease({ gc: (options) => calls.push(options), onRelease: (seconds) => released.push(seconds) });
  });
  afterEach(() => {
    release.cancel();
    vi.useRealTimers();
  });

  it('runs one memory-reducing full collection once the plugin has been quiet for a moment after a large answer', () => {
    release.started();
    release.answered(LARGE_ANSWER_BYTES);
    expect(release.pending).toBe(true);
    vi.advanceTimersByTime(RELEASE_DELAY_MS - 1);
    expect(calls).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(calls).toEqual([{ type: 'major', execution: 'sync', flavor: 'last-resort' }]);
    expect(released).toHaveLength(1);
    expect(released[0]).toBeGreaterThanOrEqual(0);
    expect(release.pending).toBe(false);
    vi.advanceTimersByTime(10 * RELEASE_DELAY_MS);
    expect(calls).toHaveLength(1);
  });

  it('never runs after small answers', () => {
    for (let i = 0; i < 5; i++) {
      release.started();
      release.answered(LARGE_ANSWER_BYTES - 1);
    }
    expect(release.pending).toBe(false);
    vi.advanceTimersByTime(10 * RELEASE_DELAY_MS);
    expect(calls).toEqual([]);
  });

  it('waits while a query is in flight, and large answers in a row share one collection', () => {
    release.started();
    release.started();
    release.answered(LARGE_ANSWER_BYTES);
    vi.advanceTimersByTime(3 * RELEASE_DELAY_MS);
    // the second query is still being answered: no pause in the middle of it
    expect(calls).toEqual([]);
    release.answered(0);
    release.started();
    release.answered(2 * LARGE_ANSWER_BYTES);
    vi.advanceTimersByTime(RELEASE_DELAY_MS - 1);
    expect(calls).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(calls).toHaveLength(1);
  });

  it('drops a waiting collection when cancelled (the server stops)', () => {
    release.started();
    release.answered(LARGE_ANSWER_BYTES);
    release.cancel();
    expect(release.pending).toBe(false);
    vi.advanceTimersByTime(10 * RELEASE_DELAY_MS);
    expect(calls).toEqual([]);
  });

  it('takes its threshold and quiet time from the options', () => {
    const small = new HeapRelease({ thresholdBytes: 10, delayMs: 5, gc: (options) => calls.push(options) });
    small.started();
    small.answered(10);
    vi.advanceTimersByTime(5);
    expect(calls).toHaveLength(1);
  });
});

describe('exposeGc', () => {
  it("is V8's own gc: an object nothing refers to is collected by the plugin's collection", async () => {
    const gc = exposeGc();
    expect(exposeGc()).toBe(gc);
    let finalized = false;
    const registry = new FinalizationRegistry(() => (finalized = true));
    ((): void => registry.register({ payload: new Array(1000).fill(1) }, 'payload'))();
    // nothing collects it on its own in this short a time: no allocation pressure here
    await new Promise((resolve) => setTimeout(resolve, 0));
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    // finalizers run in a later task
    await vi.waitFor(() => expect(finalized).toBe(true));
  });

  it('is what a HeapRelease without a gc of its own runs', async () => {
    const released: number[] = [];
    const release = new HeapRelease({ thresholdBytes: 1, delayMs: 1, onRelease: (seconds) => released.push(seconds) });
    release.started();
    release.answered(1);
    await vi.waitFor(() => expect(released).toHaveLength(1));
  });
});
