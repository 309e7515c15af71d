/**
 * Starts the BUILT plugin executable the way Grafana (hashicorp/go-plugin) starts a backend
 * plugin: magic cookie, protocol version, port range and Grafana version in the environment,
 * a working directory that is not the plugin's folder; the handshake line
 * `1|2|tcp|127.0.0.1:<port>|grpc` read from stdout. Talk to the announced address with
 * PluginClient (./pluginClient.ts). Shared by the backend tests, the provisioning tests and
 * the benchmarks.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** What go-plugin accepts from a gRPC plugin speaking protocol version 2 on loopback TCP. */
export const GO_PLUGIN_HANDSHAKE = /^1\|2\|tcp\|127\.0\.0\.1:(\d+)\|grpc$/;

/** go-plugin's defaults (ClientConfig.MinPort/MaxPort), which Grafana does not override. */
export const GO_PLUGIN_MIN_PORT = 10000;
export const GO_PLUGIN_MAX_PORT = 25000;

/** The Grafana version announced in GF_VERSION unless `env` says otherwise. */
export const GRAFANA_VERSION = '12.1.0';

export type PluginArch = 'amd64' | 'arm64';

/** dist/<executable>_linux_<arch>, named after src/plugin.json as Grafana names it. */
export function pluginExecutablePath(arch: PluginArch = 'amd64'): string {
  const { executable } = JSON.parse(readFileSync(join(REPO_ROOT, 'src/plugin.json'), 'utf8')) as { executable: string };
  return join(REPO_ROOT, 'dist', `${executable}_linux_${arch}`);
}

/**
 * mtime of the newest file the executable is built from (test files and test helpers are not
 * bundled); package-lock.json stands for the bundled dependencies.
 */
function newestSourceMs(): number {
  const files = ['src/backend', 'contract'].flatMap((dir) =>
    readdirSync(join(REPO_ROOT, dir), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && !e.name.endsWith('.test.ts') && !e.parentPath.split('/').includes('testing'))
      .map((e) => join(e.parentPath, e.name)),
  );
  return Math.max(...[...files, join(REPO_ROOT, 'src/plugin.json'), join(REPO_ROOT, 'package-lock.json')].map((path) => statSync(path).mtimeMs));
}

/**
 * Builds the amd64 executable with scripts/build-backend.mjs when it is missing or older than
 * the backend's sources (takes a minute); returns its path.
 */
export function ensurePluginBuilt(): string {
  const path = pluginExecutablePath();
  if (!existsSync(path) || statSync(path).mtimeMs < newestSourceMs()) {
    execFileSync(process.execPath, [join(REPO_ROOT, 'scripts/build-backend.mjs')], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  if (!existsSync(path)) throw new Error(`scripts/build-backend.mjs did not produce ${path}`);
  return path;
}

export interface LaunchOptions {
  /** default: pluginExecutablePath() */
  executable?: string;
  /** a command the executable is run under, e.g. ['qemu-aarch64-static'] */
  prefix?: string[];
  /** added to (and overriding) Grafana's environment */
  env?: Record<string, string>;
  /** default: a new temporary directory, removed when the plugin exits */
  cwd?: string;
  /** default 15 s */
  handshakeTimeoutMs?: number;
}

export interface PluginExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LaunchedPlugin {
  child: ChildProcessWithoutNullStreams;
  port: number;
  /** host:port of its gRPC server, for PluginClient */
  address: string;
  /** the first line on stdout, without its newline */
  handshake: string;
  /** spawn to handshake line */
  handshakeMs: number;
  /** everything on stdout so far */
  stdout(): string;
  /** everything on stderr so far */
  stderr(): string;
  /** stderr parsed as hclog JSON lines */
  stderrLines(): Record<string, unknown>[];
  /** resolves once the process has exited (and its temporary cwd is removed) */
  exited: Promise<PluginExit>;
  /** SIGTERM unless it has exited already, then waits for the exit */
  stop(): Promise<PluginExit>;
}

export type LaunchFailure = 'exited' | 'timeout' | 'bad-handshake';

/** Why no handshake came; `reason` lets callers add what to install or check. */
export class PluginLaunchError extends Error {
  constructor(
    readonly reason: LaunchFailure,
    message: string,
  ) {
    super(message);
    this.name = 'PluginLaunchError';
  }
}

export async function launchPlugin(options: LaunchOptions = {}): Promise<LaunchedPlugin> {
  const executable = options.executable ?? pluginExecutablePath();
  const timeoutMs = options.handshakeTimeoutMs ?? 15_000;
  const [command, ...args] = [...(options.prefix ?? []), executable];
  const under = options.prefix?.length ? ` under ${options.prefix.join(' ')}` : '';
  if (!existsSync(executable)) throw new Error(`no plugin executable at ${executable}: run npm run build:backend`);
  const cwd = options.cwd ?? mkdtempSync(join(tmpdir(), 'grafana-plugin-cwd-'));
  const started = performance.now();
  const child = spawn(command, args, {
    cwd,
    env: {
      PATH: '/usr/bin:/bin',
      grafana_plugin_type: 'datasource',
      PLUGIN_PROTOCOL_VERSIONS: '2',
      PLUGIN_MIN_PORT: String(GO_PLUGIN_MIN_PORT),
      PLUGIN_MAX_PORT: String(GO_PLUGIN_MAX_PORT),
      GF_VERSION: GRAFANA_VERSION,
      GF_EDITION: 'Open Source',
      ...options.env,
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<PluginExit>((resolveExit) =>
    child.on('exit', (code, signal) => {
      if (!options.cwd) rmSync(cwd, { recursive: true, force: true });
      resolveExit({ code, signal });
    }),
  );
  const handshake = await new Promise<string>((resolveLine, reject) => {
    const timer = setTimeout(
      () => reject(new PluginLaunchError('timeout', `no handshake within ${timeoutMs / 1000} s${under}; stderr: ${stderr}`)),
      timeoutMs,
    );
    child.stdout.on('data', () => {
      const newline = stdout.indexOf('\n');
      if (newline < 0) return;
      clearTimeout(timer);
      const line = stdout.slice(0, newline);
      if (GO_PLUGIN_HANDSHAKE.test(line)) resolveLine(line);
      else reject(new PluginLaunchError('bad-handshake', `bad handshake line ${JSON.stringify(stdout)}`));
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new PluginLaunchError('exited', `exited with ${code ?? signal}${under} before the handshake; stderr: ${stderr}`));
    });
  }).catch(async (error: unknown) => {
    // no process (or temporary directory) left behind when the handshake is missing or wrong
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    throw error;
  });
  const handshakeMs = performance.now() - started;
  const port = Number(GO_PLUGIN_HANDSHAKE.exec(handshake)?.[1]);
  return {
    child,
    port,
    address: `127.0.0.1:${port}`,
    handshake,
    handshakeMs,
    stdout: () => stdout,
    stderr: () => stderr,
    stderrLines: () =>
      stderr
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** `promise`, or a rejection naming `what` after `ms` (for exits that must be prompt). */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
