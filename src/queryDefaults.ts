/**
 * Defaults and normalisation of saved queries. Saved queries may predate a field (or come from
 * a provisioned dashboard written by hand); the editors work on the normalised form.
 */
import { isStoredMetric, type QueryMetricName } from '../contract/metrics.js';
import { ALL_DEVICES, DEFAULT_QUERY } from '../contract/query.js';
import { QUERY_TYPES, type QueryType } from '../contract/queryTypes.js';
import type { Iperf3DataQuery } from './types.js';
import packageJson from '../package.json' with { type: 'json' };

/** Stored in every query the editor writes, so that old queries can be migrated later. */
export const PLUGIN_VERSION: string = packageJson.version;

export function isQueryType(value: unknown): value is QueryType {
  return typeof value === 'string' && (QUERY_TYPES as readonly string[]).includes(value);
}

/** The query with a known type and its devices filled in: what the editors show. */
export function normalizeQuery(query: Iperf3DataQuery): Iperf3DataQuery & { devices: string[] } {
  const devices = Array.isArray(query.devices) && query.devices.length > 0 ? query.devices : [ALL_DEVICES];
  // Saved JSON reaches the editor unchecked: a query without a known type is read as the
  // default type, as the backend does.
  const queryType: unknown = query.queryType;
  if (!isQueryType(queryType)) return { ...withQueryType(query, DEFAULT_QUERY.queryType), devices };
  return { ...query, devices };
}

/**
 * The query as another type. Fields of the old type stay (switching back keeps them); derived
 * metrics are dropped for a time series, which cannot show them.
 */
export function withQueryType(query: Iperf3DataQuery, queryType: QueryType): Iperf3DataQuery {
  switch (queryType) {
    case 'timeseries': {
      const picked: QueryMetricName[] = ('metrics' in query && query.metrics) || [];
      const stored = picked.filter(isStoredMetric);
      return { ...query, queryType, metrics: stored.length > 0 ? stored : undefined };
    }
    case 'latest':
      return { ...query, queryType };
    case 'runs':
      return { ...query, queryType };
    case 'intervals':
      return { ...query, queryType };
  }
}
