/**
 * A small stand-in for Grafana's plugin loader, bundled for the browser by the browser test.
 * It provides the REAL shared packages (React, @grafana/data, @grafana/ui, @grafana/runtime,
 * @emotion/css, rxjs, lodash) to an AMD `define`, loads dist/module.js with a script tag as
 * Grafana does, and renders the plugin's ConfigEditor and QueryEditor from the loaded module.
 * The plugin backend is replaced by resource fixtures (tests/fixtures/collector.ts).
 */
import * as emotionCss from '@emotion/css';
import * as grafanaData from '@grafana/data';
import { CoreApp, createTheme, type DataSourceInstanceSettings, type DataSourcePlugin, type DataSourceSettings } from '@grafana/data';
import * as grafanaRuntime from '@grafana/runtime';
import { setBackendSrv, setTemplateSrv, type BackendSrv, type TemplateSrv } from '@grafana/runtime';
import * as grafanaUi from '@grafana/ui';
import { GlobalStyles, ThemeContext } from '@grafana/ui';
import * as lodash from 'lodash';
import * as React from 'react';
import { useState } from 'react';
import * as ReactDOM from 'react-dom';
import { createRoot } from 'react-dom/client';
import * as rxjs from 'rxjs';
import type { RunProgress, RunRecord } from '../../../contract/api.js';
import { resourceFetch } from '../../support/collectorConfig.js';

type Factory = (...deps: unknown[]) => unknown;
interface Pending {
  deps: string[];
  factory: Factory;
}

const shared: Record<string, unknown> = {
  react: React,
  'react-dom': ReactDOM,
  '@grafana/data': grafanaData,
  '@grafana/ui': grafanaUi,
  '@grafana/runtime': grafanaRuntime,
  '@emotion/css': emotionCss,
  rxjs,
  lodash,
};

const w = window as unknown as Record<string, unknown>;
let pending: Pending | undefined;
const requested: string[] = [];

// An anonymous AMD define, as webpack's `libraryTarget: 'amd'` output and our module.js use.
function define(deps: string[], factory: Factory) {
  pending = { deps, factory };
}
define.amd = {};
w.define = define;

/** Loads an AMD module by URL and resolves its dependencies from the shared packages. */
function loadAmd(url: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = url;
    script.onload = () => {
      if (!pending) return reject(new Error(`${url} did not call define()`));
      const { deps, factory } = pending;
      pending = undefined;
      requested.push(...deps);
      const missing = deps.filter((d) => !(d in shared));
      if (missing.length > 0) return reject(new Error(`${url} needs modules Grafana does not share here: ${missing.join(', ')}`));
      resolve(factory(...deps.map((d) => shared[d])) as Record<string, unknown>);
    };
    script.onerror = () => reject(new Error(`could not load ${url}`));
    document.head.appendChild(script);
  });
}

const UID = 'iperf3-browser';
const calls: Array<{ url: string; method?: string; data?: unknown }> = [];

/**
 * The states a Run now goes through, step by step; the browser test sets `__host.progressStep`
 * (the editor polls runs/progress every 2 s and shows the step it gets).
 */
function runRecord(device: string, patch: Partial<RunRecord>): RunRecord {
  const startedAt = new Date(Date.now() - 20_000).toISOString();
  return { id: 43, device, server: '192.0.2.10:5201', trigger: 'manual', status: 'running', errorClass: null, message: null, startedAt, endedAt: null, tests: [], ...patch };
}
const at = new Date().toISOString();
const result = (device: string, metric: 'tcp_received_bps' | 'udp_jitter_ms' | 'udp_lost_percent', direction: 'upload' | 'download', value: number) => ({
  device,
  metric,
  server: '192.0.2.10:5201',
  direction,
  timeMs: Date.now(),
  value,
  failed: 0 as const,
});
const RUN_NOW_STEPS: Array<(device: string) => RunProgress> = [
  (device) => ({ device, state: 'queued', run: null, results: [] }),
  (device) =>
    device === 'router-hq-1'
      ? { device, state: 'running', run: runRecord(device, { current: { protocol: 'tcp', direction: 'download', index: 2, of: 4, startedAt: at } }), results: [] }
      : { device, state: 'queued', run: null, results: [] },
  (device) =>
    device === 'router-hq-1'
      ? {
          device,
          state: 'done',
          run: runRecord(device, { status: 'ok', endedAt: at }),
          results: [
            result(device, 'tcp_received_bps', 'upload', 94.2e6),
            result(device, 'tcp_received_bps', 'download', 91.7e6),
            result(device, 'udp_jitter_ms', 'download', 0.042),
            result(device, 'udp_lost_percent', 'download', 0),
          ],
        }
      : { device, state: 'running', run: runRecord(device, { current: { protocol: 'udp', direction: 'upload', index: 3, of: 4, startedAt: at } }), results: [] },
  (device) =>
    device === 'router-hq-1'
      ? RUN_NOW_STEPS[2](device)
      : {
          device,
          state: 'failed',
          run: runRecord(device, { status: 'failed', errorClass: 'server-busy', message: 'udp upload: the server is busy running a test', endedAt: at }),
          results: [],
        },
];
setBackendSrv({
  fetch: resourceFetch(UID, calls, undefined, (devices) => devices.map((d) => RUN_NOW_STEPS[Math.min(state.progressStep, RUN_NOW_STEPS.length - 1)](d))),
} as unknown as BackendSrv);
// the signed-in user as Grafana's boot data gives it to plugins: an Editor may start runs
(grafanaRuntime.config.bootData.user as { orgRole?: string }).orgRole = 'Editor';
setTemplateSrv({ getVariables: () => [{ name: 'device' }], replace: (s: string) => s } as unknown as TemplateSrv);

interface HostState {
  settings?: DataSourceSettings;
  query?: Record<string, unknown>;
  exploreQuery?: Record<string, unknown>;
  runs: number;
  progressStep: number;
  requested: string[];
  calls: typeof calls;
  error?: string;
}
const state: HostState = { runs: 0, progressStep: 0, requested, calls };
w.__host = state;

async function main() {
  const mod = await loadAmd('/dist/module.js');
  const plugin = mod.plugin as DataSourcePlugin<never>;
  const ConfigEditor = plugin.components.ConfigEditor as unknown as React.ComponentType<{ options: DataSourceSettings; onOptionsChange: (o: DataSourceSettings) => void }>;
  const QueryEditor = plugin.components.QueryEditor as unknown as React.ComponentType<Record<string, unknown>>;
  const DataSourceClass = plugin.DataSourceClass as unknown as new (s: DataSourceInstanceSettings) => unknown;
  const ds = new DataSourceClass({ uid: UID, id: 1, name: 'iperf3', type: 'iperf3-datasource', jsonData: {}, meta: {} } as unknown as DataSourceInstanceSettings);

  const initialSettings = {
    id: 1,
    uid: UID,
    name: 'iperf3',
    type: 'iperf3-datasource',
    access: 'proxy',
    jsonData: { collectorUrl: 'http://collector:8080', servers: [{ host: '192.0.2.10', port: 5201, label: 'Milan' }], schedule: { cron: '0 2 * * *', timezone: 'Europe/Rome' } },
    secureJsonFields: { apiToken: true },
    secureJsonData: {},
  } as unknown as DataSourceSettings;

  function App() {
    const [settings, setSettings] = useState(initialSettings);
    const [query, setQuery] = useState<Record<string, unknown>>({ refId: 'A', queryType: 'timeseries', devices: ['*'], metrics: ['tcp_received_bps'] });
    const [exploreQuery, setExploreQuery] = useState<Record<string, unknown>>({ refId: 'A', queryType: 'latest', devices: ['router-hq-1'], metrics: ['tcp_received_bps'] });
    return (
      <ThemeContext.Provider value={createTheme({ colors: { mode: 'light' } })}>
        <GlobalStyles />
        <div style={{ padding: 16, maxWidth: 1100 }}>
          <section id="config-editor">
            <h2>Data source settings</h2>
            <ConfigEditor
              options={settings}
              onOptionsChange={(o) => {
                state.settings = o;
                setSettings(o);
              }}
            />
          </section>
          <section id="query-editor" style={{ marginTop: 32 }}>
            <h2>Query editor</h2>
            <QueryEditor
              datasource={ds}
              query={query}
              onChange={(q: Record<string, unknown>) => {
                state.query = q;
                setQuery(q);
              }}
              onRunQuery={() => {
                state.runs += 1;
              }}
            />
          </section>
          <section id="explore-editor" style={{ marginTop: 32 }}>
            <h2>Explore</h2>
            <QueryEditor
              datasource={ds}
              query={exploreQuery}
              app={CoreApp.Explore}
              onChange={(q: Record<string, unknown>) => {
                state.exploreQuery = q;
                setExploreQuery(q);
              }}
              onRunQuery={() => {
                state.runs += 1;
              }}
            />
          </section>
        </div>
      </ThemeContext.Provider>
    );
  }
  createRoot(document.getElementById('root')!).render(<App />);
}

main().catch((e: unknown) => {
  state.error = e instanceof Error ? e.message : String(e);
  document.body.setAttribute('data-host-error', state.error);
});
