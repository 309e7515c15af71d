import type { Direction, MetricName } from '../../../contract/metrics.js';
import { latestValue, seriesFromRows, type MetricRow } from '../rows.js';
import type { LatestValue, Series } from '../../../contract/api.js';
import type { LatestQuery, MetricStore, SeriesQuery } from '../store.js';
import type { SqliteDatabase } from './database.js';


export class SqliteMetrics implements MetricStore {
  constructor(private readonly sql: SqliteDatabase) {}

  async series(query: SeriesQuery): Promise<Series[]> {
    const { where, params } = metricFilter(query.devices, query.metrics, query.server, query.direction);
    where.push('time_ms BETWEEN ? AND ?');
    params.push(query.fromMs, query.toMs);
    // No ORDER BY: SQLite would sort every row in a temporary b-tree; grouping here and
    // sorting each (already nearly sorted) series is cheaper and keeps the covering index.
    const text = `SELECT device, name, direction, server, time_ms, value, failed FROM metrics WHERE ${where.join(' AND ')}`;
    return seriesFromRows(this.sql.stmt(text).raw().iterate(...params) as IterableIterator<MetricRow>, query);
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
    return (this.sql.stmt(text).raw().all(...params) as MetricRow[]).map(latestValue);
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
