/**
 * Loads the built dist/module.js in headless Debian Chromium the way Grafana does (an AMD
 * module whose dependencies are Grafana's shared packages), renders the plugin's
 * ConfigEditor and QueryEditor, edits a server and picks a device, and saves screenshots
 * under test-output/screenshots/ for a reviewer.
 */
import * as esbuild from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Components } from '../../src/selectors.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const hostDir = join(root, 'test-output', 'browser-host');
const screenshots = join(root, 'test-output', 'screenshots');
const CHROMIUM = '/usr/bin/chromium';

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html', '.svg': 'image/svg+xml', '.map': 'application/json' };

/** Serves the host page, dist/module.js and @grafana/ui's icons where Grafana serves them. */
function serve(): Promise<Server> {
  const routes: Array<[string, string]> = [
    ['/dist/', join(root, 'dist')],
    ['/public/build/img/icons/', join(root, 'node_modules/@grafana/ui/dist/public/img/icons')],
    ['/', hostDir],
  ];
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://host').pathname);
    const route = routes.find(([prefix]) => path.startsWith(prefix))!;
    const file = normalize(join(route[1], path.slice(route[0].length) || 'index.html'));
    if (!file.startsWith(route[1])) return res.writeHead(403).end();
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function buildHost() {
  await mkdir(hostDir, { recursive: true });
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: ['tests/browser/host/host.tsx'],
    outfile: join(hostDir, 'host.js'),
    bundle: true,
    format: 'iife',
    platform: 'browser',
    jsx: 'automatic',
    target: ['es2022'],
    minify: true,
    logLevel: 'error',
    define: { 'process.env.NODE_ENV': '"production"', global: 'window' },
    loader: { '.svg': 'text', '.woff': 'empty', '.woff2': 'empty', '.ttf': 'empty', '.png': 'empty' },
  });
  const css = existsSync(join(hostDir, 'host.css')) ? '<link rel="stylesheet" href="/host.css">' : '';
  await writeFile(
    join(hostDir, 'index.html'),
    `<!doctype html><html><head><meta charset="utf-8"><title>iperf3 plugin host</title>${css}</head><body><div id="root"></div><script src="/host.js"></script></body></html>`,
  );
}

let server: Server;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  // Always rebuild module.js: a stale build would test old code. It takes seconds.
  execFileSync(process.execPath, [join(root, 'scripts/build-frontend.mjs')], { cwd: root, stdio: 'inherit' });
  await buildHost();
  await mkdir(screenshots, { recursive: true });
  server = await serve();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const { port } = server.address() as AddressInfo;
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForSelector(`[data-testid="${Components.ConfigEditor.collectorUrl}"]`, { timeout: 30_000 });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
});

const host = () => page.evaluate(() => (window as unknown as { __host: Record<string, unknown> }).__host);

describe('dist/module.js in Chromium, loaded as Grafana loads plugins', () => {
  it('is an AMD module that asks only for packages Grafana shares', async () => {
    const state = await host();
    expect(state.error).toBeUndefined();
    expect(state.requested).toEqual(expect.arrayContaining(['@grafana/data', '@grafana/ui', '@grafana/runtime', 'react']));
    expect(pageErrors).toEqual([]);
  });

  it('renders the config editor with the saved settings; a configured token stays hidden', async () => {
    await expect(page.getByTestId(Components.ConfigEditor.collectorUrl).inputValue()).resolves.toBe('http://collector:8080');
    await expect(page.getByTestId(Components.ConfigEditor.serverHost(0)).inputValue()).resolves.toBe('192.0.2.10');
    await expect(page.getByTestId(Components.ConfigEditor.apiToken).inputValue()).resolves.toBe('configured');
    await expect(page.getByTestId(Components.ConfigEditor.nextRuns).locator('li').count()).resolves.toBe(5);
    await page.locator('#config-editor').screenshot({ path: join(screenshots, 'config-editor.png') });
  });

  it('edits a server: a bad host is shown at the field, a good one lands in jsonData', async () => {
    await page.getByTestId(Components.ConfigEditor.addServer).click();
    const host1 = page.getByTestId(Components.ConfigEditor.serverHost(1));
    await host1.fill('999.1.1.1');
    await page.getByTestId(Components.ConfigEditor.serverPort(1)).fill('70000');
    await expect(page.getByText('must be an IPv4 address, an IPv6 address or a DNS name').isVisible()).resolves.toBe(true);
    await expect(page.getByText('must be a whole number from 1 to 65535').isVisible()).resolves.toBe(true);
    await page.getByTestId(Components.ConfigEditor.servers).screenshot({ path: join(screenshots, 'config-servers-invalid.png') });
    await host1.fill('2001:db8::20');
    await page.getByTestId(Components.ConfigEditor.serverPort(1)).fill('5202');
    await page.getByTestId(Components.ConfigEditor.serverLabel(1)).fill('Rome');
    const state = (await host()) as { settings: { jsonData: { servers: unknown[] } } };
    expect(state.settings.jsonData.servers).toEqual([
      { host: '192.0.2.10', port: 5201, label: 'Milan' },
      { host: '2001:db8::20', port: 5202, label: 'Rome' },
    ]);
    await expect(page.getByText('must be an IPv4 address, an IPv6 address or a DNS name').count()).resolves.toBe(0);
    await page.getByTestId(Components.ConfigEditor.servers).screenshot({ path: join(screenshots, 'config-servers.png') });
  });

  it('shows the provisioning YAML with the token masked', async () => {
    await page.getByTestId(Components.ConfigEditor.showYaml).click();
    const yaml = await page.getByTestId(Components.ConfigEditor.yaml).textContent();
    expect(yaml).toContain('collectorUrl: http://collector:8080');
    expect(yaml).toContain('apiToken: http://collector:8080 ${IPERF3_API_TOKEN}');
    await page.screenshot({ path: join(screenshots, 'config-provisioning-yaml.png') });
    await page.getByRole('button', { name: 'Close', exact: true }).first().click();
  });

  it('renders the query editor, loads devices from the backend and writes the picked device', async () => {
    const editor = page.locator('#query-editor');
    await editor.scrollIntoViewIfNeeded();
    await page.locator('#iperf3-query-devices').click();
    await page.getByText('10.0.0.2:22 · site=hq, org=acme').waitFor();
    await page.screenshot({ path: join(screenshots, 'query-editor-devices.png') });
    await page.getByText('router-hq-2', { exact: true }).click();
    await page.keyboard.press('Escape');
    const state = (await host()) as { query: Record<string, unknown>; runs: number; calls: Array<{ url: string }> };
    expect(state.query).toMatchObject({ refId: 'A', queryType: 'timeseries', devices: ['router-hq-2'], metrics: ['tcp_received_bps'] });
    expect(state.runs).toBeGreaterThan(0);
    expect(state.calls.map((c) => c.url)).toContain('/api/datasources/uid/iperf3-browser/resources/devices');
    await editor.screenshot({ path: join(screenshots, 'query-editor.png') });
    expect(pageErrors).toEqual([]);
  });
});
