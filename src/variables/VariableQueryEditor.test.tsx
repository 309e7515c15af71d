// @vitest-environment jsdom
import '../../tests/setup/jsdom.js';
import { render, screen } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { useState } from 'react';
import { describe, expect, it } from 'vitest';
import type { DataSource } from '../datasource.js';
import type { DeviceVariableQuery } from '../types.js';
import { VariableQueryEditor } from './VariableQueryEditor.js';

function renderEditor(initial: Partial<DeviceVariableQuery> = {}) {
  const changes: DeviceVariableQuery[] = [];
  function Harness() {
    const [query, setQuery] = useState({ refId: 'variable', ...initial } as DeviceVariableQuery);
    return (
      <VariableQueryEditor
        datasource={{} as DataSource}
        query={query}
        onRunQuery={() => {}}
        onChange={(q) => {
          changes.push(q);
          setQuery(q);
        }}
      />
    );
  }
  render(<Harness />);
  return { last: () => changes[changes.length - 1], user: userEvent.setup() };
}

describe('VariableQueryEditor', () => {
  it('lists devices by default, narrowed by label matchers', async () => {
    const { last, user } = renderEditor();
    expect(screen.getByRole('radio', { name: 'Devices' })).toBeChecked();
    await user.click(screen.getByRole('button', { name: /Add label matcher/ }));
    await user.type(screen.getByLabelText('matcher 1 label'), 'site');
    await user.type(screen.getByLabelText('matcher 1 value'), '$site');
    expect(last()).toMatchObject({ kind: 'devices', labelMatchers: [{ label: 'site', op: '=', value: '$site' }] });
    await user.click(screen.getByLabelText('matcher 1 operator'));
    await user.click(await screen.findByText('=~'));
    expect(last().labelMatchers?.[0].op).toBe('=~');
    await user.click(screen.getByLabelText('remove matcher 1'));
    expect(last().labelMatchers).toEqual([]);
  });

  it('lists the values of a label', async () => {
    const { last, user } = renderEditor();
    await user.click(screen.getByRole('radio', { name: 'Label values' }));
    await user.type(screen.getByRole('textbox', { name: 'Label' }), 'site');
    expect(last()).toMatchObject({ kind: 'labelValues', label: 'site' });
  });

  it('lists servers, without label matchers', async () => {
    const { last, user } = renderEditor({ kind: 'devices' });
    await user.click(screen.getByRole('radio', { name: 'Servers' }));
    expect(last().kind).toBe('servers');
    expect(screen.queryByRole('button', { name: /Add label matcher/ })).not.toBeInTheDocument();
  });
});
