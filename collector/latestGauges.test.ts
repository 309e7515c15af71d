/**
 * The latest measurements on /metrics, from results stored in a real SQLite store (real iperf3
 * output through the real parser), judged by Prometheus' own tools: `promtool check metrics`
 * (parser and linter) and a real Prometheus server that scrapes the collector API with its
 * token and answers PromQL queries. Both come from Debian's `prometheus` package (.ci/run installs it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { Direction } from '../contract/metrics.js';
import type { TestProtocol } from '../contract/api.js';
import { buildApi } from './api/app.js';
import { FixtureControl } from '../tests/support/collectorFixture.js';
import { parseIperf3Result } from './iperf3/parse.js';
import { LATEST_WINDOW_MS, MAX_EXPORTED_DEVICES } from './latestGauges.js';
import type { RunOutcome, TestResultRecord } from './model.js';
import { SqliteStore } from './store/sqlite/sqliteStore.js';
import { Telemetry } from './telemetry.js';

const FIXTURES = join(import.meta.dirname, 'iperf3', 'fixtures');
const NOW = Date.parse('2026-03-10T12:00:00.000Z');
const HOUR = 3_600_000;
const SERVER_A = '10.0.0.1:5201';
const SERVER_B = '10.0.0.2:5201';

/** A test as the dispatcher records it: the real fixture through the real parser. */
function fixtureTest(fixture: string, protocol: TestProtocol, direction: Direction, startMs: number, server: string, exitCode = 0): TestResultRecord {
  const stdout = readFileSync(join(FIXTURES, fixture), 'utf8');
  const outcome = parseIperf3Result({ stdout, stderr: '', exitCode, protocol, direction });
  return { protocol, direction, server, startedAt: new Date(startMs), endedAt: new Date(startMs + 1500), outcome };
}

/** TCP up, TCP down, UDP up, UDP down, all from real output: result 1. */
function okRun(startMs: number, server: string): RunOutcome {
  return {
    status: 'ok',
    errorClass: null,
    message: null,
    server,
    endedAt: new Date(startMs + 40_000),
    tests: [
      fixtureTest('tcp-upload.json', 'tcp', 'upload', startMs + 1000, server),
      fixtureTest('tcp-download.json', 'tcp', 'download', startMs + 10_000, server),
      fixtureTest('udp-upload.json', 'udp', 'upload', startMs + 20_000, server),
      fixtureTest('udp-download.json', 'udp', 'download', startMs + 30_000, server),
    ],
    metrics: [
      { name: 'result', direction: null, value: 1, failed: false },
      { name: 'duration_s', direction: null, value: 40, failed: false },
    ],
  };
}

/** The upload found the server busy (real output): zeros with failed=1, as the dispatcher writes them. */
function busyRun(startMs: number, server: string): RunOutcome {
  const test = fixtureTest('error-server-busy.json', 'tcp', 'upload', startMs + 500, server, 1);
  expect(test.outcome.ok).toBe(false);
  return {
    status: 'failed',
    errorClass: 'server-busy',
    message: 'the server is busy running a test',
    server,
    endedAt: new Date(startMs + 2000),
    tests: [test],
    metrics: [
      { name: 'tcp_received_bps', direction: 'upload', value: 0, failed: true },
      { name: 'tcp_sent_bps', direction: 'upload', value: 0, failed: true },
      { name: 'result', direction: null, value: 0, failed: true },
      { name: 'duration_s', direction: null, value: 2, failed: false },
    ],
  };
}

function unreachableRun(startMs: number): RunOutcome {
  return { status: 'skipped', errorClass: 'unreachable', message: 'connect ETIMEDOUT', server: null, endedAt: new Date(startMs + 5000), tests: [], metrics: [] };
}

/** The value of the one sample `name{labels}` (labels in their exposition order), or undefined. */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  if (line === undefined) return undefined;
  const value = line.slice(line.lastIndexOf(' ') + 1);
  return value === '+Inf' ? Number.POSITIVE_INFINITY : Number(value);
}

const samplesOf = (text: string, name: string): string[] => text.split('\n').filter((l) => l.startsWith(`${name}{`));

/** The parsed metric of a real fixture, to compare what /metrics says with what iperf3 printed. */
function fixtureMetric(fixture: string, protocol: TestProtocol, direction: Direction, name: string): number {
  const test = fixtureTest(fixture, protocol, direction, 0, SERVER_A);
  if (!test.outcome.ok) throw new Error(`${fixture} does not parse`);
  const metric = test.outcome.metrics.find((m) => m.name === name);
  if (!metric) throw new Error(`${fixture} has no ${name}`);
  return metric.value;
}

let dir: string;
let store: SqliteStore;
let now: number;

async function store_(device: string, startMs: number, outcome: RunOutcome): Promise<void> {
  const id = await store.runs.start({ device, trigger: 'schedule', roundId: null, startedAt: new Date(startMs) });
  await store.runs.finish(id, outcome);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'latest-gauges-'));
  now = NOW;
  store = SqliteStore.open(join(dir, 'collector.db'), { clock: () => new Date(now) });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the latest measurements on /metrics', () => {
  it("exports each device's latest values under iperf3_exporter's names and ours, in base units", async () => {
    await store_('r1', NOW - 2 * HOUR, okRun(NOW - 2 * HOUR, SERVER_A));
    const text = await new Telemetry({ store, clock: () => new Date(now) }).metrics();

    const up = 'device="r1",direction="upload",server="10.0.0.1:5201"';
    const down = 'device="r1",direction="download",server="10.0.0.1:5201"';
    expect(sample(text, 'iperf3_received_bps', up)).toBe(fixtureMetric('tcp-upload.json', 'tcp', 'upload', 'tcp_received_bps'));
    expect(sample(text, 'iperf3_sent_bps', up)).toBe(fixtureMetric('tcp-upload.json', 'tcp', 'upload', 'tcp_sent_bps'));
    expect(sample(text, 'iperf3_received_bps', down)).toBe(fixtureMetric('tcp-download.json', 'tcp', 'download', 'tcp_received_bps'));
    expect(sample(text, 'iperf3_received_bytes', up)).toBe(fixtureMetric('tcp-upload.json', 'tcp', 'upload', 'tcp_bytes'));
    expect(sample(text, 'iperf3_retransmits', up)).toBe(fixtureMetric('tcp-upload.json', 'tcp', 'upload', 'tcp_retransmits'));
    expect(sample(text, 'iperf3_udp_received_bps', down)).toBe(fixtureMetric('udp-download.json', 'udp', 'download', 'udp_bps'));
    expect(sample(text, 'iperf3_udp_jitter_seconds', up)).toBeCloseTo(fixtureMetric('udp-upload.json', 'udp', 'upload', 'udp_jitter_ms') / 1000, 12);
    expect(sample(text, 'iperf3_udp_lost_ratio', up)).toBeCloseTo(fixtureMetric('udp-upload.json', 'udp', 'upload', 'udp_lost_percent') / 100, 12);
    expect(sample(text, 'iperf3_udp_packets', up)).toBe(fixtureMetric('udp-upload.json', 'udp', 'upload', 'udp_packets'));
    expect(sample(text, 'iperf3_udp_lost_packets', up)).toBe(fixtureMetric('udp-upload.json', 'udp', 'upload', 'udp_lost_packets'));
    expect(sample(text, 'iperf3_up', 'device="r1",server="10.0.0.1:5201"')).toBe(1);
    expect(sample(text, 'iperf3_run_duration_seconds', 'device="r1",server="10.0.0.1:5201"')).toBe(40);
    expect(sample(text, 'iperf3_last_success_age_seconds', 'device="r1"')).toBe((2 * HOUR - 40_000) / 1000);
    expect(sample(text, 'iperf3_last_run_timestamp_seconds', 'device="r1"')).toBe((NOW - 2 * HOUR) / 1000);
    expect(text).toContain('# TYPE iperf3_received_bps gauge');
    expect(text).toMatch(/^iperf3_collector_exported_devices 1$/m);
  });

  it('keeps one series per device, metric and direction: a new server replaces the old series', async () => {
    const telemetry = new Telemetry({ store, clock: () => new Date(now) });
    await store_('r1', NOW - 26 * HOUR, okRun(NOW - 26 * HOUR, SERVER_A));
    expect(samplesOf(await telemetry.metrics(), 'iperf3_received_bps')).toHaveLength(2);
    await store_('r1', NOW - 2 * HOUR, okRun(NOW - 2 * HOUR, SERVER_B));
    const text = await telemetry.metrics();
    expect(samplesOf(text, 'iperf3_received_bps')).toEqual([
      expect.stringMatching(/^iperf3_received_bps\{device="r1",direction="download",server="10\.0\.0\.2:5201"\} /),
      expect.stringMatching(/^iperf3_received_bps\{device="r1",direction="upload",server="10\.0\.0\.2:5201"\} /),
    ]);
    expect(text).not.toContain(SERVER_A);
  });

  it('says up 0 for a failed run (zeros from the dispatcher) and for an unreachable device, and ages the last success', async () => {
    await store_('busy', NOW - 30 * HOUR, okRun(NOW - 30 * HOUR, SERVER_A));
    await store_('busy', NOW - 6 * HOUR, busyRun(NOW - 6 * HOUR, SERVER_B));
    await store_('gone', NOW - 30 * HOUR, okRun(NOW - 30 * HOUR, SERVER_A));
    await store_('gone', NOW - 6 * HOUR, unreachableRun(NOW - 6 * HOUR));
    await store_('never', NOW - HOUR, busyRun(NOW - HOUR, SERVER_A));
    const text = await new Telemetry({ store, clock: () => new Date(now) }).metrics();

    expect(sample(text, 'iperf3_up', 'device="busy",server="10.0.0.2:5201"')).toBe(0);
    expect(sample(text, 'iperf3_received_bps', 'device="busy",direction="upload",server="10.0.0.2:5201"')).toBe(0);
    // the download of the failed run never ran: its latest value is still the one before
    expect(sample(text, 'iperf3_received_bps', 'device="busy",direction="download",server="10.0.0.1:5201"')).toBeGreaterThan(0);
    expect(sample(text, 'iperf3_last_success_age_seconds', 'device="busy"')).toBe((30 * HOUR - 40_000) / 1000);

    expect(sample(text, 'iperf3_up', 'device="gone",server=""')).toBe(0);
    expect(sample(text, 'iperf3_last_run_timestamp_seconds', 'device="gone"')).toBe((NOW - 6 * HOUR) / 1000);
    expect(sample(text, 'iperf3_last_success_age_seconds', 'device="gone"')).toBe((30 * HOUR - 40_000) / 1000);

    expect(sample(text, 'iperf3_up', 'device="never",server="10.0.0.1:5201"')).toBe(0);
    expect(sample(text, 'iperf3_last_success_age_seconds', 'device="never"')).toBe(Number.POSITIVE_INFINITY);
    expect(text).toMatch(/^iperf3_collector_exported_devices 3$/m);
  });

  it('answers from the latest finished run while a run is going', async () => {
    await store_('r1', NOW - 26 * HOUR, okRun(NOW - 26 * HOUR, SERVER_A));
    await store_('r1', NOW - 2 * HOUR, unreachableRun(NOW - 2 * HOUR));
    await store.runs.start({ device: 'r1', trigger: 'manual', roundId: null, startedAt: new Date(NOW - 60_000) });
    const text = await new Telemetry({ store, clock: () => new Date(now) }).metrics();
    expect(sample(text, 'iperf3_up', 'device="r1",server=""')).toBe(0);
    expect(sample(text, 'iperf3_last_run_timestamp_seconds', 'device="r1"')).toBe((NOW - 2 * HOUR) / 1000);
  });

  it('leaves out devices with nothing stored within the window, and bounds the number of devices', async () => {
    await store_('old', NOW - LATEST_WINDOW_MS - HOUR, okRun(NOW - LATEST_WINDOW_MS - HOUR, SERVER_A));
    await store_('new', NOW - HOUR, okRun(NOW - HOUR, SERVER_A));
    const text = await new Telemetry({ store, clock: () => new Date(now) }).metrics();
    expect(text).not.toContain('device="old"');
    expect(text).toContain('device="new"');
    expect(text).toMatch(/^iperf3_collector_exported_devices_dropped 0$/m);

    // one more than the bound, each with a result only (as cheap to store as a run gets)
    const many = MAX_EXPORTED_DEVICES + 1;
    for (let i = 0; i < many; i++) {
      await store_(`d${String(i).padStart(5, '0')}`, NOW - 3 * HOUR + i, {
        status: 'ok', errorClass: null, message: null, server: SERVER_A, endedAt: new Date(NOW - 2 * HOUR), tests: [],
        metrics: [{ name: 'result', direction: null, value: 1, failed: false }],
      });
    }
    const bounded = await new Telemetry({ store, clock: () => new Date(now) }).metrics();
    expect(bounded).toMatch(new RegExp(`^iperf3_collector_exported_devices ${MAX_EXPORTED_DEVICES}$`, 'm'));
    expect(bounded).toMatch(/^iperf3_collector_exported_devices_dropped 2$/m);
    // the newest measurements win: "new" (an hour ago) stays, the oldest of the many goes
    expect(bounded).toContain('iperf3_up{device="new"');
    expect(bounded).not.toContain('iperf3_up{device="d00000"');
    expect(bounded).toContain('iperf3_up{device="d05000"');
  }, 60_000);

  it('lets concurrent scrapes share one reading of the store', async () => {
    await store_('r1', NOW - HOUR, okRun(NOW - HOUR, SERVER_A));
    const telemetry = new Telemetry({ store, clock: () => new Date(now) });
    let reads = 0;
    const latest = store.metrics.latest.bind(store.metrics);
    store.metrics.latest = async (q) => {
      reads++;
      return latest(q);
    };
    const [a, b] = await Promise.all([telemetry.metrics(), telemetry.metrics()]);
    expect(reads).toBe(1);
    expect(sample(a, 'iperf3_up', 'device="r1",server="10.0.0.1:5201"')).toBe(1);
    expect(sample(b, 'iperf3_up', 'device="r1",server="10.0.0.1:5201"')).toBe(1);
    await telemetry.metrics();
    expect(reads).toBe(2);
  });

  it('passes promtool check metrics: it parses, and the names it adds pass the linter', async () => {
    await store_('r1', NOW - 30 * HOUR, okRun(NOW - 30 * HOUR, SERVER_A));
    await store_('r1', NOW - 2 * HOUR, busyRun(NOW - 2 * HOUR, SERVER_B));
    await store_('never', NOW - HOUR, busyRun(NOW - HOUR, SERVER_A));
    const text = await new Telemetry({ store, clock: () => new Date(now) }).metrics();
    expect(samplesOf(text, 'iperf3_received_bps').length).toBeGreaterThan(0);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.error).toBeUndefined();
    const problems = `${check.stdout}${check.stderr}`.split('\n').filter((l) => l.trim() !== '');
    expect(problems.join('\n')).not.toMatch(/error|parsing/i);
    // prom-client's default nodejs_* gauges end in _total, which the linter flags; ours must not be flagged
    expect(problems.filter((l) => !l.startsWith('nodejs_'))).toEqual([]);
    // exit 3 is "lint problems" (those nodejs_* lines), 1 would be a parse error
    expect([0, 3]).toContain(check.status);
  });
});

/** The scrape configuration and the rules of docs/api.md's Prometheus section, parsed. */
interface ScrapeConfig {
  scrape_interval?: string;
  authorization: { credentials_file: string };
  static_configs: { targets: string[] }[];
}

function documentedPrometheusConfig(): { scrape: ScrapeConfig; rules: unknown } {
  const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'api.md'), 'utf8');
  const section = doc.slice(doc.indexOf('### The latest measurement of every device'));
  const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => parse(m[1] as string) as unknown);
  const [config, rules] = blocks as [{ scrape_configs: [ScrapeConfig] }, unknown];
  return { scrape: config.scrape_configs[0], rules };
}

describe('a real Prometheus scraping the collector API', () => {
  const TOKEN = 'prometheus-scrape-token-0123456789';
  let prometheus: ChildProcess | undefined;
  let promDir: string | undefined;

  afterAll(() => {
    prometheus?.kill('SIGKILL');
    if (promDir) rmSync(promDir, { recursive: true, force: true });
  });

  async function freePort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return port;
  }

  it('stores the gauges under their names and labels, scraped with the bearer token as docs/api.md shows', async () => {
    now = Date.now();
    await store_('r1', now - 30 * HOUR, okRun(now - 30 * HOUR, SERVER_A));
    await store_('r1', now - 2 * HOUR, busyRun(now - 2 * HOUR, SERVER_B));
    const app = buildApi({ store, telemetry: new Telemetry({ store }), token: TOKEN, version: '0.0.1', control: new FixtureControl() });
    try {
      await app.listen({ host: '127.0.0.1', port: 0 });
      const target = `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      promDir = mkdtempSync(join(tmpdir(), 'prometheus-'));
      // the scrape configuration and rules docs/api.md gives, with this test's target, token file and intervals
      const { scrape, rules } = documentedPrometheusConfig();
      writeFileSync(join(promDir, 'token'), TOKEN, { mode: 0o600 });
      scrape.scrape_interval = '1s';
      scrape.authorization.credentials_file = join(promDir, 'token');
      scrape.static_configs = [{ targets: [target] }];
      writeFileSync(join(promDir, 'rules.yml'), stringify(rules));
      writeFileSync(
        join(promDir, 'prometheus.yml'),
        stringify({ global: { evaluation_interval: '1s' }, rule_files: [join(promDir, 'rules.yml')], scrape_configs: [scrape] }),
      );
      const checked = spawnSync('promtool', ['check', 'config', join(promDir, 'prometheus.yml')], { encoding: 'utf8' });
      expect(checked.status, `${checked.stdout}${checked.stderr}`).toBe(0);
      const web = `127.0.0.1:${await freePort()}`;
      prometheus = spawn(
        'prometheus',
        [`--config.file=${join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(promDir, 'data')}`, `--web.listen-address=${web}`],
        { stdio: 'ignore' },
      );
      const query = async (promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
        const res = await fetch(`http://${web}/api/v1/query?query=${encodeURIComponent(promql)}`);
        const body = (await res.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
        return body.data.result;
      };
      let received: Awaited<ReturnType<typeof query>> = [];
      for (let i = 0; i < 200 && received.length === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        received = await query('iperf3_received_bps').catch(() => []);
      }
      expect(received.map((r) => [r.metric.device, r.metric.direction, r.metric.server, Number(r.value[1])]).sort()).toEqual(
        [
          ['r1', 'download', SERVER_A, fixtureMetric('tcp-download.json', 'tcp', 'download', 'tcp_received_bps')],
          ['r1', 'upload', SERVER_B, 0],
        ].sort(),
      );
      expect((await query('up{job="iperf3"}'))[0]?.value[1]).toBe('1');
      const upSeries = await query('iperf3_up');
      expect(upSeries.map((r) => ({ ...r.metric, value: r.value[1] }))).toEqual([
        { __name__: 'iperf3_up', device: 'r1', server: SERVER_B, instance: target, job: 'iperf3', value: '0' },
      ]);
      const age = await query('iperf3_last_success_age_seconds > 24 * 3600');
      expect(age.map((r) => r.metric.device)).toEqual(['r1']);
      // the documented rules: the failed upload fires two of them, the last success (30 h ago) none yet
      let firing: string[] = [];
      for (let i = 0; i < 100 && firing.length < 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        firing = (await query('ALERTS{alertstate="firing"}')).map((r) => `${r.metric.alertname} ${r.metric.device} ${r.metric.direction ?? ''}`).sort();
      }
      expect(firing).toEqual(['Iperf3TcpBelow10Mbps r1 upload', 'Iperf3TestsFailing r1 ']);
    } finally {
      await app.close();
    }
  }, 60_000);
});
