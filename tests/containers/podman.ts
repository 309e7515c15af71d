/**
 * podman as it works on this machine (see make-bases.sh and podman-env.sh): the environment
 * that points podman at the containers.conf and storage under IPERF3_CONTAINERS_DIR
 * (default /var/tmp/iperf3-containers), and small async wrappers.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const CONTAINERS_DIR = process.env.IPERF3_CONTAINERS_DIR ?? '/var/tmp/iperf3-containers';

/** The environment podman-env.sh exports (the files themselves are written by that script). */
export const podmanEnv: NodeJS.ProcessEnv = {
  ...process.env,
  IPERF3_CONTAINERS_DIR: CONTAINERS_DIR,
  CONTAINERS_CONF: join(CONTAINERS_DIR, 'containers.conf'),
  CONTAINERS_STORAGE_CONF: join(CONTAINERS_DIR, 'storage.conf'),
};

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a command with podman's environment; never throws (see `podmanOk`). */
export function run(command: string, args: string[], options: { timeoutMs?: number; onStderr?: (chunk: string) => void } = {}): Promise<Result> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { env: podmanEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      options.onStderr?.(d.toString());
    });
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

export function podman(args: string[], options: { timeoutMs?: number } = {}): Promise<Result> {
  return run('podman', args, options);
}

/** podman, failing with its stderr unless it exits 0; resolves to trimmed stdout. */
export async function podmanOk(args: string[], options: { timeoutMs?: number } = {}): Promise<string> {
  const result = await podman(args, options);
  if (result.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${result.code}: ${result.stderr.slice(-2000)}`);
  return result.stdout.trim();
}

/** Synchronous variant for cleanup paths. */
export function podmanSync(args: string[]): number | null {
  return spawnSync('podman', args, { env: podmanEnv, stdio: 'ignore', timeout: 60_000 }).status;
}

export function hasPodman(): boolean {
  return spawnSync('podman', ['--version'], { stdio: 'ignore' }).status === 0;
}

/**
 * The machine's npm settings for builds and containers that run npm, written by podman-env.sh
 * into a folder mounted over /usr/local/etc (empty in the images, so no layer keeps a trace):
 * `nodedir` (native addons compile against the image's Node headers, since nodejs.org is out
 * of reach here) and, when the host's npm trusts a CA bundle (a TLS-inspecting egress proxy),
 * that bundle. Never baked into an image.
 */
export function npmMounts(): string[] {
  const dir = join(CONTAINERS_DIR, 'npm-etc');
  if (!existsSync(join(dir, 'npmrc'))) throw new Error(`${dir}/npmrc is missing: run tests/containers/make-bases.sh`);
  return ['--volume', `${dir}:/usr/local/etc:ro`];
}
