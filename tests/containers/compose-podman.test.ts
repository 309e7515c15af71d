/**
 * docker-compose.yml for real, without Docker: every image but Grafana's built with podman from
 * local bases (make-bases.sh: debian:bookworm-slim by debootstrap, node:24-bookworm-slim with
 * the pinned Node 24), every service but Grafana's run as the compose file wires it (compose.ts:
 * its network and DNS names, named volumes, commands, users, depends_on conditions and health
 * checks), then judged from the outside: the collector, as its non-root user, reads the mounted
 * config and secrets, tests the demo device against the demo server and stores the result in
 * its data volume; /healthz and the API answer on a published port; the plugin executable that
 * plugin-build left in its volume passes Save & test and a query against that collector; SIGTERM
 * stops the collector within the grace period; a recreated container keeps the data.
 * Figures (image sizes, start time, time to the first stored result) go to
 * test-output/containers.json. Needs root, podman, runc, debootstrap and iptables.
 */
import Database from 'better-sqlite3';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../contract/api.js';
import { GO_PLUGIN_HANDSHAKE, GO_PLUGIN_MAX_PORT, GO_PLUGIN_MIN_PORT, REPO_ROOT } from '../support/pluginProcess.js';
import type { HostDataSource } from '../support/grafanaHost.js';
import { datasourcesFileSchema } from '../provisioning/grafanaSchemas.js';
import { expandEnvDeep, provisioningFiles, readYaml } from '../provisioning/stackFiles.js';
import { buildImages, containerName, down, inspect, loadCompose, logs, runService, serviceImage, startOrder, up, volumeName, waitCompleted, waitHealthy } from './compose.js';
import { startGrafanaHost, type GrafanaHost } from './grafanaHost.js';
import { hasPodman, npmMounts, podman, podmanOk, run } from './podman.js';
import { bindApiToken, parseBoundApiToken } from '../../contract/settings.js';

const project = loadCompose(join(REPO_ROOT, 'docker-compose.yml'));
/** Grafana's own image is the one thing not built or run here (docs/provisioning.md). */
const LEFT_OUT = ['grafana'];
const SERVICES = startOrder(project, LEFT_OUT);
const COLLECTOR = 'collector';
/** Compose's default stop_grace_period (the compose file sets none). */
const GRACE_MS = 10_000;
const PLUGIN = JSON.parse(readFileSync(join(REPO_ROOT, 'src/plugin.json'), 'utf8')) as { id: string; executable: string };

const figures: Record<string, unknown> = {};
const log = (line: string) => process.stderr.write(`containers: ${line}\n`);
let collectorUrl = '';
let token = '';
let firstRun: RunRecord | undefined;
let host: GrafanaHost | undefined;

const volumePath = (volume: string) => podmanOk(['volume', 'inspect', '--format', '{{.Mountpoint}}', volumeName(project, volume)]);

/** The host address of the collector's published API port. */
async function publishedUrl(): Promise<string> {
  const mapping = await podmanOk(['port', containerName(project, COLLECTOR), '8686/tcp']);
  const [address] = mapping.split('\n');
  expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
  return `http://${address}`;
}

async function api(path: string, auth: string | null = token): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${collectorUrl}${path}`, { headers: auth === null ? {} : { authorization: `Bearer ${auth}` } });
  return { status: response.status, body: await response.json() };
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, everyMs = 500): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Recreates the collector container from its compose definition (same volumes) and times it to a healthy /healthz. */
async function startCollector(): Promise<number> {
  await podmanOk(['rm', '--force', '--ignore', containerName(project, COLLECTOR)]);
  const started = performance.now();
  await runService(project, COLLECTOR, ['127.0.0.1::8686']);
  collectorUrl = await publishedUrl();
  await until('/healthz', 30_000, async () => ((await fetch(`${collectorUrl}/healthz`)).ok ? true : undefined), 50);
  return performance.now() - started;
}

/** The file's token, bound (as the file writes it) to the origin this copy of the stack answers on, as an operator writes it for their URL. */
function repointed(secure: Record<string, string>, collectorUrl: string): Record<string, string> {
  const { origin, token } = parseBoundApiToken(secure.apiToken ?? '');
  expect(origin).toBe('http://collector:8686');
  return { ...secure, apiToken: bindApiToken(collectorUrl, token) };
}

/** The provisioned data source as Grafana hands it to the plugin: token expanded, collector URL pointed at the published port. */
function provisionedSettings(apiToken: string): HostDataSource {
  const ds = datasourcesFileSchema.parse(readYaml(provisioningFiles('datasources')[0])).datasources[0];
  const env = { IPERF3_API_TOKEN: apiToken };
  const jsonData = expandEnvDeep(ds.jsonData ?? {}, env);
  // the only change: the compose name `collector` resolves on the compose network, not here
  expect(jsonData.collectorUrl).toBe(`http://${COLLECTOR}:8686`);
  return { uid: ds.uid, id: 1, lastUpdatedMS: Date.now(), jsonData: { ...jsonData, collectorUrl }, secure: repointed(expandEnvDeep(ds.secureJsonData ?? {}, env), collectorUrl) };
}

describe('docker-compose.yml with podman, every service but Grafana', () => {
  beforeAll(() => {
    if (process.getuid?.() !== 0 || !hasPodman()) {
      throw new Error('needs root and podman: apt-get install podman runc debootstrap uidmap iptables (see docs/provisioning.md)');
    }
    down(project); // leftovers of an interrupted run
  });

  afterAll(async () => {
    await host?.close();
    if (Object.keys(figures).length > 0) {
      mkdirSync(join(REPO_ROOT, 'test-output'), { recursive: true });
      writeFileSync(join(REPO_ROOT, 'test-output/containers.json'), `${JSON.stringify(figures, null, 2)}\n`);
      log(JSON.stringify(figures));
    }
    down(project);
  }, 120_000);

  it('builds every image but Grafana\'s from the local bases, the Dockerfiles unchanged', async () => {
    // every service of the compose file but Grafana's
    expect([...SERVICES].sort()).toEqual(['collector', 'demo-device', 'iperf3-server', 'plugin-build', 'secrets-init']);
    const bases = await run(join(REPO_ROOT, 'tests/containers/make-bases.sh'), []);
    expect(bases.code, bases.stderr).toBe(0);
    figures.basesMs = Math.round(bases.ms);
    figures.buildMs = await buildImages(project, SERVICES, log, npmMounts());
    // every service's image exists; the built ones descend from the local bases (no pull happened)
    const sizes: Record<string, number> = {};
    for (const image of new Set(SERVICES.map((s) => serviceImage(project, s)))) {
      sizes[image] = Number(await podmanOk(['image', 'inspect', '--format', '{{.Size}}', image]));
    }
    for (const base of ['docker.io/library/debian:bookworm-slim', 'docker.io/library/node:24-bookworm-slim']) {
      expect(await podmanOk(['image', 'inspect', '--format', '{{ index .Labels "iperf3-grafana.recipe" }}', base])).toMatch(/^[0-9a-f]{16}$/);
      sizes[base] = Number(await podmanOk(['image', 'inspect', '--format', '{{.Size}}', base]));
    }
    figures.imageBytes = sizes;
    const collectorImage = serviceImage(project, COLLECTOR);
    const layers = await podmanOk(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', collectorImage]);
    const nodeLayers = await podmanOk(['image', 'inspect', '--format', '{{json .RootFS.Layers}}', 'docker.io/library/node:24-bookworm-slim']);
    expect((JSON.parse(layers) as string[]).slice(0, (JSON.parse(nodeLayers) as string[]).length)).toEqual(JSON.parse(nodeLayers));
    // what the collector image holds, for docs/provisioning.md
    const du = await podmanOk(['run', '--rm', '--network', 'none', '--entrypoint', '["du","-sk","/app/node_modules","/app/collector/dist","/usr/local/bin/node","/usr/local/lib/node_modules/npm","/usr/local/include"]', collectorImage]);
    figures.collectorImageKiB = Object.fromEntries(du.split('\n').map((l) => l.split('\t')).map(([kib, path]) => [path, Number(kib)]));
  }, 1_800_000);

  it('starts them in the compose file\'s order, with its commands, volumes and users; the one-shots complete and the health checks pass', async () => {
    const started = await up(project, {
      exclude: LEFT_OUT,
      // the compose file publishes no collector port (Grafana reaches it on the compose network): the test does, on loopback
      publish: { [COLLECTOR]: ['127.0.0.1::8686'] },
      // plugin-build runs npm: the machine's npm settings (podman.ts, npmMounts)
      extraRunArgs: { 'plugin-build': npmMounts() },
      log,
    });
    figures.startedAt = new Date().toISOString();
    figures.serviceStartMs = Object.fromEntries(Object.entries(started).map(([s, ms]) => [s, Math.round(ms)]));
    collectorUrl = await publishedUrl();
    // the collector was only started after secrets-init had completed (its depends_on)
    expect(await inspect(project, 'secrets-init', '{{.State.Status}} {{.State.ExitCode}}'), await logs(project, 'secrets-init')).toBe('exited 0');
    token = readFileSync(join(await volumePath('secrets'), 'api-token'), 'utf8').trim();
    // booleans, so that a failure message never prints the token
    expect(/^[0-9a-f]{64}$/.test(token), 'the generated token is 64 hex digits').toBe(true);
    for (const service of ['iperf3-server', 'demo-device', COLLECTOR]) {
      expect(`${service} ${await inspect(project, service, '{{.State.Status}} (restarts: {{.RestartCount}})')}`, await logs(project, service)).toBe(`${service} running (restarts: 0)`);
    }
    figures.collectorHealthyMs = Math.round(await waitHealthy(project, COLLECTOR));
    await waitHealthy(project, 'demo-device');
    // the compose file's command and users: the collector image's `node`, the iperf3 server's `nobody`
    expect(await inspect(project, COLLECTOR, '{{json .Config.Cmd}}')).toBe(JSON.stringify(project.file.services[COLLECTOR].command));
    expect(await inspect(project, COLLECTOR, '{{.Config.User}}')).toBe('node');
    // every process of the container, seen from the host: real, effective, saved and fs uid 1000
    const top = await podmanOk(['top', containerName(project, COLLECTOR), 'hpid', 'user']);
    const processes = top.split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    expect(processes.length).toBeGreaterThan(0);
    for (const [hpid, user] of processes) {
      expect(user).toBe('node');
      expect(/^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${hpid}/status`, 'utf8'))?.[1].split(/\s+/)).toEqual(['1000', '1000', '1000', '1000']);
    }
    expect((await podmanOk(['top', containerName(project, 'iperf3-server'), 'user'])).split('\n').slice(1).map((l) => l.trim())).toEqual(['nobody']);
    const mounts = JSON.parse(await inspect(project, COLLECTOR, '{{json .Mounts}}')) as { Destination: string; RW: boolean; Name?: string; Source: string }[];
    const mount = (d: string) => mounts.find((m) => m.Destination === d);
    expect(mount('/config/collector.yaml')).toMatchObject({ RW: false, Source: join(REPO_ROOT, 'deploy/collector.demo.yaml') });
    expect(mount('/config/secrets')).toMatchObject({ RW: false, Name: volumeName(project, 'secrets') });
    expect(mount('/data')).toMatchObject({ RW: true, Name: volumeName(project, 'collector-data') });
  }, 900_000);

  it('the collector, as `node`, tests the demo device against the demo server at start-up and stores the result in its data volume', async () => {
    const secrets = await volumePath('secrets');
    // the private key is readable by the collector's user only, and it reads it: the SSH login below succeeds with it
    const key = statSync(join(secrets, 'id_ed25519'));
    expect([key.uid, key.mode & 0o777]).toEqual([1000, 0o400]);
    const read = await podman(['exec', containerName(project, COLLECTOR), 'node', '-e', 'for (const f of ["/config/collector.yaml", "/config/secrets/id_ed25519", "/config/secrets/api-token"]) require("fs").accessSync(f, require("fs").constants.R_OK); process.stdout.write(String(process.getuid()))']);
    expect([read.code, read.stdout]).toEqual([0, '1000']);
    const startedAt = Date.parse(await inspect(project, COLLECTOR, '{{.State.StartedAt.Format "2006-01-02T15:04:05.000Z07:00"}}'));
    const done = await until('a finished run of demo-device', 180_000, async () => {
      const { status, body } = await api('/api/v1/runs?device=demo-device&limit=10');
      const runs = status === 200 ? (body as { runs: RunRecord[] }).runs.filter((r) => r.status !== 'running') : [];
      return runs.at(-1);
    });
    firstRun = done;
    figures.timeToFirstResultMs = Date.parse(done.endedAt ?? '') - startedAt;
    expect(done, JSON.stringify(done)).toMatchObject({ device: 'demo-device', server: 'iperf3-server:5201', status: 'ok', trigger: 'schedule' });
    const tests = done.tests.map((t) => `${t.protocol}/${t.direction}/${t.status}`).sort();
    // the tests the demo configuration asks for: TCP in each direction, and UDP too when enabled
    const demo = parse(readFileSync(join(REPO_ROOT, 'deploy/collector.demo.yaml'), 'utf8')) as { clientOptions: { directions: string[]; udp: { enabled: boolean } } };
    const expected = ['tcp', ...(demo.clientOptions.udp.enabled ? ['udp'] : [])].flatMap((p) => demo.clientOptions.directions.map((d) => `${p}/${d}/ok`));
    expect(expected.length).toBeGreaterThanOrEqual(2);
    expect(tests).toEqual(expected.sort());
    // the same run in the SQLite file of the collector-data volume, written by the collector's user
    const dbPath = join(await volumePath('collector-data'), 'iperf3.db');
    expect(statSync(dbPath).uid).toBe(1000);
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      expect(db.prepare('SELECT device, server, status FROM runs WHERE id = ?').get(done.id)).toEqual({ device: 'demo-device', server: 'iperf3-server:5201', status: 'ok' });
      const bps = db.prepare("SELECT direction, value FROM metrics WHERE run_id = ? AND name = 'tcp_received_bps' AND failed = 0 ORDER BY direction").all(done.id) as { direction: string; value: number }[];
      expect(bps.map((m) => m.direction)).toEqual(['download', 'upload']);
      for (const m of bps) expect(m.value).toBeGreaterThan(1e6); // container to container over a bridge: far above 1 Mbit/s
      figures.firstResultTcpBps = Object.fromEntries(bps.map((m) => [m.direction, Math.round(m.value)]));
    } finally {
      db.close();
    }
  }, 240_000);

  it('/healthz and the API answer on the published port; the API only with the generated token', async () => {
    expect(await api('/healthz', null)).toEqual({ status: 200, body: { status: 'ok' } });
    expect((await api('/api/v1/health', null)).status).toBe(401);
    expect((await api('/api/v1/health', '0'.repeat(64))).status).toBe(401);
    const { status, body } = await api('/api/v1/health');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', devices: 1, enabledDevices: 1, servers: [{ key: 'iperf3-server:5201', label: 'demo-server', reachable: true }] });
  });

  it('the plugin executable from the plugin-build volume passes Save & test and a query against that collector', async () => {
    // Grafana starts once plugin-build has completed (its depends_on); so does this check
    const building = performance.now();
    await waitCompleted(project, 'plugin-build', 900_000);
    figures.pluginBuildWaitMs = Math.round(performance.now() - building);
    expect(await inspect(project, 'plugin-build', '{{.State.Status}} {{.State.ExitCode}}')).toBe('exited 0');
    const plugin = await volumePath('plugin');
    for (const file of ['plugin.json', 'module.js']) expect(statSync(join(plugin, file)).isFile()).toBe(true);
    // the Grafana version of the compose file's image, announced to the plugin as Grafana does
    const grafanaVersion = /^grafana\/grafana:(\d+\.\d+\.\d+)-ubuntu$/.exec(project.file.services.grafana.image ?? '')?.[1];
    expect(grafanaVersion).toBeDefined();
    host = startGrafanaHost(join(plugin, `${PLUGIN.executable}_linux_amd64`), grafanaVersion as string);
    // a wrong token fails Save & test: the check below is not vacuous
    expect((await host.saveAndTest(provisionedSettings('0'.repeat(64)))).status).toBe('ERROR');
    const settings = provisionedSettings(token);
    const health = await host.saveAndTest(settings);
    expect(health, health.message).toMatchObject({ status: 'OK' });
    expect(health.message).toContain('1 device');
    const now = Date.now();
    const responses = await host.query(settings, [
      { refId: 'A', json: { queryType: 'latest', devices: ['demo-device'], metrics: ['tcp_received_bps'], direction: 'upload' }, fromMs: now - 3_600_000, toMs: now },
    ]);
    expect(responses.A.status, responses.A.error).toBe(200);
    const values = responses.A.frames.flatMap((f) => f.fields.filter((field) => field.type === 'number').map((field) => ({ labels: field.labels, value: field.values[0] as number })));
    expect(values).toHaveLength(1);
    expect(values[0].labels).toMatchObject({ device: 'demo-device' });
    // the value of the newest stored upload run, read from the volume's database
    const db = new Database(join(await volumePath('collector-data'), 'iperf3.db'), { readonly: true, fileMustExist: true });
    try {
      const latest = db.prepare("SELECT value FROM metrics WHERE device = 'demo-device' AND name = 'tcp_received_bps' AND direction = 'upload' ORDER BY time_ms DESC LIMIT 1").get() as { value: number };
      expect(values[0].value).toBe(latest.value);
    } finally {
      db.close();
    }
  }, 1_000_000);

  it('Grafana\'s side of the wiring, without Grafana\'s image: its uid reads the token and starts the plugin from the volumes as compose mounts them', async () => {
    const grafana = project.file.services.grafana;
    const mountOf = (volume: string) => {
      const line = (grafana.volumes ?? []).find((v) => v.startsWith(`${volume}:`));
      expect(line).toBeDefined();
      const [, target, mode] = (line as string).split(':');
      return { spec: `${volumeName(project, volume)}:${target}${mode ? `:${mode}` : ''}`, target };
    };
    const secrets = mountOf('secrets');
    const plugin = mountOf('plugin');
    // Grafana's image runs as uid 472; its entrypoint reads the token with `cat /secrets/api-token`
    const entrypoint = (grafana.entrypoint as string[]).join(' ');
    expect(entrypoint).toContain(`$$(cat ${secrets.target}/api-token)`);
    const base = 'docker.io/library/debian:bookworm-slim';
    const read = await podman(['run', '--rm', '--network', 'none', '--user', '472:0', '--volume', secrets.spec, base, 'cat', `${secrets.target}/api-token`]);
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout.trim() === token, 'uid 472 reads the generated token').toBe(true);
    // the executable, mounted read-only where Grafana mounts it, starts as uid 472 and prints go-plugin's handshake
    const started = await podman([
      'run', '--rm', '--network', 'none', '--user', '472:0', '--volume', plugin.spec,
      '--env', 'grafana_plugin_type=datasource', '--env', 'PLUGIN_PROTOCOL_VERSIONS=2', '--env', `PLUGIN_MIN_PORT=${GO_PLUGIN_MIN_PORT}`, '--env', `PLUGIN_MAX_PORT=${GO_PLUGIN_MAX_PORT}`,
      base, 'timeout', '5', `${plugin.target}/${PLUGIN.executable}_linux_amd64`,
    ]);
    expect(started.code, started.stderr).toBe(124); // still serving when `timeout` ended it
    expect(started.stdout.split('\n')[0]).toMatch(GO_PLUGIN_HANDSHAKE);
  }, 60_000);

  it('stops on SIGTERM within the grace period, cleanly', async () => {
    const stop = await podman(['stop', '--time', String(GRACE_MS / 1000), containerName(project, COLLECTOR)], { timeoutMs: GRACE_MS + 30_000 });
    expect(stop.code, stop.stderr).toBe(0);
    figures.collectorStopMs = Math.round(stop.ms);
    expect(stop.ms).toBeLessThan(GRACE_MS);
    // exit code 0 from its own shutdown, not 137 from the SIGKILL after the grace period
    expect(await inspect(project, COLLECTOR, '{{.State.Status}} {{.State.ExitCode}}')).toBe('exited 0');
    const output = await logs(project, COLLECTOR);
    expect(output).toContain('"signal":"SIGTERM"');
    // no secret in what the containers logged
    for (const service of SERVICES) {
      const text = await logs(project, service);
      expect(text.includes(token), `${service} logged the API token`).toBe(false);
      expect(text.includes('PRIVATE KEY'), `${service} logged a private key`).toBe(false);
    }
  }, 60_000);

  it('a recreated collector container keeps the stored results (the data volume)', async () => {
    expect(firstRun).toBeDefined();
    figures.collectorStartMs = Math.round(await startCollector());
    const { status, body } = await api(`/api/v1/runs/${firstRun?.id}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ id: firstRun?.id, device: 'demo-device', status: 'ok', startedAt: firstRun?.startedAt });
    // and it keeps working: the start-up run of the new container is stored beside the old one
    const second = await until('a second finished run', 180_000, async () => {
      const { body: list } = await api('/api/v1/runs?device=demo-device&status=ok&limit=10');
      const runs = (list as { runs: RunRecord[] }).runs;
      return runs.length >= 2 ? runs : undefined;
    });
    expect(second.map((r) => r.id)).toContain(firstRun?.id);
  }, 240_000);
});
