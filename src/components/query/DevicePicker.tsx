import type { SelectableValue } from '@grafana/data';
import { MultiSelect, Stack, Text } from '@grafana/ui';
import type { DeviceInfo } from '../../../contract/api.js';
import { ALL_DEVICES } from '../../../contract/query.js';
import { Components } from '../../selectors.js';

interface Props {
  value: string[];
  devices: DeviceInfo[] | undefined;
  loadError?: string;
  variables: string[];
  onChange: (devices: string[]) => void;
  /** unique per editor: a dashboard panel or Explore shows one query editor per query */
  inputId?: string;
}

/** "router-1.example:22 · site=hq, org=acme" */
export function describeDevice(d: DeviceInfo): string {
  const labels = Object.entries(d.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  return [`${d.host}:${d.port}`, labels, d.enabled ? '' : 'disabled'].filter((s) => s !== '').join(' · ');
}

export function deviceOptions(devices: DeviceInfo[], variables: string[]): Array<SelectableValue<string>> {
  return [
    { label: 'All devices', value: ALL_DEVICES, description: 'every device of the collector' },
    ...variables.map((v) => ({ label: v, value: v, description: 'dashboard variable' })),
    ...devices.map((d) => ({ label: d.id, value: d.id, description: describeDevice(d) })),
  ];
}

export function DevicePicker({ value, devices, loadError, variables, onChange, inputId = 'iperf3-query-devices' }: Props) {
  const options = deviceOptions(devices ?? [], variables);
  return (
    <Stack direction="column" gap={0.5}>
    <MultiSelect<string>
      inputId={inputId}
      data-testid={Components.QueryEditor.devices}
      aria-label="Devices"
      options={options}
      value={value}
      isLoading={devices === undefined && !loadError}
      invalid={!!loadError}
      placeholder="Choose devices"
      // also keeps picked ids the collector does not list (yet) visible
      allowCustomValue
      width={50}
      onChange={(selected) => {
        const picked = selected.map((s) => s.value).filter((v): v is string => v !== undefined);
        // "All devices" next to single devices is ambiguous: the newest choice wins
        const last = picked[picked.length - 1];
        onChange(last === ALL_DEVICES ? [ALL_DEVICES] : picked.filter((v) => v !== ALL_DEVICES));
      }}
    />
    {loadError && (
      <Text variant="bodySmall" color="error">
        Could not load devices: {loadError}
      </Text>
    )}
    </Stack>
  );
}
