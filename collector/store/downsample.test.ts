/** Bucketing of long series (the store contract suite checks series and latest on both stores). */
import { describe, expect, it } from 'vitest';
import type { SeriesPoint } from '../../contract/api.js';
import { downsample } from './downsample.js';

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
