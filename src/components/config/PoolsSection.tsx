/**
 * Named pools of iperf3 servers: a device whose inventory entry names a pool (`pool: edge` in
 * the collector's YAML, or through its devices API) is tested against that pool's servers only.
 * The pools are pushed to the collector with the other settings on Save & test.
 *
 * A pool may be pinned to a collector group (several collectors on PostgreSQL): it is then stored
 * as `{ group, servers }`, else as its plain list of servers.
 *
 * jsonData keeps pools as a record keyed by name; the editor keeps an ordered list, so that a
 * name can be empty or repeated while it is typed. Such a name is shown as a field error and
 * the pool stays stored under its last valid name until it is fixed: nothing stored is lost.
 */
import { ConfigSection } from '@grafana/plugin-ui';
import { Alert, Button, Field, Input, Stack, Text } from '@grafana/ui';
import { useState } from 'react';
import { SETTINGS_LIMITS, type SettingsInput } from '../../../contract/settings.js';
import { Components } from '../../selectors.js';
import { ServerRows, type ServerInput } from './ServerRows.js';
import type { FieldErrorMap } from './settingsValidation.js';

export type PoolsInput = NonNullable<SettingsInput['pools']>;

export interface PoolEntry {
  /** as typed */
  name: string;
  /** the key it is stored under in jsonData; null while it was never stored */
  stored: string | null;
  /** the collector group the pool is pinned to; empty: any collector */
  group: string;
  servers: ServerInput[];
}

/** A stored pool as an editor entry (a pinned pool's servers and group, or a plain list). */
export function toEntry(name: string, pool: PoolsInput[string]): PoolEntry {
  return Array.isArray(pool) ? { name, stored: name, group: '', servers: pool } : { name, stored: name, group: pool.group, servers: pool.servers };
}

interface Props {
  pools: PoolsInput | undefined;
  errors: FieldErrorMap;
  onChange: (pools: PoolsInput) => void;
}

/**
 * Errors of names the record cannot hold: empty, the typed name of an earlier pool, or the name
 * another pool is still stored under. (A pool with a usable name is stored under it, so a pool
 * whose name is not usable keeps a stored name no other pool can take.)
 */
export function poolNameErrors(entries: Array<Pick<PoolEntry, 'name' | 'stored'>>): Record<number, string> {
  const errors: Record<number, string> = {};
  entries.forEach((entry, i) => {
    const name = entry.name.trim();
    if (name === '') errors[i] = 'a pool needs a name, e.g. edge-eu (devices refer to it as pool: edge-eu)';
    else if (entries.some((other, j) => j !== i && (other.stored === name || (j < i && other.name.trim() === name)))) {
      errors[i] = `"${name}" is the name of another pool: each pool needs its own name`;
    }
  });
  return errors;
}

/** The record to store: each pool under its typed name, or under its stored name while the typed one is not usable. */
export function toRecord(entries: PoolEntry[]): { pools: PoolsInput; entries: PoolEntry[] } {
  const nameErrors = poolNameErrors(entries);
  const pools: PoolsInput = {};
  const next = entries.map((entry, i) => {
    const key = nameErrors[i] === undefined ? entry.name.trim() : entry.stored;
    const group = entry.group.trim();
    if (key !== null) pools[key] = group === '' ? entry.servers : { group, servers: entry.servers };
    return { ...entry, stored: key };
  });
  return { pools, entries: next };
}

export function PoolsSection({ pools, errors, onChange }: Props) {
  const [entries, setEntries] = useState<PoolEntry[]>(() => Object.entries(pools ?? {}).map(([name, pool]) => toEntry(name, pool)));
  const nameErrors = poolNameErrors(entries);

  const change = (next: PoolEntry[]) => {
    const result = toRecord(next);
    setEntries(result.entries);
    onChange(result.pools);
  };
  const update = (index: number, patch: Partial<PoolEntry>) => change(entries.map((e, i) => (i === index ? { ...e, ...patch } : e)));
  const atLimit = entries.length >= SETTINGS_LIMITS.pools;

  return (
    <ConfigSection
      title="Server pools"
      description="Named groups of iperf3 servers. A device whose inventory entry names a pool (pool: edge-eu) is tested against that pool's servers only; the others use the servers above."
    >
      <div data-testid={Components.ConfigEditor.pools}>
        {errors.pools && <Alert severity="warning" title={errors.pools} />}
        {entries.length === 0 && (
          <Text element="p" variant="bodySmall" color="secondary">
            No pools: every device tests against the servers above.
          </Text>
        )}
        {entries.map((entry, p) => {
          const key = entry.stored ?? entry.name.trim();
          const nameError = nameErrors[p] ?? errors[`pools.${key}`];
          const label = entry.name.trim() || `${p + 1}`;
          return (
            <div key={p} style={{ marginBottom: 16 }} data-testid={Components.ConfigEditor.pool(p)}>
              <Stack gap={1} alignItems="flex-start">
                <Field
                  label="Pool name"
                  description={p === 0 ? 'letters, digits, . _ -; what devices name as their pool' : undefined}
                  invalid={!!nameError}
                  error={nameError}
                >
                  <Input
                    id={Components.ConfigEditor.poolName(p)}
                    data-testid={Components.ConfigEditor.poolName(p)}
                    width={30}
                    placeholder="edge-eu"
                    value={entry.name}
                    onChange={(e) => update(p, { name: e.currentTarget.value })}
                  />
                </Field>
                <Field
                  label="Collector group"
                  description={p === 0 ? 'optional: only collectors of this group test its devices' : undefined}
                  invalid={!!errors[`pools.${key}.group`]}
                  error={errors[`pools.${key}.group`]}
                >
                  <Input
                    id={Components.ConfigEditor.poolGroup(p)}
                    data-testid={Components.ConfigEditor.poolGroup(p)}
                    width={20}
                    placeholder="any"
                    value={entry.group}
                    onChange={(e) => update(p, { group: e.currentTarget.value })}
                  />
                </Field>
                <Field label={'\u00a0'}>
                  <Button
                    data-testid={Components.ConfigEditor.removePool(p)}
                    aria-label={`Remove pool ${label}`}
                    variant="secondary"
                    fill="outline"
                    icon="trash-alt"
                    onClick={() => change(entries.filter((_, j) => j !== p))}
                  >
                    Remove pool
                  </Button>
                </Field>
              </Stack>
              <div style={{ marginLeft: 16 }}>
                <ServerRows
                  servers={entry.servers}
                  errors={errors}
                  errorPrefix={entry.group.trim() === '' ? `pools.${key}` : `pools.${key}.servers`}
                  ids={{
                    host: (i) => Components.ConfigEditor.poolServerHost(p, i),
                    port: (i) => Components.ConfigEditor.poolServerPort(p, i),
                    label: (i) => Components.ConfigEditor.poolServerLabel(p, i),
                    remove: (i) => Components.ConfigEditor.removePoolServer(p, i),
                    add: Components.ConfigEditor.addPoolServer(p),
                  }}
                  removeLabel={(i) => `Remove server ${i + 1} of pool ${label}`}
                  addLabel={`Add server to pool ${label}`}
                  onChange={(servers) => update(p, { servers })}
                />
              </div>
            </div>
          );
        })}
        <Button
          data-testid={Components.ConfigEditor.addPool}
          variant="secondary"
          icon="plus"
          disabled={atLimit}
          tooltip={atLimit ? `at most ${SETTINGS_LIMITS.pools} pools` : undefined}
          onClick={() => change([...entries, { name: '', stored: null, group: '', servers: [{ host: '', port: 5201 }] }])}
        >
          Add pool
        </Button>
      </div>
    </ConfigSection>
  );
}
