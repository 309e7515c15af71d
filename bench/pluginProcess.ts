/**
 * The plugin executable started the way Grafana starts a backend plugin (hashicorp/go-plugin):
 * the magic cookie and protocol versions in the environment, a port range, the plugin's
 * folder as working directory; the handshake line `1|2|tcp|127.0.0.1:PORT|grpc` on stdout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** dist/<executable>_linux_amd64, named by src/plugin.json as Grafana names it. */
export function pluginExecutablePath(): string {
  const pluginJson = JSON.parse(readFileSync(join(ROOT, 'src/plugin.json'), 'utf8')) as { executable: string };
  return join(ROOT, 'dist', `${pluginJson.executable}_linux_amd64`);
}

export interface RunningPlugin {
  pid: number;
  /** host:port of its gRPC server */
  address: string;
  /** spawn to handshake line */
  handshakeMs: number;
  /** JSON log lines it wrote on stderr */
  stderr: string[];
  /** SIGTERM, then waits for the exit */
  stop(): Promise<number | null>;
}

export async function launchPlugin(executable: string = pluginExecutablePath(), timeoutMs = 20_000): Promise<RunningPlugin> {
  if (!existsSync(executable)) throw new Error(`no plugin executable at ${executable}: run npm run build:backend`);
  const started = performance.now();
  const child: ChildProcess = spawn(executable, [], {
    cwd: dirname(executable),
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      grafana_plugin_type: 'datasource',
      PLUGIN_PROTOCOL_VERSIONS: '2',
      PLUGIN_MIN_PORT: '10000',
      PLUGIN_MAX_PORT: '25000',
      GF_VERSION: '12.2.0',
      GF_EDITION: 'oss',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => stderr.push(...chunk.split('\n').filter(Boolean)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const handshake = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no handshake line within ${timeoutMs} ms; stderr: ${stderr.join('\n')}`)), timeoutMs);
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const newline = out.indexOf('\n');
      if (newline >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, newline));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the plugin exited with ${code} before its handshake; stderr: ${stderr.join('\n')}`));
    });
  });
  const handshakeMs = performance.now() - started;
  const parts = handshake.split('|');
  if (parts.length !== 5 || parts[0] !== '1' || parts[1] !== '2' || parts[2] !== 'tcp' || parts[4] !== 'grpc') {
    child.kill('SIGTERM');
    throw new Error(`unexpected handshake line ${JSON.stringify(handshake)}`);
  }
  return {
    pid: child.pid as number,
    address: parts[3],
    handshakeMs,
    stderr,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
