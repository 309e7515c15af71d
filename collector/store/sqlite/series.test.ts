import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SeriesPoint } from '../../../contract/api.js';
import { downsample } from '../downsample.js';
import { SqliteStore } from './sqliteStore.js';
import { failedOutcome, okOutcome, SERVER_A, SERVER_B } from '../../../tests/support/storeFixtures.js';

const DAY = 86_400_000;
const D0 = Date.parse('2025-02-01T02:00:00.000Z');
const D1 = D0 + DAY;
const D2 = D0 + 2 * DAY;
const END = D2 + 999;

let dir: string;
let store: SqliteStore;

/**
 * Device a: D0 ok on A (up 100, down 200), D1 failed on A (upload zero, failed), D2 ok on B (up 300, down 400).
 * Device b: D0 ok on B (up 10, down 20).
 */
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'store-series-'));
  store = SqliteStore.open(join(dir, 'c.db'));
  const run = async (device: string, startMs: number, finish: (id: number) => Promise<void>) =>
    finish(await store.runs.start({ device, trigger: 'schedule', roundId: null, startedAt: new Date(startMs) }));
  await run('a', D0, (id) => store.runs.finish(id, okOutcome(D0, 100, 200)));
  await run('a', D1, (id) => store.runs.finish(id, failedOutcome(D1)));
  await run('a', D2, (id) => store.runs.finish(id, okOutcome(D2, 300, 400, SERVER_B)));
  await run('b', D0, (id) => store.runs.finish(id, okOutcome(D0, 10, 20, SERVER_B)));
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('series', () => {
  it('gives one time-sorted series per device, metric and direction', async () => {
    expect(await store.metrics.series({ devices: ['a'], metrics: ['tcp_received_bps'], fromMs: D0, toMs: END, maxPoints: 1000 })).toEqual([
      { device: 'a', metric: 'tcp_received_bps', server: null, direction: 'download', points: [[D0, 200, 0], [D2, 400, 0]] },
      { device: 'a', metric: 'tcp_received_bps', server: null, direction: 'upload', points: [[D0, 100, 0], [D1, 0, 1], [D2, 300, 0]] },
    ]);
  });

  it('covers every device with "all", and orders series by device, metric, direction (null first)', async () => {
    const series = await store.metrics.series({ devices: 'all', metrics: ['result', 'tcp_sent_bps'], fromMs: D0, toMs: END, maxPoints: 1000 });
    expect(series.map((s) => [s.device, s.metric, s.direction, s.points.length])).toEqual([
      ['a', 'result', null, 3],
      ['a', 'tcp_sent_bps', 'download', 2],
      ['a', 'tcp_sent_bps', 'upload', 2],
      ['b', 'result', null, 1],
      ['b', 'tcp_sent_bps', 'download', 1],
      ['b', 'tcp_sent_bps', 'upload', 1],
    ]);
    expect(series[0].points).toEqual([[D0, 1, 0], [D1, 0, 1], [D2, 1, 0]]);
  });

  it('splits by server on request, and filters by server, direction and time', async () => {
    expect(
      await store.metrics.series({ devices: ['a'], metrics: ['tcp_received_bps'], direction: 'upload', splitByServer: true, fromMs: D0, toMs: END, maxPoints: 10 }),
    ).toEqual([
      { device: 'a', metric: 'tcp_received_bps', server: SERVER_A, direction: 'upload', points: [[D0, 100, 0], [D1, 0, 1]] },
      { device: 'a', metric: 'tcp_received_bps', server: SERVER_B, direction: 'upload', points: [[D2, 300, 0]] },
    ]);
    expect(
      await store.metrics.series({ devices: ['a', 'b'], metrics: ['tcp_received_bps'], server: SERVER_B, direction: 'download', fromMs: D0, toMs: END, maxPoints: 10 }),
    ).toEqual([
      { device: 'a', metric: 'tcp_received_bps', server: null, direction: 'download', points: [[D2, 400, 0]] },
      { device: 'b', metric: 'tcp_received_bps', server: null, direction: 'download', points: [[D0, 20, 0]] },
    ]);
    // per-run metrics have no direction and stay in when a direction is asked for
    expect(
      await store.metrics.series({ devices: ['a'], metrics: ['result', 'tcp_received_bps'], direction: 'download', fromMs: D1, toMs: D2, maxPoints: 10 }),
    ).toEqual([
      { device: 'a', metric: 'result', server: null, direction: null, points: [[D1, 0, 1], [D2, 1, 0]] },
      { device: 'a', metric: 'tcp_received_bps', server: null, direction: 'download', points: [[D2, 400, 0]] },
    ]);
    expect(await store.metrics.series({ devices: ['nobody'], metrics: ['result'], fromMs: D0, toMs: END, maxPoints: 10 })).toEqual([]);
  });

  it('averages over equal time buckets when a series has more than maxPoints points', async () => {
    // two buckets of (END - D0 + 1) / 2 = DAY + 500 ms: D0 and D1 share the first, D2 is alone in the second
    expect(
      await store.metrics.series({ devices: ['a'], metrics: ['tcp_received_bps'], direction: 'upload', fromMs: D0, toMs: END, maxPoints: 2 }),
    ).toEqual([{ device: 'a', metric: 'tcp_received_bps', server: null, direction: 'upload', points: [[D0, 50, 1], [D2, 300, 0]] }]);
    expect(
      (await store.metrics.series({ devices: ['a'], metrics: ['tcp_received_bps'], direction: 'upload', fromMs: D0, toMs: END, maxPoints: 1 }))[0].points,
    ).toEqual([[D0, 400 / 3, 1]]);
  });
});

describe('latest', () => {
  it('gives the newest point per device, metric and direction, with the server it was measured against', async () => {
    expect(await store.metrics.latest({ devices: ['a', 'b'], metrics: ['tcp_received_bps'] })).toEqual([
      { device: 'a', metric: 'tcp_received_bps', server: SERVER_B, direction: 'download', timeMs: D2, value: 400, failed: 0 },
      { device: 'a', metric: 'tcp_received_bps', server: SERVER_B, direction: 'upload', timeMs: D2, value: 300, failed: 0 },
      { device: 'b', metric: 'tcp_received_bps', server: SERVER_B, direction: 'download', timeMs: D0, value: 20, failed: 0 },
      { device: 'b', metric: 'tcp_received_bps', server: SERVER_B, direction: 'upload', timeMs: D0, value: 10, failed: 0 },
    ]);
  });

  it('looks back from a time, and filters by server and direction', async () => {
    expect(await store.metrics.latest({ devices: ['a'], metrics: ['tcp_received_bps'], beforeMs: D1 })).toEqual([
      { device: 'a', metric: 'tcp_received_bps', server: SERVER_A, direction: 'download', timeMs: D0, value: 200, failed: 0 },
      { device: 'a', metric: 'tcp_received_bps', server: SERVER_A, direction: 'upload', timeMs: D1, value: 0, failed: 1 },
    ]);
    expect(await store.metrics.latest({ devices: 'all', metrics: ['result', 'tcp_received_bps'], server: SERVER_A, direction: 'upload' })).toEqual([
      { device: 'a', metric: 'result', server: SERVER_A, direction: null, timeMs: D1, value: 0, failed: 1 },
      { device: 'a', metric: 'tcp_received_bps', server: SERVER_A, direction: 'upload', timeMs: D1, value: 0, failed: 1 },
    ]);
  });
});

describe('downsample', () => {
  const pts = (...p: [number, number, 0 | 1][]): SeriesPoint[] => p;

  it('returns the points unchanged when there are no more than maxPoints', () => {
    const points = pts([0, 1, 0], [5, 2, 1]);
    expect(downsample(points, 0, 9, 2)).toBe(points);
  });

  it('averages per bucket, keeps the first time of each bucket, and flags a bucket failed when any point is', () => {
    // range 0..9 in 2 buckets of 5 ms: [0,5) and [5,10)
    expect(downsample(pts([0, 1, 0], [4, 3, 1], [5, 10, 0], [9, 20, 0]), 0, 9, 2)).toEqual([
      [0, 2, 1],
      [5, 15, 0],
    ]);
  });

  it('leaves empty buckets out, and puts points outside the range into the edge buckets', () => {
    // 4 buckets of 25 ms over 0..99; nothing in [25, 75)
    expect(downsample(pts([-10, 1, 0], [10, 3, 0], [80, 5, 0], [99, 9, 0], [120, 7, 1]), 0, 99, 4)).toEqual([
      [-10, 2, 0],
      [80, 7, 1],
    ]);
  });
});
