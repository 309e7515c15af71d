/**
 * The query editor: query type and devices, then the small editor of that query type (a table
 * keyed on the query type, as grafana/github-datasource does). Every choice that is final (a
 * pick in a list, a toggle, leaving a number field) runs the query. In the alert rule editor
 * only what alerts can evaluate is offered: numeric query types, no dashboard variables.
 * Below, "Run now" tests the selected devices (dashboards and Explore; not in alert rules).
 */
import { CoreApp, type QueryEditorProps, type SelectableValue } from '@grafana/data';
import { EditorField, EditorRow, EditorRows } from '@grafana/plugin-ui';
import { Alert, RadioButtonGroup } from '@grafana/ui';
import { useEffect, useState, type ReactElement } from 'react';
import type { DeviceInfo, ServerInfo } from '../../contract/api.js';
import { QUERY_TYPE_LABELS, QUERY_TYPES, type QueryType } from '../../contract/queryTypes.js';
import type { DataSource } from '../datasource.js';
import { normalizeQuery, PLUGIN_VERSION, withQueryType } from '../queryDefaults.js';
import { Components } from '../selectors.js';
import type { Iperf3DataQuery, Iperf3DataSourceOptions } from '../types.js';
import { DevicePicker } from './query/DevicePicker.js';
import { IntervalsQueryEditor } from './query/IntervalsQueryEditor.js';
import { LatestQueryEditor } from './query/LatestQueryEditor.js';
import type { Loaded, QueryTypeEditorProps } from './query/queryTypeEditor.js';
import { RunNow } from './query/RunNow.js';
import { RunsQueryEditor } from './query/RunsQueryEditor.js';
import { TimeSeriesQueryEditor } from './query/TimeSeriesQueryEditor.js';

export type Iperf3QueryEditorProps = QueryEditorProps<DataSource, Iperf3DataQuery, Iperf3DataSourceOptions>;

/** One editor per query type; each sees its own narrowed query. */
const QUERY_TYPE_EDITORS: { [T in QueryType]: (props: QueryTypeEditorProps<T>) => ReactElement } = {
  timeseries: TimeSeriesQueryEditor,
  latest: LatestQueryEditor,
  runs: RunsQueryEditor,
  intervals: IntervalsQueryEditor,
};

function QueryTypeEditor<T extends QueryType>({ queryType, ...props }: QueryTypeEditorProps<T> & { queryType: T }) {
  const Editor: (props: QueryTypeEditorProps<T>) => ReactElement = QUERY_TYPE_EDITORS[queryType];
  return <Editor {...props} />;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String((e as { data?: { message?: string } })?.data?.message ?? e);
}

/** Loads a resource once per data source; undefined while loading. */
function useResource<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<Loaded<T>>({});
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

  const changeAndRun = (next: Iperf3DataQuery) => {
    onChange({ ...next, pluginVersion: PLUGIN_VERSION });
    onRunQuery();
  };

  const typeOptions: Array<SelectableValue<QueryType>> = QUERY_TYPES.filter((t) => !alerting || QUERY_TYPE_LABELS[t].alerting).map((t) => ({
    label: QUERY_TYPE_LABELS[t].label,
    value: t,
    description: QUERY_TYPE_LABELS[t].description,
  }));

  return (
    <EditorRows>
      <EditorRow>
        <EditorField label="Query type">
          <RadioButtonGroup<QueryType>
            data-testid={Components.QueryEditor.queryType}
            options={typeOptions}
            value={query.queryType}
            onChange={(queryType) => changeAndRun(withQueryType(query, queryType))}
          />
        </EditorField>
        <EditorField label="Devices" htmlFor={`iperf3-query-devices-${query.refId}`} tooltip="device ids from the collector inventory; * or All = every device">
          <DevicePicker
            inputId={`iperf3-query-devices-${query.refId}`}
            value={query.devices}
            devices={devices.value}
            loadError={devices.error}
            variables={variables}
            onChange={(selected) => changeAndRun({ ...query, devices: selected })}
          />
        </EditorField>
      </EditorRow>
      {alerting && !QUERY_TYPE_LABELS[query.queryType].alerting && (
        <Alert severity="warning" title={`${QUERY_TYPE_LABELS[query.queryType].label} cannot be used in alert rules: choose Time series or Latest value.`} />
      )}
      <QueryTypeEditor<QueryType> queryType={query.queryType} query={query} onChange={changeAndRun} servers={servers} variables={variables} />
      {!alerting && (
        <EditorRow>
          <RunNow datasource={datasource} query={query} inventory={devices.value} onRunQuery={onRunQuery} />
        </EditorRow>
      )}
    </EditorRows>
  );
}
