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
import type { DeviceInfo, RunNowResourceResponse, RunProgressResponse, ServerInfo } from '../contract/api.js';
import { runNowResourceResponseSchema, runProgressResponseSchema } from '../contract/apiResponses.js';
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

/** A resource answer checked against the contract: a plugin backend of another version is named, not misread. */
function parseResource<T>(path: string, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new Error(`the plugin backend's answer to ${path} does not match this frontend's contract: are both the same plugin version?`);
  return parsed.data;
}

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

  /**
   * Queues a run now for these devices (Editors and Admins; the backend refuses others with
   * 403, and the collector answers 409 for a device already queued or running). `after` is
   * the run id to follow the new runs from (getRunProgress).
   */
  async runNow(devices: string[]): Promise<RunNowResourceResponse> {
    return parseResource('runs', runNowResourceResponseSchema, await this.postResource<unknown>('runs', { devices }));
  }

  /** How the runs a Run now started are going, per device (the backend's runs/progress). */
  async getRunProgress(devices: string[], after: number): Promise<RunProgressResponse> {
    return parseResource('runs/progress', runProgressResponseSchema, await this.getResource<unknown>('runs/progress', { device: devices, after }));
  }
}
