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
import { useMemo } from 'react';
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

  return (
    <Stack direction="column" gap={2}>
      <CollectorSection
        collectorUrl={jsonData.collectorUrl}
        tokenConfigured={secretConfigured('apiToken')}
        tokenValue={secretValue('apiToken')}
        errors={errors}
        onUrlChange={(collectorUrl) => setJsonData({ collectorUrl })}
        onTokenChange={setSecret('apiToken')}
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
