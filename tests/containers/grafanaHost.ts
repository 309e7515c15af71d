/**
 * Grafana's side of the plugin for the container test: launch a built plugin executable as
 * Grafana does, press "Save & test" (CheckHealth) and run queries (QueryData) with given data
 * source settings. The one place to swap for the Go host (tests/grafana-host, Grafana's SDK as
 * the client) once it is on main; until then the TypeScript launcher and gRPC client of the
 * backend tests (src/backend/testing/) stand in.
 */
import { launchPlugin, type LaunchedPlugin } from '../support/pluginProcess.js';
import { decodeFrame, PluginClient, type DataSourceSettingsInput, type DecodedFrame, type QueryInput } from '../support/pluginClient.js';

export interface GrafanaHost {
  saveAndTest(settings: DataSourceSettingsInput): Promise<{ status: string; message: string }>;
  query(settings: DataSourceSettingsInput, queries: QueryInput[]): Promise<Record<string, { status: number; error: string; frames: DecodedFrame[] }>>;
  close(): Promise<void>;
}

export async function startGrafanaHost(executable: string): Promise<GrafanaHost> {
  const plugin: LaunchedPlugin = await launchPlugin({ executable });
  const client = new PluginClient(plugin.address);
  return {
    saveAndTest: async (settings) => {
      const { status, message } = await client.checkHealth(settings);
      return { status, message };
    },
    query: async (settings, queries) => {
      const responses = await client.queryData(settings, queries);
      return Object.fromEntries(
        Object.entries(responses).map(([refId, r]) => [refId, { status: r.status, error: r.error, frames: r.frames.map((f) => decodeFrame(f)) }]),
      );
    },
    close: async () => {
      client.close();
      await plugin.stop();
    },
  };
}
