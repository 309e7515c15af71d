import type { SeriesPoint } from '../../contract/api.js';

/**
 * Reduces time-sorted points to at most `maxPoints` by averaging over equal time buckets.
 *
 * The range [fromMs, toMs] is cut into `maxPoints` buckets of equal width; every bucket
 * holding points becomes one point whose time is that of its first (earliest) point, whose
 * value is the mean of its values, and which is failed (1) when any of its points is.
 * Keeping a real timestamp rather than the bucket start means a nightly series that is
 * only lightly reduced still lands on the times the tests ran.
 * Points are returned unchanged when there are no more than `maxPoints` of them.
 */
export function downsample(points: SeriesPoint[], fromMs: number, toMs: number, maxPoints: number): SeriesPoint[] {
  if (points.length <= maxPoints) return points;
  const width = (toMs - fromMs + 1) / maxPoints;
  const out: SeriesPoint[] = [];
  let bucket = -1;
  let time = 0;
  let sum = 0;
  let count = 0;
  let failed: 0 | 1 = 0;
  const flush = (): void => {
    if (count > 0) out.push([time, sum / count, failed]);
  };
  for (const [t, value, f] of points) {
    // Clamp so that points outside the range (callers filter them, but rounding may not) stay in the edge buckets.
    const b = Math.min(maxPoints - 1, Math.max(0, Math.floor((t - fromMs) / width)));
    if (b !== bucket) {
      flush();
      bucket = b;
      time = t;
      sum = 0;
      count = 0;
      failed = 0;
    }
    sum += value;
    count += 1;
    if (f === 1) failed = 1;
  }
  flush();
  return out;
}
