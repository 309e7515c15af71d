/**
 * Starts the BUILT plugin executable the way Grafana does (hashicorp/go-plugin): magic cookie
 * and protocol versions in the environment, a port range, a working directory that is not the
 * plugin's, the handshake line read from stdout, then gRPC on the announced address. The
 * gRPC client is the backend's own test client (src/backend/testing/pluginClient.ts).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PluginClient } from '../../src/backend/testing/pluginClient.js';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** dist/<executable>_linux_amd64, named after src/plugin.json. */
export function pluginExecutablePath(): string {
  const { executable } = JSON.parse(readFileSync(join(REPO_ROOT, 'src/plugin.json'), 'utf8')) as { executable: string };
  return join(REPO_ROOT, 'dist', `${executable}_linux_amd64`);
}

/** Builds the executable with `npm run build:backend` when it is missing (takes a minute). */
export function ensurePluginBuilt(): string {
  const path = pluginExecutablePath();
  if (!existsSync(path)) {
    const build = spawnSync('npm', ['run', 'build:backend'], { cwd: REPO_ROOT, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`npm run build:backend failed (exit ${build.status}): ${build.stderr}`);
  }
  if (!existsSync(path)) throw new Error(`npm run build:backend did not produce ${path}`);
  return path;
}

export interface RunningPlugin {
  client: PluginClient;
  /** `1|2|tcp|127.0.0.1:port|grpc` */
  handshake: string;
  /** what the plugin logged on stderr (JSON lines) */
  stderr(): string;
  stop(): Promise<void>;
}

export async function startPlugin(executable: string): Promise<RunningPlugin> {
  const cwd = mkdtempSync(join(tmpdir(), 'iperf3-grafana-cwd-'));
  const child: ChildProcess = spawn(executable, [], {
    cwd,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      grafana_plugin_type: 'datasource',
      PLUGIN_PROTOCOL_VERSIONS: '2',
      PLUGIN_MIN_PORT: '10000',
      PLUGIN_MAX_PORT: '25000',
      GF_VERSION: '13.2.2',
      GF_EDITION: 'oss',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const handshake = await new Promise<string>((resolveLine, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no handshake line within 30 s; stderr: ${err}`)), 30_000);
    child.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      const newline = out.indexOf('\n');
      if (newline >= 0) {
        clearTimeout(timer);
        resolveLine(out.slice(0, newline).trim());
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`plugin exited (${code}) before its handshake; stderr: ${err}`));
    });
  });
  const parts = handshake.split('|');
  if (parts.length !== 5 || parts[0] !== '1' || parts[1] !== '2' || parts[2] !== 'tcp' || parts[4] !== 'grpc') {
    child.kill('SIGKILL');
    throw new Error(`not a go-plugin handshake line: ${JSON.stringify(handshake)}`);
  }
  const client = new PluginClient(parts[3]);
  return {
    client,
    handshake,
    stderr: () => err,
    stop: async () => {
      client.close();
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(cwd, { recursive: true, force: true });
    },
  };
}
