import type { SelectableValue } from '@grafana/data';
import { MultiSelect } from '@grafana/ui';
import { metricsFor, type CatalogueEntry, type MetricGroup, type MetricQueryType, type QueryMetricName } from '../../../contract/metrics.js';
import { Components } from '../../selectors.js';

const GROUP_LABELS: Record<MetricGroup, string> = { tcp: 'TCP', udp: 'UDP (jitter, loss)', run: 'Run (result, duration)' };
/** Metrics the plugin backend computes (what the stale-data alert uses) get a group of their own. */
const DERIVED_LABEL = 'Derived';

const option = (m: CatalogueEntry): SelectableValue<QueryMetricName> => ({ label: m.displayName, value: m.name, description: `${m.name}: ${m.description}` });

/** The catalogue of contract/metrics.ts that a query type accepts, grouped as the picker shows it. */
export function metricOptions(queryType: MetricQueryType): Array<SelectableValue<QueryMetricName>> {
  const entries = metricsFor(queryType);
  const groups = (Object.keys(GROUP_LABELS) as MetricGroup[]).map((group) => ({
    label: GROUP_LABELS[group],
    options: entries.filter((m) => !m.derived && m.group === group).map(option),
  }));
  const derived = entries.filter((m) => m.derived).map(option);
  return derived.length > 0 ? [...groups, { label: DERIVED_LABEL, options: derived }] : groups;
}

interface Props<N extends QueryMetricName> {
  queryType: MetricQueryType;
  value: N[];
  onChange: (metrics: N[]) => void;
  /** keeps the picks this query type accepts (the options come from the same catalogue) */
  accepts: (name: QueryMetricName) => name is N;
}

export function MetricPicker<N extends QueryMetricName>({ queryType, value, onChange, accepts }: Props<N>) {
  return (
    <MultiSelect<QueryMetricName>
      inputId="iperf3-query-metrics"
      data-testid={Components.QueryEditor.metrics}
      aria-label="Metrics"
      options={metricOptions(queryType)}
      value={value}
      width={50}
      placeholder="Choose metrics"
      onChange={(selected) => onChange(selected.map((s) => s.value).filter((v): v is QueryMetricName => v !== undefined).filter(accepts))}
    />
  );
}
