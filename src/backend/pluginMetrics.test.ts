/**
 * CollectMetrics in-process: a fresh PluginServer (its own registry) against the real collector
 * API answers queries, resources and health checks, then reports what it did. The text is also
 * read by Prometheus' own parser in src/backend/executable.test.ts (through the Go SDK host).
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, DAY, NIGHT0, NOW, startCollector, type RunningCollector } from '../../tests/support/collectorFixture.js';
import { PluginClient, type DataSourceSettingsInput } from '../../tests/support/pluginClient.js';
import { createPluginLogger } from './logger.js';
import { PluginMetrics, queryTypeOf, routeOf, statusClass } from './pluginMetrics.js';
import { PluginServer } from './pluginServer.js';

let collector: RunningCollector;
let server: PluginServer;
let client: PluginClient;
let settings: DataSourceSettingsInput;

const RANGE = { fromMs: NIGHT0 - DAY, toMs: NOW };
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

/** The value of one sample line `name{labels} value`, labels given in the order prom-client writes them. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

beforeAll(async () => {
  collector = await startCollector();
  const sink = new Writable({ write: (_c, _e, done) => done() });
  server = new PluginServer({ logger: createPluginLogger({ destination: sink as unknown as pino.DestinationStream, level: 'silent' }), now: () => NOW });
  client = new PluginClient(`127.0.0.1:${await server.listen()}`);
  settings = { uid: 'ds-metrics', jsonData: { collectorUrl: collector.url, servers: [{ host: '10.0.0.1' }] }, secure: { apiToken: collector.token } };
});

afterAll(async () => {
  client.close();
  await server.stop();
  await collector.close();
});

describe('label helpers', () => {
  it('reads the query type as the query parser does, anything else as "invalid"', () => {
    expect(queryTypeOf({ json: json({ queryType: 'latest' }) })).toBe('latest');
    expect(queryTypeOf({ json: json({}), queryType: 'runs' })).toBe('runs');
    expect(queryTypeOf({})).toBe('timeseries');
    expect(queryTypeOf({ json: json({ queryType: 'drop table' }) })).toBe('invalid');
    expect(queryTypeOf({ json: Buffer.from('{') })).toBe('invalid');
    expect(queryTypeOf({ json: Buffer.from('null'), queryType: 'intervals' })).toBe('intervals');
  });

  it('keeps one route per collector path and one status per class', () => {
    expect(routeOf('/runs/42/intervals')).toBe('/runs/:id/intervals');
    expect(routeOf('/runs/7')).toBe('/runs/:id');
    expect(routeOf('/series')).toBe('/series');
    expect([statusClass(200), statusClass(404), statusClass(502), statusClass(null)]).toEqual(['2xx', '4xx', '5xx', 'unreachable']);
  });

  it('folds unknown resource paths and methods into one series each', async () => {
    const metrics = new PluginMetrics(['devices']);
    metrics.resource('devices', 'get', 200);
    metrics.resource('../../etc', 'BREW', 404);
    const text = await metrics.text();
    expect(sample(text, 'iperf3_plugin_resource_requests_total{path="devices",method="GET",status="200"}')).toBe(1);
    expect(sample(text, 'iperf3_plugin_resource_requests_total{path="unknown",method="other",status="404"}')).toBe(1);
  });
});

describe('CollectMetrics', () => {
  it('answers Prometheus text with query counts and latency per type, errors, collector round-trips and memory', async () => {
    await client.queryData(settings, [
      { refId: 'A', json: { queryType: 'latest', devices: ['*'], metrics: ['result'] }, ...RANGE },
      { refId: 'B', json: { queryType: 'latest', devices: ['r1'], metrics: ['result'] }, ...RANGE },
      { refId: 'C', json: { queryType: 'runs', devices: ['ghost'] }, ...RANGE },
      { refId: 'D', json: { queryType: 'nonsense' }, ...RANGE },
    ]);
    const dead = { ...settings, uid: 'ds-dead', jsonData: { collectorUrl: `http://127.0.0.1:${await closedPort()}`, servers: [{ host: '10.0.0.1' }] } };
    await client.queryData(dead, [{ refId: 'A', json: { queryType: 'timeseries', devices: ['r1'] }, ...RANGE }]);
    await client.queryData({ uid: 'no-settings', jsonData: {}, secure: {} }, [{ refId: 'A', json: { queryType: 'latest' }, ...RANGE }]);
    await client.callResource(settings, 'devices');
    await client.checkHealth(settings);
    await client.checkHealth({ ...settings, uid: 'ds-bad', jsonData: { collectorUrl: 'ftp://x' } });

    const text = (await client.collectMetrics(settings)).metrics.prometheus.toString('utf8');
    expect(sample(text, 'iperf3_plugin_query_duration_seconds_count{query_type="latest"}')).toBe(3);
    expect(sample(text, 'iperf3_plugin_query_duration_seconds_count{query_type="runs"}')).toBe(1);
    expect(sample(text, 'iperf3_plugin_query_duration_seconds_count{query_type="timeseries"}')).toBe(1);
    expect(sample(text, 'iperf3_plugin_query_duration_seconds_count{query_type="invalid"}')).toBe(1);
    expect(sample(text, 'iperf3_plugin_query_duration_seconds_sum{query_type="latest"}')).toBeGreaterThan(0);
    expect(sample(text, 'iperf3_plugin_query_errors_total{query_type="runs",status="404",source="downstream"}')).toBe(1);
    expect(sample(text, 'iperf3_plugin_query_errors_total{query_type="invalid",status="400",source="downstream"}')).toBe(1);
    expect(sample(text, 'iperf3_plugin_query_errors_total{query_type="timeseries",status="502",source="downstream"}')).toBe(1);
    expect(sample(text, 'iperf3_plugin_query_errors_total{query_type="latest",status="400",source="downstream"}')).toBe(1);
    expect(sample(text, 'iperf3_plugin_collector_request_duration_seconds_count{method="GET",route="/latest",status="2xx"}')).toBe(2);
    expect(sample(text, 'iperf3_plugin_collector_request_duration_seconds_count{method="GET",route="/health",status="2xx"}')).toBe(1);
    // the dead collector: the device list is its first round-trip, and the settings push on its first use
    expect(sample(text, 'iperf3_plugin_collector_request_duration_seconds_count{method="GET",route="/devices",status="unreachable"}')).toBe(1);
    expect(sample(text, 'iperf3_plugin_collector_request_duration_seconds_count{method="PUT",route="/settings",status="unreachable"}')).toBe(1);
    expect(sample(text, 'iperf3_plugin_resource_requests_total{path="devices",method="GET",status="200"}')).toBe(1);
    expect(sample(text, 'iperf3_plugin_health_checks_total{status="OK"}')).toBe(1);
    expect(sample(text, 'iperf3_plugin_health_checks_total{status="ERROR"}')).toBe(1);
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(1e6);
    expect(sample(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(text).toContain('# HELP iperf3_plugin_query_duration_seconds ');
    expect(text).toContain('# TYPE iperf3_plugin_query_duration_seconds histogram');
  });

  it('answers INTERNAL with the reason when the registry cannot be read', async () => {
    const broken = new PluginServer({ logger: createPluginLogger({ level: 'silent' }) });
    broken.metrics.registry.metrics = () => Promise.reject(new Error('boom'));
    const other = new PluginClient(`127.0.0.1:${await broken.listen()}`);
    try {
      await expect(other.collectMetrics(settings)).rejects.toThrow(/cannot collect metrics: .*boom/);
    } finally {
      other.close();
      await broken.stop();
    }
  });
});
