import type { Direction, MetricName } from '../../../contract/metrics.js';
import { latestValue, seriesFromRows, type MetricRow } from '../rows.js';
import type { LatestValue, Series } from '../../../contract/api.js';
import type { LatestQuery, MetricStore, SeriesQuery } from '../store.js';
import type { MetricColumns, ReadPool } from './readPool.js';


export class SqliteMetrics implements MetricStore {
  /** `reads` runs the SELECTs (a pool of worker threads: the scans never block the event loop). */
  constructor(private readonly reads: ReadPool) {}

  async series(query: SeriesQuery): Promise<Series[]> {
    const { where, params } = metricFilter(query.devices, query.metrics, query.server, query.direction);
    where.push('time_ms BETWEEN ? AND ?');
    params.push(query.fromMs, query.toMs);
    // Bucketed in SQL (docs/api.md, "Downsampling"): a series with more than maxPoints points
    // becomes one row per non-empty bucket, bucket = (time - from) * maxPoints / (to - from + 1)
    // in integer arithmetic; a smaller series keeps every point (grouped by its row number).
    // The window's partition is the series; only the points returned reach JavaScript.
    const series = query.splitByServer === true ? 'name, device, direction, server' : 'name, device, direction';
    const text = `WITH m AS (
        SELECT device, name, direction, server, time_ms, value, failed,
               count(*) OVER s AS n, row_number() OVER s AS k
        FROM metrics WHERE ${where.join(' AND ')} WINDOW s AS (PARTITION BY ${series}))
      SELECT device, name, direction, ${query.splitByServer === true ? 'server' : 'NULL'}, min(time_ms), avg(value), max(failed) FROM m
      GROUP BY ${series}, CASE WHEN n <= CAST(? AS INTEGER) THEN -k
        ELSE (time_ms - CAST(? AS INTEGER)) * CAST(? AS INTEGER) / (CAST(? AS INTEGER) - CAST(? AS INTEGER) + 1) END`;
    params.push(query.maxPoints, query.fromMs, query.maxPoints, query.toMs, query.fromMs);
    return seriesFromRows(metricRows(await this.reads.metricColumns(text, params)));
  }

  async latest(query: LatestQuery): Promise<LatestValue[]> {
    const { where, params } = metricFilter(query.devices, query.metrics, query.server, query.direction);
    if (query.afterMs !== undefined) {
      where.push('time_ms >= ?');
      params.push(query.afterMs);
    }
    if (query.beforeMs !== undefined) {
      where.push('time_ms <= ?');
      params.push(query.beforeMs);
    }
    // SQLite takes the bare columns of a max() aggregate from the row holding the maximum.
    const text = `SELECT device, name, direction, server, max(time_ms), value, failed FROM metrics
                  WHERE ${where.join(' AND ')} GROUP BY device, name, direction ORDER BY device, name, direction`;
    return (await this.reads.all<MetricRow>(text, params)).map(latestValue);
  }
}

/** The rows of packed metric columns, one at a time (only the series' points stay). */
function* metricRows({ keys, data }: MetricColumns): Generator<MetricRow> {
  for (let i = 0; i < data.length; i += 4) {
    const [device, name, direction, server] = keys[data[i]];
    yield [device, name as MetricName, direction as Direction | null, server, data[i + 1], data[i + 2], data[i + 3] as 0 | 1];
  }
}

function metricFilter(
  devices: string[] | 'all',
  metrics: MetricName[],
  server: string | undefined,
  direction: Direction | undefined,
): { where: string[]; params: unknown[] } {
  const where = ['name IN (SELECT value FROM json_each(?))'];
  const params: unknown[] = [JSON.stringify(metrics)];
  if (devices !== 'all') {
    where.push('device IN (SELECT value FROM json_each(?))');
    params.push(JSON.stringify(devices));
  }
  if (server !== undefined) {
    where.push('server = ?');
    params.push(server);
  }
  if (direction !== undefined) {
    where.push('(direction IS NULL OR direction = ?)');
    params.push(direction);
  }
  return { where, params };
}
