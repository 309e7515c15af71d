import type { Direction, MetricName } from '../../../contract/metrics.js';
import type { LatestValue, Series, SeriesPoint } from '../../../contract/api.js';
import { downsample } from '../downsample.js';
import type { LatestQuery, MetricStore, SeriesQuery } from '../store.js';
import type { PgDatabase } from './database.js';

type MetricRow = [device: string, name: MetricName, direction: Direction | null, server: string | null, timeMs: number, value: number, failed: 0 | 1];

export class PgMetrics implements MetricStore {
  constructor(private readonly db: PgDatabase) {}

  async series(query: SeriesQuery): Promise<Series[]> {
    const { where, params } = metricFilter(query.devices, query.metrics, query.server, query.direction);
    params.push(query.fromMs, query.toMs);
    where.push(`time_ms BETWEEN $${params.length - 1} AND $${params.length}`);
    const split = query.splitByServer === true;
    // Sorted by the index's own order (name, device, time): each series arrives in time order.
    const { rows } = await this.db.pool.query<MetricRow>({
      text: `SELECT device, name, direction, server, time_ms, value, failed FROM metrics WHERE ${where.join(' AND ')} ORDER BY name, device, time_ms`,
      values: params,
      rowMode: 'array',
    });
    const byKey = new Map<string, Series>();
    for (const [device, name, direction, server, timeMs, value, failed] of rows) {
      const seriesServer = split ? server : null;
      const key = `${device}\u0000${name}\u0000${direction ?? ''}\u0000${seriesServer ?? ''}`;
      let s = byKey.get(key);
      if (!s) {
        s = { device, metric: name, server: seriesServer, direction, points: [] };
        byKey.set(key, s);
      }
      s.points.push([timeMs, value, failed] as SeriesPoint);
    }
    // Keys are unique and order like (device, metric, direction, server) with null first.
    const out = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, s]) => s);
    for (const s of out) s.points = downsample(s.points, query.fromMs, query.toMs, query.maxPoints);
    return out;
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
    return rows.map(([device, metric, direction, server, timeMs, value, failed]) => ({ device, metric, server, direction, timeMs, value, failed }));
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
