/**
 * The metrics the plugin offers: the collector's stored metrics (src/shared/metrics.ts) plus
 * metrics the backend derives. `last_success_age_s` feeds the "stale data" alert.
 */
import { METRICS, type MetricDefinition } from '../../contract/metrics.js';
import type { QueryType } from '../../contract/query.js';

export const LAST_SUCCESS_AGE = 'last_success_age_s';

export interface CatalogueEntry extends MetricDefinition {
  /** computed by the plugin backend, not stored by the collector */
  derived: boolean;
  /** the query types that accept this metric */
  queryTypes: QueryType[];
}

export const DERIVED_METRICS: CatalogueEntry[] = [
  {
    name: LAST_SUCCESS_AGE,
    group: 'run',
    unit: 's',
    displayName: 'Time since last successful run',
    description:
      'seconds since the end of the device\'s last run in which every test succeeded (result = 1); +Inf when it never succeeded',
    perDirection: false,
    zeroOnFailure: false,
    derived: true,
    queryTypes: ['latest'],
  },
];

export const METRICS_CATALOGUE: CatalogueEntry[] = [
  ...METRICS.map((m) => ({ ...m, derived: false, queryTypes: ['timeseries', 'latest'] as QueryType[] })),
  ...DERIVED_METRICS,
];

export function isDerivedMetric(name: unknown): boolean {
  return DERIVED_METRICS.some((m) => m.name === name);
}

export function catalogueEntry(name: string): CatalogueEntry | undefined {
  return METRICS_CATALOGUE.find((m) => m.name === name);
}
