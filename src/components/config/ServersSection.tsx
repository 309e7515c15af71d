import { ConfigSection } from '@grafana/plugin-ui';
import { Alert, Button, Field, Input, Stack } from '@grafana/ui';
import { DEFAULT_IPERF3_PORT, type SettingsInput } from '../../../contract/settings.js';
import { Components } from '../../selectors.js';
import { parseNumberInput, type FieldErrorMap } from './settingsValidation.js';

type ServerInput = SettingsInput['servers'][number];

interface Props {
  servers: ServerInput[];
  errors: FieldErrorMap;
  onChange: (servers: ServerInput[]) => void;
}

export function ServersSection({ servers, errors, onChange }: Props) {
  const update = (index: number, patch: Partial<Record<keyof ServerInput, unknown>>) =>
    onChange(servers.map((s, i) => (i === index ? ({ ...s, ...patch } as ServerInput) : s)));

  return (
    <ConfigSection
      title="iperf3 servers"
      description="Reference servers the devices test against; each runs one test at a time, so more servers test a fleet faster."
    >
      <div data-testid={Components.ConfigEditor.servers}>
        {errors.servers && <Alert severity="warning" title={errors.servers} />}
        {servers.map((server, i) => (
          <Stack key={i} gap={1} alignItems="flex-start">
            <Field label="Host" description={i === 0 ? 'IPv4, IPv6 or DNS name' : undefined} invalid={!!errors[`servers.${i}.host`]} error={errors[`servers.${i}.host`]}>
              <Input
                id={`iperf3-server-${i}-host`}
                data-testid={Components.ConfigEditor.serverHost(i)}
                width={30}
                placeholder="iperf3.example.net"
                value={server.host ?? ''}
                onChange={(e) => update(i, { host: e.currentTarget.value })}
              />
            </Field>
            <Field label="Port" description={i === 0 ? `default ${DEFAULT_IPERF3_PORT}` : undefined} invalid={!!errors[`servers.${i}.port`]} error={errors[`servers.${i}.port`]}>
              <Input
                id={`iperf3-server-${i}-port`}
                data-testid={Components.ConfigEditor.serverPort(i)}
                width={12}
                inputMode="numeric"
                placeholder={String(DEFAULT_IPERF3_PORT)}
                value={server.port === undefined ? '' : String(server.port)}
                onChange={(e) => update(i, { port: parseNumberInput(e.currentTarget.value) })}
              />
            </Field>
            <Field label="Label" description={i === 0 ? 'optional, shown in panels' : undefined} invalid={!!errors[`servers.${i}.label`]} error={errors[`servers.${i}.label`]}>
              <Input
                id={`iperf3-server-${i}-label`}
                data-testid={Components.ConfigEditor.serverLabel(i)}
                width={20}
                placeholder="Milan DC"
                value={server.label ?? ''}
                onChange={(e) => update(i, { label: e.currentTarget.value === '' ? undefined : e.currentTarget.value })}
              />
            </Field>
            <Field label={"\u00a0"}>
              <Button
                data-testid={Components.ConfigEditor.removeServer(i)}
                aria-label={`Remove server ${i + 1}`}
                variant="secondary"
                icon="trash-alt"
                onClick={() => onChange(servers.filter((_, j) => j !== i))}
              />
            </Field>
          </Stack>
        ))}
        <Button data-testid={Components.ConfigEditor.addServer} variant="secondary" icon="plus" onClick={() => onChange([...servers, { host: '', port: DEFAULT_IPERF3_PORT }])}>
          Add server
        </Button>
      </div>
    </ConfigSection>
  );
}
