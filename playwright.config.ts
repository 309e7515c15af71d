/**
 * @grafana/plugin-e2e specs against a running Grafana with this plugin and the provisioned
 * data source (`docker compose up`, then `npm run e2e`). Not part of CI: no Grafana runs there.
 * Uses the Chromium that Playwright finds, or CHROMIUM_PATH (e.g. /usr/bin/chromium).
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { PluginOptions } from '@grafana/plugin-e2e';
import { defineConfig, devices } from '@playwright/test';

const require = createRequire(import.meta.url);
const pluginE2eAuth = `${dirname(require.resolve('@grafana/plugin-e2e'))}/auth`;
const executablePath = process.env.CHROMIUM_PATH;

export default defineConfig<PluginOptions>({
  testDir: './tests/e2e',
  testMatch: /.*\.spec\.ts$/,
  fullyParallel: true,
  forbidOnly: !!process.env.CI,
  retries: process.env.CI ? 2 : 0,
  reporter: [['list'], ['html', { outputFolder: 'test-output/e2e-report', open: 'never' }]],
  outputDir: 'test-output/e2e',
  use: {
    baseURL: process.env.GRAFANA_URL ?? 'http://localhost:3000',
    trace: 'on-first-retry',
    provisioningRootDir: 'provisioning',
  },
  projects: [
    { name: 'auth', testDir: pluginE2eAuth, testMatch: [/.*\.js/] },
    {
      name: 'chromium',
      use: {
        ...devices['Desktop Chrome'],
        storageState: 'playwright/.auth/admin.json',
        launchOptions: executablePath ? { executablePath, args: ['--no-sandbox'] } : {},
      },
      dependencies: ['auth'],
    },
  ],
});
