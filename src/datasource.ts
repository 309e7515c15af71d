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
import { DataSourceWithBackend, getTemplateSrv, type TemplateSrv } from '@grafana/runtime';
import type { DeviceInfo, RunNowResponse, ServerInfo } from '../contract/api.js';
import { ALL_DEVICES, DEFAULT_QUERY, type LabelMatcher } from '../contract/query.js';
import { PLUGIN_VERSION } from './queryDefaults.js';
import type { Iperf3DataQuery, Iperf3DataSourceOptions } from './types.js';
import { DeviceVariableSupport } from './variables/DeviceVariableSupport.js';

/** Separates the values of a multi-value variable while interpolating; never part of a device id. */
const MULTI_VALUE_SEPARATOR = '\u001f';

/*
 * No "All" detection here. Grafana 12/13 dashboards are Scenes: a format function gets the
 * value(s) and a variable without `current`. "All" arrives as the values the variable lists
 * (exactly the devices a narrowed variable offers), and a custom all value (such as `*`, every
 * device) arrives as it is, without calling the format function.
 */
function joinMultiValue(value: unknown): string {
  return Array.isArray(value) ? value.map(String).join(MULTI_VALUE_SEPARATOR) : String(value);
}

function regexMultiValue(value: unknown): string {
  const values = Array.isArray(value) ? value.map(String) : [String(value)];
  const escaped = values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return escaped.length === 1 ? escaped[0] : `(${escaped.join('|')})`;
}

/**
 * Interpolates a list whose entries may be multi-value variables: each entry is replaced and
 * split into its values; `*` (All) swallows the rest; duplicates are dropped.
 */
export function interpolateList(templateSrv: TemplateSrv, entries: string[], scopedVars: ScopedVars): string[] {
  const out = new Set<string>();
  for (const entry of entries) {
    for (const value of templateSrv.replace(entry, scopedVars, joinMultiValue).split(MULTI_VALUE_SEPARATOR)) {
      const trimmed = value.trim();
      if (trimmed !== '') out.add(trimmed);
    }
  }
  return out.has(ALL_DEVICES) ? [ALL_DEVICES] : [...out];
}

export function interpolateMatchers(
  templateSrv: TemplateSrv,
  matchers: Array<LabelMatcher | (Omit<LabelMatcher, 'op'> & { op?: LabelMatcher['op'] })>,
  scopedVars: ScopedVars,
): LabelMatcher[] {
  return matchers.map((m) => {
    const regex = m.op === '=~' || m.op === '!~';
    const value = templateSrv.replace(m.value, scopedVars, regex ? regexMultiValue : 'raw');
    // `*` (All as the custom all value `*`, which skips the format function) means any value
    return { ...m, op: m.op ?? '=', value: regex && value === ALL_DEVICES ? '.*' : value };
  });
}

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
