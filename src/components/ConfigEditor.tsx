/**
 * The data source's settings page: one section per concern (as in clickhouse-datasource),
 * validated inline with the shared zod schemas before the user saves.
 */
import {
  onUpdateDatasourceSecureJsonDataOption,
  updateDatasourcePluginResetOption,
  type DataSourcePluginOptionsEditorProps,
} from '@grafana/data';
import { Divider, Stack } from '@grafana/ui';
import { useMemo, useRef } from 'react';
import { bindApiToken, parseBoundApiToken, urlOrigin } from '../../contract/settings.js';
import type { Iperf3DataSourceOptions, Iperf3SecureJsonData, SecureJsonKey } from '../types.js';
import { ClientOptionsSection } from './config/ClientOptionsSection.js';
import { CollectorSection } from './config/CollectorSection.js';
import { PoolsSection } from './config/PoolsSection.js';
import { ProvisioningYamlButton } from './config/ProvisioningYamlButton.js';
import { ScheduleSection } from './config/ScheduleSection.js';
import { ServersSection } from './config/ServersSection.js';
import { validateJsonData } from './config/settingsValidation.js';

export type ConfigEditorProps = DataSourcePluginOptionsEditorProps<Iperf3DataSourceOptions, Iperf3SecureJsonData>;

export function ConfigEditor(props: ConfigEditorProps) {
  const { options, onOptionsChange } = props;
  const { jsonData } = options;
  const errors = useMemo(() => validateJsonData(jsonData), [jsonData]);

  const setJsonData = (patch: Partial<Iperf3DataSourceOptions>) => onOptionsChange({ ...options, jsonData: { ...jsonData, ...patch } });
  const secretValue = (key: SecureJsonKey) => options.secureJsonData?.[key] ?? '';
  const secretConfigured = (key: SecureJsonKey) => Boolean(options.secureJsonFields?.[key]);
  const setSecret = (key: SecureJsonKey) => (value: string) =>
    onUpdateDatasourceSecureJsonDataOption(props, key)({ currentTarget: { value } } as React.SyntheticEvent<HTMLInputElement>);
  const resetSecret = (key: SecureJsonKey) => () => updateDatasourcePluginResetOption(props, key);

  // The API token is stored bound to the origin of the collector URL it is entered for
  // (docs/security.md): typed now, it follows the URL; saved earlier, a new origin needs it again.
  const savedOrigin = useRef(urlOrigin(jsonData.collectorUrl)).current;
  const typedToken = parseBoundApiToken(secretValue('apiToken')).token;
  const setToken = (token: string) =>
    onOptionsChange({
      ...options,
      secureJsonData: { ...options.secureJsonData, apiToken: token ? bindApiToken(jsonData.collectorUrl, token) : '' },
    });
  const setUrl = (collectorUrl: string) =>
    onOptionsChange({
      ...options,
      jsonData: { ...jsonData, collectorUrl },
      ...(typedToken ? { secureJsonData: { ...options.secureJsonData, apiToken: bindApiToken(collectorUrl, typedToken) } } : {}),
    });
  const origin = urlOrigin(jsonData.collectorUrl);
  const tokenForOtherUrl =
    secretConfigured('apiToken') && !typedToken && origin !== null && origin !== savedOrigin
      ? `The API token was saved for ${savedOrigin ?? 'another URL'}: re-enter the API token for the new URL (it is never sent to another host)`
      : undefined;

  return (
    <Stack direction="column" gap={2}>
      <CollectorSection
        collectorUrl={jsonData.collectorUrl}
        tokenConfigured={secretConfigured('apiToken')}
        tokenValue={typedToken}
        tokenError={tokenForOtherUrl}
        errors={errors}
        onUrlChange={setUrl}
        onTokenChange={setToken}
        onTokenReset={resetSecret('apiToken')}
      />
      <Divider />
      <ServersSection servers={jsonData.servers ?? []} errors={errors} onChange={(servers) => setJsonData({ servers })} />
      <Divider />
      <PoolsSection pools={jsonData.pools} errors={errors} onChange={(pools) => setJsonData({ pools })} />
      <Divider />
      <ClientOptionsSection
        value={jsonData.clientOptions}
        errors={errors}
        passwordConfigured={secretConfigured('iperf3Password')}
        passwordValue={secretValue('iperf3Password')}
        onChange={(clientOptions) => setJsonData({ clientOptions })}
        onPasswordChange={setSecret('iperf3Password')}
        onPasswordReset={resetSecret('iperf3Password')}
      />
      <Divider />
      <ScheduleSection value={jsonData.schedule} errors={errors} onChange={(schedule) => setJsonData({ schedule })} />
      <Divider />
      <div>
        <ProvisioningYamlButton options={options} />
      </div>
    </Stack>
  );
}
