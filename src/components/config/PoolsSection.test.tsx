// @vitest-environment jsdom
import '../../../tests/setup/jsdom.js';
import type { DataSourceSettings } from '@grafana/data';
import { render, screen, within } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { useState } from 'react';
import { describe, expect, it } from 'vitest';
import { settingsSchema, SETTINGS_LIMITS } from '../../../contract/settings.js';
import { Components } from '../../selectors.js';
import type { Iperf3DataSourceOptions } from '../../types.js';
import { ConfigEditor } from '../ConfigEditor.js';
import { poolNameErrors, toRecord } from './PoolsSection.js';

const C = Components.ConfigEditor;
type Options = DataSourceSettings<Iperf3DataSourceOptions>;

/** The whole config editor, so that the field errors are the shared schema's. */
function renderEditor(jsonData: Iperf3DataSourceOptions) {
  const changes: Options[] = [];
  function Harness() {
    const [options, setOptions] = useState({ id: 1, uid: 'p', name: 'iperf3', type: 'x', jsonData, secureJsonFields: {}, secureJsonData: {} } as unknown as Options);
    return <ConfigEditor options={options} onOptionsChange={(o) => (changes.push(o as Options), setOptions(o as Options))} />;
  }
  render(<Harness />);
  return { pools: () => changes.at(-1)?.jsonData.pools, user: userEvent.setup() };
}

const BASE = { collectorUrl: 'http://collector:8080', servers: [{ host: '192.0.2.10', port: 5201 }] };

describe('PoolsSection', () => {
  it('adds a named pool with its servers; the stored record is what the collector accepts', async () => {
    const { pools, user } = renderEditor(BASE);
    expect(screen.getByText('No pools: every device tests against the servers above.')).toBeInTheDocument();
    await user.click(screen.getByTestId(C.addPool));
    // a new pool is not stored until it has a name, and says so
    expect(pools()).toEqual({});
    expect(screen.getByText(/a pool needs a name, e.g. edge-eu/)).toBeInTheDocument();
    await user.type(screen.getByTestId(C.poolName(0)), 'edge-eu');
    await user.type(screen.getByTestId(C.poolServerHost(0, 0)), '198.51.100.7');
    await user.click(screen.getByTestId(C.addPoolServer(0)));
    await user.type(screen.getByTestId(C.poolServerHost(0, 1)), 'iperf.edge.example');
    await user.clear(screen.getByTestId(C.poolServerPort(0, 1)));
    await user.type(screen.getByTestId(C.poolServerPort(0, 1)), '5202');
    await user.type(screen.getByTestId(C.poolServerLabel(0, 1)), 'Edge 2');
    expect(pools()).toEqual({
      'edge-eu': [
        { host: '198.51.100.7', port: 5201 },
        { host: 'iperf.edge.example', port: 5202, label: 'Edge 2' },
      ],
    });
    expect(settingsSchema.parse({ servers: BASE.servers, pools: pools() }).pools['edge-eu']).toHaveLength(2);
    await user.click(screen.getByRole('button', { name: 'Remove server 1 of pool edge-eu' }));
    expect(pools()).toEqual({ 'edge-eu': [{ host: 'iperf.edge.example', port: 5202, label: 'Edge 2' }] });
  });

  it('shows the schema\'s errors at the pool\'s fields: bad name, bad host, a pool without servers', async () => {
    const { user } = renderEditor({ ...BASE, pools: { 'edge eu': [{ host: '10.0.0.1' }], empty: [], hosts: [{ host: '999.1.1.1' }] } });
    expect(within(screen.getByTestId(C.pool(0))).getByText('pool names use letters, digits, . _ -')).toBeInTheDocument();
    expect(within(screen.getByTestId(C.pool(1))).getByText('a pool needs at least one server')).toBeInTheDocument();
    expect(within(screen.getByTestId(C.pool(2))).getByText('must be an IPv4 address, an IPv6 address or a DNS name')).toBeInTheDocument();
    await user.clear(screen.getByTestId(C.poolName(0)));
    await user.type(screen.getByTestId(C.poolName(0)), 'edge-eu');
    expect(within(screen.getByTestId(C.pool(0))).queryByText('pool names use letters, digits, . _ -')).toBeNull();
  });

  it('keeps a pool under its stored name while its new name is empty or taken, and renames it once the name is free', async () => {
    const { pools, user } = renderEditor({ ...BASE, pools: { a: [{ host: '10.0.0.1' }], b: [{ host: '10.0.0.2' }] } });
    await user.clear(screen.getByTestId(C.poolName(1)));
    expect(pools()).toEqual({ a: [{ host: '10.0.0.1' }], b: [{ host: '10.0.0.2' }] });
    await user.type(screen.getByTestId(C.poolName(1)), 'a');
    expect(within(screen.getByTestId(C.pool(1))).getByText('"a" is the name of another pool: each pool needs its own name')).toBeInTheDocument();
    expect(pools()).toEqual({ a: [{ host: '10.0.0.1' }], b: [{ host: '10.0.0.2' }] });
    await user.type(screen.getByTestId(C.poolName(1)), '2');
    expect(pools()).toEqual({ a: [{ host: '10.0.0.1' }], a2: [{ host: '10.0.0.2' }] });
    await user.click(screen.getByRole('button', { name: 'Remove pool a' }));
    expect(pools()).toEqual({ a2: [{ host: '10.0.0.2' }] });
  });

  it('judges names against earlier typed names and every stored name', () => {
    expect(poolNameErrors([{ name: 'x', stored: 'x' }, { name: ' x ', stored: null }, { name: '', stored: 'y' }, { name: 'y', stored: null }])).toEqual({
      1: '"x" is the name of another pool: each pool needs its own name',
      2: 'a pool needs a name, e.g. edge-eu (devices refer to it as pool: edge-eu)',
      3: '"y" is the name of another pool: each pool needs its own name',
    });
    const { pools } = toRecord([{ name: '', stored: 'y', group: '', servers: [] }, { name: 'z ', stored: null, group: '', servers: [] }, { name: '', stored: null, group: '', servers: [] }]);
    expect(pools).toEqual({ y: [], z: [] });
  });

  it('pins a pool to a collector group and back, keeping a pinned pool as it was stored, with the schema\'s errors at its fields', async () => {
    const pinned = { 'eu-servers': { group: 'eu', servers: [{ host: '10.0.0.1', port: 5201 }] }, bad: { group: 'no spaces', servers: [{ host: '999.1.1.1' }] } };
    const { pools, user } = renderEditor({ ...BASE, pools: pinned });
    expect(screen.getByTestId(C.poolGroup(0))).toHaveValue('eu');
    expect(within(screen.getByTestId(C.pool(1))).getByText('group names use letters, digits, . _ -')).toBeInTheDocument();
    expect(within(screen.getByTestId(C.pool(1))).getByText('must be an IPv4 address, an IPv6 address or a DNS name')).toBeInTheDocument();
    await user.clear(screen.getByTestId(C.poolGroup(0)));
    expect(pools()?.['eu-servers']).toEqual([{ host: '10.0.0.1', port: 5201 }]);
    await user.type(screen.getByTestId(C.poolGroup(0)), 'us');
    expect(pools()?.['eu-servers']).toEqual({ group: 'us', servers: [{ host: '10.0.0.1', port: 5201 }] });
    expect(settingsSchema.parse({ servers: BASE.servers, pools: { 'eu-servers': pools()?.['eu-servers'] } }).pools['eu-servers']).toEqual({
      group: 'us',
      servers: [{ host: '10.0.0.1', port: 5201 }],
    });
  });

  it(`offers no more than ${SETTINGS_LIMITS.pools} pools`, async () => {
    const many = Object.fromEntries(Array.from({ length: SETTINGS_LIMITS.pools }, (_, i) => [`p${i}`, [{ host: '10.0.0.1' }]]));
    const { pools, user } = renderEditor({ ...BASE, pools: many });
    // with a tooltip that says why, Grafana's Button is aria-disabled and ignores clicks
    expect(screen.getByTestId(C.addPool)).toHaveAttribute('aria-disabled', 'true');
    await user.click(screen.getByTestId(C.addPool));
    expect(pools()).toBeUndefined();
  });
});
