/**
 * Every panel target of every dashboard and every alert-rule query, sent through the BUILT
 * plugin executable with the provisioned data source's settings, by Grafana's own client side
 * (tests/grafana-host: go-plugin launches it, the Go SDK decodes and judges every frame, the
 * /api/ds/query JSON is read by @grafana/data), against a real collector filled by real iperf3 tests in
 * the network-namespace lab: a fast device (20 Mbit/s), a slow one (5 Mbit/s, below the
 * alert threshold) and a broken one (no iperf3: its runs fail).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../collector/config/load.js';
import { startService, type Service } from '../../collector/service.js';
import { ensurePluginBuilt } from '../support/pluginProcess.js';
import { GrafanaHost, type HostDataSource } from '../support/grafanaHost.js';
import type { DeviceInfo } from '../../contract/api.js';
import { createLab, type Lab } from '../lab/lab.js';
import { alertItems, labelKey, reduceLastDropNN, threshold } from './grafanaAlerting.js';
import { alertingFileSchema, datasourcesFileSchema } from './grafanaSchemas.js';
import {
  dashboardFiles,
  dashboardTargets,
  expandEnvDeep,
  interpolateTarget,
  provisioningFiles,
  readYaml,
  templateVariables,
} from './stackFiles.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const TOKEN = 'provisioning-lab-token-0123456789';
const DEVICES = ['fast', 'slow', 'broken'];

let lab: Lab;
let dir: string;
let service: Service;
let host: GrafanaHost;
let settings: HostDataSource;

/** The provisioned data source as Grafana hands it to the plugin: env expanded, collector URL pointed at the lab. */
function provisionedSettings(collectorUrl: string): HostDataSource {
  const file = datasourcesFileSchema.parse(readYaml(provisioningFiles('datasources')[0]));
  const ds = file.datasources[0];
  const env = { IPERF3_API_TOKEN: TOKEN };
  const jsonData = expandEnvDeep(ds.jsonData ?? {}, env);
  // the only change: the compose service name does not resolve here
  expect(jsonData.collectorUrl).toBe('http://collector:8686');
  return { uid: ds.uid, id: 1, lastUpdatedMS: Date.now(), jsonData: { ...jsonData, collectorUrl: collectorUrl }, secure: expandEnvDeep(ds.secureJsonData ?? {}, env) };
}

/** Grafana's relative time (`now-7d`) in epoch ms. */
function relativeTime(expr: string, now: number): number {
  if (expr === 'now') return now;
  const m = /^now-(\d+)([smhdw])$/.exec(expr);
  if (!m) throw new Error(`unsupported time ${expr}`);
  const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[m[2] as 's'];
  return now - Number(m[1]) * unit;
}

beforeAll(async () => {
  const executable = ensurePluginBuilt();
  dir = mkdtempSync(join(tmpdir(), 'iperf3-provisioning-'));
  lab = await createLab({
    name: 'prov',
    devices: [
      { id: 'fast', ssh: 'openssh', rateMbit: 20 },
      { id: 'slow', ssh: 'dropbear', rateMbit: 5 },
      { id: 'broken', ssh: 'openssh', iperf3: false },
    ],
    servers: [{ id: 's1' }],
  });
  writeFileSync(join(dir, 'token'), TOKEN);
  writeFileSync(join(dir, 'id_ed25519'), lab.clientKey.privateKey);
  const config = {
    listen: '127.0.0.1:0',
    database: './iperf3.db',
    apiTokenFile: 'token',
    schedule: { cron: '0 2 * * *', timezone: 'UTC' },
    servers: [{ host: lab.server('s1').host, port: lab.server('s1').port, label: 's1' }],
    clientOptions: { time: 2, omit: 0, connectTimeout: 2000, udp: { enabled: true, bitrate: '2M' } },
    busyRetry: { attempts: 2, backoffMs: 500 },
    ssh: { connectTimeoutMs: 3000 },
    devices: DEVICES.map((id) => ({
      id,
      host: lab.device(id).host,
      username: lab.device(id).username,
      privateKeyFile: 'id_ed25519',
      labels: { site: 'lab' },
    })),
  };
  writeFileSync(join(dir, 'collector.yaml'), stringify(config));
  service = await startService(loadConfigFile(join(dir, 'collector.yaml')), logger, { schedule: false });
  const results = await service.collector.runDevices(DEVICES);
  expect(results.map((r) => `${r.device}:${r.status}`).sort()).toEqual(['broken:failed', 'fast:ok', 'slow:ok']);
  host = GrafanaHost.start({ plugin: executable, grafanaVersion: '13.2.2' });
  settings = provisionedSettings(service.url);
}, 600_000);

afterAll(async () => {
  await host?.close();
  await service?.close();
  await lab?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the built plugin, launched as Grafana does', () => {
  it('lists the lab devices for the $device variable', async () => {
    // DeviceVariableSupport lists `{kind: 'devices'}` from the `devices` resource
    const { status, body } = await host.resource(settings, 'devices', { user: { login: 'viewer', role: 'Viewer' } });
    expect(status).toBe(200);
    expect((body as DeviceInfo[]).map((d) => d.id).sort()).toEqual([...DEVICES].sort());
  });
});

describe('every dashboard panel', () => {
  for (const file of dashboardFiles()) {
    it(`${file.name}: every target returns well-formed frames with data`, async () => {
      const variables = templateVariables(file);
      const devices = ((await host.resource(settings, 'devices')).body as DeviceInfo[]).map((d) => d.id);
      // every device the variable offers, one at a time, as a viewer would pick them
      const assignments: Record<string, string[]>[] = variables.length === 0 ? [{}] : devices.map((d) => Object.fromEntries(variables.map((v) => [v.name, [d]])));
      const now = Date.now();
      const time = file.json.time as { from: string; to: string };
      const fromMs = relativeTime(time.from, now);
      const toMs = relativeTime(time.to, now);
      const failures: string[] = [];
      for (const { where, target } of dashboardTargets(file)) {
        const label = `${file.name} / ${where} / ${target.refId}`;
        let rows = 0;
        for (const values of assignments) {
          const query = interpolateTarget(target, values);
          // rejects what Grafana's Go SDK would not read (frames, data types, status)
          const responses = await host.query(settings, [{ refId: target.refId, json: query, fromMs, toMs, maxDataPoints: 1000 }]);
          const r = responses[target.refId];
          if (!r || r.status !== 200 || r.error) {
            failures.push(`${label} ${JSON.stringify(values)}: status ${r?.status} ${r?.error}`);
            continue;
          }
          expect(r.frames.length, label).toBeGreaterThan(0);
          const type = { timeseries: 'timeseries-multi', intervals: 'timeseries-multi', latest: 'numeric-multi' }[String(query.queryType)];
          for (const frame of r.frames) {
            if (type) expect(frame.meta?.type, label).toBe(type);
            rows += frame.length;
          }
        }
        if (rows === 0) failures.push(`${label}: no rows for any value of the variables`);
      }
      expect(failures).toEqual([]);
    });
  }
});

describe('every alert rule', () => {
  const groups = provisioningFiles('alerting').flatMap((path) => alertingFileSchema.parse(readYaml(path)).groups ?? []);
  const rules = groups.flatMap((g) => g.rules);
  const evaluated = new Set<string>();

  /** Evaluates a rule as Grafana would: its query from alerting, Reduce, Threshold; returns the firing instances. */
  async function evaluate(uid: string) {
    const rule = rules.find((r) => r.uid === uid);
    if (!rule) throw new Error(`no rule ${uid}`);
    evaluated.add(uid);
    const [query] = rule.data.filter((d) => d.datasourceUid !== '__expr__');
    const expressions = rule.data.filter((d) => d.datasourceUid === '__expr__');
    const now = Date.now();
    const range = query.relativeTimeRange ?? { from: 600, to: 0 };
    const responses = await host.query(
      settings,
      [{ refId: query.refId, json: query.model, fromMs: now - range.from * 1000, toMs: now - range.to * 1000, maxDataPoints: Number(query.model.maxDataPoints ?? 43200) }],
      { fromAlert: true },
    );
    const r = responses[query.refId];
    expect(r.error, uid).toBeUndefined();
    expect(r.status, uid).toBe(200);
    const items = alertItems(r.frames);
    const instances = new Map<string, { labels: Record<string, string>; value: number | null; firing: boolean }>();
    for (const item of items) {
      let value: number | null = item.kind === 'number' ? item.values[0] : null;
      let firing = false;
      for (const e of expressions) {
        const model = e.model as { type: string; conditions?: { evaluator: { type: string; params: number[] } }[] };
        if (model.type === 'reduce') value = reduceLastDropNN(item);
        if (model.type === 'threshold') firing = value !== null && threshold(value, model.conditions![0].evaluator);
      }
      expect(item.kind === 'series' ? expressions[0].model.type : 'reduce', `${uid}: a series must be reduced first`).toBe('reduce');
      instances.set(labelKey(item.labels), { labels: item.labels, value, firing });
    }
    return [...instances.values()];
  }

  const firingDevices = (instances: Awaited<ReturnType<typeof evaluate>>) => [...new Set(instances.filter((i) => i.firing).map((i) => i.labels.device))].sort();

  it('TCP upload and download below 10 Mbit/s: one instance per device, firing for the slow and the broken device', async () => {
    for (const uid of ['iperf3-tcp-upload-low', 'iperf3-tcp-download-low']) {
      const instances = await evaluate(uid);
      expect(instances.map((i) => i.labels.device).sort(), uid).toEqual([...DEVICES].sort());
      expect(firingDevices(instances), uid).toEqual(['broken', 'slow']);
      const fast = instances.find((i) => i.labels.device === 'fast');
      expect(fast?.value, uid).toBeGreaterThan(15e6);
    }
  });

  it('tests failing: one number per device, firing for the broken device only', async () => {
    const instances = await evaluate('iperf3-tests-failing');
    expect(instances.map((i) => i.labels.device).sort()).toEqual([...DEVICES].sort());
    expect(firingDevices(instances)).toEqual(['broken']);
  });

  it('UDP jitter and loss: one number per device and direction where UDP ran, none above the threshold', async () => {
    for (const uid of ['iperf3-udp-jitter-high', 'iperf3-udp-loss-high']) {
      const instances = await evaluate(uid);
      expect(instances.map((i) => `${i.labels.device}/${i.labels.direction}`).sort(), uid).toEqual(['fast/download', 'fast/upload', 'slow/download', 'slow/upload']);
      expect(instances.every((i) => typeof i.value === 'number' && Number.isFinite(i.value)), uid).toBe(true);
      expect(firingDevices(instances), uid).toEqual([]);
    }
  });

  it('no successful test in 36 h: fires for the device that never succeeded, not for the others', async () => {
    const instances = await evaluate('iperf3-no-recent-success');
    expect(instances.map((i) => i.labels.device).sort()).toEqual([...DEVICES].sort());
    expect(firingDevices(instances)).toEqual(['broken']);
    expect(instances.find((i) => i.labels.device === 'broken')?.value).toBe(Number.POSITIVE_INFINITY);
    expect(instances.find((i) => i.labels.device === 'fast')?.value).toBeLessThan(600);
  });

  it('every provisioned rule was evaluated above (a new rule needs its own evaluation test)', () => {
    expect([...evaluated].sort()).toEqual(rules.map((r) => r.uid).sort());
  });
});
