/**
 * The current settings as a Grafana provisioning file (as grafana-infinity-datasource offers):
 * secrets are never echoed, they become environment references that Grafana expands; the API
 * token's reference follows the origin of the collector URL it is bound to.
 */
import type { DataSourceSettings } from '@grafana/data';
import { stringify } from 'yaml';
import { bindApiToken } from '../../../contract/settings.js';
import type { Iperf3DataSourceOptions, Iperf3SecureJsonData, SecureJsonKey } from '../../types.js';

export const SECRET_ENV_NAMES: Record<SecureJsonKey, string> = {
  apiToken: 'IPERF3_API_TOKEN',
  iperf3Password: 'IPERF3_PASSWORD',
};

export function provisioningYaml(options: DataSourceSettings<Iperf3DataSourceOptions, Iperf3SecureJsonData>): string {
  const secureJsonData: Record<string, string> = {};
  for (const key of Object.keys(SECRET_ENV_NAMES) as SecureJsonKey[]) {
    const set = Boolean(options.secureJsonFields?.[key]) || Boolean(options.secureJsonData?.[key]);
    const reference = `\${${SECRET_ENV_NAMES[key]}}`;
    // the API token is bound to the collector URL's origin in the same value (docs/provisioning.md)
    if (set) secureJsonData[key] = key === 'apiToken' ? bindApiToken(options.jsonData.collectorUrl, reference) : reference;
  }
  const datasource: Record<string, unknown> = {
    name: options.name,
    type: options.type,
    uid: options.uid,
    access: 'proxy',
    isDefault: options.isDefault,
    editable: true,
    jsonData: options.jsonData,
  };
  if (Object.keys(secureJsonData).length > 0) datasource.secureJsonData = secureJsonData;
  return stringify({ apiVersion: 1, datasources: [datasource] });
}
