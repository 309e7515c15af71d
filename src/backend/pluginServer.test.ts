/**
 * The plugin's gRPC services in-process, against the real collector API (buildApi over a
 * seeded SqliteStore): what Grafana sends, what Grafana gets back.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPluginLogger } from './logger.js';
import { MAX_DEVICES_PER_QUERY } from './deviceSelection.js';
import { PluginServer } from './pluginServer.js';
import { closedPort, COLLECTOR_VERSION, DAY, NIGHT0, NOW, startCollector, type RunningCollector } from '../../tests/support/collectorFixture.js';
import { decodeFrame, fieldConfig, fieldLabels, PluginClient, timeNanos, type DataSourceSettingsInput } from '../../tests/support/pluginClient.js';

let collector: RunningCollector;
let server: PluginServer;
let client: PluginClient;
const logLines: Record<string, unknown>[] = [];
let settings: DataSourceSettingsInput;
let DEAD: string;
/** the URLs the collector was asked for */
const collectorUrls: string[] = [];

const RANGE = { fromMs: NIGHT0 - DAY, toMs: NOW };

beforeAll(async () => {
  collector = await startCollector({ onRequest: (url) => collectorUrls.push(url) });
  DEAD = `http://127.0.0.1:${await closedPort()}`;
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
      done();
    },
  });
  server = new PluginServer({ logger: createPluginLogger({ destination: destination as unknown as pino.DestinationStream }), now: () => NOW });
  const port = await server.listen();
  client = new PluginClient(`127.0.0.1:${port}`);
  settings = {
    uid: 'ds-main',
    jsonData: { collectorUrl: collector.url, servers: [{ host: '10.0.0.1' }, { host: '10.0.0.2', label: 'backup' }] },
    secure: { apiToken: collector.token },
  };
});

afterAll(async () => {
  client.close();
  await server.stop();
  await collector.close();
});

async function query(json: unknown, options: { fromAlert?: boolean; settings?: DataSourceSettingsInput; maxDataPoints?: number } = {}) {
  const responses = await client.queryData(options.settings ?? settings, [{ refId: 'A', json, ...RANGE, maxDataPoints: options.maxDataPoints }], options);
  return responses.A;
}

describe('go-plugin services', () => {
  it('reports "plugin" SERVING and rejects unknown services', async () => {
    expect(await client.health('plugin')).toEqual({ status: 'SERVING' });
    expect(await client.health('')).toEqual({ status: 'SERVING' });
    await expect(client.health('other')).rejects.toThrow(/unknown service/);
  });

  it('streams SERVING on Watch', async () => {
    const stream = client.watchHealth();
    const first = await new Promise((resolve) => stream.once('data', resolve));
    expect(first).toEqual({ status: 'SERVING' });
    stream.on('error', () => undefined);
    stream.cancel();
    const other = client.watchHealth('nope');
    expect(await new Promise((resolve) => other.once('data', resolve))).toEqual({ status: 'SERVICE_UNKNOWN' });
    other.on('error', () => undefined);
    other.cancel();
  });

  it('answers CollectMetrics with the plugin\'s own metrics (src/backend/pluginMetrics.test.ts tests them)', async () => {
    const r = await client.collectMetrics(settings);
    expect(r.metrics.prometheus.toString('utf8')).toContain('# TYPE iperf3_plugin_query_duration_seconds histogram');
  });
});

describe('CheckHealth', () => {
  it('pushes the settings and reports version, devices, servers and the next run', async () => {
    const jsonData = {
      collectorUrl: collector.url,
      servers: [{ host: '10.0.0.1' }, { host: '10.0.0.2', label: 'backup' }],
      clientOptions: { time: 5, auth: { username: 'probe' } },
      schedule: { cron: '30 3 * * *', timezone: 'Europe/Rome' },
    };
    const r = await client.checkHealth({ uid: 'ds-health', jsonData, secure: { apiToken: collector.token, iperf3Password: 'pw-secret' } });
    expect(r.status).toBe('OK');
    expect(r.message).toContain(`Collector ${COLLECTOR_VERSION}`);
    expect(r.message).toContain('3 devices (3 enabled)');
    expect(r.message).toContain('10.0.0.1:5201 reachable');
    expect(r.message).toContain('backup (10.0.0.2:5201) NOT reachable (connect ECONNREFUSED 10.0.0.2:5201)');
    expect(r.message).toContain('Next scheduled run: 2025-02-05T02:00:00.000Z (cron "30 3 * * *", Europe/Rome)');
    expect(r.message).not.toContain('pw-secret');
    expect(r.details).toMatchObject({ version: COLLECTOR_VERSION, devices: 3, nextRun: '2025-02-05T02:00:00.000Z' });
    const pushed = collector.control.applied.at(-1);
    expect(pushed?.clientOptions.time).toBe(5);
    expect(pushed?.schedule).toEqual({ cron: '30 3 * * *', timezone: 'Europe/Rome', runAtStart: false });
    expect(pushed?.clientOptions.auth).toMatchObject({ username: 'probe', password: 'pw-secret' });
    expect(JSON.stringify(logLines)).not.toContain('pw-secret');
  });

  it('is an error when no server is reachable, and says what to check', async () => {
    collector.control.checks.set('10.0.0.1', { reachable: false, error: 'timeout' });
    try {
      const r = await client.checkHealth({ uid: 'ds-down', jsonData: { collectorUrl: collector.url, servers: [{ host: '10.0.0.1' }] }, secure: { apiToken: collector.token } });
      expect(r.status).toBe('ERROR');
      expect(r.message).toContain('No iperf3 server is reachable');
    } finally {
      collector.control.checks.delete('10.0.0.1');
    }
  });

  it('says the schedule is off and that the inventory is empty', async () => {
    const saved = { ...collector.control.statusValue };
    const devices = collector.control.deviceList;
    collector.control.statusValue = { ...saved, nextRun: null };
    collector.control.deviceList = [];
    try {
      const r = await client.checkHealth({ uid: 'ds-off', jsonData: { collectorUrl: collector.url, servers: [{ host: '10.0.0.1' }] }, secure: { apiToken: collector.token } });
      expect(r.status).toBe('OK');
      expect(r.message).toContain('The schedule is off');
      expect(r.message).toContain("Add devices to the collector's inventory");
    } finally {
      collector.control.statusValue = saved;
      collector.control.deviceList = devices;
    }
  });

  it('names a wrong URL, a wrong token, an invalid server entry and missing settings', async () => {
    const wrongUrl = await client.checkHealth({ uid: 'x1', jsonData: { collectorUrl: `${DEAD}`, servers: [{ host: '10.0.0.1' }] }, secure: { apiToken: 't' } });
    expect(wrongUrl).toMatchObject({ status: 'ERROR' });
    expect(wrongUrl.message).toMatch(new RegExp(`Cannot reach the collector at ${DEAD} \\(ECONNREFUSED\\)\\. Check the Collector URL`));

    const wrongToken = await client.checkHealth({ uid: 'x2', jsonData: { collectorUrl: collector.url, servers: [{ host: '10.0.0.1' }] }, secure: { apiToken: 'nope' } });
    expect(wrongToken.message).toMatch(/rejected the API token \(HTTP 401\)\. Set the API token/);
    expect(wrongToken.message).not.toContain('nope');

    const badServer = await client.checkHealth({ uid: 'x3', jsonData: { collectorUrl: collector.url, servers: [{ host: '10.0.0.1' }, { host: 'bad host!', port: 70000 }] }, secure: { apiToken: collector.token } });
    expect(badServer.status).toBe('ERROR');
    expect(badServer.message).toContain('servers.1.host: must be an IPv4 address, an IPv6 address or a DNS name');
    expect(badServer.message).toContain('servers.1.port: must be a whole number from 1 to 65535');

    const noServers = await client.checkHealth({ uid: 'x4', jsonData: { collectorUrl: collector.url }, secure: { apiToken: collector.token } });
    expect(noServers.message).toContain('servers: add at least one iperf3 server');

    const nothing = await client.checkHealth({ uid: 'x5', jsonData: {}, secure: {} });
    expect(nothing.status).toBe('ERROR');
    expect(nothing.message).toContain("collectorUrl: is required: the collector's address");
    expect(nothing.message).toContain('apiToken: is required');

    const notHttp = await client.checkHealth({ uid: 'x6', jsonData: { collectorUrl: 'ftp://x' }, secure: { apiToken: 't' } });
    expect(notHttp.message).toContain('collectorUrl: must be an http:// or https:// URL');

    const notJson = await client.checkHealth({ uid: 'x7', jsonBytes: Buffer.from('{nope'), secure: { apiToken: 't' } });
    expect(notJson.message).toContain('jsonData: is not valid JSON');

    const notObject = await client.checkHealth({ uid: 'x8', jsonBytes: Buffer.from('[1]'), secure: { apiToken: 't' } });
    expect(notObject.message).toContain('jsonData: must be a JSON object');
  });

  it('explains a URL that is not the collector', async () => {
    // the collector's /healthz host without the API: any path under a wrong prefix is a 404
    const r = await client.checkHealth({ uid: 'x9', jsonData: { collectorUrl: `${collector.url}/not-here`, servers: [{ host: '10.0.0.1' }] }, secure: { apiToken: collector.token } });
    expect(r.message).toMatch(/answered 404: it does not look like the collector's API/);
  });
});

describe('QueryData: time series', () => {
  it('resolves devices from the inventory without last runs, unless the query needs them (last_success_age_s)', async () => {
    const inventoryRequests = async (uid: string, json: unknown) => {
      const since = collectorUrls.length;
      expect((await query(json, { settings: { ...settings, uid } })).status).toBe(200);
      return collectorUrls.slice(since).filter((u) => u.startsWith('/api/v1/devices'));
    };
    const series = { queryType: 'timeseries', devices: ['*'], metrics: ['result'] };
    expect(await inventoryRequests('ds-light', series)).toEqual(['/api/v1/devices?lastRun=false']);
    expect(await inventoryRequests('ds-ages', { queryType: 'latest', devices: ['*'], metrics: ['last_success_age_s'] })).toEqual(['/api/v1/devices']);
    // the full inventory, still fresh, resolves the next query of that data source
    expect(await inventoryRequests('ds-ages', series)).toEqual([]);
    expect(await inventoryRequests('ds-light', { queryType: 'latest', devices: ['r1'], metrics: ['result'] })).toEqual([]);
  });

  it('returns one frame per device and direction with ns timestamps, labels, units and meta', async () => {
    const r = await query({ queryType: 'timeseries', devices: ['r1', 'r2'], metrics: ['tcp_received_bps'] });
    expect(r.status).toBe(200);
    expect(r.error).toBe('');
    const frames = r.frames.map(decodeFrame);
    const keys = frames.map((f) => JSON.stringify(fieldLabels(f, 1)));
    expect(new Set(keys).size).toBe(frames.length);
    expect(keys.sort()).toEqual(
      [
        { device: 'r1', direction: 'download' },
        { device: 'r1', direction: 'upload' },
        { device: 'r2', direction: 'download' },
        { device: 'r2', direction: 'upload' },
      ].map((l) => JSON.stringify(l)).sort(),
    );
    for (const f of frames) {
      expect(f.refId).toBe('A');
      expect(f.meta).toMatchObject({ type: 'timeseries-multi', typeVersion: [0, 1] });
      expect(f.table.schema.fields.map((x) => String(x.type))).toEqual(['Timestamp<NANOSECOND>', 'Float64']);
      const times = timeNanos(f);
      expect(times.every((t, i) => i === 0 || t > times[i - 1])).toBe(true);
      expect(f.table.getChild('time')?.nullCount).toBe(0);
      expect(fieldConfig(f, 1)).toMatchObject({ unit: 'bps' });
    }
    const r1Upload = frames.find((f) => fieldLabels(f, 1)?.device === 'r1' && fieldLabels(f, 1)?.direction === 'upload');
    const values = Array.from(r1Upload!.table.getChild('tcp_received_bps')!.toArray() as Float64Array);
    expect(values).toEqual([100e6, 200e6, 300e6, 0]);
    // the collector stores the test's start time; Grafana reads nanoseconds
    expect(timeNanos(r1Upload!)[0] % 1_000_000n).toBe(0n);
    expect(Number(timeNanos(r1Upload!)[0] / 1_000_000n)).toBeGreaterThanOrEqual(NIGHT0);
  });

  it('honours the time range', async () => {
    const responses = await client.queryData(settings, [
      { refId: 'B', json: { queryType: 'timeseries', devices: ['r1'], metrics: ['result'] }, fromMs: NIGHT0 + DAY - 1, toMs: NIGHT0 + 2 * DAY + 3600_000 },
    ]);
    const [frame] = responses.B.frames.map(decodeFrame);
    expect(frame.table.numRows).toBe(2);
    expect(fieldLabels(frame, 1)).toEqual({ device: 'r1' });
  });

  it('splits by metric label when several metrics are asked for, and by server when asked', async () => {
    const multi = await query({ queryType: 'timeseries', devices: ['r1'], metrics: ['tcp_received_bps', 'result'], direction: 'upload' });
    const labels = multi.frames.map(decodeFrame).map((f) => fieldLabels(f, 1));
    expect(labels).toContainEqual({ device: 'r1', direction: 'upload', metric: 'tcp_received_bps' });
    expect(labels).toContainEqual({ device: 'r1', metric: 'result' });
    const split = await query({ queryType: 'timeseries', devices: ['*'], metrics: ['result'], splitByServer: true });
    const splitLabels = split.frames.map(decodeFrame).map((f) => fieldLabels(f, 1));
    expect(splitLabels).toContainEqual({ device: 'r2', server: '10.0.0.2:5201' });
    expect(new Set(splitLabels.map((l) => JSON.stringify(l))).size).toBe(splitLabels.length);
  });

  it('accepts multi-value device entries: comma-separated and {a,b}', async () => {
    for (const devices of [['r1,r2'], ['{r1,r2}'], ['r1', ' r2 ']]) {
      const r = await query({ queryType: 'timeseries', devices, metrics: ['result'] });
      const devs = r.frames.map(decodeFrame).map((f) => fieldLabels(f, 1)?.device);
      expect(devs.sort()).toEqual(['r1', 'r2']);
    }
  });

  it('selects devices by label matchers', async () => {
    const r = await query({ queryType: 'timeseries', devices: ['*'], labelMatchers: [{ label: 'site', op: '=~', value: 'ro.*' }], metrics: ['result'] });
    expect(r.frames.map(decodeFrame).map((f) => fieldLabels(f, 1)?.device)).toEqual(['r1']);
    const none = await query({ queryType: 'timeseries', devices: ['*'], labelMatchers: [{ label: 'site', value: 'paris' }], metrics: ['result'] });
    const [empty] = none.frames.map(decodeFrame);
    expect(none.frames).toHaveLength(1);
    expect(empty.table.numCols).toBe(0);
    expect(empty.meta).toMatchObject({ type: 'timeseries-multi' });
    const bad = await query({ queryType: 'timeseries', devices: ['*'], labelMatchers: [{ label: 'site', op: '=~', value: '(' }] });
    expect(bad).toMatchObject({ status: 400, frames: [] });
    expect(bad.error).toContain('not a valid regular expression');
  });

  // a backtracking engine spends ~12 s on `(?:.|.|.)*Z` against an 18-character value, blocking every query
  it('matches hostile label regexes in linear time: the answer is right and comes at once', { timeout: 5000 }, async () => {
    for (const value of ['(?:.|.|.)*Z', '(a+)+$', '(x+x+)+y', '(.*a){20}']) {
      const r = await query({ queryType: 'latest', devices: ['*'], labelMatchers: [{ label: 'site', op: '=~', value }], metrics: ['result'] });
      expect(r.status, value).toBe(200);
      expect(r.frames.map(decodeFrame).flatMap((f) => f.table.numCols)).toEqual([0]); // nothing matches, an empty typed frame
    }
    const lookaround = await query({ queryType: 'latest', devices: ['*'], labelMatchers: [{ label: 'site', op: '=~', value: 'r(?=o)' }] });
    expect(lookaround.status).toBe(400);
    expect(lookaround.error).toMatch(/RE2 syntax, as in Prometheus/);
  });

  it('returns an empty frame when the devices have no data in range', async () => {
    const r = await query({ queryType: 'timeseries', devices: ['h3'], metrics: ['udp_bps'] });
    expect(r.status).toBe(200);
    expect(decodeFrame(r.frames[0]).table.numCols).toBe(0);
  });

  it('limits points per series to maxDataPoints', async () => {
    const r = await query({ queryType: 'timeseries', devices: ['r1'], metrics: ['result'] }, { maxDataPoints: 2 });
    expect(decodeFrame(r.frames[0]).table.numRows).toBeLessThanOrEqual(2);
    // a wide panel may ask for more than the collector gives: clamped to its bound, not an error
    const wide = await query({ queryType: 'timeseries', devices: ['r1'], metrics: ['result'] }, { maxDataPoints: 15_000 });
    expect(wide.status).toBe(200);
    expect(decodeFrame(wide.frames[0]).table.numRows).toBe(4);
  });
});

describe('QueryData: latest, runs, intervals', () => {
  it('returns one numeric frame per device for latest values', async () => {
    const r = await query({ queryType: 'latest', devices: ['*'], metrics: ['result'] });
    expect(r.status).toBe(200);
    const frames = r.frames.map(decodeFrame);
    expect(frames.map((f) => f.meta)).toEqual(frames.map(() => ({ type: 'numeric-multi', typeVersion: [0, 1] })));
    const byDevice = Object.fromEntries(frames.map((f) => [fieldLabels(f, 0)?.device, (f.table.getChild('result')!.toArray() as Float64Array)[0]]));
    expect(byDevice).toEqual({ r1: 0, r2: 1 });
    for (const f of frames) expect(f.table.schema.fields.map((x) => String(x.type))).toEqual(['Float64']);
  });

  it('answers latest queries with the newest value inside the time range, and no data when there is none', async () => {
    const inRange = (fromMs: number, toMs: number) =>
      client.queryData(settings, [{ refId: 'A', json: { queryType: 'latest', devices: ['r1'], metrics: ['result'] }, fromMs, toMs }]).then((r) => r.A);
    // night 1 only: r1 was ok then (its newest value ever is the failure of night 3)
    const night1 = await inRange(NIGHT0 + DAY - 3_600_000, NIGHT0 + DAY + 3_600_000);
    expect(night1.frames.map(decodeFrame).map((f) => (f.table.getChild('result')!.toArray() as Float64Array)[0])).toEqual([1]);
    // an alert rule looking at the last 36 h of a device that stopped being tested a year later: no data, not a stale value
    const later = await inRange(NIGHT0 + 400 * DAY, NIGHT0 + 401 * DAY);
    expect(later.status).toBe(200);
    expect(later.frames.map(decodeFrame).map((f) => f.table.numCols)).toEqual([0]);
  });

  it('takes a time range that starts at the epoch as it is (from = 0 is not "no start", which showed the last 24 h)', async () => {
    const series = (fromMs: number) =>
      client.queryData(settings, [{ refId: 'A', json: { queryType: 'timeseries', devices: ['r1'], metrics: ['result'] }, fromMs, toMs: NOW }]).then((r) => r.A);
    const points = (r: Awaited<ReturnType<typeof series>>) => r.frames.map(decodeFrame).reduce((n, f) => n + f.table.numRows, 0);
    const recent = await series(NOW - DAY);
    const all = await series(NOW - 1000 * DAY);
    expect(points(all)).toBeGreaterThan(points(recent));
    // from the epoch: more than the collector answers for at once, said so, never a silent last day
    const epoch = await series(0);
    expect(epoch.status).toBe(400);
    expect(epoch.error).toMatch(/from: the range from\.\.to may span at most \d+ days; narrow it/);
  });

  it('derives seconds since the last successful run, +Inf for a device that never succeeded', async () => {
    const r = await query({ queryType: 'latest', devices: ['*'], metrics: ['last_success_age_s'] });
    expect(r.status).toBe(200);
    const ages = Object.fromEntries(
      r.frames.map(decodeFrame).map((f) => [fieldLabels(f, 0)?.device, (f.table.getChild('last_success_age_s')!.toArray() as Float64Array)[0]]),
    );
    // r1: last ok run started NIGHT0+2d and ended 25 s later; r2: NIGHT0+60 s +25 s
    expect(ages.r1).toBeCloseTo((NOW - (NIGHT0 + 2 * DAY + 25_000)) / 1000, 3);
    expect(ages.r2).toBeCloseTo((NOW - (NIGHT0 + 85_000)) / 1000, 3);
    expect(ages.h3).toBe(Number.POSITIVE_INFINITY);
    const cfg = fieldConfig(r.frames.map(decodeFrame)[0], 0);
    expect(cfg).toMatchObject({ unit: 's' });
    const both = await query({ queryType: 'latest', devices: ['r2'], metrics: ['result', 'last_success_age_s'] });
    expect(both.frames.map(decodeFrame).map((f) => fieldLabels(f, 0))).toEqual([
      { device: 'r2', metric: 'result' },
      { device: 'r2', metric: 'last_success_age_s' },
    ]);
    const wrongType = await query({ queryType: 'timeseries', devices: ['r2'], metrics: ['last_success_age_s'] });
    expect(wrongType).toMatchObject({ status: 400 });
    expect(wrongType.error).toContain('only available in "latest" queries');
  });

  it('returns an empty numeric frame when nothing matches', async () => {
    const r = await query({ queryType: 'latest', devices: ['h3'], metrics: ['udp_bps'] });
    expect(decodeFrame(r.frames[0]).meta).toMatchObject({ type: 'numeric-multi' });
    const none = await query({ queryType: 'latest', devices: ['*'], labelMatchers: [{ label: 'site', value: 'paris' }] });
    expect(decodeFrame(none.frames[0]).table.numCols).toBe(0);
  });

  it('returns the run log as a table, newest first, filtered by status', async () => {
    const r = await query({ queryType: 'runs', devices: ['*'] });
    const [frame] = r.frames.map(decodeFrame);
    expect(frame.meta).toEqual({ preferredVisualisationType: 'table' });
    expect(frame.table.numRows).toBe(5);
    const rows = frame.table.toArray().map((row) => row.toJSON());
    expect(rows[0]).toMatchObject({ device: 'r1', status: 'failed', errorClass: 'server-busy', server: '10.0.0.1:5201', trigger: 'schedule', duration: 2 });
    expect(rows[0].tests).toBe('tcp upload failed (server-busy)');
    expect(rows[3]).toMatchObject({ device: 'r2', status: 'ok', errorClass: null, duration: 25 });
    expect(rows[4]).toMatchObject({ device: 'r1', status: 'ok', message: null, iperf3: '3.12' });
    expect(rows[0].iperf3).toBeNull(); // a test that failed before iperf3 printed its version
    const types = Object.fromEntries(frame.table.schema.fields.map((f) => [f.name, String(f.type)]));
    expect(types).toMatchObject({ time: 'Timestamp<NANOSECOND>', ended: 'Timestamp<NANOSECOND>', device: 'Utf8', duration: 'Float64', id: 'Float64' });
    const failed = await query({ queryType: 'runs', devices: ['r1', 'r2'], status: ['failed'] });
    expect(decodeFrame(failed.frames[0]).table.numRows).toBe(1);
    const limited = await query({ queryType: 'runs', devices: ['*'], limit: 2 });
    expect(decodeFrame(limited.frames[0]).table.numRows).toBe(2);
    const none = await query({ queryType: 'runs', devices: ['*'], labelMatchers: [{ label: 'site', value: 'paris' }] });
    expect(decodeFrame(none.frames[0]).table.numRows).toBe(0);
  });

  it('returns per-second intervals of one run, by run id or the latest finished run', async () => {
    const runs = await collector.store.runs.list({ devices: ['r2'] });
    const byId = await query({ queryType: 'intervals', runId: runs[0].id });
    expect(byId.status).toBe(200);
    const frames = byId.frames.map(decodeFrame);
    expect(frames.map((f) => fieldLabels(f, 1))).toEqual([
      { device: 'r2', protocol: 'tcp', direction: 'upload', run: String(runs[0].id) },
      { device: 'r2', protocol: 'tcp', direction: 'download', run: String(runs[0].id) },
    ]);
    expect(Array.from(frames[0].table.getChild('bits_per_second')!.toArray() as Float64Array)).toEqual([50e6 + 10]); // the omitted (slow-start) second is not drawn
    expect(fieldConfig(frames[0], 1)).toMatchObject({ unit: 'bps' });
    const latest = await query({ queryType: 'intervals', devices: ['r2'] });
    expect(latest.frames.length).toBe(2);
    const failedRun = await query({ queryType: 'intervals', devices: ['r1'] });
    expect(decodeFrame(failedRun.frames[0]).table.numCols).toBe(0);
    const never = await query({ queryType: 'intervals', devices: ['h3'] });
    expect(never).toMatchObject({ status: 404 });
    expect(never.error).toContain('device "h3" has no finished run yet');
    const noDevice = await query({ queryType: 'intervals', devices: ['*'], labelMatchers: [{ label: 'site', value: 'paris' }] });
    expect(noDevice.error).toContain('no device matches the query');
    const missing = await query({ queryType: 'intervals', runId: 999999 });
    expect(missing).toMatchObject({ status: 404 });
    expect(missing.error).toContain('collector: no run with id 999999');
  });
});

describe('QueryData: alerts and errors', () => {
  it('answers alert queries with one series or number per device', async () => {
    const r = await query({ queryType: 'timeseries', devices: ['*'], metrics: ['tcp_received_bps'], direction: 'download' }, { fromAlert: true });
    const labels = r.frames.map(decodeFrame).map((f) => fieldLabels(f, 1));
    expect(labels).toEqual([{ device: 'r1', direction: 'download' }, { device: 'r2', direction: 'download' }]);
    const latest = await query({ queryType: 'latest', devices: ['*'], metrics: ['last_success_age_s'] }, { fromAlert: true });
    expect(latest.frames.map(decodeFrame).map((f) => fieldLabels(f, 0))).toEqual([{ device: 'r1' }, { device: 'r2' }, { device: 'h3' }]);
    const table = await query({ queryType: 'runs' }, { fromAlert: true });
    expect(table).toMatchObject({ status: 400, errorSource: 'downstream' });
    expect(table.error).toContain('cannot be used in alert rules');
  });

  it('answers every query of a request, each with its own status', async () => {
    const responses = await client.queryData(settings, [
      { refId: 'ok', json: { queryType: 'latest', devices: ['r1'], metrics: ['result'] }, ...RANGE },
      { refId: 'malformed', json: null, raw: Buffer.from('{"queryType":'), ...RANGE },
      { refId: 'array', json: [1], ...RANGE },
      { refId: 'unknownDevice', json: { queryType: 'timeseries', devices: ['nope', 'r1', 'gone'] }, ...RANGE },
      { refId: 'badMetric', json: { queryType: 'timeseries', metrics: ['bogus'] }, ...RANGE },
      { refId: 'badType', json: { queryType: 'bogus' }, ...RANGE },
      { refId: 'noDevices', json: { queryType: 'timeseries', devices: [' , '] }, ...RANGE },
      { refId: 'hidden', json: { queryType: 'timeseries', hide: true }, ...RANGE },
      { refId: 'backwards', json: { queryType: 'timeseries' }, fromMs: NOW, toMs: NOW - DAY },
      { refId: 'empty', json: null, raw: Buffer.alloc(0), ...RANGE },
    ]);
    expect(responses.ok.status).toBe(200);
    expect(responses.malformed).toMatchObject({ status: 400, error: 'the query is not valid JSON', frames: [] });
    expect(responses.array).toMatchObject({ status: 400, error: 'the query must be a JSON object' });
    expect(responses.unknownDevice).toMatchObject({ status: 404 });
    expect(responses.unknownDevice.error).toContain('unknown devices "nope", "gone"');
    expect(responses.badMetric.error).toContain('metrics.0: unknown metric "bogus"');
    expect(responses.badType).toMatchObject({ status: 400 });
    expect(responses.badType.error).toContain('queryType');
    expect(responses.noDevices.error).toContain('select at least one device');
    expect(responses.hidden).toMatchObject({ status: 200, frames: [] });
    expect(responses.backwards.error).toContain('the time range ends before it starts');
    // no JSON at all: the defaults (time series of tcp_received_bps for every device)
    expect(responses.empty.status).toBe(200);
    expect(await client.health()).toEqual({ status: 'SERVING' });
  });

  it('turns collector failures and bad settings into per-query errors', async () => {
    const wrongToken = await query({ queryType: 'latest' }, { settings: { ...settings, uid: 'wt', secure: { apiToken: 'wrong' } } });
    expect(wrongToken).toMatchObject({ status: 502, errorSource: 'downstream' });
    expect(wrongToken.error).toContain("rejected the API token (HTTP 401: ");
    expect(wrongToken.error).toContain("set the collector's API token");
    const unreachable = await query({ queryType: 'latest' }, { settings: { ...settings, uid: 'ur', jsonData: { collectorUrl: `${DEAD}` } } });
    expect(unreachable).toMatchObject({ status: 502 });
    expect(unreachable.error).toContain(`cannot reach the collector at ${DEAD}: ECONNREFUSED`);
    const badSettings = await query({ queryType: 'latest' }, { settings: { uid: 'bs', jsonData: {}, secure: {} } });
    expect(badSettings).toMatchObject({ status: 400 });
    expect(badSettings.error).toContain('collectorUrl: is required');
    expect(badSettings.error).toContain('fix them in the data source settings');
    // the collector's own validation error comes through with its status
    const tooLong = await query({ queryType: 'timeseries', devices: ['r1'] }, { settings });
    expect(tooLong.status).toBe(200);
  });

  it('refuses queries that select more devices than the limit', async () => {
    const many = Array.from({ length: MAX_DEVICES_PER_QUERY + 1 }, (_, i) => ({ id: `d${i}`, host: '192.0.2.9', port: 22, labels: {}, pool: null, enabled: true }));
    const saved = collector.control.deviceList;
    collector.control.deviceList = many;
    try {
      // a data source of its own: another's inventory is cached for a few seconds (INVENTORY_CACHE_MS)
      const r = await query({ queryType: 'latest', devices: ['*'] }, { settings: { ...settings, uid: 'many' } });
      expect(r.status).toBe(400);
      expect(r.error).toContain(`the limit is ${MAX_DEVICES_PER_QUERY}: narrow it with label matchers`);
    } finally {
      collector.control.deviceList = saved;
    }
  });
});

describe('memory after a large answer', () => {
  const releases = (text: string): number => Number(/^iperf3_plugin_heap_release_seconds_count (\d+)$/m.exec(text)?.[1]);

  it('runs one memory-reducing collection once quiet after an answer above the threshold, and none after smaller ones', async () => {
    // this file's other queries are far below the default threshold: none ran here
    expect(releases((await client.collectMetrics(settings)).metrics.prometheus.toString())).toBe(0);
    const small = new PluginServer({ logger: createPluginLogger({ level: 'silent' }), now: () => NOW, heapRelease: { thresholdBytes: 1, delayMs: 20 } });
    const smallClient = new PluginClient(`127.0.0.1:${await small.listen()}`);
    try {
      const { A } = await smallClient.queryData(settings, [{ refId: 'A', json: { queryType: 'timeseries', devices: ['r1'], metrics: ['tcp_received_bps'] }, ...RANGE }]);
      expect(A.status).toBe(200);
      const metrics = async () => (await smallClient.collectMetrics(settings)).metrics.prometheus.toString();
      await expect.poll(async () => releases(await metrics())).toBe(1);
      // and only one: nothing else was answered
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(releases(await metrics())).toBe(1);
    } finally {
      smallClient.close();
      await small.stop();
    }
  });
});

describe('instances', () => {
  it('pushes the settings once per data source version, and again when lastUpdatedMS changes', async () => {
    const base = { uid: 'ds-push', jsonData: { collectorUrl: collector.url, servers: [{ host: '10.0.0.7' }] }, secure: { apiToken: collector.token } };
    const before = collector.control.applied.length;
    await query({ queryType: 'latest', devices: ['r1'] }, { settings: { ...base, lastUpdatedMS: 10 } });
    await query({ queryType: 'latest', devices: ['r1'] }, { settings: { ...base, lastUpdatedMS: 10 } });
    await expect.poll(() => collector.control.applied.length).toBe(before + 1);
    expect(collector.control.applied.at(-1)?.servers).toEqual([{ host: '10.0.0.7', port: 5201 }]);
    const changed = { ...base, lastUpdatedMS: 11, jsonData: { ...base.jsonData, servers: [{ host: '10.0.0.8', port: 5202 }] } };
    await query({ queryType: 'latest', devices: ['r1'] }, { settings: changed });
    await expect.poll(() => collector.control.applied.length).toBe(before + 2);
    expect(collector.control.applied.at(-1)?.servers).toEqual([{ host: '10.0.0.8', port: 5202 }]);
  });

  it('keeps queries working when only the iperf3 settings are invalid, and logs a failed push', async () => {
    const r = await query({ queryType: 'latest', devices: ['r1'], metrics: ['result'] }, { settings: { uid: 'ds-partial', jsonData: { collectorUrl: collector.url, servers: [] }, secure: { apiToken: collector.token } } });
    expect(r.status).toBe(200);
    await query({ queryType: 'latest' }, { settings: { uid: 'ds-pushfail', jsonData: { collectorUrl: `${DEAD}`, servers: [{ host: '10.0.0.1' }] }, secure: { apiToken: 't' } } });
    await expect.poll(() => logLines.some((l) => l['@message'] === 'could not push settings to the collector')).toBe(true);
  });
});

describe('CallResource', () => {
  it('lists devices, servers, metrics and runs', async () => {
    const devices = await client.callResource(settings, 'devices');
    expect(devices.code).toBe(200);
    expect(devices.contentType).toBe('application/json');
    expect((devices.json as { id: string }[]).map((d) => d.id)).toEqual(['r1', 'r2', 'h3']);
    const servers = await client.callResource(settings, 'servers');
    expect((servers.json as { key: string }[]).map((s) => s.key)).toEqual(collector.control.serverList.map((s) => s.key));
    const metrics = await client.callResource({ uid: 'no-settings' }, '/metrics/');
    expect(metrics.code).toBe(200);
    const catalogue = metrics.json as { name: string; derived: boolean; queryTypes: string[] }[];
    expect(catalogue.find((m) => m.name === 'last_success_age_s')).toMatchObject({ derived: true, queryTypes: ['latest'] });
    expect(catalogue.find((m) => m.name === 'tcp_received_bps')).toMatchObject({ unit: 'bps', derived: false });
    const runs = await client.callResource(settings, 'runs', { query: 'device=r1&status=failed&limit=5' });
    expect(runs.code).toBe(200);
    expect((runs.json as { runs: { device: string; status: string }[] }).runs).toEqual([expect.objectContaining({ device: 'r1', status: 'failed' })]);
    const all = await client.callResource(settings, 'runs');
    expect((all.json as { runs: unknown[] }).runs).toHaveLength(5);
  });

  it('queues a run now and reports bad requests with status codes', async () => {
    for (const user of [{ login: 'v', role: 'Viewer' }, { login: '', role: '' }, null]) {
      const refused = await client.callResource(settings, 'runs', { method: 'POST', body: { devices: ['r1'] }, user });
      expect(refused).toMatchObject({ code: 403, json: { error: 'forbidden', message: expect.stringMatching(/needs the Editor or Admin role/) } });
    }
    expect((await client.callResource(settings, 'devices', { user: null })).code).toBe(200);
    const queued = await client.callResource(settings, 'runs', { method: 'POST', body: { devices: ['r1'] } });
    expect(queued).toMatchObject({ code: 202, json: { queued: ['r1'] } });
    const single = await client.callResource(settings, 'runs', { method: 'POST', body: { device: 'r2' } });
    expect(single).toMatchObject({ code: 202, json: { queued: ['r2'] } });
    const unknown = await client.callResource(settings, 'runs', { method: 'POST', body: { devices: ['zz'] } });
    expect(unknown.code).toBe(404);
    expect((unknown.json as { message: string }).message).toContain('zz');
    const badJson = await client.callResource(settings, 'runs', { method: 'POST', body: '{' });
    expect(badJson).toMatchObject({ code: 400, json: { error: 'invalid-json' } });
    const badBody = await client.callResource(settings, 'runs', { method: 'POST', body: { devices: [] } });
    expect(badBody).toMatchObject({ code: 400, json: { error: 'invalid-body' } });
    const noBody = await client.callResource(settings, 'runs', { method: 'POST' });
    expect(noBody.code).toBe(400);
    const badStatus = await client.callResource(settings, 'runs', { query: 'status=weird' });
    expect(badStatus).toMatchObject({ code: 400, json: { error: 'invalid-status' } });
    const badLimit = await client.callResource(settings, 'runs', { query: 'limit=0' });
    expect(badLimit).toMatchObject({ code: 400, json: { error: 'invalid-limit' } });
    const notFound = await client.callResource(settings, 'nope');
    expect(notFound.code).toBe(404);
    expect((notFound.json as { message: string }).message).toContain('available: devices, metrics, runs, runs/progress, servers');
    const wrongMethod = await client.callResource(settings, 'devices', { method: 'DELETE' });
    expect(wrongMethod).toMatchObject({ code: 405 });
  });

  it('keeps the data sources of two organizations apart, even with the same uid and version', async () => {
    const other = { ...settings, orgId: 2, jsonData: { ...(settings.jsonData as object), collectorUrl: DEAD } };
    expect((await client.callResource(settings, 'devices')).code).toBe(200);
    expect((await client.callResource(other, 'devices')).code).toBe(502); // org 2's own (dead) collector
    expect((await client.callResource(settings, 'devices')).code).toBe(200);
  });

  it('maps collector and settings failures to status codes', async () => {
    const wrongToken = await client.callResource({ ...settings, uid: 'r-wt', secure: { apiToken: 'bad' } }, 'devices');
    expect(wrongToken).toMatchObject({ code: 502, json: { error: 'downstream' } });
    const unreachable = await client.callResource({ ...settings, uid: 'r-ur', jsonData: { collectorUrl: `${DEAD}` } }, 'servers');
    expect(unreachable.code).toBe(502);
    const noSettings = await client.callResource({ uid: 'r-none', jsonData: {}, secure: {} }, 'devices');
    expect(noSettings).toMatchObject({ code: 400, json: { error: 'settings' } });
  });
});
