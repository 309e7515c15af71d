/**
 * docker-compose.yml and the demo images without a Docker engine: the compose file against the
 * Compose spec subset it uses and against the images and configs it mounts; then each
 * container's command run for real on this machine: the secrets generator, the demo device's
 * sshd (in a lab network namespace, paths and user adapted), the iperf3 server command (in
 * another namespace), `collector check-config` on the demo configuration, and a collector run
 * of the demo configuration (hosts pointed at the namespaces) that must succeed.
 * Not run here: image builds, Grafana itself, the compose network's DNS names.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../collector/config/load.js';
import { runOnce } from '../../collector/service.js';
import { createLab, type Lab } from '../lab/lab.js';
import { composeFileSchema, dockerfileInstructions, type ComposeFile } from './composeSchema.js';
import { startOrder } from '../containers/compose.js';
import { REPO_ROOT } from '../support/pluginProcess.js';

const PLUGIN_ID = (JSON.parse(readFileSync(join(REPO_ROOT, 'src/plugin.json'), 'utf8')) as { id: string }).id;
const compose = (): ComposeFile => composeFileSchema.parse(parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8')));
const dockerfile = (path: string) => dockerfileInstructions(readFileSync(join(REPO_ROOT, path), 'utf8'));
const DEMO = join(REPO_ROOT, 'deploy/demo-device');

describe('docker-compose.yml', () => {
  it('is valid against the Compose spec subset it uses, with every reference resolved', () => {
    const file = compose();
    expect(Object.keys(file.services).sort()).toEqual(['collector', 'collector-a', 'collector-b', 'demo-device', 'grafana', 'iperf3-server', 'plugin-build', 'postgres', 'secrets-init']);
    // the default stack is what has no profile
    expect(Object.entries(file.services).filter(([, s]) => !s.profiles).map(([name]) => name).sort()).toEqual(['collector', 'demo-device', 'grafana', 'iperf3-server', 'plugin-build', 'secrets-init']);
    const bad = parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Record<string, unknown>> };
    bad.services.collector.depends_on = { nowhere: { condition: 'service_started' } };
    expect(composeFileSchema.safeParse(bad).success).toBe(false);
  });

  it('runs a pinned glibc (Ubuntu) Grafana that loads our unsigned plugin only, built by plugin-build, with provisioning mounted', () => {
    const grafana = compose().services.grafana;
    // the Node single executable needs glibc: not the default Alpine (musl) image
    expect(grafana.image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+-ubuntu$/);
    const env = grafana.environment as Record<string, string>;
    expect(env.GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS).toBe(PLUGIN_ID);
    expect(grafana.volumes).toContain(`plugin:/var/lib/grafana/plugins/${PLUGIN_ID}:ro`);
    // the plugin is built from the read-only checkout into that volume before Grafana starts
    const build = compose().services['plugin-build'];
    expect(build.volumes).toEqual(['.:/src:ro', 'plugin:/plugin']);
    expect((build.command as string[]).join('\n')).toMatch(/npm ci --ignore-scripts[\s\S]*build-backend\.mjs --arch "\$\$arch"[\s\S]*build-frontend\.mjs[\s\S]*cp -r dist\/\. \/plugin\//);
    expect(grafana.depends_on).toMatchObject({ 'plugin-build': { condition: 'service_completed_successfully' } });
    expect(grafana.volumes).toContain('./provisioning:/etc/grafana/provisioning:ro');
    // the token the provisioned data source reads: exported from the generated file, then Grafana's own entrypoint
    const entrypoint = (grafana.entrypoint as string[]).join(' ');
    expect(entrypoint).toContain('$$(cat /secrets/api-token)');
    expect(entrypoint).toMatch(/export IPERF3_API_TOKEN; exec \/run\.sh$/);
    expect(readFileSync(join(REPO_ROOT, 'provisioning/datasources/iperf3.yaml'), 'utf8')).toContain('apiToken: http://collector:8686 ${IPERF3_API_TOKEN}');
    expect(env.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe('/var/lib/grafana/dashboards/iperf3/fleet-overview.json');
    expect(existsSync(join(REPO_ROOT, 'dashboards/iperf3/fleet-overview.json'))).toBe(true);
  });

  it('runs the collector image with the demo config where the image expects it, secrets beside it, data on a volume', () => {
    const collector = compose().services.collector;
    const image = dockerfile('collector/Dockerfile');
    expect(collector.build).toEqual({ context: '.', dockerfile: 'collector/Dockerfile' });
    expect(collector.volumes).toContain(`./deploy/collector.demo.yaml:${image.env.COLLECTOR_CONFIG}:ro`);
    expect(collector.volumes).toContain('secrets:/config/secrets:ro'); // ./secrets/... resolves against /config
    expect(collector.volumes).toContain('collector-data:/data');
    expect(collector.command).toEqual(['serve', '--config', image.env.COLLECTOR_CONFIG]);
    expect(image.entrypoint).toEqual(['node', 'collector/dist/main.js']);
    expect(collector.healthcheck?.test).toEqual(['CMD', 'node', '-e', expect.stringContaining('http://127.0.0.1:8686/healthz')]);
    expect(collector.depends_on).toMatchObject({ 'secrets-init': { condition: 'service_completed_successfully' }, 'demo-device': { condition: 'service_healthy' } });
  });

  it('has a scale-out profile: PostgreSQL with a generated password file, two collectors of the collector image sharing it', () => {
    const { services, volumes } = compose();
    const scaleOut = Object.entries(services).filter(([, s]) => s.profiles?.includes('scale-out')).map(([name]) => name).sort();
    expect(scaleOut).toEqual(['collector-a', 'collector-b', 'postgres']);
    const postgres = services.postgres;
    expect(postgres.image).toMatch(/^postgres:\d+\.\d+-bookworm$/);
    const env = postgres.environment as Record<string, string>;
    // the password comes from the file secrets-init writes, never from the environment itself
    expect(env).toEqual({ POSTGRES_USER: 'iperf3', POSTGRES_DB: 'iperf3', POSTGRES_PASSWORD_FILE: '/secrets/pg-password' });
    expect(postgres.volumes).toEqual(['secrets:/secrets:ro', 'postgres-data:/var/lib/postgresql/data']);
    expect(Object.keys(volumes ?? {})).toContain('postgres-data');
    // started as Compose starts them: the profile's services only with the profile, after what they depend on
    const project = { name: 'iperf3-grafana', dir: REPO_ROOT, file: compose() };
    expect(startOrder(project, ['grafana'])).not.toContain('postgres');
    const withProfile = startOrder(project, ['grafana'], ['scale-out']);
    expect(withProfile.indexOf('postgres')).toBeGreaterThan(withProfile.indexOf('secrets-init'));
    expect(withProfile.indexOf('collector-a')).toBeGreaterThan(withProfile.indexOf('postgres'));
    expect(postgres.depends_on).toMatchObject({ 'secrets-init': { condition: 'service_completed_successfully' } });
    expect(postgres.healthcheck?.test).toEqual(['CMD', 'pg_isready', '-U', 'iperf3', '-d', 'iperf3']);
    const image = dockerfile('collector/Dockerfile');
    for (const name of ['collector-a', 'collector-b']) {
      const c = services[name];
      expect(c.image).toBe(services.collector.image); // built once, by the default collector service
      expect(c.command).toEqual(['serve', '--config', image.env.COLLECTOR_CONFIG]);
      expect(c.volumes).toEqual([`./deploy/collector.scale-out.yaml:${image.env.COLLECTOR_CONFIG}:ro`, 'secrets:/config/secrets:ro']);
      expect(c.depends_on).toMatchObject({ postgres: { condition: 'service_healthy' }, collector: { condition: 'service_started' } });
    }
    const config = parse(readFileSync(join(REPO_ROOT, 'deploy/collector.scale-out.yaml'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ database: 'postgres://iperf3@postgres:5432/iperf3', databasePasswordFile: './secrets/pg-password' });
    // the same fleet as the demo collector, only stored in PostgreSQL
    const demo = parse(readFileSync(join(REPO_ROOT, 'deploy/collector.demo.yaml'), 'utf8')) as Record<string, unknown>;
    for (const key of ['servers', 'clientOptions', 'schedule', 'devices', 'apiTokenFile']) expect(config[key], key).toEqual(demo[key]);
  });

  it('runs the demo images with the commands their Dockerfiles declare', () => {
    const { services } = compose();
    expect(services['iperf3-server'].command).toEqual(dockerfile('deploy/demo-iperf3/Dockerfile').cmd);
    expect(services['demo-device'].command).toEqual(dockerfile('deploy/demo-device/Dockerfile').cmd);
    expect(services['secrets-init'].command).toEqual(['/usr/local/bin/generate-secrets', '/secrets', '1000']);
    expect(services['secrets-init'].image).toBe(services['demo-device'].image);
  });
});

describe('the demo containers\' commands, run on this machine', () => {
  let lab: Lab;
  let secrets: string;
  let configDir: string;
  /** sshd refuses authorized_keys under a world-writable directory such as /tmp */
  let runDir: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    configDir = mkdtempSync(join(tmpdir(), 'iperf3-demo-config-'));
    secrets = join(configDir, 'secrets');
    runDir = `/run/iperf3-grafana-demo-${process.pid}`;
    mkdirSync(runDir, { recursive: true, mode: 0o755 });
    chmodSync(runDir, 0o755);
    lab = await createLab({ name: 'demo', devices: [{ id: 'device', ssh: 'openssh' }, { id: 'srvhost', ssh: 'openssh' }] });
    if (!existsSync(join(REPO_ROOT, 'collector/dist/main.js'))) execFileSync('npm', ['run', 'build:collector'], { cwd: REPO_ROOT, stdio: 'ignore' });
  }, 180_000);

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    await lab?.destroy();
    rmSync(runDir, { recursive: true, force: true });
    rmSync(configDir, { recursive: true, force: true });
  });

  it('secrets-init generates a token and key pairs once, readable by whom needs them, and keeps them on restart', () => {
    const first = spawnSync(join(DEMO, 'generate-secrets.sh'), [secrets, '1000'], { encoding: 'utf8' });
    expect(first.status, first.stderr).toBe(0);
    const token = readFileSync(join(secrets, 'api-token'), 'utf8');
    expect(token).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(join(secrets, 'api-token')).mode & 0o777).toBe(0o444);
    expect(statSync(secrets).mode & 0o777).toBe(0o755); // Grafana (uid 472) must reach the token
    const key = statSync(join(secrets, 'id_ed25519'));
    expect([key.uid, key.mode & 0o777]).toEqual([1000, 0o400]);
    expect(statSync(join(secrets, 'ssh_host_ed25519_key')).mode & 0o777).toBe(0o600);
    // PostgreSQL (uid 999) as owner and the collectors (gid 1000) as group read its password, nobody else
    const pgPassword = statSync(join(secrets, 'pg-password'));
    expect([pgPassword.uid, pgPassword.gid, pgPassword.mode & 0o777]).toEqual([999, 1000, 0o440]);
    expect(readFileSync(join(secrets, 'pg-password'), 'utf8')).toMatch(/^[0-9a-f]{48}$/);
    expect(execFileSync('ssh-keygen', ['-lf', join(secrets, 'id_ed25519.pub')], { encoding: 'utf8' })).toMatch(/ED25519/);
    const again = spawnSync(join(DEMO, 'generate-secrets.sh'), [secrets, '1000'], { encoding: 'utf8' });
    expect(again.status).toBe(0);
    expect(again.stdout).toBe(''); // nothing regenerated
    expect(readFileSync(join(secrets, 'api-token'), 'utf8')).toBe(token);
  });

  it('collector check-config accepts the demo configuration with the generated secrets', () => {
    copyFileSync(join(REPO_ROOT, 'deploy/collector.demo.yaml'), join(configDir, 'collector.yaml'));
    const result = spawnSync('node', [join(REPO_ROOT, 'collector/dist/main.js'), 'check-config', '--config', join(configDir, 'collector.yaml')], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('devices: 1 (1 enabled)');
    expect(result.stdout).toContain('schedule: "*/10 * * * *" UTC');
  });

  it('collector check-config accepts the scale-out configuration with the generated password file', () => {
    copyFileSync(join(REPO_ROOT, 'deploy/collector.scale-out.yaml'), join(configDir, 'collector-scale-out.yaml'));
    const result = spawnSync('node', [join(REPO_ROOT, 'collector/dist/main.js'), 'check-config', '--config', join(configDir, 'collector-scale-out.yaml')], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('devices: 1 (1 enabled)');
    expect(result.stdout + result.stderr).not.toContain(readFileSync(join(secrets, 'pg-password'), 'utf8'));
  });

  it('the demo device\'s sshd and the demo iperf3 server serve a real run of the demo configuration', async () => {
    const device = lab.device('device');
    const server = lab.device('srvhost');
    // the image's sshd_config, with this machine's paths, the lab's user and a free port
    const config = readFileSync(join(DEMO, 'sshd_config'), 'utf8')
      .replace(/^Port 22$/m, 'Port 2222')
      .replace('HostKey /secrets/', `HostKey ${secrets}/`)
      .replace('AuthorizedKeysFile /etc/ssh/authorized_keys/%u', `AuthorizedKeysFile ${runDir}/keys/%u`)
      .replace(/^AllowUsers demo$/m, `AllowUsers ${device.username}`)
      .replace('PidFile /run/sshd.pid', `PidFile ${runDir}/sshd.pid`);
    expect(config).not.toMatch(/^HostKey \/secrets\/|^AllowUsers demo$|^Port 22$/m);
    writeFileSync(join(runDir, 'sshd_config'), config);
    const start = (ns: string, argv: string[]) => {
      const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
      children.push(child);
      return child;
    };
    start(device.ns, [join(DEMO, 'start-sshd.sh'), secrets, join(runDir, 'sshd_config'), join(runDir, 'keys'), device.username]);
    const iperfCommand = compose().services['iperf3-server'].command as string[];
    start(server.ns, iperfCommand);
    // wait until both listen (ss in each namespace: a probe connection would disturb iperf3)
    const listening = async (host: string, port: number) => (await lab.exec(host, ['ss', '-ltnH', `sport = :${port}`])).stdout.trim() !== '';
    for (let i = 0; i < 100 && !((await listening('device', 2222)) && (await listening('srvhost', 5201))); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await listening('device', 2222)).toBe(true);
    expect(await listening('srvhost', 5201)).toBe(true);
    // the collector's demo configuration, with the compose DNS names replaced by the namespaces' addresses
    const demo = parse(readFileSync(join(REPO_ROOT, 'deploy/collector.demo.yaml'), 'utf8')) as {
      database: string;
      servers: { host: string }[];
      devices: { host: string; port?: number; username: string }[];
    };
    expect([demo.servers[0].host, demo.devices[0].host]).toEqual(['iperf3-server', 'demo-device']);
    demo.database = './iperf3.db';
    demo.servers[0].host = server.host;
    Object.assign(demo.devices[0], { host: device.host, port: 2222, username: device.username });
    writeFileSync(join(configDir, 'collector.lab.yaml'), stringify(demo));
    const [run] = await runOnce(loadConfigFile(join(configDir, 'collector.lab.yaml')), pino({ level: 'silent' }), ['demo-device']);
    expect(run.status, JSON.stringify(run)).toBe('ok');
    expect(run.tests.map((t) => `${t.protocol}-${t.direction}`)).toEqual(['tcp-upload', 'tcp-download', 'udp-upload', 'udp-download']);
  }, 120_000);
});
