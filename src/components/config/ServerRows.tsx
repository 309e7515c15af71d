/**
 * One editable list of iperf3 servers (host, port, label): the default servers and each pool's.
 * Field errors are looked up under `errorPrefix` (`servers`, `pools.<name>`), as the shared
 * settings schema names them.
 */
import { Button, Field, Input, Stack } from '@grafana/ui';
import { DEFAULT_IPERF3_PORT, type SettingsInput } from '../../../contract/settings.js';
import { parseNumberInput, type FieldErrorMap } from './settingsValidation.js';

export type ServerInput = SettingsInput['servers'][number];

export interface ServerRowIds {
  host: (index: number) => string;
  port: (index: number) => string;
  label: (index: number) => string;
  remove: (index: number) => string;
  add: string;
}

interface Props {
  servers: ServerInput[];
  errors: FieldErrorMap;
  errorPrefix: string;
  /** test ids; also the input ids (unique per list) */
  ids: ServerRowIds;
  /** "server" -> "Remove server 2"; "server of pool edge" -> "Remove server 2 of pool edge" */
  removeLabel: (index: number) => string;
  addLabel: string;
  onChange: (servers: ServerInput[]) => void;
}

export function ServerRows({ servers, errors, errorPrefix, ids, removeLabel, addLabel, onChange }: Props) {
  const update = (index: number, patch: Partial<Record<keyof ServerInput, unknown>>) =>
    onChange(servers.map((s, i) => (i === index ? ({ ...s, ...patch } as ServerInput) : s)));
  const error = (i: number, field: string) => errors[`${errorPrefix}.${i}.${field}`];

  return (
    <>
      {servers.map((server, i) => (
        <Stack key={i} gap={1} alignItems="flex-start">
          <Field label="Host" description={i === 0 ? 'IPv4, IPv6 or DNS name' : undefined} invalid={!!error(i, 'host')} error={error(i, 'host')}>
            <Input
              id={ids.host(i)}
              data-testid={ids.host(i)}
              width={30}
              placeholder="iperf3.example.net"
              value={server.host ?? ''}
              onChange={(e) => update(i, { host: e.currentTarget.value })}
            />
          </Field>
          <Field label="Port" description={i === 0 ? `default ${DEFAULT_IPERF3_PORT}` : undefined} invalid={!!error(i, 'port')} error={error(i, 'port')}>
            <Input
              id={ids.port(i)}
              data-testid={ids.port(i)}
              width={12}
              inputMode="numeric"
              placeholder={String(DEFAULT_IPERF3_PORT)}
              value={server.port === undefined ? '' : String(server.port)}
              onChange={(e) => update(i, { port: parseNumberInput(e.currentTarget.value) })}
            />
          </Field>
          <Field label="Label" description={i === 0 ? 'optional, shown in panels' : undefined} invalid={!!error(i, 'label')} error={error(i, 'label')}>
            <Input
              id={ids.label(i)}
              data-testid={ids.label(i)}
              width={20}
              placeholder="Milan DC"
              value={server.label ?? ''}
              onChange={(e) => update(i, { label: e.currentTarget.value === '' ? undefined : e.currentTarget.value })}
            />
          </Field>
          <Field label={'\u00a0'}>
            <Button
              data-testid={ids.remove(i)}
              aria-label={removeLabel(i)}
              variant="secondary"
              icon="trash-alt"
              onClick={() => onChange(servers.filter((_, j) => j !== i))}
            />
          </Field>
        </Stack>
      ))}
      <Button data-testid={ids.add} variant="secondary" icon="plus" onClick={() => onChange([...servers, { host: '', port: DEFAULT_IPERF3_PORT }])}>
        {addLabel}
      </Button>
    </>
  );
}
