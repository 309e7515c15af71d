/**
 * Defaults and normalisation of saved queries. Saved queries may predate a field (or come from
 * a provisioned dashboard written by hand); the editors work on the normalised form.
 */
import { ALL_DEVICES, DEFAULT_QUERY, QUERY_TYPES, type QueryType } from '../contract/query.js';
import type { QueryMetricName } from '../contract/metrics.js';
import type { Iperf3DataQuery } from './types.js';
import packageJson from '../package.json' with { type: 'json' };

/** Stored in every query the editor writes, so that old queries can be migrated later. */
export const PLUGIN_VERSION: string = packageJson.version;

export function isQueryType(value: unknown): value is QueryType {
  return typeof value === 'string' && (QUERY_TYPES as readonly string[]).includes(value);
}

/** The query with every field the editor shows filled in. */
export interface NormalizedQuery {
  refId: string;
  queryType: QueryType;
  devices: string[];
  metrics: QueryMetricName[];
}

export function normalizeQuery(query: Iperf3DataQuery): Iperf3DataQuery & NormalizedQuery {
  const queryType = isQueryType(query.queryType) ? query.queryType : (DEFAULT_QUERY.queryType as QueryType);
  const metrics = 'metrics' in query && Array.isArray(query.metrics) ? query.metrics : (DEFAULT_QUERY as { metrics: QueryMetricName[] }).metrics;
  return {
    ...query,
    queryType,
    devices: Array.isArray(query.devices) && query.devices.length > 0 ? query.devices : [ALL_DEVICES],
    metrics,
  } as Iperf3DataQuery & NormalizedQuery;
}
