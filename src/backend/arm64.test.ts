/**
 * The arm64 build of the plugin executable, run on this amd64 machine under qemu user-mode
 * emulation (Debian's qemu-user-static or qemu-user, plus the arm64 glibc and C++ runtime via
 * multiarch), started as Grafana (hashicorp/go-plugin) starts a plugin: magic cookie, protocol
 * version and go-plugin's default port range in the environment, another working directory.
 * Proves that the arm64 Node runtime reads the SEA blob made by the amd64 Node and serves:
 * handshake, gRPC health, resources, CheckHealth and QueryData against a real collector, and
 * a clean exit on SIGTERM.
 *
 * qemu is invoked explicitly because containers usually have no binfmt_misc registration;
 * with one, `exec` of the executable (what Grafana does) reaches the same qemu.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRIC_CATALOGUE } from '../../contract/metrics.js';
import { COLLECTOR_VERSION, DAY, NIGHT0, NOW, startCollector, type RunningCollector } from '../../tests/support/collectorFixture.js';
import { decodeFrame, fieldLabels, PluginClient, type DataSourceSettingsInput } from '../../tests/support/pluginClient.js';
import {
  GO_PLUGIN_MAX_PORT as MAX_PORT,
  GO_PLUGIN_MIN_PORT as MIN_PORT,
  launchPlugin,
  PluginLaunchError,
  REPO_ROOT as ROOT,
  within,
  type LaunchedPlugin,
} from '../../tests/support/pluginProcess.js';

const PLUGIN_JSON = JSON.parse(readFileSync(join(ROOT, 'src/plugin.json'), 'utf8')) as { executable: string };
/** Emulation makes start-up slower than native (a few seconds here); leave ample room on CI. */
const HANDSHAKE_TIMEOUT_MS = 90_000;

const INSTALL_COMMAND =
  'dpkg --add-architecture arm64 && apt-get update && apt-get install -y --no-install-recommends qemu-user-static libc6:arm64 libstdc++6:arm64 libgcc-s1:arm64';
/** What the arm64 Node binary needs (its interpreter and NEEDED entries), by Debian package. */
const ARM64_RUNTIME_FILES: { file: string; pkg: string }[] = [
  { file: '/lib/ld-linux-aarch64.so.1', pkg: 'libc6:arm64' },
  ...['libc.so.6', 'libm.so.6', 'libdl.so.2', 'libpthread.so.0'].map((lib) => ({ file: lib, pkg: 'libc6:arm64' })),
  { file: 'libstdc++.so.6', pkg: 'libstdc++6:arm64' },
  { file: 'libgcc_s.so.1', pkg: 'libgcc-s1:arm64' },
];
const ARM64_LIB_DIRS = ['/lib/aarch64-linux-gnu', '/usr/lib/aarch64-linux-gnu'];

function findQemu(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/bin'];
  for (const name of ['qemu-aarch64', 'qemu-aarch64-static']) {
    const found = dirs.map((dir) => join(dir, name)).find((path) => existsSync(path));
    if (found) return found;
  }
  return undefined;
}

/** Fails with the Debian packages to install when qemu or the arm64 libraries are missing. */
function requireEmulation(): string {
  const qemu = findQemu();
  const missing = new Set<string>();
  if (!qemu) missing.add('qemu-user-static (or qemu-user)');
  for (const { file, pkg } of ARM64_RUNTIME_FILES) {
    const candidates = file.startsWith('/') ? [file] : ARM64_LIB_DIRS.map((dir) => join(dir, file));
    if (!candidates.some((path) => existsSync(path))) missing.add(pkg);
  }
  if (!qemu || missing.size > 0) {
    throw new Error(
      `running the arm64 plugin executable under emulation needs the Debian packages ${[...missing].join(', ')}; ` +
        `install them as root with: ${INSTALL_COMMAND}`,
    );
  }
  return qemu;
}

/** Launched as Grafana launches it, with go-plugin's default port range, under qemu. */
async function launchEmulated(qemu: string, executable: string): Promise<LaunchedPlugin> {
  try {
    return await launchPlugin({ executable, prefix: [qemu], handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS });
  } catch (error) {
    // qemu's "Could not open '/lib/ld-linux-aarch64.so.1'" or ld.so's missing library lands here.
    if (error instanceof PluginLaunchError && error.reason === 'exited') {
      throw new Error(`${error.message} (missing arm64 libraries? ${INSTALL_COMMAND})`, { cause: error });
    }
    throw error;
  }
}

function elfMachine(path: string): number {
  const header = Buffer.alloc(20);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, header, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  if (!header.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) throw new Error(`${path} is not an ELF file`);
  return header.readUInt16LE(18);
}

interface Running {
  executable: string;
  plugin: LaunchedPlugin;
  client: PluginClient;
  settings: DataSourceSettingsInput;
}

let out: string | undefined;
let collector: RunningCollector | undefined;
let plugin: LaunchedPlugin | undefined;
let client: PluginClient | undefined;
let running: Running | undefined;
/** A failed setup fails every test with its message (vitest would report them as skipped). */
let setupError: unknown;

function ready(): Running {
  if (!running) throw setupError;
  return running;
}

beforeAll(async () => {
  try {
    const qemu = requireEmulation();
    out = mkdtempSync(join(tmpdir(), 'iperf3-arm64-'));
    const buildStart = performance.now();
    execFileSync(process.execPath, [join(ROOT, 'scripts/build-backend.mjs'), '--arch', 'arm64', '--out', out], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const buildMs = performance.now() - buildStart;
    const executable = join(out, `${PLUGIN_JSON.executable}_linux_arm64`);
    collector = await startCollector();
    const settings = {
      uid: 'arm64',
      jsonData: { collectorUrl: collector.url, servers: [{ host: '10.0.0.1' }] },
      secure: { apiToken: collector.token },
    };
    plugin = await launchEmulated(qemu, executable);
    const startMs = plugin.handshakeMs;
    client = new PluginClient(plugin.address);
    running = { executable, plugin, client, settings };
    // Reported, not asserted (speed belongs in benchmarks).
    console.error(`arm64 plugin: build ${(buildMs / 1000).toFixed(1)} s, start to handshake under ${qemu} ${(startMs / 1000).toFixed(1)} s`);
  } catch (error) {
    setupError = error;
  }
}, 150_000);

afterAll(async () => {
  client?.close();
  if (plugin && plugin.child.exitCode === null && plugin.child.signalCode === null) plugin.child.kill('SIGKILL');
  await collector?.close();
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('the arm64 plugin executable under qemu-aarch64', () => {
  it('is an AArch64 ELF that prints only the handshake, within the port range, and logs hclog JSON', () => {
    const { executable, plugin } = ready();
    expect(elfMachine(executable)).toBe(183); // EM_AARCH64
    const { port, stdout, stderrLines } = plugin;
    expect(stdout()).toBe(`1|2|tcp|127.0.0.1:${port}|grpc\n`);
    expect(port).toBeGreaterThanOrEqual(MIN_PORT);
    expect(port).toBeLessThanOrEqual(MAX_PORT);
    expect(stderrLines()).toContainEqual(expect.objectContaining({ '@level': 'info', '@message': 'plugin listening', grafanaVersion: '12.1.0', port }));
  });

  it('answers the gRPC health check: "plugin" SERVING', async () => {
    expect(await ready().client.health()).toEqual({ status: 'SERVING' });
  });

  it('serves the metrics catalogue through CallResource', async () => {
    const { client, settings } = ready();
    const r = await client.callResource(settings, 'metrics');
    expect(r.code).toBe(200);
    expect(r.contentType).toContain('application/json');
    expect(r.json).toEqual(JSON.parse(JSON.stringify(METRIC_CATALOGUE)));
  });

  it('answers CheckHealth and QueryData from a real collector', async () => {
    const { client, settings } = ready();
    const health = await client.checkHealth(settings);
    expect(health.status).toBe('OK');
    expect(health.message).toContain(`Collector ${COLLECTOR_VERSION}`);
    const r = await client.queryData(settings, [
      { refId: 'A', json: { queryType: 'timeseries', devices: ['r1'], metrics: ['tcp_received_bps'], direction: 'upload' }, fromMs: NIGHT0 - DAY, toMs: NOW },
    ]);
    expect(r.A).toMatchObject({ status: 200, error: '' });
    const frames = r.A.frames.map(decodeFrame);
    expect(frames.map((f) => fieldLabels(f, 1))).toEqual([{ device: 'r1', direction: 'upload' }]);
    expect(frames[0].table.getChild('tcp_received_bps')?.toArray()).toEqual(new Float64Array([100e6, 200e6, 300e6, 0])); // the fourth night failed
  });

  it('exits with code 0 on SIGTERM', async () => {
    const { plugin } = ready();
    plugin.child.kill('SIGTERM');
    const { code, signal } = await within(plugin.exited, 30_000, 'exit after SIGTERM');
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(plugin.stderrLines()).toContainEqual(expect.objectContaining({ '@message': 'stopping', reason: 'SIGTERM' }));
    expect(plugin.stdout()).toBe(`1|2|tcp|127.0.0.1:${plugin.port}|grpc\n`);
  });
});
