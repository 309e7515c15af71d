/**
 * The metric catalogue: one definition shared by the collector (what it stores), the plugin
 * backend (units, display names, derived metrics) and the frontend (grouped pickers).
 *
 * A stored metric point is (run, device, server, direction, name, value, time, failed).
 * `direction` is `upload` (device -> server) or `download` (server -> device, iperf3 `-R`)
 * for per-test metrics and null for per-run metrics such as `result`.
 */
import type { QueryType } from './queryTypes.js';

export const DIRECTIONS = ['upload', 'download'] as const;
export type Direction = (typeof DIRECTIONS)[number];

export type MetricGroup = 'tcp' | 'udp' | 'run';

export interface MetricDefinition {
  name: string;
  group: MetricGroup;
  /** Grafana unit id */
  unit: 'bps' | 'decbytes' | 'ms' | 'percent' | 'none' | 's';
  displayName: string;
  description: string;
  /** true when the metric is stored once per direction */
  perDirection: boolean;
  /** written as 0 for a failed test so alerts fire (flagged failed=1) */
  zeroOnFailure: boolean;
}

export const METRICS = [
  {
    name: 'tcp_received_bps',
    group: 'tcp',
    unit: 'bps',
    displayName: 'TCP throughput (received)',
    description: 'end.sum_received.bits_per_second: what really crossed the link',
    perDirection: true,
    zeroOnFailure: true,
  },
  {
    name: 'tcp_sent_bps',
    group: 'tcp',
    unit: 'bps',
    displayName: 'TCP throughput (sent)',
    description: 'end.sum_sent.bits_per_second',
    perDirection: true,
    zeroOnFailure: true,
  },
  {
    name: 'tcp_bytes',
    group: 'tcp',
    unit: 'decbytes',
    displayName: 'TCP bytes received',
    description: 'end.sum_received.bytes',
    perDirection: true,
    zeroOnFailure: false,
  },
  {
    name: 'tcp_retransmits',
    group: 'tcp',
    unit: 'none',
    displayName: 'TCP retransmits',
    description: 'end.sum_sent.retransmits (absent when the sender does not report it)',
    perDirection: true,
    zeroOnFailure: false,
  },
  {
    name: 'udp_bps',
    group: 'udp',
    unit: 'bps',
    displayName: 'UDP throughput',
    description: 'end.sum_received.bits_per_second (3.11+), else end.sum.bits_per_second',
    perDirection: true,
    zeroOnFailure: true,
  },
  {
    name: 'udp_jitter_ms',
    group: 'udp',
    unit: 'ms',
    displayName: 'UDP jitter',
    description: 'jitter_ms as seen by the receiver',
    perDirection: true,
    zeroOnFailure: false,
  },
  {
    name: 'udp_lost_packets',
    group: 'udp',
    unit: 'none',
    displayName: 'UDP lost packets',
    description: 'lost_packets as seen by the receiver',
    perDirection: true,
    zeroOnFailure: false,
  },
  {
    name: 'udp_packets',
    group: 'udp',
    unit: 'none',
    displayName: 'UDP packets',
    description: 'packets as seen by the receiver',
    perDirection: true,
    zeroOnFailure: false,
  },
  {
    name: 'udp_lost_percent',
    group: 'udp',
    unit: 'percent',
    displayName: 'UDP loss',
    description: 'lost_percent as seen by the receiver',
    perDirection: true,
    zeroOnFailure: false,
  },
  {
    name: 'result',
    group: 'run',
    unit: 'none',
    displayName: 'Test result',
    description: '1 when every test of the run succeeded, 0 otherwise (OpenWISP semantics)',
    perDirection: false,
    zeroOnFailure: true,
  },
  {
    name: 'duration_s',
    group: 'run',
    unit: 's',
    displayName: 'Run duration',
    description: 'wall time of the whole run (SSH connect to last test end)',
    perDirection: false,
    zeroOnFailure: false,
  },
] as const satisfies readonly MetricDefinition[];

/** A metric the collector stores. */
export type MetricName = (typeof METRICS)[number]['name'];
export const METRIC_NAMES: MetricName[] = METRICS.map((m) => m.name);

/** Metrics the plugin backend computes from the run history; the collector never stores them. */
export const DERIVED_METRICS = [
  {
    name: 'last_success_age_s',
    group: 'run',
    unit: 's',
    displayName: 'Time since last successful run',
    description:
      "seconds since the end of the device's last run in which every test succeeded (result = 1); +Inf when it never succeeded",
    perDirection: false,
    zeroOnFailure: false,
  },
] as const satisfies readonly MetricDefinition[];

export type DerivedMetricName = (typeof DERIVED_METRICS)[number]['name'];
export const DERIVED_METRIC_NAMES: DerivedMetricName[] = DERIVED_METRICS.map((m) => m.name);
/** Feeds the "stale data" alert rule. */
export const LAST_SUCCESS_AGE: DerivedMetricName = 'last_success_age_s';

/** Any metric a query can name: stored or derived. */
export type QueryMetricName = MetricName | DerivedMetricName;

/** The query types that read metrics. */
export type MetricQueryType = Extract<QueryType, 'timeseries' | 'latest'>;

export interface CatalogueEntry extends MetricDefinition {
  name: QueryMetricName;
  /** computed by the plugin backend, not stored by the collector */
  derived: boolean;
  /** the query types that accept this metric (derived metrics: latest only) */
  queryTypes: MetricQueryType[];
}

/** Every metric a query can name, derived ones included: the backend's `metrics` resource. */
export const METRIC_CATALOGUE: CatalogueEntry[] = [
  ...METRICS.map((m): CatalogueEntry => ({ ...m, derived: false, queryTypes: ['timeseries', 'latest'] })),
  ...DERIVED_METRICS.map((m): CatalogueEntry => ({ ...m, derived: true, queryTypes: ['latest'] })),
];

export function isDerivedMetric(name: string): name is DerivedMetricName {
  return (DERIVED_METRIC_NAMES as string[]).includes(name);
}

export function isStoredMetric(name: string): name is MetricName {
  return (METRIC_NAMES as string[]).includes(name);
}

export function isQueryMetric(name: string): name is QueryMetricName {
  return isStoredMetric(name) || isDerivedMetric(name);
}

export function catalogueEntry(name: string): CatalogueEntry | undefined {
  return METRIC_CATALOGUE.find((m) => m.name === name);
}

/** The metrics a query of this type accepts, in catalogue order. */
export function metricsFor(queryType: MetricQueryType): CatalogueEntry[] {
  return METRIC_CATALOGUE.filter((m) => m.queryTypes.includes(queryType));
}
