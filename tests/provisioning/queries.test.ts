/**
 * Every panel target of every dashboard and every alert-rule query, sent through the BUILT
 * plugin executable with the provisioned data source's settings, by Grafana's own client side
 * (tests/grafana-host: go-plugin launches it, the Go SDK decodes and judges every frame, the
 * /api/ds/query JSON is read by @grafana/data), against a real collector filled by real iperf3 tests in
 * the network-namespace lab: a fast device (20 Mbit/s), a slow one (5 Mbit/s, below the
 * alert threshold) and a broken one (no iperf3: its runs fail). Every panel is then replayed
 * with @grafana/data (panelReplay.ts): transformations, field overrides, what its type draws.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Service } from '../../collector/service.js';
import type { GrafanaHost, HostDataSource } from '../support/grafanaHost.js';
import { RUN_STATUSES, type DeviceInfo } from '../../contract/api.js';
import { DEVICES, relativeTime, startProvisionedStack, type ProvisionedStack } from './labStack.js';
import { replayPanel, type PanelJson } from './panelReplay.js';
import { alertItems, labelKey, reduceLastDropNN, threshold } from './grafanaAlerting.js';
import { alertingFileSchema } from './grafanaSchemas.js';
import { dashboardFiles, dashboardTargets, interpolateTarget, provisioningFiles, readYaml, templateVariables } from './stackFiles.js';

let stack: ProvisionedStack;
let service: Service;
let host: GrafanaHost;
let settings: HostDataSource;

beforeAll(async () => {
  stack = await startProvisionedStack('prov');
  ({ service, host, settings } = stack);
}, 600_000);

afterAll(async () => {
  await stack?.close();
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

/** The value Grafana gives a query variable on load: its options sorted as `sort` says, the first one. */
function loadValue(variable: { sort?: number }, options: string[]): string {
  const sorted = [...options];
  // 1/2: alphabetical ascending/descending (the only sorts the provisioned variables use)
  if (variable.sort === 1) sorted.sort((a, b) => a.localeCompare(b));
  else if (variable.sort === 2) sorted.sort((a, b) => b.localeCompare(a));
  else if (variable.sort !== undefined && variable.sort !== 0) throw new Error(`variable sort ${variable.sort} not replayed`);
  return sorted[0];
}

function panelsOf(file: { json: Record<string, unknown> }): PanelJson[] {
  const out: PanelJson[] = [];
  const visit = (panels: (PanelJson & { panels?: PanelJson[] })[] | undefined) => {
    for (const p of panels ?? []) {
      if (p.targets?.length) out.push(p);
      visit(p.panels);
    }
  };
  visit(file.json.panels as PanelJson[]);
  return out;
}

describe('every dashboard panel through @grafana/data (transformations, field overrides, panel type)', () => {
  for (const file of dashboardFiles()) {
    for (const panel of panelsOf(file)) {
      it(`${file.name} / ${panel.title}`, async () => {
        const variables = templateVariables(file);
        const devices = ((await host.resource(settings, 'devices')).body as DeviceInfo[]).map((d) => d.id);
        // the value on load first, then every other device a viewer could pick
        const first = variables.length === 0 ? [] : [loadValue(variables[0] as { sort?: number }, devices)];
        const picks = variables.length === 0 ? [{}] : [...new Set([...first, ...devices])].map((d) => Object.fromEntries(variables.map((v) => [v.name, [d]])));
        const now = Date.now();
        const time = file.json.time as { from: string; to: string };
        // run statuses the lab never produces may be named by an override (a colour for `skipped`)
        const seen = new Set((await service.store.runs.list({ limit: 1000 })).map((r) => r.status));
        const absentNames = RUN_STATUSES.filter((s) => !seen.has(s));
        const problems: string[] = [];
        const empty: string[] = [];
        for (const values of picks) {
          const queries = Object.fromEntries((panel.targets ?? []).map((t) => [t.refId, interpolateTarget(t, values)]));
          // one /api/ds/query for all targets of the panel, as a panel sends them
          const responses = await host.query(
            settings,
            Object.values(queries).map((q) => ({ refId: String(q.refId), json: q, fromMs: relativeTime(time.from, now), toMs: relativeTime(time.to, now), maxDataPoints: 1000 })),
          );
          const frames = Object.values(responses).flatMap((r) => r.frames);
          const replay = await replayPanel(panel, frames, { queries, devices: variables.length === 0 ? DEVICES : (Object.values(values)[0] as string[]), absentNames });
          const noRows = replay.problems.filter((p) => p.endsWith('panel gets no rows'));
          if (noRows.length > 0) empty.push(`${JSON.stringify(values)} ${noRows[0]}`);
          problems.push(...replay.problems.filter((p) => !noRows.includes(p)).map((p) => `${JSON.stringify(values)} ${p}`));
        }
        // a device without such data (the broken one has no UDP jitter) is no panel defect; no data for every pick is
        if (empty.length === picks.length) problems.push(...empty);
        expect([...new Set(problems)]).toEqual([]);
      });
    }
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
