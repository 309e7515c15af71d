import type { Direction, MetricName } from '../../../contract/metrics.js';
import { latestValue, type MetricRow } from '../rows.js';
import type { LatestValue, Series } from '../../../contract/api.js';
import { blockFromRows, blockToSeries, type SeriesBlock } from '../../../contract/seriesBlock.js';
import type { LatestQuery, MetricStore, SeriesQuery } from '../store.js';
import type { PgDatabase } from './database.js';


export class PgMetrics implements MetricStore {
  constructor(private readonly db: PgDatabase) {}

  async series(query: SeriesQuery): Promise<Series[]> {
    return blockToSeries(await this.seriesBlock(query));
  }

  async seriesBlock(query: SeriesQuery): Promise<SeriesBlock> {
    const { where, params } = metricFilter(query.devices, query.metrics, query.server, query.direction);
    params.push(query.fromMs, query.toMs, query.maxPoints);
    const [from, to, max] = [params.length - 2, params.length - 1, params.length].map((i) => `$${i}::bigint`);
    where.push(`time_ms BETWEEN ${from} AND ${to}`);
    // Bucketed in SQL as on SQLite (docs/api.md, "Downsampling"): one row per non-empty bucket
    // of a series with more than maxPoints points, every point of a smaller one; the rows
    // returned are the points answered, never the rows scanned.
    const series = query.splitByServer === true ? 'name, device, direction, server' : 'name, device, direction';
    const { rows } = await this.db.pool.query<MetricRow>({
      text: `WITH m AS (
          SELECT device, name, direction, server, time_ms, value, failed,
                 count(*) OVER s AS n, row_number() OVER s AS k
          FROM metrics WHERE ${where.join(' AND ')} WINDOW s AS (PARTITION BY ${series}))
        SELECT device, name, direction, ${query.splitByServer === true ? 'server' : 'NULL::text'}, min(time_ms), avg(value), max(failed) FROM m
        GROUP BY ${series}, CASE WHEN n <= ${max} THEN -k ELSE (time_ms - ${from}) * ${max} / (${to} - ${from} + 1) END`,
      values: params,
      rowMode: 'array',
    });
    return blockFromRows(rows);
  }

  async latest(query: LatestQuery): Promise<LatestValue[]> {
    const { where, params } = metricFilter(query.devices, query.metrics, query.server, query.direction);
    if (query.afterMs !== undefined) {
      params.push(query.afterMs);
      where.push(`time_ms >= $${params.length}`);
    }
    if (query.beforeMs !== undefined) {
      params.push(query.beforeMs);
      where.push(`time_ms <= $${params.length}`);
    }
    const { rows } = await this.db.pool.query<MetricRow>({
      text: `SELECT DISTINCT ON (device, name, direction) device, name, direction, server, time_ms, value, failed FROM metrics
             WHERE ${where.join(' AND ')}
             ORDER BY device, name, direction NULLS FIRST, time_ms DESC, id DESC`,
      values: params,
      rowMode: 'array',
    });
    return rows.map(latestValue);
  }
}

function metricFilter(
  devices: string[] | 'all',
  metrics: MetricName[],
  server: string | undefined,
  direction: Direction | undefined,
): { where: string[]; params: unknown[] } {
  const where = ['name = ANY($1::text[])'];
  const params: unknown[] = [metrics];
  if (devices !== 'all') {
    params.push(devices);
    where.push(`device = ANY($${params.length}::text[])`);
  }
  if (server !== undefined) {
    params.push(server);
    where.push(`server = $${params.length}`);
  }
  if (direction !== undefined) {
    params.push(direction);
    where.push(`(direction IS NULL OR direction = $${params.length})`);
  }
  return { where, params };
}
