/**
 * Grafana's side of the plugin for the container test: launch a built plugin executable as
 * Grafana does, press "Save & test" (CheckHealth) and run queries (/api/ds/query) with given
 * data source settings. The one place that picks the host: tests/grafana-host (Go, on Grafana's
 * plugin SDK and go-plugin, frames read back with @grafana/data), announcing the Grafana version
 * of the compose file's Grafana image.
 */
import type { DataFrame } from '@grafana/data';
import { GrafanaHost as GoHost, type HostDataSource, type HostQuery } from '../support/grafanaHost.js';

export interface GrafanaHost {
  saveAndTest(settings: HostDataSource): Promise<{ status: string; message: string }>;
  query(settings: HostDataSource, queries: HostQuery[]): Promise<Record<string, { status: number; error?: string; frames: DataFrame[] }>>;
  close(): Promise<void>;
}

export function startGrafanaHost(executable: string, grafanaVersion: string): GrafanaHost {
  const host = GoHost.start({ plugin: executable, grafanaVersion });
  return {
    saveAndTest: async (settings) => {
      const { status, message } = await host.checkHealth(settings);
      return { status, message };
    },
    query: (settings, queries) => host.query(settings, queries),
    close: async () => {
      await host.close();
    },
  };
}
