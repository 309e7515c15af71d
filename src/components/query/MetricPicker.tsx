import type { SelectableValue } from '@grafana/data';
import { MultiSelect } from '@grafana/ui';
import { METRICS, type MetricGroup, type MetricName } from '../../../contract/metrics.js';
import { Components } from '../../selectors.js';

const GROUP_LABELS: Record<MetricGroup, string> = { tcp: 'TCP', udp: 'UDP (jitter, loss)', run: 'Run (result, duration)' };

/** The catalogue of src/shared/metrics.ts, grouped as the pickers show it. */
export const METRIC_OPTIONS: Array<SelectableValue<MetricName>> = (Object.keys(GROUP_LABELS) as MetricGroup[]).map((group) => ({
  label: GROUP_LABELS[group],
  options: METRICS.filter((m) => m.group === group).map((m) => ({ label: m.displayName, value: m.name, description: `${m.name}: ${m.description}` })),
}));

/**
 * Computed by the plugin backend for "latest" queries (src/backend/metricsCatalogue.ts): what
 * the stale-data alert uses.
 */
export const LAST_SUCCESS_AGE_OPTION: SelectableValue<MetricName> = {
  label: 'Time since last successful run',
  value: 'last_success_age_s' as MetricName,
  description: 'last_success_age_s: seconds since the last run in which every test succeeded (+Inf when none did)',
};

interface Props {
  value: MetricName[];
  onChange: (metrics: MetricName[]) => void;
  /** "latest" queries also offer the metrics the backend derives */
  latest?: boolean;
}

export function MetricPicker({ value, onChange, latest = false }: Props) {
  return (
    <MultiSelect<MetricName>
      inputId="iperf3-query-metrics"
      data-testid={Components.QueryEditor.metrics}
      aria-label="Metrics"
      options={latest ? [...METRIC_OPTIONS, { label: 'Derived', options: [LAST_SUCCESS_AGE_OPTION] }] : METRIC_OPTIONS}
      value={value}
      width={50}
      placeholder="Choose metrics"
      onChange={(selected) => onChange(selected.map((s) => s.value).filter((v): v is MetricName => v !== undefined))}
    />
  );
}
