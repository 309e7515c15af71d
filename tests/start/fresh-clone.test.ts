/**
 * The README's first command without Docker, `npm start`, from a fresh clone of this repository:
 * it builds what is missing, creates the API token and the SSH key pair (0600 in a 0700
 * folder), writes the starter configuration, prints the public key, and serves; a second start
 * overwrites nothing. The clone shares node_modules with this checkout (npm ci would take
 * minutes); everything else, the build included, happens in the clone as a newcomer would see it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
let dir: string;
let clone: string;
let server: ChildProcess | undefined;

const modeOf = (path: string): number => statSync(path).mode & 0o777;
const read = (...parts: string[]): string => readFileSync(join(clone, ...parts), 'utf8');

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fresh-clone-'));
  clone = join(dir, 'iperf3-grafana');
  const cloned = spawnSync('git', ['clone', '--quiet', '--shared', ROOT, clone], { encoding: 'utf8' });
  if (cloned.status !== 0) throw new Error(`git clone failed: ${cloned.stderr}`);
  symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'));
});

afterAll(async () => {
  // a failed test may leave the server running: end its process group (npm, start.mjs, collector)
  if (server?.pid !== undefined && server.exitCode === null && server.signalCode === null) process.kill(-server.pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('npm start from a fresh clone', () => {
  let firstOutput = '';

  it('builds what is missing, creates the secrets and the starter config, and prints the public key', () => {
    expect(existsSync(join(clone, 'collector', 'dist', 'main.js'))).toBe(false);
    expect(existsSync(join(clone, 'secrets'))).toBe(false);
    const first = spawnSync(process.execPath, ['scripts/start.mjs', '--no-serve'], { cwd: clone, encoding: 'utf8', timeout: 240_000 });
    firstOutput = first.stdout;
    expect(first.status, `${first.stdout}\n${first.stderr}`).toBe(0);

    const arch = process.arch === 'arm64' ? 'arm64' : 'amd64';
    for (const built of ['collector/dist/main.js', 'dist/module.js', 'dist/plugin.json', `dist/gpx_iperf3_linux_${arch}`]) {
      expect(existsSync(join(clone, built)), built).toBe(true);
    }

    expect(modeOf(join(clone, 'secrets'))).toBe(0o700);
    for (const secret of ['api-token', 'id_ed25519', 'id_ed25519.pub']) expect(modeOf(join(clone, 'secrets', secret)), secret).toBe(0o600);
    expect(modeOf(join(clone, 'collector.yaml'))).toBe(0o600);
    expect(read('secrets', 'api-token')).toMatch(/^[0-9a-f]{64}\n$/);

    // the pair is a real ed25519 pair: the private key's public half is the .pub, and that is what was printed
    const key = ssh2.utils.parseKey(read('secrets', 'id_ed25519'));
    if (key instanceof Error) throw key;
    expect(key.type).toBe('ssh-ed25519');
    const publicLine = read('secrets', 'id_ed25519.pub').trim();
    const [type, base64] = publicLine.split(' ');
    expect(type).toBe('ssh-ed25519');
    expect(Buffer.from(base64 as string, 'base64').equals(key.getPublicSSH())).toBe(true);
    expect(first.stdout).toContain(`\n  ${publicLine}\n`);
    expect(first.stdout).toContain('authorized_keys');
    expect(first.stdout).toMatch(/edit collector\.yaml: "servers".*"devices"/);
    expect(first.stdout).toContain("Grafana's iperf3 data source:      URL http://127.0.0.1:8686, token in secrets/api-token");

    expect(read('collector.yaml')).toBe(readFileSync(join(clone, 'collector', 'collector.example.yaml'), 'utf8'));
    const checked = spawnSync(process.execPath, ['collector/dist/main.js', 'check-config', '--config', 'collector.yaml'], { cwd: clone, encoding: 'utf8' });
    expect(checked.status, checked.stderr).toBe(0);
    // nothing it wrote is something git would commit
    const status = spawnSync('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: clone, encoding: 'utf8' });
    expect(status.stdout.trim()).toBe('?? node_modules');
  }, 300_000);

  it('starts again without overwriting anything, and serves with the token it created', async () => {
    expect(firstOutput).toContain('first start, created');
    const before = { token: read('secrets', 'api-token'), key: read('secrets', 'id_ed25519'), pub: read('secrets', 'id_ed25519.pub') };
    const port = await freePort();
    // the operator's edit, which a later start must keep
    const edited = read('collector.yaml').replace('listen: 127.0.0.1:8686', `listen: 127.0.0.1:${port}`);
    expect(edited).toContain(`listen: 127.0.0.1:${port}`);
    writeFileSync(join(clone, 'collector.yaml'), edited);

    let output = '';
    server = spawn('npm', ['start'], { cwd: clone, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    server.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    let health: Response | undefined;
    for (let i = 0; i < 300 && health === undefined; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      health = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
    }
    expect(health?.status, output).toBe(200);
    expect(await health?.json()).toEqual({ status: 'ok' });
    const api = await fetch(`http://127.0.0.1:${port}/api/v1/health`, { headers: { authorization: `Bearer ${before.token.trim()}` } });
    expect(api.status).toBe(200);
    expect(((await api.json()) as { devices: number }).devices).toBe(2);

    expect(output).not.toContain('first start');
    expect(output).not.toMatch(/npm run build/);
    expect(output).toContain(before.pub.trim());
    expect(output).toContain(`URL http://127.0.0.1:${port},`);
    expect({ token: read('secrets', 'api-token'), key: read('secrets', 'id_ed25519'), pub: read('secrets', 'id_ed25519.pub') }).toEqual(before);
    expect(read('collector.yaml')).toBe(edited);

    // Ctrl-C as a terminal sends it: to the whole process group
    const exited = new Promise<number | null>((resolve) => server?.on('exit', resolve));
    process.kill(-(server.pid as number), 'SIGINT');
    await exited;
    const closed = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      () => 'still answering',
      () => 'closed',
    );
    expect(closed).toBe('closed');
  }, 120_000);
});
