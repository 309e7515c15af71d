import { EditorField, EditorRow } from '@grafana/plugin-ui';
import { isStoredMetric } from '../../../contract/metrics.js';
import { DEFAULT_METRICS } from '../../../contract/query.js';
import { MetricPicker } from './MetricPicker.js';
import type { QueryTypeEditorProps } from './queryTypeEditor.js';
import { SeriesFilters } from './SeriesFilters.js';

/** Stored metrics over time, one series per device (and direction, server). */
export function TimeSeriesQueryEditor({ query, onChange, servers, variables }: QueryTypeEditorProps<'timeseries'>) {
  return (
    <EditorRow>
      <EditorField label="Metrics" htmlFor="iperf3-query-metrics">
        <MetricPicker
          queryType="timeseries"
          value={query.metrics ?? DEFAULT_METRICS}
          accepts={isStoredMetric}
          onChange={(metrics) => onChange({ ...query, metrics })}
        />
      </EditorField>
      <SeriesFilters filter={query} servers={servers} variables={variables} onChange={(patch) => onChange({ ...query, ...patch })} />
    </EditorRow>
  );
}
