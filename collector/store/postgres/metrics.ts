import type { Direction, MetricName } from '../../../contract/metrics.js';
import { latestValue, seriesFromRows, type MetricRow } from '../rows.js';
import type { LatestValue, Series } from '../../../contract/api.js';
import type { LatestQuery, MetricStore, SeriesQuery } from '../store.js';
import type { PgDatabase } from './database.js';


export class PgMetrics implements MetricStore {
  constructor(private readonly db: PgDatabase) {}

  async series(query: SeriesQuery): Promise<Series[]> {
    const { where, params } = metricFilter(query.devices, query.metrics, query.server, query.direction);
    params.push(query.fromMs, query.toMs);
    where.push(`time_ms BETWEEN $${params.length - 1} AND $${params.length}`);
    // Sorted by the index's own order (name, device, time): each series arrives in time order.
    const { rows } = await this.db.pool.query<MetricRow>({
      text: `SELECT device, name, direction, server, time_ms, value, failed FROM metrics WHERE ${where.join(' AND ')} ORDER BY name, device, time_ms`,
      values: params,
      rowMode: 'array',
    });
    return seriesFromRows(rows, query);
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
