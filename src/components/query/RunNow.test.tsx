// @vitest-environment jsdom
import '../../../tests/setup/jsdom.js';
import type { DataSourceInstanceSettings } from '@grafana/data';
import { config, setBackendSrv, setTemplateSrv, type BackendSrv, type TemplateSrv } from '@grafana/runtime';
import { render, screen, waitFor, within } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { of, throwError } from 'rxjs';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_RUN_NOW_DEVICES, type LatestValue, type RunProgress, type RunRecord } from '../../../contract/api.js';
import { DEVICES } from '../../../tests/support/collectorConfig.js';
import { DataSource } from '../../datasource.js';
import { Components } from '../../selectors.js';
import type { Iperf3DataQuery, Iperf3DataSourceOptions } from '../../types.js';
import { canStartRuns, currentOrgRole, describeProgress, describeResults, FOLLOW_AT_MOST_MS, RunNow, runNowTargets } from './RunNow.js';

const UID = 'run-now';
type Call = { url: string; method?: string; data?: unknown; params?: Record<string, unknown> };
let calls: Call[];
/** answers of runs/progress, in order; the last one repeats */
let progressAnswers: Array<RunProgress[] | Error>;
let postAnswer: () => unknown;
/** while true, runs/progress repeats its current answer (so that a test sees that state) */
let holdProgress = false;

function run(device: string, patch: Partial<RunRecord>): RunRecord {
  return { id: 8, device, server: null, trigger: 'manual', status: 'running', errorClass: null, message: null, startedAt: '2026-01-01T00:00:00.000Z', endedAt: null, tests: [], ...patch };
}
const value = (device: string, metric: LatestValue['metric'], direction: LatestValue['direction'], v: number): LatestValue => ({ device, metric, server: '10.0.0.1:5201', direction, timeMs: 1, value: v, failed: 0 });

beforeEach(() => {
  calls = [];
  progressAnswers = [];
  holdProgress = false;
  postAnswer = () => ({ queued: ['router-hq-1', 'router-hq-2'], after: 7 });
  setTemplateSrv({ getVariables: () => [], replace: (s: string) => (s === '$dev' ? 'router-hq-2' : s) } as unknown as TemplateSrv);
  setBackendSrv({
    fetch: (options: Call) => {
      calls.push(options);
      const path = options.url.replace(`/api/datasources/uid/${UID}/resources/`, '');
      if (path === 'runs' && options.method === 'POST') {
        try {
          return of({ data: postAnswer(), status: 202, ok: true });
        } catch (e) {
          return throwError(() => e);
        }
      }
      if (path === 'runs/progress') {
        const next = progressAnswers.length > 1 && !holdProgress ? progressAnswers.shift()! : progressAnswers[0];
        return next instanceof Error ? throwError(() => ({ status: 502, data: { message: next.message } })) : of({ data: { devices: next }, status: 200, ok: true });
      }
      return throwError(() => ({ status: 404, data: { message: `no fixture for ${path}` } }));
    },
  } as unknown as BackendSrv);
});

function ds() {
  return new DataSource({ uid: UID, id: 1, name: 'iperf3', type: 'acme-iperf3-datasource', jsonData: {}, meta: {} } as unknown as DataSourceInstanceSettings<Iperf3DataSourceOptions>);
}

function renderRunNow(query: Partial<Iperf3DataQuery>, role = 'Editor') {
  const onRunQuery = vi.fn();
  const q = { refId: 'A', queryType: 'timeseries', devices: ['router-hq-1', 'router-hq-2'], ...query } as Iperf3DataQuery;
  const view = render(<RunNow datasource={ds()} query={q} inventory={DEVICES} onRunQuery={onRunQuery} role={role} pollIntervalMs={5} />);
  return { onRunQuery, user: userEvent.setup(), view };
}

const progressItems = () => within(screen.getByTestId(Components.QueryEditor.runNowProgress)).getAllByRole('listitem').map((li) => [li.dataset.state, li.textContent]);

describe('RunNow', () => {
  it('starts the selected devices as an Editor, shows queued, running (which test), done and failed, then refreshes the panel once', async () => {
    const current = { protocol: 'udp' as const, direction: 'download' as const, index: 4, of: 4, startedAt: '2026-01-01T00:00:40.000Z' };
    progressAnswers = [
      [
        { device: 'router-hq-1', state: 'queued', run: null, results: [] },
        { device: 'router-hq-2', state: 'running', run: run('router-hq-2', { current }), results: [] },
      ],
      [
        { device: 'router-hq-1', state: 'running', run: run('router-hq-1', {}), results: [] },
        { device: 'router-hq-2', state: 'running', run: run('router-hq-2', { current }), results: [] },
      ],
      [
        { device: 'router-hq-1', state: 'failed', run: run('router-hq-1', { status: 'failed', errorClass: 'server-busy', message: 'the server is busy' }), results: [] },
        { device: 'router-hq-2', state: 'done', run: run('router-hq-2', { status: 'ok' }), results: [value('router-hq-2', 'tcp_received_bps', 'upload', 94.1e6), value('router-hq-2', 'tcp_received_bps', 'download', 93e6)] },
      ],
    ];
    const { onRunQuery, user } = renderRunNow({});
    const button = screen.getByTestId(Components.QueryEditor.runNow);
    expect(button).toHaveTextContent('Run now (2 devices)');
    holdProgress = true;
    await user.click(button);
    expect(calls[0]).toMatchObject({ method: 'POST', data: { devices: ['router-hq-1', 'router-hq-2'] } });
    await screen.findByText('running: UDP download (test 4 of 4)');
    expect(progressItems()).toEqual([
      ['queued', 'router-hq-1queued: waiting for a free iperf3 server'],
      ['running', 'router-hq-2running: UDP download (test 4 of 4)'],
    ]);
    expect(screen.getByTestId(Components.QueryEditor.runNow)).toBeDisabled();
    holdProgress = false;
    await waitFor(() => expect(progressItems()).toEqual([
      ['failed', 'router-hq-1failed: server-busy (the server is busy)'],
      ['done', 'router-hq-2done: upload 94.1 Mb/s, download 93.0 Mb/s'],
    ]));
    expect(await screen.findByText('Finished: the panel has been refreshed.')).toBeInTheDocument();
    expect(onRunQuery).toHaveBeenCalledTimes(1);
    const polls = calls.filter((c) => c.url.endsWith('runs/progress'));
    expect(polls.length).toBeGreaterThanOrEqual(3);
    expect(polls[0].params).toEqual({ device: ['router-hq-1', 'router-hq-2'], after: 7 });
    // the button is back for another run
    expect(screen.getByTestId(Components.QueryEditor.runNow)).toBeEnabled();
  });

  it('is disabled for a Viewer and says why, without calling the backend', async () => {
    const { user } = renderRunNow({}, 'Viewer');
    const button = screen.getByTestId(Components.QueryEditor.runNow);
    expect(button).toBeDisabled();
    expect(screen.getByTestId(Components.QueryEditor.runNowReason)).toHaveTextContent(
      'Starting runs needs the Editor or Admin role in this organization (your role is Viewer); ask an Editor or Admin.',
    );
    await user.click(button);
    expect(calls).toEqual([]);
  });

  it('shows the backend\'s refusal (403, 409) with its message', async () => {
    postAnswer = () => {
      throw { status: 409, data: { message: 'already queued or running: router-hq-1' } };
    };
    const { user, onRunQuery } = renderRunNow({});
    await user.click(screen.getByTestId(Components.QueryEditor.runNow));
    expect(await screen.findByTestId(Components.QueryEditor.runNowError)).toHaveTextContent('already queued or running: router-hq-1');
    expect(onRunQuery).not.toHaveBeenCalled();
  });

  it('keeps following through a failed poll, and gives up after several with the reason', async () => {
    progressAnswers = [new Error('collector restarting'), [{ device: 'router-hq-1', state: 'done', run: run('router-hq-1', { status: 'ok' }), results: [] }]];
    const first = renderRunNow({ devices: ['router-hq-1'] });
    await first.user.click(screen.getByTestId(Components.QueryEditor.runNow));
    await screen.findByText('Finished: the panel has been refreshed.');
    expect(progressItems()).toEqual([['done', 'router-hq-1done: no values stored']]);
    first.view.unmount();

    progressAnswers = [new Error('collector gone')];
    const second = renderRunNow({ devices: ['router-hq-1'] });
    await second.user.click(screen.getByTestId(Components.QueryEditor.runNow));
    expect(await screen.findByTestId(Components.QueryEditor.runNowError)).toHaveTextContent(
      'Lost track of the runs: collector gone. They go on in the collector; run the query later to see them.',
    );
    expect(second.onRunQuery).not.toHaveBeenCalled();
  });

  it('stops following after an hour, refreshing the panel, while the runs go on', async () => {
    progressAnswers = [[{ device: 'router-hq-1', state: 'queued', run: null, results: [] }]];
    const { user, onRunQuery } = renderRunNow({ devices: ['router-hq-1'] });
    const realNow = Date.now;
    await user.click(screen.getByTestId(Components.QueryEditor.runNow));
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + FOLLOW_AT_MOST_MS + 1000);
    try {
      expect(await screen.findByText('Stopped following after an hour; the runs go on in the collector.')).toBeInTheDocument();
      expect(onRunQuery).toHaveBeenCalledTimes(1);
    } finally {
      clock.mockRestore();
    }
  });

  it('rejects a backend answer that breaks the contract', async () => {
    postAnswer = () => ({ queued: 'router-hq-1' });
    const { user } = renderRunNow({});
    await user.click(screen.getByTestId(Components.QueryEditor.runNow));
    expect(await screen.findByTestId(Components.QueryEditor.runNowError)).toHaveTextContent("the plugin backend's answer to runs does not match this frontend's contract");
  });

  it('stops polling when the editor goes away', async () => {
    progressAnswers = [[{ device: 'router-hq-1', state: 'queued', run: null, results: [] }]];
    const { user, view } = renderRunNow({ devices: ['router-hq-1'] });
    await user.click(screen.getByTestId(Components.QueryEditor.runNow));
    await waitFor(() => expect(calls.filter((c) => c.url.endsWith('runs/progress')).length).toBeGreaterThan(0));
    view.unmount();
    const count = calls.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(calls.length).toBeLessThanOrEqual(count + 1);
  });
});

describe('Run now targets and texts', () => {
  it('expands * to the enabled devices, applies label matchers and variables, and keeps unknown ids for the collector to name', () => {
    expect(runNowTargets(['*'], [], DEVICES)).toEqual(['router-hq-1', 'router-hq-2']);
    expect(runNowTargets(['*'], [{ label: 'site', op: '=', value: 'branch' }], DEVICES)).toEqual([]);
    expect(runNowTargets(['router-hq-1', 'ghost'], [{ label: 'site', op: '!=', value: 'hq' }], DEVICES)).toEqual(['ghost']);
    expect(runNowTargets(['*'], [{ label: 'site', op: '=~', value: '(' }], DEVICES)).toEqual([]);
    expect(runNowTargets(['*'], [], undefined)).toEqual([]);
  });

  it('counts the devices a query with a variable selects, and refuses more than the limit', () => {
    const { view } = renderRunNow({ devices: ['$dev'] });
    expect(screen.getByTestId(Components.QueryEditor.runNow)).toHaveTextContent('Run now (1 device)');
    view.unmount();
    const fleet = Array.from({ length: MAX_RUN_NOW_DEVICES + 1 }, (_, i) => ({ ...DEVICES[0], id: `cpe-${i}` }));
    const q = { refId: 'A', queryType: 'timeseries', devices: ['*'] } as Iperf3DataQuery;
    render(<RunNow datasource={ds()} query={q} inventory={fleet} onRunQuery={() => {}} role="Admin" />);
    expect(screen.getByTestId(Components.QueryEditor.runNow)).toBeDisabled();
    expect(screen.getByTestId(Components.QueryEditor.runNowReason)).toHaveTextContent(
      `The query selects ${MAX_RUN_NOW_DEVICES + 1} devices; Run now tests at most ${MAX_RUN_NOW_DEVICES} at once: narrow it with devices or label matchers.`,
    );
  });

  it('asks for devices first when none is selected', () => {
    renderRunNow({ devices: [] });
    expect(screen.getByTestId(Components.QueryEditor.runNowReason)).toHaveTextContent('Select the devices to test first.');
  });

  it('reads the role from Grafana\'s boot data', () => {
    const user = config.bootData.user as { orgRole?: string };
    const saved = user.orgRole;
    try {
      user.orgRole = 'Admin';
      expect(currentOrgRole()).toBe('Admin');
      expect(canStartRuns(currentOrgRole())).toBe(true);
      user.orgRole = undefined;
      expect(currentOrgRole()).toBe('');
      expect(canStartRuns('')).toBe(false);
      expect(canStartRuns('Viewer')).toBe(false);
    } finally {
      user.orgRole = saved;
    }
  });

  it('describes results and states', () => {
    expect(
      describeResults([
        value('r', 'tcp_received_bps', 'upload', 1.5e9),
        value('r', 'udp_jitter_ms', 'download', 0.0512),
        value('r', 'udp_lost_percent', 'download', 0.25),
        { ...value('r', 'tcp_received_bps', 'download', 0), failed: 1 },
      ]),
    ).toBe('upload 1.5 Gb/s; UDP download jitter 0.05 ms, download loss 0.25 %');
    expect(describeProgress({ device: 'r', state: 'running', run: null, results: [] })).toBe('running: connecting to the device');
    expect(describeProgress({ device: 'r', state: 'queued', run: null, results: [] })).toBe('queued: waiting for a free iperf3 server');
    expect(describeProgress({ device: 'r', state: 'failed', run: run('r', { status: 'skipped', errorClass: 'unreachable' }), results: [] })).toBe('skipped: unreachable');
  });
});
