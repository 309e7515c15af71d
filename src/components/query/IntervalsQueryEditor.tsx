import { EditorField, EditorRow } from '@grafana/plugin-ui';
import { Input } from '@grafana/ui';
import { Components } from '../../selectors.js';
import type { QueryTypeEditorProps } from './queryTypeEditor.js';

/** Per-second throughput of one run: a run id, or empty for the latest finished run. */
export function IntervalsQueryEditor({ query, onChange }: QueryTypeEditorProps<'intervals'>) {
  return (
    <EditorRow>
      <EditorField label="Run id" htmlFor="iperf3-query-run-id" tooltip="empty = the latest finished run of the first device" optional>
        <Input
          id="iperf3-query-run-id"
          data-testid={Components.QueryEditor.runId}
          type="number"
          min={1}
          width={14}
          placeholder="latest"
          defaultValue={query.runId === undefined ? '' : String(query.runId)}
          onBlur={(e) => onChange({ ...query, runId: e.currentTarget.value === '' ? undefined : Number(e.currentTarget.value) })}
        />
      </EditorField>
    </EditorRow>
  );
}
