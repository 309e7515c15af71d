/** The settings in effect, and their replacement by the Grafana data source. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { API_PREFIX, type SettingsResponse } from '../../../contract/api.js';
import { pushedSettingsSchema } from '../../../contract/apiParams.js';
import { settingsResponseSchema } from '../../../contract/apiResponses.js';
import type { Settings } from '../../../contract/settings.js';
import { ERROR_RESPONSES, type RouteDeps } from './deps.js';

const MASK = '********';

/** Secrets never leave the process: an iperf3 password pushed by Grafana is masked. */
function withoutSecrets(settings: Settings): Settings {
  const auth = settings.clientOptions.auth;
  if (!auth?.password) return settings;
  return { ...settings, clientOptions: { ...settings.clientOptions, auth: { ...auth, password: MASK } } };
}

export const settingsRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { deps }) => {
  const { control, store } = deps;

  app.get(`${API_PREFIX}/settings`, { schema: { summary: 'The settings in effect (secrets masked) and where they come from', response: {  ...ERROR_RESPONSES,200: settingsResponseSchema } } }, async (): Promise<SettingsResponse> => {
    const current = control.currentSettings();
    return { ...current, settings: withoutSecrets(current.settings) };
  });

  app.put(
    `${API_PREFIX}/settings`,
    { schema: { summary: 'Replace the settings (servers, pools, client options, schedule); the Grafana data source pushes them', body: pushedSettingsSchema, response: {  ...ERROR_RESPONSES,200: settingsResponseSchema } } },
    async (request): Promise<SettingsResponse> => {
      const settings = request.body;
      // The data source pushes on every new plugin instance and every Save & test, read paths
      // included: settings equal to the stored ones change nothing (no write, no schedule restart).
      const stored = await store.settings.get();
      if (stored && control.currentSettings().source === 'api' && JSON.stringify(stored.settings) === JSON.stringify(settings)) {
        return { settings: withoutSecrets(settings), source: 'api', updatedAt: stored.updatedAt };
      }
      // saved and applied in one transaction: when applying throws, nothing is stored
      const updatedAt = await store.settings.save(settings, (at) => control.applySettings(settings, at));
      return { settings: withoutSecrets(settings), source: 'api', updatedAt };
    },
  );
};
