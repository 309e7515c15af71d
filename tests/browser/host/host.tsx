/**
 * A small stand-in for Grafana's plugin loader, bundled for the browser by the browser test.
 * It provides the REAL shared packages (React, @grafana/data, @grafana/ui, @grafana/runtime,
 * @emotion/css, rxjs, lodash) to an AMD `define`, loads dist/module.js with a script tag as
 * Grafana does, and renders the plugin's ConfigEditor and QueryEditor from the loaded module.
 * The plugin backend is replaced by resource fixtures (tests/fixtures/collector.ts).
 */
import * as emotionCss from '@emotion/css';
import * as grafanaData from '@grafana/data';
import { createTheme, type DataSourceInstanceSettings, type DataSourcePlugin, type DataSourceSettings } from '@grafana/data';
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
setBackendSrv({ fetch: resourceFetch(UID, calls) } as unknown as BackendSrv);
setTemplateSrv({ getVariables: () => [{ name: 'device' }], replace: (s: string) => s } as unknown as TemplateSrv);

interface HostState {
  settings?: DataSourceSettings;
  query?: Record<string, unknown>;
  runs: number;
  requested: string[];
  calls: typeof calls;
  error?: string;
}
const state: HostState = { runs: 0, requested, calls };
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
