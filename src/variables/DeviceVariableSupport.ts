/**
 * Template variables (CustomVariableSupport, as in grafana/github-datasource): devices,
 * the values of one device label (e.g. site) or the iperf3 servers, optionally narrowed by
 * label matchers that may themselves use other variables (chained variables).
 */
import {
  CustomVariableSupport,
  FieldType,
  createDataFrame,
  type DataQueryRequest,
  type DataQueryResponse,
  type MetricFindValue,
  type ScopedVars,
} from '@grafana/data';
import { getTemplateSrv } from '@grafana/runtime';
import { from, map, type Observable } from 'rxjs';
import { labelFilter, variableQuerySchema, type VariableQuery } from '../../contract/query.js';
import type { DataSource } from '../datasource.js';
import { interpolateMatchers } from '../interpolation.js';
import type { DeviceVariableQuery, Iperf3DataQuery, Iperf3DataSourceOptions } from '../types.js';
import { VariableQueryEditor } from './VariableQueryEditor.js';

/** Parses a stored variable query; Grafana adds refId (and older dashboards may lack fields). */
export function parseVariableQuery(query: DeviceVariableQuery): VariableQuery {
  const { kind, label, labelMatchers } = query;
  return variableQuerySchema.parse({ kind, label, labelMatchers });
}

export async function listVariableValues(
  ds: Pick<DataSource, 'getDevices' | 'getServers'>,
  stored: DeviceVariableQuery,
  scopedVars: ScopedVars = {},
): Promise<MetricFindValue[]> {
  const query = parseVariableQuery(stored);
  if (query.kind === 'servers') {
    const servers = await ds.getServers();
    return servers.map((s) => ({ text: s.label ? `${s.label} (${s.key})` : s.key, value: s.key }));
  }
  const matchers = interpolateMatchers(getTemplateSrv(), query.labelMatchers, scopedVars);
  const passes = labelFilter(matchers);
  const devices = (await ds.getDevices()).filter((d) => passes(d.labels));
  if (query.kind === 'labelValues') {
    if (!query.label) throw new Error('label values: choose which label to list, e.g. site');
    const label = query.label;
    const values = new Set(devices.map((d) => d.labels[label]).filter((v): v is string => v !== undefined && v !== ''));
    return [...values].sort().map((v) => ({ text: v, value: v }));
  }
  return devices.map((d) => ({ text: d.id, value: d.id }));
}

export class DeviceVariableSupport extends CustomVariableSupport<DataSource, DeviceVariableQuery, Iperf3DataQuery, Iperf3DataSourceOptions> {
  constructor(private readonly datasource: DataSource) {
    super();
  }

  editor = VariableQueryEditor;

  query(request: DataQueryRequest<DeviceVariableQuery>): Observable<DataQueryResponse> {
    return from(listVariableValues(this.datasource, request.targets[0], request.scopedVars)).pipe(
      map((values) => ({
        data: [
          createDataFrame({
            refId: request.targets[0].refId,
            fields: [
              { name: 'text', type: FieldType.string, values: values.map((v) => v.text) },
              { name: 'value', type: FieldType.string, values: values.map((v) => String(v.value)) },
            ],
          }),
        ],
      })),
    );
  }
}
