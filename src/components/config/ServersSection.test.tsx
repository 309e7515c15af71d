// @vitest-environment jsdom
import '../../../tests/setup/jsdom.js';
import { render, screen } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { useState } from 'react';
import { describe, expect, it } from 'vitest';
import type { SettingsInput } from '../../../contract/settings.js';
import { Components } from '../../selectors.js';
import { ServersSection } from './ServersSection.js';

type Servers = SettingsInput['servers'];

function renderSection(initial: Servers, errors: Record<string, string> = {}) {
  const changes: Servers[] = [];
  function Harness() {
    const [servers, setServers] = useState(initial);
    return <ServersSection servers={servers} errors={errors} onChange={(s) => (changes.push(s), setServers(s))} />;
  }
  render(<Harness />);
  return { last: () => changes.at(-1), user: userEvent.setup() };
}

describe('ServersSection', () => {
  it('adds a server on the default port and edits host, port and label', async () => {
    const { last, user } = renderSection([]);
    await user.click(screen.getByRole('button', { name: /Add server/ }));
    expect(last()).toEqual([{ host: '', port: 5201 }]);
    await user.type(screen.getByTestId(Components.ConfigEditor.serverHost(0)), 'a.example');
    await user.type(screen.getByTestId(Components.ConfigEditor.serverLabel(0)), 'A');
    await user.clear(screen.getByTestId(Components.ConfigEditor.serverPort(0)));
    expect(last()).toEqual([{ host: 'a.example', label: 'A', port: undefined }]);
    await user.type(screen.getByTestId(Components.ConfigEditor.serverPort(0)), 'x1');
    expect(last()?.[0].port).toBe('x1');
  });

  it('removes the server whose button is pressed', async () => {
    const { last, user } = renderSection([{ host: 'a.example' }, { host: 'b.example' }]);
    await user.click(screen.getByRole('button', { name: 'Remove server 1' }));
    expect(last()).toEqual([{ host: 'b.example' }]);
  });

  it('shows list and field errors where they belong', () => {
    renderSection([{ host: 'bad host' }], { servers: 'add at least one iperf3 server', 'servers.0.host': 'must be an IPv4 address, an IPv6 address or a DNS name' });
    expect(screen.getByText('add at least one iperf3 server')).toBeInTheDocument();
    expect(screen.getByText('must be an IPv4 address, an IPv6 address or a DNS name')).toBeInTheDocument();
  });
});
