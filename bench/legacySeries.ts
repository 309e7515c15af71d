/**
 * The series path as it was before bucketing moved into SQL (kept only to measure against it,
 * side by side, in bench/seriesLoad.ts): every matching row read on the event loop through the
 * store's own connection, grouped per series and averaged over equal time buckets in JavaScript.
 */
import type Database from 'better-sqlite3';
import type { Series, SeriesPoint } from '../contract/api.js';
import type { MetricRow } from '../collector/store/rows.js';
import type { SeriesQuery } from '../collector/store/store.js';

function downsample(points: SeriesPoint[], fromMs: number, toMs: number, maxPoints: number): SeriesPoint[] {
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

/** The old SqliteMetrics.series (all devices, no server or direction filter: what the bench asks). */
export function legacySeries(db: Database.Database, query: SeriesQuery): Series[] {
  const rows = db
    .prepare('SELECT device, name, direction, server, time_ms, value, failed FROM metrics WHERE name IN (SELECT value FROM json_each(?)) AND time_ms BETWEEN ? AND ?')
    .raw()
    .iterate(JSON.stringify(query.metrics), query.fromMs, query.toMs) as IterableIterator<MetricRow>;
  const byKey = new Map<string, Series>();
  for (const [device, name, direction, , timeMs, value, failed] of rows) {
    const key = `${device}\u0000${name}\u0000${direction ?? ''}\u0000`;
    let s = byKey.get(key);
    if (!s) {
      s = { device, metric: name, server: null, direction, points: [] };
      byKey.set(key, s);
    }
    s.points.push([timeMs, value, failed] as SeriesPoint);
  }
  const out = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, s]) => s);
  for (const s of out) s.points = downsample(s.points.sort((a, b) => a[0] - b[0]), query.fromMs, query.toMs, query.maxPoints);
  return out;
}
