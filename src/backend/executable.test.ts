/**
 * The BUILT plugin executable, started exactly as Grafana (hashicorp/go-plugin) starts it:
 * magic cookie and protocol versions in the environment, a port range, another working
 * directory; the handshake line read from stdout, then every service called over gRPC.
 * Builds dist/ first when the executable is missing or older than the backend's sources.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, COLLECTOR_VERSION, DAY, NIGHT0, NOW, startCollector, type RunningCollector } from '../../tests/support/collectorFixture.js';
import { decodeFrame, fieldLabels, PluginClient, timeNanos, type DataSourceSettingsInput } from '../../tests/support/pluginClient.js';
import { ensurePluginBuilt, launchPlugin, REPO_ROOT as ROOT, within, type LaunchedPlugin } from '../../tests/support/pluginProcess.js';

const PLUGIN_JSON = JSON.parse(readFileSync(join(ROOT, 'src/plugin.json'), 'utf8')) as { executable: string; id: string };
/** go-plugin parses `@timestamp` with the layout 2006-01-02T15:04:05.000000Z07:00 */
const HCLOG_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;

let EXECUTABLE: string;
let collector: RunningCollector;
let plugin: LaunchedPlugin;
let client: PluginClient;
let settings: DataSourceSettingsInput;
let blocker: Server;
let minPort: number;

beforeAll(async () => {
  EXECUTABLE = ensurePluginBuilt();
  collector = await startCollector();
  settings = {
    uid: 'exe',
    jsonData: { collectorUrl: collector.url, servers: [{ host: '10.0.0.1' }] },
    secure: { apiToken: collector.token },
  };
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
  blocker?.close();
  await collector?.close();
});

describe('the plugin executable', () => {
  it('prints only the handshake on stdout, within the port range, and logs hclog JSON on stderr', async () => {
    expect(plugin.port).toBeGreaterThan(minPort);
    expect(plugin.port).toBeLessThanOrEqual(minPort + 20);
    expect(plugin.stdout()).toBe(`1|2|tcp|127.0.0.1:${plugin.port}|grpc\n`);
    const lines = plugin.stderrLines();
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect(['trace', 'debug', 'info', 'warn', 'error']).toContain(line['@level']);
      expect(typeof line['@message']).toBe('string');
      expect(line['@timestamp']).toMatch(HCLOG_TIMESTAMP);
    }
    expect(lines).toContainEqual(expect.objectContaining({ '@message': 'plugin listening', grafanaVersion: '12.1.0', port: plugin.port }));
    expect(await client.health()).toEqual({ status: 'SERVING' });
  });

  it('answers CheckHealth with what a user needs, and says what to fix', async () => {
    const ok = await client.checkHealth(settings);
    expect(ok.status).toBe('OK');
    expect(ok.message).toContain(`Collector ${COLLECTOR_VERSION}`);
    expect(ok.message).toContain('3 devices');
    expect(ok.message).toContain('10.0.0.1:5201 reachable');
    expect(ok.message).toContain('Next scheduled run: 2025-02-05T02:00:00.000Z');
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const wrongUrl = await client.checkHealth({ ...settings, uid: 'exe-url', jsonData: { collectorUrl: dead, servers: [{ host: '10.0.0.1' }] } });
    expect(wrongUrl.message).toContain(`Cannot reach the collector at ${dead}`);
    const wrongToken = await client.checkHealth({ ...settings, uid: 'exe-token', secure: { apiToken: 'wrong-token' } });
    expect(wrongToken.message).toContain('rejected the API token');
    const badServer = await client.checkHealth({ ...settings, uid: 'exe-server', jsonData: { collectorUrl: collector.url, servers: [{ host: '300.1.1.1' }] } });
    expect(badServer).toMatchObject({ status: 'ERROR' });
    expect(badServer.message).toContain('servers.0.host');
  });

  it('answers QueryData for every query type with Arrow frames Grafana reads', async () => {
    const range = { fromMs: NIGHT0 - DAY, toMs: NOW };
    const r = await client.queryData(settings, [
      { refId: 'ts', json: { queryType: 'timeseries', devices: ['{r1,r2}'], metrics: ['tcp_received_bps'], direction: 'upload' }, ...range },
      { refId: 'latest', json: { queryType: 'latest', devices: ['*'], metrics: ['result'] }, ...range },
      { refId: 'stale', json: { queryType: 'latest', devices: ['*'], metrics: ['last_success_age_s'] }, ...range },
      { refId: 'runs', json: { queryType: 'runs', devices: ['r1'] }, ...range },
      { refId: 'intervals', json: { queryType: 'intervals', devices: ['r2'] }, ...range },
      { refId: 'unknown', json: { queryType: 'timeseries', devices: ['ghost'] }, ...range },
      { refId: 'malformed', json: null, raw: Buffer.from('{'), ...range },
    ]);
    for (const refId of ['ts', 'latest', 'stale', 'runs', 'intervals']) expect(r[refId], refId).toMatchObject({ status: 200, error: '' });
    const ts = r.ts.frames.map(decodeFrame);
    expect(ts.map((f) => fieldLabels(f, 1))).toEqual([{ device: 'r1', direction: 'upload' }, { device: 'r2', direction: 'upload' }]);
    for (const f of ts) {
      expect(f.meta).toMatchObject({ type: 'timeseries-multi', typeVersion: [0, 1] });
      expect(String(f.table.schema.fields[0].type)).toBe('Timestamp<NANOSECOND>');
      const t = timeNanos(f);
      expect(t.every((v, i) => i === 0 || v > t[i - 1])).toBe(true);
    }
    expect(r.latest.frames.map(decodeFrame).every((f) => (f.meta as { type: string }).type === 'numeric-multi')).toBe(true);
    expect(r.stale.frames).toHaveLength(3);
    expect(decodeFrame(r.runs.frames[0]).table.numRows).toBe(4);
    expect(r.intervals.frames).toHaveLength(2);
    expect(r.unknown).toMatchObject({ status: 404, frames: [] });
    expect(r.malformed).toMatchObject({ status: 400, error: 'the query is not valid JSON' });
  });

  it('answers alert queries with one series per device', async () => {
    const r = await client.queryData(
      settings,
      [{ refId: 'A', json: { queryType: 'timeseries', devices: ['*'], metrics: ['result'] }, fromMs: NIGHT0 - DAY, toMs: NOW }],
      { fromAlert: true },
    );
    expect(r.A.status).toBe(200);
    expect(r.A.frames.map(decodeFrame).map((f) => fieldLabels(f, 1))).toEqual([{ device: 'r1' }, { device: 'r2' }]);
  });

  it('serves resources and keeps serving after collector errors', async () => {
    expect((await client.callResource(settings, 'devices')).code).toBe(200);
    expect((await client.callResource(settings, 'metrics')).code).toBe(200);
    expect(await client.callResource(settings, 'runs', { method: 'POST', body: { devices: ['r1'] } })).toMatchObject({ code: 202 });
    const unreachable = await client.callResource({ ...settings, uid: 'exe-dead', jsonData: { collectorUrl: `http://127.0.0.1:${await closedPort()}` } }, 'devices');
    expect(unreachable.code).toBe(502);
    const wrongToken = await client.queryData({ ...settings, uid: 'exe-wt', secure: { apiToken: 'nope' } }, [
      { refId: 'A', json: { queryType: 'latest' }, fromMs: NIGHT0, toMs: NOW },
    ]);
    expect(wrongToken.A.status).toBe(502);
    expect(await client.health()).toEqual({ status: 'SERVING' });
    expect(plugin.stdout()).toBe(`1|2|tcp|127.0.0.1:${plugin.port}|grpc\n`);
  });

  it('exits promptly on GRPCController/Shutdown', async () => {
    await client.shutdown();
    const { code } = await within(plugin.exited, 5000, 'exit after Shutdown');
    expect(code).toBe(0);
    expect(plugin.stderrLines()).toContainEqual(expect.objectContaining({ '@message': 'stopping', reason: 'GRPCController/Shutdown' }));
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
  it('puts plugin.json (version filled in), img/ and the executable into dist/', () => {
    const dist = join(ROOT, 'dist');
    const pluginJson = JSON.parse(readFileSync(join(dist, 'plugin.json'), 'utf8')) as { info: { version: string }; backend: boolean };
    expect(pluginJson.backend).toBe(true);
    expect(pluginJson.info.version).toMatch(/^\d+\.\d+\.\d+/);
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
