/**
 * The query editor: devices, query type, and the fields of that type. Every choice that is
 * final (a pick in a list, a toggle, leaving a number field) runs the query. In the alert
 * rule editor only what alerts can evaluate is offered: numeric query types, no dashboard
 * variables.
 */
import { CoreApp, type QueryEditorProps, type SelectableValue } from '@grafana/data';
import { EditorField, EditorRow, EditorRows } from '@grafana/plugin-ui';
import { Alert, InlineSwitch, Input, MultiSelect, RadioButtonGroup, Select } from '@grafana/ui';
import { useEffect, useState } from 'react';
import type { DeviceInfo, RunStatus, ServerInfo } from '../../contract/api.js';
import { MAX_RUNS_PER_REQUEST, RUN_STATUSES } from '../../contract/api.js';
import { isQueryMetric, isStoredMetric, type Direction } from '../../contract/metrics.js';
import { QUERY_TYPE_LABELS, QUERY_TYPES, type QueryType } from '../../contract/query.js';
import type { DataSource } from '../datasource.js';
import { normalizeQuery, PLUGIN_VERSION } from '../queryDefaults.js';
import { Components } from '../selectors.js';
import type { Iperf3DataQuery, Iperf3DataSourceOptions } from '../types.js';
import { DevicePicker } from './query/DevicePicker.js';
import { MetricPicker } from './query/MetricPicker.js';

export type Iperf3QueryEditorProps = QueryEditorProps<DataSource, Iperf3DataQuery, Iperf3DataSourceOptions>;

const DIRECTION_OPTIONS: Array<SelectableValue<Direction | ''>> = [
  { label: 'Both', value: '' },
  { label: 'Upload', value: 'upload', description: 'device to server' },
  { label: 'Download', value: 'download', description: 'server to device (-R)' },
];

const STATUS_OPTIONS: Array<SelectableValue<RunStatus>> = RUN_STATUSES.map((s) => ({ label: s, value: s }));

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String((e as { data?: { message?: string } })?.data?.message ?? e);
}

/** Loads a resource once per data source; undefined while loading. */
function useResource<T>(load: () => Promise<T>, deps: unknown[]): { value?: T; error?: string } {
  const [state, setState] = useState<{ value?: T; error?: string }>({});
  useEffect(() => {
    let current = true;
    load().then(
      (value) => current && setState({ value }),
      (e: unknown) => current && setState({ error: errorMessage(e) }),
    );
    return () => {
      current = false;
    };
  }, deps);
  return state;
}

export function QueryEditor({ query: stored, datasource, onChange, onRunQuery, app }: Iperf3QueryEditorProps) {
  const query = normalizeQuery(stored);
  const alerting = app === CoreApp.UnifiedAlerting;
  const devices = useResource<DeviceInfo[]>(() => datasource.getDevices(), [datasource]);
  const servers = useResource<ServerInfo[]>(() => datasource.getServers(), [datasource]);
  const variables = alerting ? [] : datasource.getVariableNames();

  const change = (patch: Partial<Iperf3DataQuery>) => onChange({ ...query, ...patch, pluginVersion: PLUGIN_VERSION } as Iperf3DataQuery);
  const changeAndRun = (patch: Partial<Iperf3DataQuery>) => {
    change(patch);
    onRunQuery();
  };

  const typeOptions: Array<SelectableValue<QueryType>> = QUERY_TYPES.filter((t) => !alerting || QUERY_TYPE_LABELS[t].alerting).map((t) => ({
    label: QUERY_TYPE_LABELS[t].label,
    value: t,
    description: QUERY_TYPE_LABELS[t].description,
  }));
  const withMetrics = query.queryType === 'timeseries' || query.queryType === 'latest';
  const server = 'server' in query ? query.server : undefined;
  const serverOptions: Array<SelectableValue<string>> = [
    ...variables.map((v) => ({ label: v, value: v, description: 'dashboard variable' })),
    ...(servers.value ?? []).map((s) => ({ label: s.label ? `${s.label} (${s.key})` : s.key, value: s.key })),
  ];

  return (
    <EditorRows>
      <EditorRow>
        <EditorField label="Query type">
          <RadioButtonGroup<QueryType>
            data-testid={Components.QueryEditor.queryType}
            options={typeOptions}
            value={query.queryType}
            onChange={(queryType) => changeAndRun({ queryType } as Partial<Iperf3DataQuery>)}
          />
        </EditorField>
        <EditorField label="Devices" htmlFor="iperf3-query-devices" tooltip="device ids from the collector inventory; * or All = every device">
          <DevicePicker
            value={query.devices}
            devices={devices.value}
            loadError={devices.error}
            variables={variables}
            onChange={(selected) => changeAndRun({ devices: selected })}
          />
        </EditorField>
      </EditorRow>
      {alerting && !QUERY_TYPE_LABELS[query.queryType].alerting && (
        <Alert severity="warning" title={`${QUERY_TYPE_LABELS[query.queryType].label} cannot be used in alert rules: choose Time series or Latest value.`} />
      )}
      {withMetrics && (
        <EditorRow>
          <EditorField label="Metrics" htmlFor="iperf3-query-metrics">
            <MetricPicker
              queryType={query.queryType === 'latest' ? 'latest' : 'timeseries'}
              value={query.metrics}
              accepts={query.queryType === 'latest' ? isQueryMetric : isStoredMetric}
              onChange={(metrics) => changeAndRun({ metrics } as Partial<Iperf3DataQuery>)}
            />
          </EditorField>
          <EditorField label="Direction" optional>
            <RadioButtonGroup<Direction | ''>
              data-testid={Components.QueryEditor.direction}
              options={DIRECTION_OPTIONS}
              value={('direction' in query && query.direction) || ''}
              onChange={(d) => changeAndRun({ direction: d === '' ? undefined : d } as Partial<Iperf3DataQuery>)}
            />
          </EditorField>
          <EditorField label="Server" htmlFor="iperf3-query-server" optional>
            <Select<string>
              inputId="iperf3-query-server"
              data-testid={Components.QueryEditor.server}
              aria-label="Server"
              options={serverOptions}
              value={server ?? null}
              isClearable
              allowCustomValue
              isLoading={servers.value === undefined && !servers.error}
              placeholder="All servers"
              width={30}
              onChange={(v) => changeAndRun({ server: v?.value } as Partial<Iperf3DataQuery>)}
            />
          </EditorField>
          <EditorField label="Split by server" htmlFor="iperf3-query-split-by-server">
            <InlineSwitch
              id="iperf3-query-split-by-server"
              data-testid={Components.QueryEditor.splitByServer}
              value={'splitByServer' in query ? Boolean(query.splitByServer) : false}
              onChange={(e) => changeAndRun({ splitByServer: e.currentTarget.checked } as Partial<Iperf3DataQuery>)}
            />
          </EditorField>
        </EditorRow>
      )}
      {query.queryType === 'runs' && (
        <EditorRow>
          <EditorField label="Status" htmlFor="iperf3-query-status" optional>
            <MultiSelect<RunStatus>
              inputId="iperf3-query-status"
              data-testid={Components.QueryEditor.status}
              aria-label="Status"
              options={STATUS_OPTIONS}
              value={'status' in query ? (query.status ?? []) : []}
              placeholder="Any status"
              width={40}
              onChange={(selected) => changeAndRun({ status: selected.map((s) => s.value as RunStatus) } as Partial<Iperf3DataQuery>)}
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
              placeholder="500"
              defaultValue={'limit' in query && query.limit !== undefined ? String(query.limit) : ''}
              onBlur={(e) => changeAndRun({ limit: e.currentTarget.value === '' ? undefined : Number(e.currentTarget.value) } as Partial<Iperf3DataQuery>)}
            />
          </EditorField>
        </EditorRow>
      )}
      {query.queryType === 'intervals' && (
        <EditorRow>
          <EditorField label="Run id" htmlFor="iperf3-query-run-id" tooltip="empty = the latest finished run of the first device" optional>
            <Input
              id="iperf3-query-run-id"
              data-testid={Components.QueryEditor.runId}
              type="number"
              min={1}
              width={14}
              placeholder="latest"
              defaultValue={'runId' in query && query.runId !== undefined ? String(query.runId) : ''}
              onBlur={(e) => changeAndRun({ runId: e.currentTarget.value === '' ? undefined : Number(e.currentTarget.value) } as Partial<Iperf3DataQuery>)}
            />
          </EditorField>
        </EditorRow>
      )}
    </EditorRows>
  );
}
