import type { SelectableValue } from '@grafana/data';
import { EditorField } from '@grafana/plugin-ui';
import { InlineSwitch, RadioButtonGroup, Select } from '@grafana/ui';
import type { ServerInfo } from '../../../contract/api.js';
import type { Direction } from '../../../contract/metrics.js';
import type { QueryInputs } from '../../../contract/query.js';
import { Components } from '../../selectors.js';
import type { Loaded } from './queryTypeEditor.js';

/** The filters time-series and latest-value queries share. */
export type SeriesFilter = Pick<QueryInputs['timeseries'], 'direction' | 'server' | 'splitByServer'>;

const DIRECTION_OPTIONS: Array<SelectableValue<Direction | ''>> = [
  { label: 'Both', value: '' },
  { label: 'Upload', value: 'upload', description: 'device to server' },
  { label: 'Download', value: 'download', description: 'server to device (-R)' },
];

/** "Milan (192.0.2.10:5201)", or the key of a server without a label. */
export function serverOptions(servers: ServerInfo[], variables: string[]): Array<SelectableValue<string>> {
  return [
    ...variables.map((v) => ({ label: v, value: v, description: 'dashboard variable' })),
    ...servers.map((s) => ({ label: s.label ? `${s.label} (${s.key})` : s.key, value: s.key })),
  ];
}

interface Props {
  filter: SeriesFilter;
  servers: Loaded<ServerInfo[]>;
  variables: string[];
  onChange: (patch: SeriesFilter) => void;
}

export function SeriesFilters({ filter, servers, variables, onChange }: Props) {
  return (
    <>
      <EditorField label="Direction" optional>
        <RadioButtonGroup<Direction | ''>
          data-testid={Components.QueryEditor.direction}
          options={DIRECTION_OPTIONS}
          value={filter.direction ?? ''}
          onChange={(d) => onChange({ direction: d === '' ? undefined : d })}
        />
      </EditorField>
      <EditorField label="Server" htmlFor="iperf3-query-server" optional>
        <Select<string>
          inputId="iperf3-query-server"
          data-testid={Components.QueryEditor.server}
          aria-label="Server"
          options={serverOptions(servers.value ?? [], variables)}
          value={filter.server ?? null}
          isClearable
          allowCustomValue
          isLoading={servers.value === undefined && !servers.error}
          placeholder="All servers"
          width={30}
          onChange={(v) => onChange({ server: v?.value })}
        />
      </EditorField>
      <EditorField label="Split by server" htmlFor="iperf3-query-split-by-server">
        <InlineSwitch
          id="iperf3-query-split-by-server"
          data-testid={Components.QueryEditor.splitByServer}
          value={filter.splitByServer ?? false}
          onChange={(e) => onChange({ splitByServer: e.currentTarget.checked })}
        />
      </EditorField>
    </>
  );
}
