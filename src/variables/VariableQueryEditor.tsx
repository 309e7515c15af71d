import { type QueryEditorProps, type SelectableValue } from '@grafana/data';
import { EditorField, EditorRow, EditorRows } from '@grafana/plugin-ui';
import { Button, Input, RadioButtonGroup, Select, Stack } from '@grafana/ui';
import { LABEL_MATCHER_OPS, type LabelMatcher, type VariableQuery } from '../../contract/query.js';
import type { DataSource } from '../datasource.js';
import { Components } from '../selectors.js';
import type { DeviceVariableQuery, Iperf3DataQuery, Iperf3DataSourceOptions } from '../types.js';

type Props = QueryEditorProps<DataSource, Iperf3DataQuery, Iperf3DataSourceOptions, DeviceVariableQuery>;

const KINDS: Array<SelectableValue<VariableQuery['kind']>> = [
  { label: 'Devices', value: 'devices', description: 'device ids' },
  { label: 'Label values', value: 'labelValues', description: 'values of one device label, e.g. site' },
  { label: 'Servers', value: 'servers', description: 'iperf3 servers (host:port)' },
];

const OPS: Array<SelectableValue<LabelMatcher['op']>> = LABEL_MATCHER_OPS.map((op) => ({ label: op, value: op }));

export function VariableQueryEditor({ query, onChange }: Props) {
  const kind = query.kind ?? 'devices';
  const matchers = query.labelMatchers ?? [];
  const update = (patch: Partial<DeviceVariableQuery>) => onChange({ ...query, kind, labelMatchers: matchers, ...patch });
  const setMatcher = (index: number, patch: Partial<LabelMatcher>) =>
    update({ labelMatchers: matchers.map((m, i) => (i === index ? { ...m, ...patch } : m)) });

  return (
    <EditorRows>
      <EditorRow>
        <EditorField label="List" data-testid={Components.VariableEditor.kind}>
          <RadioButtonGroup options={KINDS} value={kind} onChange={(v) => update({ kind: v })} />
        </EditorField>
        {kind === 'labelValues' && (
          <EditorField label="Label" htmlFor="iperf3-variable-label" tooltip="device label whose values are listed, e.g. site">
            <Input
              id="iperf3-variable-label"
              data-testid={Components.VariableEditor.label}
              value={query.label ?? ''}
              placeholder="site"
              width={20}
              onChange={(e) => update({ label: e.currentTarget.value })}
            />
          </EditorField>
        )}
      </EditorRow>
      {kind !== 'servers' && (
        <EditorRow>
          <EditorField label="Only devices whose labels match" data-testid={Components.VariableEditor.matchers}>
            <Stack direction="column" gap={1}>
              {matchers.map((m, i) => (
                <Stack key={i} gap={1}>
                  <Input aria-label={`matcher ${i + 1} label`} value={m.label} placeholder="site" width={16} onChange={(e) => setMatcher(i, { label: e.currentTarget.value })} />
                  <Select aria-label={`matcher ${i + 1} operator`} options={OPS} value={m.op} width={8} onChange={(v) => setMatcher(i, { op: v.value })} />
                  <Input aria-label={`matcher ${i + 1} value`} value={m.value} placeholder="hq or $site" width={20} onChange={(e) => setMatcher(i, { value: e.currentTarget.value })} />
                  <Button
                    aria-label={`remove matcher ${i + 1}`}
                    icon="trash-alt"
                    variant="secondary"
                    onClick={() => update({ labelMatchers: matchers.filter((_, j) => j !== i) })}
                  />
                </Stack>
              ))}
              <Button icon="plus" variant="secondary" size="sm" onClick={() => update({ labelMatchers: [...matchers, { label: '', op: '=', value: '' }] })}>
                Add label matcher
              </Button>
            </Stack>
          </EditorField>
        </EditorRow>
      )}
    </EditorRows>
  );
}
