/**
 * The BUILT plugin executable, started as Grafana (hashicorp/go-plugin) starts it.
 * Grafana's own client side judges the calls: tests/grafana-host (grafana-plugin-sdk-go +
 * go-plugin, tests/support/grafanaHost.ts) launches it, calls every service, decodes every
 * frame with the Go SDK, checks the data types as server-side expressions read them, and
 * answers with the JSON of /api/ds/query, read here by @grafana/data. What the host does not
 * see is tested on a second process launched by tests/support/pluginProcess.ts: port range, stdout holding
 * only the handshake, signals, refusal to run outside Grafana.
 * Builds dist/ first when the executable is missing or older than the backend's sources.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, COLLECTOR_VERSION, DAY, NIGHT0, NOW, startCollector, type RunningCollector } from '../../tests/support/collectorFixture.js';
import { bindApiToken } from '../../contract/settings.js';
import { GrafanaHost, values, type HostDataSource } from '../../tests/support/grafanaHost.js';
import { PluginClient } from '../../tests/support/pluginClient.js';
import { ensurePluginBuilt, launchPlugin, REPO_ROOT as ROOT, within, type LaunchedPlugin } from '../../tests/support/pluginProcess.js';

const PLUGIN_JSON = JSON.parse(readFileSync(join(ROOT, 'src/plugin.json'), 'utf8')) as { executable: string; id: string };

let EXECUTABLE: string;
let collector: RunningCollector;
/** the URLs the collector was asked for */
const collectorRequests: string[] = [];
let host: GrafanaHost;
let plugin: LaunchedPlugin;
let client: PluginClient;
let settings: HostDataSource;
let blocker: Server;
let minPort: number;

beforeAll(async () => {
  EXECUTABLE = ensurePluginBuilt();
  collector = await startCollector({ onRequest: (url) => collectorRequests.push(url) });
  settings = {
    uid: 'exe',
    jsonData: { collectorUrl: collector.url, servers: [{ host: '10.0.0.1' }] },
    secure: { apiToken: collector.token },
  };
  host = GrafanaHost.start({ plugin: EXECUTABLE });
  // Occupy the first port of the range: the plugin must take the next one, as go-plugin does.
  blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  minPort = (blocker.address() as { port: number }).port;
  plugin = await launchPlugin({ executable: EXECUTABLE, env: { PLUGIN_MIN_PORT: String(minPort), PLUGIN_MAX_PORT: String(minPort + 20) } });
  client = new PluginClient(plugin.address);
}, 300_000);

afterAll(async () => {
  client?.close();
  if (plugin && plugin.child.exitCode === null) plugin.child.kill('SIGKILL');
  await host?.close();
  blocker?.close();
  await collector?.close();
});

describe('the plugin executable, launched and judged by Grafana\'s Go SDK', () => {
  it('answers CheckHealth with what a user needs, and says what to fix', async () => {
    const ok = await host.checkHealth(settings);
    expect(ok.status).toBe('OK');
    expect(ok.message).toContain(`Collector ${COLLECTOR_VERSION}`);
    expect(ok.message).toContain('3 devices');
    expect(ok.message).toContain('10.0.0.1:5201 reachable');
    expect(ok.message).toContain('Next scheduled run: 2025-02-05T02:00:00.000Z');
    expect(ok.details).toMatchObject({ devices: 3, version: COLLECTOR_VERSION });
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const wrongUrl = await host.checkHealth({ ...settings, uid: 'exe-url', jsonData: { collectorUrl: dead, servers: [{ host: '10.0.0.1' }] } });
    expect(wrongUrl.status).toBe('ERROR');
    expect(wrongUrl.message).toContain(`Cannot reach the collector at ${dead}`);
    const wrongToken = await host.checkHealth({ ...settings, uid: 'exe-token', secure: { apiToken: 'wrong-token' } });
    expect(wrongToken.message).toContain('rejected the API token');
    const badServer = await host.checkHealth({ ...settings, uid: 'exe-server', jsonData: { collectorUrl: collector.url, servers: [{ host: '300.1.1.1' }] } });
    expect(badServer).toMatchObject({ status: 'ERROR' });
    expect(badServer.message).toContain('servers.0.host');
    // a 200 that breaks the contract (an older collector, or another service at that address)
    const liar = createHttpServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok","devices":1}'));
    await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
    try {
      const malformed = await host.checkHealth({ ...settings, uid: 'exe-liar', jsonData: { ...(settings.jsonData as object), collectorUrl: `http://127.0.0.1:${(liar.address() as { port: number }).port}` } });
      expect(malformed.status).toBe('ERROR');
      expect(malformed.message).toMatch(/does not match this plugin's contract/);
    } finally {
      liar.close();
    }
    expect((await host.checkHealth(settings)).status).toBe('OK'); // and the plugin is still there
    // a URL ending in ? would send every call, with the token, wherever an Editor points it
    const query = await host.checkHealth({ ...settings, uid: 'exe-q', jsonData: { ...(settings.jsonData as object), collectorUrl: 'http://evil.example/x?' } });
    expect(query.status).toBe('ERROR');
    expect(query.message).toMatch(/collectorUrl: must not contain a query \(\?\) or fragment/);
    const password = await host.checkHealth({
      ...settings,
      uid: 'exe-pw',
      jsonData: { ...(settings.jsonData as object), clientOptions: { auth: { username: 'u', password: 'in-plain-sight' } } },
    });
    expect(password.status).toBe('ERROR');
    expect(password.message).toMatch(/clientOptions\.auth\.password: a password in jsonData is readable by every Viewer/);
    expect(password.message).not.toContain('in-plain-sight');
  });

  it('answers QueryData for every query type with frames the SDK reads as the data types they claim', async () => {
    const range = { fromMs: NIGHT0 - DAY, toMs: NOW };
    const before = Date.now();
    const r = await host.query(settings, [
      { refId: 'ts', json: { queryType: 'timeseries', devices: ['{r1,r2}'], metrics: ['tcp_received_bps'], direction: 'upload' }, ...range },
      { refId: 'latest', json: { queryType: 'latest', devices: ['*'], metrics: ['result'] }, ...range },
      { refId: 'stale', json: { queryType: 'latest', devices: ['*'], metrics: ['last_success_age_s'] }, ...range },
      { refId: 'runs', json: { queryType: 'runs', devices: ['r1'] }, ...range },
      { refId: 'intervals', json: { queryType: 'intervals', devices: ['r2'] }, ...range },
      { refId: 'empty', json: { queryType: 'timeseries', devices: ['r1'] }, fromMs: NOW + DAY, toMs: NOW + 2 * DAY },
      { refId: 'unknown', json: { queryType: 'timeseries', devices: ['ghost'] }, ...range },
      { refId: 'malformed', rawJson: '{', ...range },
    ]);
    const after = Date.now();
    for (const refId of ['ts', 'latest', 'stale', 'runs', 'intervals', 'empty']) expect(r[refId], refId).toMatchObject({ status: 200, error: undefined });
    expect(r.ts.frames.map((f) => f.fields[1].labels)).toEqual([{ device: 'r1', direction: 'upload' }, { device: 'r2', direction: 'upload' }]);
    // the series were read in the binary form (docs/api.md, "Binary series")
    expect(collectorRequests.filter((u) => u.startsWith('/api/v1/series')).every((u) => u.includes('format=binary'))).toBe(true);
    expect(collectorRequests.filter((u) => u.startsWith('/api/v1/series')).length).toBeGreaterThan(0);
    expect(r.ts.frames.map((f) => f.meta?.type)).toEqual(['timeseries-multi', 'timeseries-multi']);
    // r1: 100, 200, 300 Mbit/s on three nights, then a failed upload stored as 0
    expect(values(r.ts.frames[0], 'tcp_received_bps')).toEqual([100e6, 200e6, 300e6, 0]);
    expect(values(r.ts.frames[0], 'time')).toEqual([0, 1, 2, 3].map((night) => NIGHT0 + night * DAY));
    expect(r.ts.frames[0].fields[1].config).toMatchObject({ unit: 'bps', custom: { insertNulls: 36 * 3600_000 } });
    expect(r.latest.frames.map((f) => [f.meta?.type, f.fields[0].labels?.device, values(f, 'result')])).toEqual([
      ['numeric-multi', 'r1', [0]],
      ['numeric-multi', 'r2', [1]],
    ]);
    // +Inf (h3 never succeeded) survives the SDK's JSON (entities) into @grafana/data
    // (the executable runs on the real clock; the runs ended 25 s after they started)
    const ages = Object.fromEntries(r.stale.frames.map((f) => [f.fields[0].labels?.device, values(f, 'last_success_age_s')[0] as number]));
    for (const [device, endedAt] of [['r1', NIGHT0 + 2 * DAY + 25_000], ['r2', NIGHT0 + 60_000 + 25_000]] as const) {
      expect(ages[device], device).toBeGreaterThanOrEqual((before - endedAt) / 1000);
      expect(ages[device], device).toBeLessThanOrEqual((after - endedAt) / 1000);
    }
    expect(ages.h3).toBe(Number.POSITIVE_INFINITY);
    expect(r.runs.frames[0].meta?.preferredVisualisationType).toBe('table');
    expect(values(r.runs.frames[0], 'status')).toEqual(['failed', 'ok', 'ok', 'ok']);
    expect(r.intervals.frames.map((f) => f.fields[1].labels?.direction)).toEqual(['upload', 'download']);
    // no data: one frame without fields that still says what it is
    expect(r.empty.frames).toHaveLength(1);
    expect(r.empty.frames[0]).toMatchObject({ fields: [], meta: { type: 'timeseries-multi' } });
    expect(r.unknown).toMatchObject({ status: 404, frames: [] });
    expect(r.malformed).toMatchObject({ status: 400, error: 'the query is not valid JSON' });
  });

  it('answers alert queries (no user, FromAlert) with one series or number per device', async () => {
    const range = { fromMs: NIGHT0 - DAY, toMs: NOW };
    const r = await host.query(
      settings,
      [
        { refId: 'A', json: { queryType: 'timeseries', devices: ['*'], metrics: ['result'] }, ...range },
        { refId: 'B', json: { queryType: 'latest', devices: ['*'], metrics: ['tcp_received_bps'], direction: 'download' }, ...range },
        { refId: 'C', json: { queryType: 'runs', devices: ['*'] }, ...range },
      ],
      { fromAlert: true },
    );
    expect(r.A.status).toBe(200);
    expect(r.A.frames.map((f) => f.fields[1].labels)).toEqual([{ device: 'r1' }, { device: 'r2' }]);
    expect(r.B.frames.map((f) => f.fields[0].labels)).toEqual([
      { device: 'r1', direction: 'download' },
      { device: 'r2', direction: 'download' },
    ]);
    expect(r.C).toMatchObject({ status: 400, frames: [] });
  });

  it('serves resources, answers CollectMetrics, and keeps serving after collector errors', async () => {
    const devices = await host.resource(settings, 'devices', { user: { login: 'viewer', role: 'Viewer' } });
    expect(devices.status).toBe(200);
    expect(devices.headers['Content-Type']).toEqual(['application/json']);
    expect((devices.body as { id: string }[]).map((d) => d.id)).toEqual(['r1', 'r2', 'h3']);
    expect((await host.resource(settings, 'runs', { query: 'device=r2&limit=1' })).body).toMatchObject({ runs: [{ device: 'r2' }] });
    expect((await host.resource({}, 'metrics')).status).toBe(200);
    expect(await host.resource(settings, 'runs', { method: 'POST', body: { devices: ['r1'] } })).toMatchObject({ status: 202 });
    expect(collector.control.queued).toContainEqual(['r1']);
    const unreachable = await host.resource({ ...settings, uid: 'exe-dead', jsonData: { collectorUrl: `http://127.0.0.1:${await closedPort()}` } }, 'devices');
    expect(unreachable.status).toBe(502);
    const wrongToken = await host.query({ ...settings, uid: 'exe-wt', secure: { apiToken: 'nope' } }, [
      { refId: 'A', json: { queryType: 'latest' }, fromMs: NIGHT0, toMs: NOW },
    ]);
    expect(wrongToken.A.status).toBe(502);
    expect((await host.resource(settings, 'devices')).status).toBe(200);
  });

  it('lets Editors and Admins start runs, and refuses Viewers and anonymous users with 403 before reaching the collector', async () => {
    const before = collector.control.queued.length;
    const post = (user: { login: string; role: 'Viewer' | 'Editor' | 'Admin' } | null) =>
      host.resource(settings, 'runs', { method: 'POST', body: { devices: ['r2'] }, user });
    for (const user of [{ login: 'v', role: 'Viewer' as const }, null]) {
      const refused = await post(user);
      expect(refused.status).toBe(403);
      expect(refused.body).toEqual({
        error: 'forbidden',
        message: `starting runs needs the Editor or Admin role in this organization (${user ? 'your role is Viewer' : 'no user is signed in'}); ask an Editor or Admin`,
      });
    }
    expect(collector.control.queued.length).toBe(before);
    expect((await post({ login: 'e', role: 'Editor' })).status).toBe(202);
    expect((await post({ login: 'a', role: 'Admin' })).status).toBe(202);
    expect(collector.control.queued.slice(before)).toEqual([['r2'], ['r2']]);
    // reading stays open to every role
    expect((await host.resource(settings, 'runs', { user: { login: 'v', role: 'Viewer' } })).status).toBe(200);
  });

  it('never sends the API token to a host other than the one it was saved for', async () => {
    // an Editor points the saved data source elsewhere; the token stays bound to the collector's origin
    const seen: string[] = [];
    const elsewhere = createHttpServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((r) => elsewhere.listen(0, '127.0.0.1', r));
    const other = `http://127.0.0.1:${(elsewhere.address() as { port: number }).port}`;
    try {
      const moved: HostDataSource = {
        uid: 'exe-moved',
        jsonData: { collectorUrl: other, servers: [{ host: '10.0.0.1' }] },
        secure: { apiToken: bindApiToken(collector.url, collector.token) },
      };
      const fix = `apiToken: was saved for ${new URL(collector.url).origin}, but the collector URL is now ${other}: re-enter the API token for the new URL`;
      const health = await host.checkHealth(moved);
      expect(health.status).toBe('ERROR');
      expect(health.message).toContain(fix);
      const query = await host.query(moved, [{ refId: 'A', json: { queryType: 'latest' }, fromMs: NIGHT0, toMs: NOW }]);
      expect(query.A.status).toBe(400);
      expect(query.A.error).toContain(fix);
      for (const call of [host.resource(moved, 'devices'), host.resource(moved, 'runs', { method: 'POST', body: { devices: ['r1'] } })]) {
        const answer = await call;
        expect(answer.status).toBe(400);
        expect(JSON.stringify(answer.body)).toContain('re-enter the API token for the new URL');
      }
      // a bare token (saved before binding, or provisioned without the URL) goes nowhere either
      const bare = await host.checkHealth({ ...moved, uid: 'exe-bare', rawSecure: true, secure: { apiToken: collector.token } });
      expect(bare.message).toContain(`apiToken: is not bound to a collector URL`);
      expect(bare.message).toContain(`provision it as apiToken: "${other} <token>"`);
      expect(seen).toEqual([]);
      // bound to the collector's origin (any path, default port spelled or not): it works
      const same = await host.checkHealth({ ...moved, uid: 'exe-same', jsonData: { ...(settings.jsonData as object) }, secure: { apiToken: bindApiToken(`${collector.url}/`, collector.token) } });
      expect(same.status).toBe('OK');
    } finally {
      elsewhere.close();
    }
  });

  it('answers CollectMetrics with Prometheus text that Prometheus\' own parser reads: queries per type, errors, collector round-trips, memory', async () => {
    // earlier tests of this file ran queries of every type through this same process
    const before = await host.metrics(settings);
    const count = (family: string, labels: Record<string, string>) =>
      before.families[family]?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.count ?? 0;
    const latestBefore = count('iperf3_plugin_query_duration_seconds', { query_type: 'latest' });
    const r = await host.query(settings, [
      { refId: 'A', json: { queryType: 'latest', devices: ['r1'], metrics: ['result'] }, fromMs: NIGHT0, toMs: NOW },
      { refId: 'B', json: { queryType: 'runs', devices: ['ghost'] }, fromMs: NIGHT0, toMs: NOW },
      { refId: 'C', json: { queryType: 'timeseries', devices: ['r1'] }, fromMs: NIGHT0, toMs: NOW },
      { refId: 'D', json: { queryType: 'intervals', devices: ['r2'] }, fromMs: NIGHT0, toMs: NOW },
    ]);
    expect([r.A.status, r.B.status, r.C.status, r.D.status]).toEqual([200, 404, 200, 200]);
    const dead = { ...settings, uid: 'exe-metrics-dead', jsonData: { collectorUrl: `http://127.0.0.1:${await closedPort()}` } };
    expect((await host.resource(dead, 'devices')).status).toBe(502);
    const after = await host.metrics(settings);
    const { families } = after;
    expect(families.iperf3_plugin_query_duration_seconds.type).toBe('histogram');
    const latest = families.iperf3_plugin_query_duration_seconds.samples.find((s) => s.labels.query_type === 'latest');
    expect(latest?.count).toBe(latestBefore + 1);
    expect(latest?.sum).toBeGreaterThan(0);
    for (const type of ['timeseries', 'runs', 'intervals']) {
      expect(families.iperf3_plugin_query_duration_seconds.samples.some((s) => s.labels.query_type === type), type).toBe(true);
    }
    expect(families.iperf3_plugin_query_errors_total.samples).toContainEqual({ labels: { query_type: 'runs', status: '404', source: 'downstream' }, value: expect.any(Number) });
    const trips = families.iperf3_plugin_collector_request_duration_seconds.samples;
    expect(trips.find((s) => s.labels.route === '/latest' && s.labels.status === '2xx')?.count).toBeGreaterThan(0);
    expect(trips.find((s) => s.labels.route === '/devices' && s.labels.status === 'unreachable')?.count).toBeGreaterThan(0);
    expect(families.process_resident_memory_bytes.samples[0].value).toBeGreaterThan(10e6);
    expect(families.nodejs_heap_size_used_bytes.type).toBe('gauge');
  });

  it('logs what go-plugin can parse, and exits by itself, promptly, when Grafana stops it (GRPCController/Shutdown)', async () => {
    const stopped = await host.shutdown();
    expect(stopped).toMatchObject({ graceful: true, exitCode: 0, stdout: '' });
    expect(stopped.ms).toBeLessThan(2000);
    const log = host.pluginLog();
    // go-plugin relays a stderr line it could not parse as hclog JSON verbatim, at debug
    expect(log.filter((l) => String(l['@message']).startsWith('{'))).toEqual([]);
    expect(log).toContainEqual(expect.objectContaining({ '@level': 'info', '@message': 'plugin listening', grafanaVersion: '12.1.0' }));
    // the Node flags baked into the executable (scripts/build-backend.mjs): Grafana passes none,
    // yet V8's young generation is capped (docs/plugin-backend.md, "Memory")
    const listening = log.find((l) => l['@message'] === 'plugin listening');
    expect(listening?.execArgv).toEqual(expect.arrayContaining([expect.stringMatching(/^--max-semi-space-size=\d+$/)]));
    expect(log).toContainEqual(expect.objectContaining({ '@message': 'stopping', reason: 'GRPCController/Shutdown' }));
  });
});

describe('the plugin process', () => {
  it('prints only the handshake on stdout, within the port range, and nothing but hclog JSON on stderr', async () => {
    expect(plugin.port).toBeGreaterThan(minPort);
    expect(plugin.port).toBeLessThanOrEqual(minPort + 20);
    expect(plugin.stdout()).toBe(`1|2|tcp|127.0.0.1:${plugin.port}|grpc\n`);
    expect(await client.health()).toEqual({ status: 'SERVING' });
    // go-plugin would relay a plain-text line as a debug message without complaint: every
    // line must be JSON (stderrLines() parses each), with a level go-plugin knows
    const lines = plugin.stderrLines();
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(['trace', 'debug', 'info', 'warn', 'error']).toContain(line['@level']);
  });

  it('exits promptly on SIGTERM, and ignores SIGINT as go-plugin plugins do', async () => {
    const other = await launchPlugin({ executable: EXECUTABLE });
    other.child.kill('SIGINT');
    const c = new PluginClient(other.address);
    try {
      await expect.poll(() => other.stderrLines().some((l) => String(l['@message']).startsWith('ignoring SIGINT'))).toBe(true);
      expect(await c.health()).toEqual({ status: 'SERVING' });
    } finally {
      c.close();
    }
    other.child.kill('SIGTERM');
    const { code } = await within(other.exited, 5000, 'exit after SIGTERM');
    expect(code).toBe(0);
  });

  it('refuses to run outside Grafana and with another protocol version', async () => {
    const direct = spawn(EXECUTABLE, [], { env: { PATH: '/usr/bin:/bin' } });
    let out = '';
    let err = '';
    direct.stdout.on('data', (d: Buffer) => (out += d.toString()));
    direct.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise((resolve) => direct.on('exit', resolve));
    expect(code).toBe(1);
    expect(out).toBe('');
    expect(err).toContain('This binary is a Grafana data source plugin');

    const v1 = spawn(EXECUTABLE, [], { env: { grafana_plugin_type: 'datasource', PLUGIN_PROTOCOL_VERSIONS: '1' } });
    let v1err = '';
    v1.stderr.on('data', (d: Buffer) => (v1err += d.toString()));
    expect(await new Promise((resolve) => v1.on('exit', resolve))).toBe(1);
    expect(JSON.parse(v1err.trim().split('\n')[0])).toMatchObject({ '@level': 'error' });
  });
});

describe('packaging', () => {
  it('puts plugin.json (version filled in), img/, the LICENSE and the executable into dist/', () => {
    const dist = join(ROOT, 'dist');
    const pluginJson = JSON.parse(readFileSync(join(dist, 'plugin.json'), 'utf8')) as { info: { version: string; links: { url: string }[] }; backend: boolean; category: string };
    expect(pluginJson.backend).toBe(true);
    expect(pluginJson.info.version).toMatch(/^\d+\.\d+\.\d+/);
    // the Add data source page lists it under "Time series databases"; links must be absolute URLs (the schema's format: uri)
    expect(pluginJson.category).toBe('tsdb');
    for (const link of pluginJson.info.links) expect(new URL(link.url).protocol).toBe('https:');
    expect(readFileSync(join(dist, 'LICENSE'), 'utf8')).toContain('Apache License');
    expect(readFileSync(join(ROOT, 'package.json'), 'utf8')).toContain('"license": "Apache-2.0"');
    expect(existsSync(join(dist, 'img/logo.svg'))).toBe(true);
    expect(statSync(EXECUTABLE).mode & 0o111).not.toBe(0);
  });

  it('builds an arm64 executable: ELF, machine AArch64', () => {
    const out = mkdtempSync(join(tmpdir(), 'iperf3-arm64-'));
    try {
      execFileSync(process.execPath, [join(ROOT, 'scripts/build-backend.mjs'), '--arch', 'arm64', '--out', out], {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const header = Buffer.alloc(20);
      const fd = openSync(join(out, `${PLUGIN_JSON.executable}_linux_arm64`), 'r');
      readSync(fd, header, 0, 20, 0);
      closeSync(fd);
      expect(header.subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46])); // \x7fELF
      expect(header[4]).toBe(2); // 64-bit
      expect(header.readUInt16LE(18)).toBe(183); // EM_AARCH64
      // the SEA blob is injected: the fuse string is flipped to ":1"
      const binary = readFileSync(join(out, `${PLUGIN_JSON.executable}_linux_arm64`));
      expect(binary.includes(Buffer.from('NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2:1'))).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 300_000);
});
