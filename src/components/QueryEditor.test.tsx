// @vitest-environment jsdom
import '../../tests/setup/jsdom.js';
import { CoreApp, type DataSourceInstanceSettings } from '@grafana/data';
import { setBackendSrv, setTemplateSrv, type BackendSrv, type TemplateSrv } from '@grafana/runtime';
import { cleanup, render, screen, waitFor, within } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { useState } from 'react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { resourceFetch } from '../../tests/support/collectorConfig.js';
import { DataSource } from '../datasource.js';
import { PLUGIN_VERSION } from '../queryDefaults.js';
import { Components } from '../selectors.js';
import type { Iperf3DataQuery, Iperf3DataSourceOptions } from '../types.js';
import { QueryEditor } from './QueryEditor.js';

const UID = 'iperf3-test';
let calls: Array<{ url: string; method?: string; data?: unknown }>;

function backend(fail?: string) {
  calls = [];
  setBackendSrv({ fetch: resourceFetch(UID, calls, fail) } as unknown as BackendSrv);
}

function datasource() {
  return new DataSource({ uid: UID, id: 1, name: 'iperf3', type: 'acme-iperf3-datasource', jsonData: {}, meta: {} } as unknown as DataSourceInstanceSettings<Iperf3DataSourceOptions>);
}

function renderEditor(initial: Partial<Iperf3DataQuery>, app?: CoreApp) {
  const changes: Iperf3DataQuery[] = [];
  const onRunQuery = vi.fn();
  const ds = datasource();
  function Harness() {
    const [query, setQuery] = useState({ refId: 'A', ...initial } as Iperf3DataQuery);
    return (
      <QueryEditor
        datasource={ds}
        query={query}
        app={app}
        onRunQuery={onRunQuery}
        onChange={(q) => {
          changes.push(q);
          setQuery(q);
        }}
      />
    );
  }
  render(<Harness />);
  return { changes, last: () => changes[changes.length - 1], onRunQuery, user: userEvent.setup() };
}

beforeEach(() => {
  backend();
  setTemplateSrv({ getVariables: () => [{ name: 'device' }, { name: 'site' }], replace: (s: string) => s } as unknown as TemplateSrv);
});

describe('QueryEditor', () => {
  it('loads devices from the backend resource, shows their labels and writes the picked ones', async () => {
    const { last, onRunQuery, user } = renderEditor({ queryType: 'timeseries', devices: ['*'], metrics: ['tcp_received_bps'] });
    await waitFor(() => expect(calls.map((c) => c.url)).toContain(`/api/datasources/uid/${UID}/resources/devices`));
    await user.click(screen.getByLabelText('Devices'));
    expect(await screen.findByText('10.0.0.1:22 · site=hq, org=acme')).toBeInTheDocument();
    expect(screen.getByText('cpe7.branch.example:2222 · site=branch, org=acme · disabled')).toBeInTheDocument();
    await user.click(screen.getByText('router-hq-2'));
    expect(last()).toMatchObject({ refId: 'A', queryType: 'timeseries', devices: ['router-hq-2'], metrics: ['tcp_received_bps'], pluginVersion: PLUGIN_VERSION });
    expect(onRunQuery).toHaveBeenCalled();
  });

  it('offers dashboard variables as devices, and "All devices" replaces single picks', async () => {
    const { last, user } = renderEditor({ queryType: 'timeseries', devices: ['router-hq-1'] });
    await user.click(screen.getByLabelText('Devices'));
    await user.click(await screen.findByText('$device'));
    expect(last().devices).toEqual(['router-hq-1', '$device']);
    await user.click(screen.getByLabelText('Devices'));
    await user.click(await screen.findByText('All devices'));
    expect(last().devices).toEqual(['*']);
  });

  it('shows why devices could not be loaded', async () => {
    backend('collector unreachable');
    renderEditor({ queryType: 'timeseries' });
    expect(await screen.findByText(/Could not load devices/)).toBeInTheDocument();
  });

  it('picks metrics from the grouped catalogue', async () => {
    const { last, onRunQuery, user } = renderEditor({ queryType: 'timeseries', devices: ['*'], metrics: ['tcp_received_bps'] });
    await user.click(screen.getByLabelText('Metrics'));
    const menu = await screen.findByLabelText('Select options menu');
    expect(within(menu).getByText('TCP')).toBeInTheDocument();
    expect(within(menu).getByText('UDP (jitter, loss)')).toBeInTheDocument();
    expect(within(menu).getByText('Run (result, duration)')).toBeInTheDocument();
    await user.click(within(menu).getByText('UDP jitter'));
    expect((last() as { metrics?: string[] }).metrics).toEqual(['tcp_received_bps', 'udp_jitter_ms']);
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });

  it('offers the time since the last success (for the stale-data alert) in latest queries only', async () => {
    const { last, user } = renderEditor({ queryType: 'latest', devices: ['*'], metrics: ['result'] });
    await user.click(screen.getByLabelText('Metrics'));
    const menu = await screen.findByLabelText('Select options menu');
    await user.click(within(menu).getByText('Time since last successful run'));
    expect((last() as { metrics?: string[] }).metrics).toEqual(['result', 'last_success_age_s']);
  });

  it('does not offer derived metrics in time series queries', async () => {
    const { user } = renderEditor({ queryType: 'timeseries', devices: ['*'], metrics: ['result'] });
    await user.click(screen.getByLabelText('Metrics'));
    const menu = await screen.findByLabelText('Select options menu');
    expect(within(menu).queryByText('Time since last successful run')).not.toBeInTheDocument();
  });

  it('filters by direction and server, and splits by server', async () => {
    const { last, user } = renderEditor({ queryType: 'latest', devices: ['*'], metrics: ['udp_lost_percent'] });
    await user.click(screen.getByRole('radio', { name: 'Download' }));
    expect(last()).toMatchObject({ queryType: 'latest', direction: 'download' });
    await user.click(screen.getByLabelText('Server'));
    await user.click(await screen.findByText('Milan (192.0.2.10:5201)'));
    expect(last()).toMatchObject({ server: '192.0.2.10:5201' });
    await user.click(screen.getByTestId(Components.QueryEditor.splitByServer));
    expect(last()).toMatchObject({ splitByServer: true });
    await user.click(screen.getByRole('radio', { name: 'Both' }));
    expect((last() as { direction?: string }).direction).toBeUndefined();
  });

  it('switches to the run log with a status filter and limit', async () => {
    const { last, onRunQuery, user } = renderEditor({ queryType: 'timeseries', devices: ['*'] });
    await user.click(screen.getByRole('radio', { name: 'Run log' }));
    expect(last().queryType).toBe('runs');
    expect(screen.queryByLabelText('Metrics')).not.toBeInTheDocument();
    await user.click(screen.getByLabelText('Status'));
    await user.click(await screen.findByText('failed'));
    expect(last()).toMatchObject({ queryType: 'runs', status: ['failed'] });
    const runs = onRunQuery.mock.calls.length;
    await user.type(screen.getByTestId(Components.QueryEditor.limit), '50');
    // typing is not final: the query runs when the field is left
    expect(onRunQuery).toHaveBeenCalledTimes(runs);
    await user.tab();
    expect(last()).toMatchObject({ limit: 50 });
    expect(onRunQuery).toHaveBeenCalledTimes(runs + 1);
  });

  it('takes a run id for the intervals query', async () => {
    const { last, user } = renderEditor({ queryType: 'intervals', devices: ['router-hq-1'] });
    await user.type(screen.getByTestId(Components.QueryEditor.runId), '42');
    await user.tab();
    expect(last()).toMatchObject({ queryType: 'intervals', runId: 42 });
  });

  it('in the alert rule editor offers only numeric query types and no dashboard variables', async () => {
    const { user } = renderEditor({ queryType: 'timeseries', devices: ['*'] }, CoreApp.UnifiedAlerting);
    expect(screen.getByRole('radio', { name: 'Time series' })).toBeInTheDocument();
    expect(screen.getByRole('radio', { name: 'Latest value' })).toBeInTheDocument();
    expect(screen.queryByRole('radio', { name: 'Run log' })).not.toBeInTheDocument();
    expect(screen.queryByRole('radio', { name: 'Intervals' })).not.toBeInTheDocument();
    await user.click(screen.getByLabelText('Devices'));
    expect(await screen.findByText('router-hq-1')).toBeInTheDocument();
    expect(screen.queryByText('$device')).not.toBeInTheDocument();
  });

  it('offers Run now for the selected devices in dashboards and Explore, never in alert rules', async () => {
    const explore = renderEditor({ queryType: 'latest', devices: ['*'] }, CoreApp.Explore);
    // "*" is every enabled device the backend listed: two of the three fixture devices
    await waitFor(() => expect(screen.getByTestId(Components.QueryEditor.runNow)).toHaveTextContent('Run now (2 devices)'));
    cleanup();
    renderEditor({ queryType: 'latest', devices: ['*'] }, CoreApp.UnifiedAlerting);
    expect(screen.queryByTestId(Components.QueryEditor.runNow)).toBeNull();
    expect(explore.onRunQuery).not.toHaveBeenCalled();
  });

  it('warns when a saved query type cannot alert', () => {
    renderEditor({ queryType: 'runs', devices: ['*'] }, CoreApp.UnifiedAlerting);
    expect(screen.getByText(/Run log cannot be used in alert rules/)).toBeInTheDocument();
  });
});
