/**
 * Types of the data source as Grafana sees it: jsonData and secureJsonData of the settings
 * page, and the query model wrapped as a Grafana DataQuery. Shapes come from contract/ so
 * frontend, plugin backend and collector agree.
 */
import type { DataQuery, DataSourceJsonData } from '@grafana/data';
import type { Iperf3QueryInput, VariableQuery } from '../contract/query.js';
import type { SettingsInput } from '../contract/settings.js';

/** jsonData: everything except secrets; the backend pushes servers/clientOptions/schedule to the collector. */
export interface Iperf3DataSourceOptions extends DataSourceJsonData {
  /** base URL of the collector's HTTP API, e.g. http://collector:8080 */
  collectorUrl?: string;
  servers?: SettingsInput['servers'];
  pools?: SettingsInput['pools'];
  clientOptions?: SettingsInput['clientOptions'];
  schedule?: SettingsInput['schedule'];
}

/** secureJsonData: write-only; Grafana only tells which keys are set (secureJsonFields). */
export interface Iperf3SecureJsonData {
  /** bearer token of the collector API */
  apiToken?: string;
  /** iperf3 authentication password (IPERF3_PASSWORD on the device) */
  iperf3Password?: string;
}

export type SecureJsonKey = keyof Iperf3SecureJsonData;

/** A saved query as Grafana hands it to the editor: may predate defaults, so fields are optional. */
export type Iperf3DataQuery = DataQuery & Partial<Iperf3QueryInput> & { pluginVersion?: string };

/** The variable editor's query (CustomVariableSupport requires a DataQuery). */
export type DeviceVariableQuery = DataQuery & Partial<VariableQuery>;
