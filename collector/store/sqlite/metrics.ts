import type { Direction, MetricName } from '../../../contract/metrics.js';
import { latestValue, type MetricRow } from '../rows.js';
import type { LatestValue, Series } from '../../../contract/api.js';
import { blockToSeries, type SeriesBlock } from '../../../contract/seriesBlock.js';
import type { LatestQuery, MetricStore, SeriesQuery } from '../store.js';
import type { ReadPool } from './readPool.js';


export class SqliteMetrics implements MetricStore {
  /** `reads` runs the SELECTs (a pool of worker threads: the scans never block the event loop). */
  constructor(private readonly reads: ReadPool) {}

  async series(query: SeriesQuery): Promise<Series[]> {
    return blockToSeries(await this.seriesBlock(query));
  }

  seriesBlock(query: SeriesQuery): Promise<SeriesBlock> {
    const { where, params } = metricFilter(query.devices, query.metrics, query.server, query.direction);
    where.push('time_ms BETWEEN ? AND ?');
    params.push(query.fromMs, query.toMs);
    // Bucketed in SQL (docs/api.md, "Downsampling"), in one read transaction of a worker:
    // 1. the rows as they are (`plain`, in the covering index's order: no sort), counted per
    //    series as they come; the answer when no series has more than maxPoints points (a year
    //    of nights at 1000 points). Else, from the first series that has more:
    // 2. the points of each series, counted (without a server split, in the index's own order:
    //    one pass, no sort); a series is keyed name NUL device NUL direction (NUL server);
    // 3. one row per point of the series with at most maxPoints points (grouped by rowid), and
    //    per non-empty bucket of the others, bucket = (time - from) * maxPoints / (to - from + 1)
    //    in integer arithmetic. Only the points answered reach JavaScript.
    const split = query.splitByServer === true;
    const filter = where.join(' AND ');
    const key = `name || char(0) || device || char(0) || ifnull(direction, '')${split ? " || char(0) || ifnull(server, '')" : ''}`;
    const count = split
      ? `SELECT ${key}, count(*) FROM metrics WHERE ${filter} GROUP BY name, device, direction, server`
      : `SELECT name || char(0) || device || char(0), sum(direction IS NULL),
                name || char(0) || device || char(0) || 'upload', sum(direction = 'upload'),
                name || char(0) || device || char(0) || 'download', sum(direction = 'download')
         FROM metrics WHERE ${filter} GROUP BY name, device`;
    const buckets = `SELECT device, name, direction, ${split ? 'server' : 'NULL'}, min(time_ms), avg(value), max(failed) FROM metrics
      WHERE ${filter}
      GROUP BY name, device, direction${split ? ', server' : ''},
        CASE WHEN ${key} IN (SELECT value FROM json_each(?)) THEN -rowid
        ELSE (time_ms - CAST(? AS INTEGER)) * CAST(? AS INTEGER) / (CAST(? AS INTEGER) - CAST(? AS INTEGER) + 1) END`;
    const plain = `SELECT device, name, direction, ${split ? 'server' : 'NULL'}, time_ms, value, failed FROM metrics WHERE ${filter}`;
    return this.reads.series({
      count,
      buckets,
      plain,
      params,
      maxPoints: query.maxPoints,
      bucketParams: [query.fromMs, query.maxPoints, query.toMs, query.fromMs],
    });
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
