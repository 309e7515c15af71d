import type { SelectableValue } from '@grafana/data';
import { EditorField, EditorRow } from '@grafana/plugin-ui';
import { Input, MultiSelect } from '@grafana/ui';
import { MAX_RUNS_PER_REQUEST, RUN_STATUSES, type RunStatus } from '../../../contract/api.js';
import { DEFAULT_RUNS_LIMIT } from '../../../contract/query.js';
import { Components } from '../../selectors.js';
import type { QueryTypeEditorProps } from './queryTypeEditor.js';

const STATUS_OPTIONS: Array<SelectableValue<RunStatus>> = RUN_STATUSES.map((s) => ({ label: s, value: s }));

/** The run log: a status filter and a row limit (empty = the default). */
export function RunsQueryEditor({ query, onChange }: QueryTypeEditorProps<'runs'>) {
  return (
    <EditorRow>
      <EditorField label="Status" htmlFor="iperf3-query-status" optional>
        <MultiSelect<RunStatus>
          inputId="iperf3-query-status"
          data-testid={Components.QueryEditor.status}
          aria-label="Status"
          options={STATUS_OPTIONS}
          value={query.status ?? []}
          placeholder="Any status"
          width={40}
          onChange={(selected) => onChange({ ...query, status: selected.map((s) => s.value).filter((s): s is RunStatus => s !== undefined) })}
        />
      </EditorField>
      <EditorField label="Limit" htmlFor="iperf3-query-limit">
        <Input
          id="iperf3-query-limit"
          data-testid={Components.QueryEditor.limit}
          type="number"
          min={1}
          max={MAX_RUNS_PER_REQUEST}
          width={12}
          placeholder={String(DEFAULT_RUNS_LIMIT)}
          defaultValue={query.limit === undefined ? '' : String(query.limit)}
          onBlur={(e) => onChange({ ...query, limit: e.currentTarget.value === '' ? undefined : Number(e.currentTarget.value) })}
        />
      </EditorField>
    </EditorRow>
  );
}
