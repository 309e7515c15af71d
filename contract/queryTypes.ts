/** The data source's query types, with the labels the query editor shows. */
export const QUERY_TYPES = ['timeseries', 'latest', 'runs', 'intervals'] as const;
export type QueryType = (typeof QUERY_TYPES)[number];

export const QUERY_TYPE_LABELS: Record<QueryType, { label: string; description: string; alerting: boolean }> = {
  timeseries: { label: 'Time series', description: 'Metric values over time, one series per device', alerting: true },
  latest: { label: 'Latest value', description: 'The newest value per device (numeric)', alerting: true },
  runs: { label: 'Run log', description: 'Every attempt with status and error (table)', alerting: false },
  intervals: { label: 'Intervals', description: 'Per-second throughput within one run', alerting: false },
};
