/**
 * Types of the data source as Grafana sees it: jsonData and secureJsonData of the settings
 * page, and the query model wrapped as a Grafana DataQuery. Shapes come from contract/ so
 * frontend, plugin backend and collector agree.
 */
import type { DataQuery, DataSourceJsonData } from '@grafana/data';
import type { QueryInputs, VariableQueryInput } from '../contract/query.js';
import type { QueryType } from '../contract/queryTypes.js';
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

/**
 * A saved query of one type as Grafana hands it to the editor: it may predate defaults, so the
 * fields that have one may be missing. Keyed on `queryType`, so that a `T` narrows the fields.
 */
export type Iperf3DataQueryOf<T extends QueryType> = { [P in T]: DataQuery & QueryInputs[P] & { queryType: P } }[T];

/** A saved query of any type. */
export type Iperf3DataQuery = Iperf3DataQueryOf<QueryType>;

/** The variable editor's query (CustomVariableSupport requires a DataQuery); fields with a default may be missing. */
export type DeviceVariableQuery = DataQuery & VariableQueryInput;
