/**
 * The provisioning YAML and dashboard JSON against the shapes Grafana's provisioning code
 * reads, and against each other: data source uid, metrics, variables, links, folder, the
 * settings the data source pushes to the collector. No lab needed (queries.test.ts sends
 * every query through the built plugin).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { collectorConfigSchema } from '../../collector/config/schema.js';
import { parseDataSourceConfig } from '../../src/backend/instanceSettings.js';
import { parseQuery } from '../../src/backend/queryData.js';
import { variableQuerySchema } from '../../contract/query.js';
import { QUERY_TYPE_LABELS } from '../../contract/queryTypes.js';
import { settingsSchema } from '../../contract/settings.js';
import {
  alertingFileSchema,
  dashboardProvidersFileSchema,
  dashboardSchema,
  datasourcesFileSchema,
} from './grafanaSchemas.js';
import { REPO_ROOT } from '../support/pluginProcess.js';
import {
  dashboardFiles,
  dashboardTargets,
  expandEnvDeep,
  interpolateTarget,
  provisioningFiles,
  PROVISIONING_DIR,
  readYaml,
  templateVariables,
  variablesUsed,
} from './stackFiles.js';

const PLUGIN = JSON.parse(readFileSync(join(REPO_ROOT, 'src/plugin.json'), 'utf8')) as { id: string };
const DS_UID = 'iperf3-datasource';
const NIGHTLY_SPAN_MS = 129_600_000;

function datasource() {
  const files = provisioningFiles('datasources');
  expect(files.map((f) => f.slice(PROVISIONING_DIR.length))).toEqual(['/datasources/iperf3.yaml']);
  const file = datasourcesFileSchema.parse(readYaml(files[0]));
  const ours = file.datasources.filter((d) => d.type === PLUGIN.id);
  expect(ours).toHaveLength(1);
  return ours[0];
}

function rules() {
  return provisioningFiles('alerting').flatMap((path) => {
    const file = alertingFileSchema.parse(readYaml(path));
    return (file.groups ?? []).flatMap((g) => g.rules.map((rule) => ({ group: g, rule })));
  });
}

describe('data source provisioning', () => {
  it('has the shape Grafana reads, a fixed uid, and the token from the environment only', () => {
    const ds = datasource();
    expect(ds.uid).toBe(DS_UID);
    expect(ds.isDefault).toBe(true);
    // an environment reference, never a literal token, bound to the origin of the collector URL
    expect(ds.secureJsonData?.apiToken).toMatch(/^http:\/\/collector:8686 \$\{?[A-Z][A-Z0-9_]*\}?$/);
    expect(Object.keys(ds.secureJsonData ?? {}).every((k) => ['apiToken', 'iperf3Password'].includes(k))).toBe(true);
  });

  it('is accepted by the plugin backend once Grafana has expanded the environment', () => {
    const ds = datasource();
    const env = { IPERF3_API_TOKEN: 'token-from-the-environment-0123' };
    const jsonData = expandEnvDeep(ds.jsonData, env);
    const secure = expandEnvDeep(ds.secureJsonData ?? {}, env);
    const config = parseDataSourceConfig({ uid: ds.uid, jsonData: Buffer.from(JSON.stringify(jsonData)), decryptedSecureJsonData: secure });
    expect(config.apiToken).toBe(env.IPERF3_API_TOKEN);
    expect(config.settingsErrors).toEqual([]);
    expect(config.collectorUrl).toBe('http://collector:8686');
    // an Editor who points the provisioned data source elsewhere does not take the token along
    const moved = Buffer.from(JSON.stringify({ ...jsonData, collectorUrl: 'http://elsewhere:8686' }));
    expect(() => parseDataSourceConfig({ uid: ds.uid, jsonData: moved, decryptedSecureJsonData: secure })).toThrow(
      'apiToken: was saved for http://collector:8686, but the collector URL is now http://elsewhere:8686: re-enter the API token for the new URL',
    );
    // without the variable the token is empty and the backend names the field
    expect(() => parseDataSourceConfig({ uid: ds.uid, jsonData: Buffer.from(JSON.stringify(jsonData)), decryptedSecureJsonData: expandEnvDeep(ds.secureJsonData ?? {}, {}) })).toThrow(/apiToken/);
  });

  it('pushes exactly the servers, client options and schedule of the demo collector (the push must change nothing)', () => {
    const ds = datasource();
    const pushed = settingsSchema.parse({
      servers: ds.jsonData?.servers,
      pools: ds.jsonData?.pools,
      clientOptions: ds.jsonData?.clientOptions,
      schedule: ds.jsonData?.schedule,
    });
    const collector = collectorConfigSchema.parse(readYaml(join(REPO_ROOT, 'deploy/collector.demo.yaml')));
    expect(pushed).toEqual({ servers: collector.servers, pools: collector.pools, clientOptions: collector.clientOptions, schedule: collector.schedule });
    // the demo tests at start-up and every 10 minutes; the production default stays nightly
    expect(pushed.schedule).toEqual({ cron: '*/10 * * * *', timezone: 'UTC', runAtStart: true });
    expect(settingsSchema.parse({ servers: [{ host: 'x' }] }).schedule.cron).toBe('0 2 * * *');
    // collectorUrl points at the compose service and the port the collector listens on
    const compose = parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, unknown> };
    const url = new URL(String(ds.jsonData?.collectorUrl));
    expect(Object.keys(compose.services)).toContain(url.hostname);
    expect(collector.listen).toBe(`0.0.0.0:${url.port}`);
  });
});

describe('dashboard provider', () => {
  it('reads dashboards/ with folders from the file structure, at the path compose mounts', () => {
    const files = provisioningFiles('dashboards');
    expect(files).toHaveLength(1);
    const { providers } = dashboardProvidersFileSchema.parse(readYaml(files[0]));
    expect(providers[0].options.foldersFromFilesStructure).toBe(true);
    const compose = readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8');
    expect(compose).toContain(`./dashboards:${providers[0].options.path}:ro`);
    expect(compose).toContain('./provisioning:/etc/grafana/provisioning:ro');
  });

  it('rejects a provider that sets a folder as well (the check works)', () => {
    const bad = { apiVersion: 1, providers: [{ name: 'x', type: 'file', folder: 'f', options: { path: '/d', foldersFromFilesStructure: true } }] };
    expect(dashboardProvidersFileSchema.safeParse(bad).success).toBe(false);
  });
});

describe('alert rules', () => {
  it('have the shape Grafana reads, with unique uids, in the dashboards folder', () => {
    const all = rules();
    expect(all.map((r) => r.rule.uid).sort()).toEqual([
      'iperf3-no-recent-success',
      'iperf3-tcp-download-low',
      'iperf3-tcp-upload-low',
      'iperf3-tests-failing',
      'iperf3-udp-jitter-high',
      'iperf3-udp-loss-high',
    ]);
    const folders = new Set(dashboardFiles().map((d) => d.name.split('/')[0]));
    for (const { group } of all) expect(folders).toContain(group.folder);
  });

  it('query the provisioned data source with queries the backend accepts, looking back 36 h', () => {
    for (const { rule } of rules()) {
      const queries = rule.data.filter((d) => d.datasourceUid !== '__expr__');
      expect(queries.length, rule.uid).toBe(1);
      const [q] = queries;
      expect(q.datasourceUid, rule.uid).toBe(DS_UID);
      expect((q.model.datasource as { uid: string }).uid, rule.uid).toBe(DS_UID);
      expect(q.relativeTimeRange, rule.uid).toEqual({ from: 129600, to: 0 });
      const parsed = parseQuery({ refId: q.refId, json: Buffer.from(JSON.stringify(q.model)) });
      expect(QUERY_TYPE_LABELS[parsed.queryType].alerting, rule.uid).toBe(true);
      // a series per device needs a reduce before the threshold; a latest number does not
      const types = rule.data.filter((d) => d.datasourceUid === '__expr__').map((d) => d.model.type);
      expect(types, rule.uid).toEqual(parsed.queryType === 'timeseries' ? ['reduce', 'threshold'] : ['threshold']);
      expect(rule.annotations.summary, rule.uid).toContain('{{ $labels.device }}');
      expect(rule.annotations.runbook_url, rule.uid).toMatch(/^\/d\/iperf3-device\//);
    }
  });

  it('rejects an unknown state, a missing condition and an expression on a later refId (the checks work)', () => {
    const [{ rule }] = rules();
    const check = (r: unknown) => alertingFileSchema.safeParse({ apiVersion: 1, groups: [{ name: 'g', folder: 'f', interval: '1m', rules: [r] }] }).success;
    expect(check(rule)).toBe(true);
    expect(check({ ...rule, noDataState: 'Nodata' })).toBe(false);
    expect(check({ ...rule, condition: 'Z' })).toBe(false);
    expect(check({ ...rule, data: [...rule.data].reverse() })).toBe(false);
    // the backend rejects a query of a metric that does not exist
    const model = { ...rule.data[0].model, metrics: ['tcp_bps'] };
    expect(() => parseQuery({ refId: 'A', json: Buffer.from(JSON.stringify(model)) })).toThrow(/tcp_bps/);
  });

  it('ship the notification example with placeholders only, in a file Grafana does not load', () => {
    const path = join(PROVISIONING_DIR, 'alerting/notifications.yaml.example');
    const file = alertingFileSchema.parse(readYaml(path));
    expect(provisioningFiles('alerting')).not.toContain(path);
    const urls = JSON.stringify(file).match(/https?:\/\/[^"\s]+/g) ?? [];
    expect(urls.length).toBeGreaterThan(0);
    for (const url of urls) expect(new URL(url).hostname).toMatch(/\.(invalid|example)$|example\.(com|net|org|invalid)$/);
    expect(JSON.stringify(file)).not.toMatch(/@[a-z0-9-]+\.[a-z]{2,}/i); // no e-mail addresses
  });
});

describe('dashboards', () => {
  const files = dashboardFiles();

  it('are the three dashboards, in the iperf3 folder, with the current schema and stable uids', () => {
    expect(files.map((f) => f.name)).toEqual(['iperf3/device-detail.json', 'iperf3/fleet-overview.json', 'iperf3/servers-collector.json']);
    const uids = files.map((f) => dashboardSchema.parse(f.json).uid);
    expect(uids).toEqual(['iperf3-device', 'iperf3-fleet', 'iperf3-servers']);
  });

  it('query only the provisioned data source, with defined variables and queries the backend accepts', () => {
    for (const file of files) {
      const defined = new Set(templateVariables(file).map((v) => v.name));
      for (const { where, target, panelDatasource } of dashboardTargets(file)) {
        const label = `${file.name} / ${where} / ${target.refId}`;
        expect(target.datasource?.uid, label).toBe(DS_UID);
        expect(panelDatasource?.uid, label).toBe(DS_UID);
        for (const name of variablesUsed(target)) expect(defined.has(name), `${label}: $${name} is not a variable`).toBe(true);
        const values = Object.fromEntries([...defined].map((n) => [n, ['some-device']]));
        const parsed = parseQuery({ refId: target.refId, json: Buffer.from(JSON.stringify(interpolateTarget(target, values))) });
        expect(parsed.refId, label).toBe(target.refId);
      }
    }
  });

  it('use the device variable of the plugin ({kind: devices}) on the device dashboard', () => {
    const device = files.find((f) => f.name.endsWith('device-detail.json'));
    const [variable] = templateVariables(device!);
    expect(variable).toMatchObject({ name: 'device', type: 'query', datasource: { uid: DS_UID } });
    // what the frontend's DeviceVariableSupport reads from the stored query (refId is Grafana's)
    const { kind, label, labelMatchers } = variable.query as Record<string, unknown>;
    expect(variableQuerySchema.parse({ kind, label, labelMatchers })).toEqual({ kind: 'devices', labelMatchers: [] });
  });

  it('show nightly series with points, connected across at most 36 h, in Grafana units', () => {
    for (const file of files) {
      const panels = (file.json.panels as { type: string; title: string; fieldConfig: { defaults: { unit?: string; custom?: Record<string, unknown> } }; targets: { queryType: string }[] }[]);
      for (const p of panels.filter((x) => x.type === 'timeseries' && x.targets.every((t) => t.queryType === 'timeseries'))) {
        expect(p.fieldConfig.defaults.custom, `${file.name} / ${p.title}`).toMatchObject({ spanNulls: NIGHTLY_SPAN_MS, showPoints: 'always' });
        expect(['bps', 'ms', 'percent', 'none', 's'], p.title).toContain(p.fieldConfig.defaults.unit);
      }
    }
  });

  it('link only to dashboards that exist', () => {
    const uids = new Set(files.map((f) => f.json.uid as string));
    for (const file of files) {
      for (const m of JSON.stringify(file.json).matchAll(/\/d\/([A-Za-z0-9_-]+)/g)) expect(uids, `${file.name} links to ${m[1]}`).toContain(m[1]);
    }
    for (const { rule } of rules()) {
      for (const m of JSON.stringify(rule.annotations).matchAll(/\/d\/([A-Za-z0-9_-]+)/g)) expect(uids).toContain(m[1]);
    }
  });
});

describe('secrets', () => {
  it('are never committed: no private key or token in the stack files', () => {
    const tracked = execFileSync('git', ['ls-files', 'deploy', 'provisioning', 'dashboards', 'docker-compose.yml'], { cwd: REPO_ROOT, encoding: 'utf8' })
      .split('\n')
      .filter(Boolean);
    expect(tracked.length).toBeGreaterThan(5);
    for (const path of tracked) {
      const text = readFileSync(join(REPO_ROOT, path), 'utf8');
      expect(text, path).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
      expect(text, path).not.toMatch(/\b[0-9a-f]{64}\b/); // the generated token's shape
    }
  });
});

describe('plugin.json', () => {
  /** The lowest Grafana major a range admits: `>=13.0.0`, `^13.0.0`, `>=11.6` → 13, 13, 11. */
  const lowestMajor = (range: string) => {
    const m = /^\s*(?:>=|\^|~)?\s*(\d+)(?:\.\d+){0,2}\s*$/.exec(range);
    if (!m) throw new Error(`range "${range}" not understood`);
    return Number(m[1]);
  };

  it('asks for no older Grafana than the @grafana/* the bundled @grafana/plugin-ui needs', () => {
    const plugin = JSON.parse(readFileSync(join(REPO_ROOT, 'src/plugin.json'), 'utf8')) as { dependencies: { grafanaDependency: string } };
    const declared = lowestMajor(plugin.dependencies.grafanaDependency);
    // bundled into module.js (not a Grafana external): its peers are what Grafana must provide
    const pluginUi = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/@grafana/plugin-ui/package.json'), 'utf8')) as { peerDependencies: Record<string, string> };
    const needs = Object.entries(pluginUi.peerDependencies)
      .filter(([name]) => /^@grafana\/(data|runtime|ui|schema|e2e-selectors)$/.test(name))
      .map(([name, range]) => ({ name, major: lowestMajor(range) }));
    expect(needs.length).toBeGreaterThan(0);
    for (const need of needs) expect(declared, `${need.name} needs Grafana ${need.major}`).toBeGreaterThanOrEqual(need.major);
  });
});
