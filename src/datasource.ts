/**
 * The data source as Grafana's frontend sees it. Queries, health checks and resources go to
 * the plugin backend (DataSourceWithBackend); this class adds defaults, template-variable
 * interpolation, the variable support and failed-run annotations.
 */
import {
  AnnotationEventFieldSource,
  CoreApp,
  type AnnotationEventMappings,
  type DataSourceInstanceSettings,
  type ScopedVars,
  type TypedVariableModel,
} from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv } from '@grafana/runtime';
import type { DeviceInfo, RunNowResponse, ServerInfo } from '../contract/api.js';
import { ALL_DEVICES, DEFAULT_QUERY } from '../contract/query.js';
import { interpolateList, interpolateMatchers } from './interpolation.js';
import { PLUGIN_VERSION } from './queryDefaults.js';
import type { Iperf3DataQuery, Iperf3DataSourceOptions } from './types.js';
import { DeviceVariableSupport } from './variables/DeviceVariableSupport.js';

/** Annotation event fields from the backend's run-log columns (Started, Ended, Status, Message, Error). */
export const RUN_LOG_ANNOTATION_MAPPINGS: AnnotationEventMappings = {
  time: { source: AnnotationEventFieldSource.Field, value: 'Started' },
  timeEnd: { source: AnnotationEventFieldSource.Field, value: 'Ended' },
  title: { source: AnnotationEventFieldSource.Field, value: 'Status' },
  text: { source: AnnotationEventFieldSource.Field, value: 'Message' },
  tags: { source: AnnotationEventFieldSource.Field, value: 'Error' },
};

export class DataSource extends DataSourceWithBackend<Iperf3DataQuery, Iperf3DataSourceOptions> {
  constructor(instanceSettings: DataSourceInstanceSettings<Iperf3DataSourceOptions>) {
    super(instanceSettings);
    this.variables = new DeviceVariableSupport(this);
    this.annotations = {
      // Failed and interrupted runs as annotations, from the run-log frame.
      getDefaultQuery: () => ({ queryType: 'runs', devices: [ALL_DEVICES], status: ['failed', 'interrupted'] }),
      // Grafana's standard processing takes the first string field as text, the device id; map
      // the run log's columns (by display name) unless the annotation maps them itself.
      prepareAnnotation: (json) => ({ ...json, mappings: { ...RUN_LOG_ANNOTATION_MAPPINGS, ...json.mappings } }),
    };
  }

  override getDefaultQuery(_app: CoreApp): Partial<Iperf3DataQuery> {
    return { ...DEFAULT_QUERY, pluginVersion: PLUGIN_VERSION };
  }

  override filterQuery(query: Iperf3DataQuery): boolean {
    return !query.hide;
  }

  override applyTemplateVariables(query: Iperf3DataQuery, scopedVars: ScopedVars): Iperf3DataQuery {
    const templateSrv = getTemplateSrv();
    const out: Iperf3DataQuery = { ...query };
    if (query.devices) out.devices = interpolateList(templateSrv, query.devices, scopedVars);
    if (query.labelMatchers) out.labelMatchers = interpolateMatchers(templateSrv, query.labelMatchers, scopedVars);
    if ((out.queryType === 'timeseries' || out.queryType === 'latest') && out.server) {
      const server = templateSrv.replace(out.server, scopedVars);
      out.server = server === '' ? undefined : server;
    }
    return out;
  }

  /** Names of dashboard variables, offered as `$name` in the pickers. */
  getVariableNames(): string[] {
    return getTemplateSrv()
      .getVariables()
      .map((v: TypedVariableModel) => `$${v.name}`);
  }

  async getDevices(): Promise<DeviceInfo[]> {
    return this.getResource<DeviceInfo[]>('devices');
  }

  async getServers(): Promise<ServerInfo[]> {
    return this.getResource<ServerInfo[]>('servers');
  }

  /** Queues a run now for these devices (the collector skips devices already running). */
  async runNow(devices: string[]): Promise<RunNowResponse> {
    return this.postResource<RunNowResponse>('runs', { devices });
  }
}
