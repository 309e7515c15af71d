import { EditorField, EditorRow } from '@grafana/plugin-ui';
import { isQueryMetric } from '../../../contract/metrics.js';
import { DEFAULT_METRICS } from '../../../contract/query.js';
import { MetricPicker } from './MetricPicker.js';
import type { QueryTypeEditorProps } from './queryTypeEditor.js';
import { SeriesFilters } from './SeriesFilters.js';

/** The newest value per device: stored metrics, and the metrics the backend derives. */
export function LatestQueryEditor({ query, onChange, servers, variables }: QueryTypeEditorProps<'latest'>) {
  return (
    <EditorRow>
      <EditorField label="Metrics" htmlFor="iperf3-query-metrics">
        <MetricPicker
          queryType="latest"
          value={query.metrics ?? DEFAULT_METRICS}
          accepts={isQueryMetric}
          onChange={(metrics) => onChange({ ...query, metrics })}
        />
      </EditorField>
      <SeriesFilters filter={query} servers={servers} variables={variables} onChange={(patch) => onChange({ ...query, ...patch })} />
    </EditorRow>
  );
}
