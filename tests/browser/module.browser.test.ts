/**
 * Loads the built dist/module.js in headless Debian Chromium the way Grafana does (an AMD
 * module whose dependencies are Grafana's shared packages), renders the plugin's
 * ConfigEditor and QueryEditor (as in a dashboard and in Explore), edits servers, pools and
 * the time zone, picks a device and follows a Run now, and saves screenshots under
 * test-output/screenshots/ for a reviewer. The pools typed in Chromium then go through Save &
 * test (the BUILT plugin executable under Grafana's Go SDK host) to a real collector, whose
 * GET /api/v1/settings must show them.
 *
 * `npm run screenshots` (IPERF3_SCREENSHOTS=docs) also writes the screenshots the docs and
 * plugin.json show to docs/img/; a plain test run never touches the working tree.
 */
import * as esbuild from 'esbuild';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../collector/config/load.js';
import { startService, type Service } from '../../collector/service.js';
import { Components } from '../../src/selectors.js';
import { closedPort } from '../support/collectorFixture.js';
import { GrafanaHost } from '../support/grafanaHost.js';
import { ensurePluginBuilt } from '../support/pluginProcess.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const hostDir = join(root, 'test-output', 'browser-host');
const screenshots = join(root, 'test-output', 'screenshots');
const docsImg = join(root, 'docs', 'img');
/** `npm run screenshots`: the docs' screenshots are written to docs/img/ too */
const WRITE_DOCS = process.env.IPERF3_SCREENSHOTS === 'docs';
const CHROMIUM = '/usr/bin/chromium';

/** Saves an element's screenshot for the reviewer, and for the docs when asked (`docs`: its name there). */
async function shot(target: Locator | Page, name: string, docs?: string): Promise<void> {
  const path = join(screenshots, name);
  await target.screenshot({ path, animations: 'disabled' });
  if (docs && WRITE_DOCS) await copyFile(path, join(docsImg, docs));
}

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

/** A real collector (with a device of pool edge-eu) and a real iperf3 server on loopback, for Save & test. */
const TOKEN = 'browser-collector-token-0123456789';
let collector: Service;
let iperf3: ChildProcess;
let iperf3Port: number;
let collectorDir: string;
let grafana: GrafanaHost;

async function startBackends(): Promise<void> {
  iperf3Port = await closedPort();
  iperf3 = spawn('iperf3', ['-s', '-B', '127.0.0.1', '-p', String(iperf3Port)], { stdio: 'ignore' });
  collectorDir = mkdtempSync(join(tmpdir(), 'browser-collector-'));
  writeFileSync(join(collectorDir, 'token'), TOKEN);
  writeFileSync(join(collectorDir, 'key'), 'not used: the device is never run here');
  const loaded = loadConfigText(
    `apiTokenFile: token
listen: 127.0.0.1:0
database: ./collector.db
servers: [{ host: 127.0.0.1, port: ${iperf3Port} }]
pools: { edge-eu: [{ host: 127.0.0.1, port: ${iperf3Port} }] }
devices:
  - { id: cpe-edge, host: 127.0.0.1, port: ${await closedPort()}, username: root, privateKeyFile: key, pool: edge-eu }
`,
    join(collectorDir, 'collector.yaml'),
  );
  collector = await startService(loaded, pino({ level: 'silent' }), { schedule: false });
  grafana = GrafanaHost.start({ plugin: ensurePluginBuilt() });
}

beforeAll(async () => {
  // Always rebuild module.js: a stale build would test old code. It takes seconds.
  execFileSync(process.execPath, [join(root, 'scripts/build-frontend.mjs')], { cwd: root, stdio: 'inherit' });
  await buildHost();
  await mkdir(screenshots, { recursive: true });
  if (WRITE_DOCS) await mkdir(docsImg, { recursive: true });
  await startBackends();
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
  await grafana?.close();
  await collector?.close();
  iperf3?.kill();
  if (collectorDir) rmSync(collectorDir, { recursive: true, force: true });
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

  it('picks the schedule\'s time zone with Grafana\'s time zone picker', async () => {
    const picker = page.getByTestId(Components.ConfigEditor.timezone);
    await expect(picker.textContent()).resolves.toContain('Rome');
    await page.locator('#iperf3-schedule-timezone').fill('Tokyo');
    await page.getByText('Tokyo', { exact: true }).first().click();
    const state = (await host()) as { settings: { jsonData: { schedule: { timezone: string } } } };
    expect(state.settings.jsonData.schedule.timezone).toBe('Asia/Tokyo');
    await expect(page.getByText('Next runs (Asia/Tokyo):').isVisible()).resolves.toBe(true);
  });

  it('edits pools with field errors, and Save & test pushes them to the real collector, which shows them', async () => {
    type Jsonish = { settings: { jsonData: Record<string, unknown> } };
    await page.getByTestId(Components.ConfigEditor.addPool).click();
    await expect(page.getByText('a pool needs a name, e.g. edge-eu').isVisible()).resolves.toBe(true);
    await page.getByTestId(Components.ConfigEditor.poolName(0)).fill('edge eu');
    await page.getByTestId(Components.ConfigEditor.poolServerHost(0, 0)).fill('300.1.1.1');
    await expect(page.getByText('pool names use letters, digits, . _ -').isVisible()).resolves.toBe(true);
    await page.getByTestId(Components.ConfigEditor.poolName(0)).fill('edge-eu');
    await expect(page.getByTestId(Components.ConfigEditor.pool(0)).getByText('must be an IPv4 address, an IPv6 address or a DNS name').isVisible()).resolves.toBe(true);
    await shot(page.getByTestId(Components.ConfigEditor.pools), 'config-pools-invalid.png');
    await page.getByTestId(Components.ConfigEditor.poolServerHost(0, 0)).fill('iperf3-eu.example.net');
    await page.getByTestId(Components.ConfigEditor.poolServerLabel(0, 0)).fill('Edge EU');
    await page.getByTestId(Components.ConfigEditor.addPoolServer(0)).click();
    await page.getByTestId(Components.ConfigEditor.poolServerHost(0, 1)).fill('2001:db8::30');
    await page.getByTestId(Components.ConfigEditor.poolServerHost(0, 1)).blur();
    await expect(page.getByText('must be an IPv4 address, an IPv6 address or a DNS name').count()).resolves.toBe(0);
    // the docs' picture: collector, servers and pools (the page down to the pools section)
    await page.evaluate(() => window.scrollTo(0, 0)); // boxes relative to the page, as a full-page clip wants them
    const top = (await page.locator('#config-editor').boundingBox())!;
    const pools = (await page.getByTestId(Components.ConfigEditor.pools).boundingBox())!;
    await page.screenshot({ path: join(screenshots, 'config-editor.png'), clip: { x: top.x, y: top.y, width: top.width, height: pools.y + pools.height + 12 - top.y }, fullPage: true });
    if (WRITE_DOCS) await copyFile(join(screenshots, 'config-editor.png'), join(docsImg, 'config-editor.png'));

    // now against this machine: the collector's address, and the loopback iperf3 server in the pool
    await page.getByTestId(Components.ConfigEditor.collectorUrl).fill(collector.url);
    await page.getByTestId(Components.ConfigEditor.poolServerHost(0, 0)).fill('127.0.0.1');
    await page.getByTestId(Components.ConfigEditor.poolServerPort(0, 0)).fill(String(iperf3Port));
    const { jsonData } = ((await host()) as Jsonish).settings;
    const edgeEu = [{ host: '127.0.0.1', port: iperf3Port, label: 'Edge EU' }, { host: '2001:db8::30', port: 5201 }];
    expect(jsonData.pools).toEqual({ 'edge-eu': edgeEu });
    // as Grafana does on Save: the data source's version changes (the plugin rebuilds its instance)
    const saveAndTest = async () =>
      grafana.checkHealth({ uid: 'browser', lastUpdatedMS: Date.now(), jsonData: ((await host()) as Jsonish).settings.jsonData, secure: { apiToken: TOKEN } });
    const collectorApi = async (path: string) => (await fetch(`${collector.url}/api/v1/${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json();

    const saved = await saveAndTest();
    expect(saved.message).toContain(`Edge EU (127.0.0.1:${iperf3Port}) reachable`);
    expect(saved.status).toBe('OK');
    const stored = (await collectorApi('settings')) as { source: string; settings: { pools: unknown; schedule: { timezone: string } } };
    expect(stored.source).toBe('api');
    expect(stored.settings.pools).toEqual({ 'edge-eu': edgeEu });
    expect(stored.settings.schedule.timezone).toBe('Asia/Tokyo'); // picked above
    const servers = (await collectorApi('servers')) as { servers: { key: string; pool: string | null }[] };
    expect(servers.servers.filter((x) => x.pool === 'edge-eu').map((x) => x.key)).toEqual([`127.0.0.1:${iperf3Port}`, '[2001:db8::30]:5201']);

    // the collector's device cpe-edge is in pool edge-eu: removing the pool is refused at Save & test, naming the field, and the stored pools stay
    await page.getByRole('button', { name: 'Remove pool edge-eu' }).click();
    const refused = await saveAndTest();
    expect(refused.status).toBe('ERROR');
    expect(refused.message).toContain('pools: device cpe-edge uses pool "edge-eu", which these settings do not define');
    expect(((await collectorApi('settings')) as { settings: { pools: unknown } }).settings.pools).toEqual({ 'edge-eu': edgeEu });
  });

  it('shows the provisioning YAML with the token masked', async () => {
    await page.getByTestId(Components.ConfigEditor.showYaml).click();
    const yaml = await page.getByTestId(Components.ConfigEditor.yaml).textContent();
    expect(yaml).toContain(`collectorUrl: ${collector.url}`); // as typed above
    expect(yaml).toContain(`apiToken: ${new URL(collector.url).origin} \${IPERF3_API_TOKEN}`);
    await page.screenshot({ path: join(screenshots, 'config-provisioning-yaml.png') });
    await page.getByRole('button', { name: 'Close', exact: true }).first().click();
  });

  it('renders the query editor, loads devices from the backend and writes the picked device', async () => {
    const editor = page.locator('#query-editor');
    await editor.scrollIntoViewIfNeeded();
    await page.locator('#query-editor #iperf3-query-devices-A').click();
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

  it('runs the selected devices now as an Editor: progress per device, then the panel is refreshed', async () => {
    const editor = page.locator('#query-editor');
    await page.locator('#query-editor #iperf3-query-devices-A').click();
    // the menu is portaled at the end of the page; the Explore editor below shows router-hq-1 too
    await page.getByText('router-hq-1', { exact: true }).last().click();
    await page.keyboard.press('Escape');
    const runNow = editor.getByTestId(Components.QueryEditor.runNow);
    await expect(runNow.textContent()).resolves.toBe('Run now (2 devices)');
    const runsBefore = ((await host()) as { runs: number }).runs;
    await page.evaluate(() => ((window as unknown as { __host: { progressStep: number } }).__host.progressStep = 1));
    await runNow.click();
    const progress = editor.getByTestId(Components.QueryEditor.runNowProgress);
    await progress.getByText('running: TCP download (test 2 of 4)').waitFor();
    await page.evaluate(() => ((window as unknown as { __host: { progressStep: number } }).__host.progressStep = 2));
    await progress.getByText('done: upload 94.2 Mb/s, download 91.7 Mb/s; UDP download jitter 0.04 ms, download loss 0 %').waitFor();
    await progress.getByText('running: UDP upload (test 3 of 4)').waitFor();
    await shot(editor, 'query-editor-run-now-progress.png', 'query-editor-run-now.png');
    const state = (await host()) as { runs: number; calls: Array<{ url: string; method?: string; data?: unknown }> };
    expect(state.calls.find((c) => c.method === 'POST')).toMatchObject({ url: '/api/datasources/uid/iperf3-browser/resources/runs', data: { devices: ['router-hq-2', 'router-hq-1'] } });
    expect(state.runs).toBe(runsBefore); // not refreshed while runs go on
    await page.evaluate(() => ((window as unknown as { __host: { progressStep: number } }).__host.progressStep = 3));
    await editor.getByText('Finished: the panel has been refreshed.').waitFor();
    await expect(progress.getByText('failed: server-busy (udp upload: the server is busy running a test)').isVisible()).resolves.toBe(true);
    expect(((await host()) as { runs: number }).runs).toBe(runsBefore + 1);
    await shot(editor, 'query-editor-run-now-done.png', 'query-editor-run-now-done.png');
    expect(pageErrors).toEqual([]);
  });

  it('renders the same editor in Explore, with Run now for its devices', async () => {
    const explore = page.locator('#explore-editor');
    await explore.scrollIntoViewIfNeeded();
    await expect(explore.getByTestId(Components.QueryEditor.runNow).textContent()).resolves.toBe('Run now (1 device)');
    await expect(explore.getByText('Latest value').isVisible()).resolves.toBe(true);
    await shot(explore, 'explore-editor.png', 'explore-editor.png');
  });

  it('ships the screenshots plugin.json lists in the build\'s img/', () => {
    const plugin = JSON.parse(readFileSync(join(root, 'src/plugin.json'), 'utf8')) as { info: { screenshots: { name: string; path: string }[] } };
    expect(plugin.info.screenshots.length).toBeGreaterThanOrEqual(3);
    for (const { path } of plugin.info.screenshots) {
      const file = readFileSync(join(root, 'dist', path));
      expect(file.subarray(1, 4).toString(), path).toBe('PNG');
    }
  });
});
