/**
 * Devices without restarts, with the real collector process (`collector serve`, built) against
 * real devices of the lab (OpenSSH and dropbear in network namespaces, a real iperf3 server):
 * a device added through the API is tested at once; an edit of the watched file and a SIGHUP
 * bring in the file's devices; the file's devices are refused through the API; a removed
 * device keeps its history; `devices import` and `export` round-trip through the running
 * collector's API; `collector run` and `forget-host-key` take a device of the API.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab } from '../lab/lab.js';

const TOKEN = 'devices-lab-token-0123456789abcdef';
const RATE = 30; // Mbit/s on the device links
const main = join(process.cwd(), 'collector/dist/main.js');

let lab: Lab;
let dir: string;
let child: ChildProcess | undefined;
let url: string;
let stderr = '';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A lab device as the file lists it (key by path) or as the API takes it (key by name in deviceCredentialsDir). */
function device(id: string, labDevice: string, key = join(dir, 'creds', 'id_ed25519')) {
  const d = lab.device(labDevice);
  return { id, host: d.host, port: d.port, username: d.username, privateKeyFile: key, labels: { site: 'lab' } };
}

/** The collector's configuration, written as an editor saves (a new file renamed over the old one). */
function writeConfig(target: string, port: number, devices: object[]): void {
  const yaml = {
    listen: `127.0.0.1:${port}`,
    database: join(dir, 'iperf3.db'),
    apiTokenFile: join(dir, 'token'),
    deviceCredentialsDir: join(dir, 'creds'),
    schedule: { cron: '0 2 * * *', timezone: 'UTC' },
    servers: [{ host: lab.server('s1').host, port: lab.server('s1').port }],
    // short tests: the point here is that they run, the rates are judged in collector-lab
    clientOptions: { time: 2, omit: 0, connectTimeout: 2000, udp: { enabled: false } },
    ssh: { connectTimeoutMs: 3000 },
    devices,
  };
  writeFileSync(`${target}.tmp`, stringify(yaml));
  renameSync(`${target}.tmp`, target);
}

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(`${url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const ids = async () => ((await api('GET', '/devices')).body.devices as { id: string; managedBy: string }[]).map((d) => `${d.id}:${d.managedBy}`);

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${stderr.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs a device now through the API and waits for its stored run. */
async function runNow(id: string): Promise<{ status: string; errorClass: string | null; message: string | null }> {
  expect((await api('POST', '/runs', { devices: [id] })).status).toBe(202);
  return until(`the run of ${id}`, async () => {
    const runs = (await api('GET', `/runs?device=${id}`)).body.runs as { status: string; errorClass: string | null; message: string | null }[];
    return runs.find((r) => r.status !== 'running');
  });
}

function cli(...args: string[]) {
  return spawnSync('node', [main, ...args, '--config', join(dir, 'collector.yaml'), '--log-level', 'silent'], { encoding: 'utf8', timeout: 30_000 });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'devices-lab-'));
  lab = await createLab({
    name: 'dvin',
    devices: [
      { id: 'osh', ssh: 'openssh', rateMbit: RATE },
      { id: 'drop', ssh: 'dropbear', rateMbit: RATE },
    ],
    servers: [{ id: 's1' }],
  });
  writeFileSync(join(dir, 'token'), TOKEN);
  mkdirSync(join(dir, 'creds'));
  writeFileSync(join(dir, 'creds', 'id_ed25519'), lab.clientKey.privateKey, { mode: 0o600 });
  // the configuration the collector reads is a link: edits of the file it points to are not
  // seen by the watcher (it watches the link's folder), so only SIGHUP can bring them in
  mkdirSync(join(dir, 'real'));
  const port = await freePort();
  writeConfig(join(dir, 'real', 'collector.yaml'), port, [device('osh', 'osh')]);
  symlinkSync(join(dir, 'real', 'collector.yaml'), join(dir, 'collector.yaml'));
  child = spawn('node', [main, 'serve', '--config', join(dir, 'collector.yaml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  url = `http://127.0.0.1:${port}`;
  await until('the collector API', async () => (stderr.includes('collector API listening') ? true : undefined));
}, 120_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exit = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exit;
  }
  await lab?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('devices without restarts, on real devices', () => {
  it('tests a device added through the API at once, and refuses to change the file devices', async () => {
    const added = await api('POST', '/devices', device('drop', 'drop', 'id_ed25519'));
    expect(added.status).toBe(201);
    expect(await ids()).toEqual(['drop:api', 'osh:file']);
    const run = await runNow('drop');
    expect(run, JSON.stringify(run)).toMatchObject({ status: 'ok' });
    const latest = (await api('GET', '/latest?device=drop&metric=tcp_received_bps')).body.values as { value: number }[];
    expect(latest).toHaveLength(2);
    for (const v of latest) expect(v.value / 1e6).toBeGreaterThan(RATE * 0.8);

    const refused = await api('PATCH', '/devices/osh', { enabled: false });
    expect(refused).toEqual({
      status: 409,
      body: { error: 'managed-by-file', message: expect.stringContaining(`device osh is managed by the configuration file ${join(dir, 'collector.yaml')}`) },
    });
  });

  it('reloads the file devices on SIGHUP, and picks up an edit of the watched file', async () => {
    const port = Number(new URL(url).port);
    // the file behind the link changes: the watcher does not see it, SIGHUP does
    writeConfig(join(dir, 'real', 'collector.yaml'), port, [device('osh', 'osh'), device('osh-b', 'osh')]);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await ids()).toEqual(['drop:api', 'osh:file']);
    child!.kill('SIGHUP');
    await until('SIGHUP to bring in osh-b', async () => ((await ids()).includes('osh-b:file') ? true : undefined));
    expect(await runNow('osh-b')).toMatchObject({ status: 'ok' });

    // an editor saves the configuration itself (the link is replaced by a file): the watcher reloads
    writeConfig(join(dir, 'collector.yaml'), port, [device('osh', 'osh'), device('osh-c', 'osh')]);
    await until('the watcher to bring in osh-c', async () => ((await ids()).join() === 'drop:api,osh:file,osh-c:file' ? true : undefined));
    expect(await runNow('osh-c')).toMatchObject({ status: 'ok' });
    // a bad edit is logged and keeps the devices
    writeFileSync(join(dir, 'collector.yaml'), 'devices: [{ id: "bad id" }]\n');
    await until('the bad edit to be logged', async () => (stderr.includes('configuration not reloaded') ? true : undefined));
    expect(await ids()).toEqual(['drop:api', 'osh:file', 'osh-c:file']);
    writeConfig(join(dir, 'collector.yaml'), port, [device('osh', 'osh')]);
    await until('the good file again', async () => ((await ids()).join() === 'drop:api,osh:file' ? true : undefined));
  });

  it('removes a device keeping its history, and round-trips devices import/export through the running collector', async () => {
    expect(await api('DELETE', '/devices/drop')).toEqual({ status: 200, body: { removed: 'drop', history: 'kept' } });
    expect(await ids()).toEqual(['osh:file']);
    expect(((await api('GET', '/runs?device=drop')).body.runs as unknown[]).length).toBe(1);
    expect(((await api('GET', '/latest?device=drop&metric=tcp_received_bps')).body.values as unknown[]).length).toBe(2);

    const d = lab.device('drop');
    writeFileSync(join(dir, 'fleet.csv'), `id,host,port,username,privateKeyFile,labels.site\ndrop-2,${d.host},${d.port},${d.username},id_ed25519,roof\n`);
    const imported = cli('devices', 'import', join(dir, 'fleet.csv'));
    expect([imported.status, imported.stdout, imported.stderr]).toEqual([0, `${join(dir, 'fleet.csv')}: 1 added, 0 updated, 0 unchanged, 0 refused\n`, '']);
    expect(await ids()).toEqual(['drop-2:api', 'osh:file']);
    expect(await runNow('drop-2')).toMatchObject({ status: 'ok' });

    const exported = cli('devices', 'export', '--format', 'yaml');
    expect(exported.status).toBe(0);
    writeFileSync(join(dir, 'export.yaml'), exported.stdout);
    const again = cli('devices', 'import', join(dir, 'export.yaml'));
    expect(again.stdout).toContain(': 0 added, 0 updated, 2 unchanged, 0 refused');
    expect(cli('devices', 'export').stdout).toBe(
      'id,host,port,username,privateKeyFile,passphraseFile,passwordFile,hostKey,pool,group,enabled,labels.site\n' +
        `drop-2,${d.host},${d.port},${d.username},id_ed25519,,,,,,true,roof\n` +
        `osh,${lab.device('osh').host},${lab.device('osh').port},${lab.device('osh').username},${join(dir, 'creds', 'id_ed25519')},,,,,,true,lab\n`,
    );
  });
  it('tests a device added through the API with `collector run`, and forgets its host key with `forget-host-key`', async () => {
    // beside the running collector: the key that drop-2's run recorded on first use
    const forgot = cli('forget-host-key', 'drop-2');
    expect([forgot.status, forgot.stderr]).toEqual([0, '']);
    expect(forgot.stdout).toMatch(/^forgot the SSH host key recorded for drop-2; the next connection records/);
    expect(cli('forget-host-key', 'drop-2').stderr).toBe('no host key is recorded for drop-2: nothing to forget\n');
    // `run` takes the SQLite database for itself: the service stops first
    const exit = new Promise((r) => child!.once('exit', r));
    child!.kill('SIGTERM');
    await exit;
    const run = cli('run', 'drop-2');
    expect([run.status, run.stderr], run.stdout).toEqual([0, '']);
    expect(run.stdout).toMatch(/^drop-2: ok via /);
    expect(run.stdout).toMatch(/tcp upload: [\d.]+ Mbit\/s received/);
    // the connection recorded the device's key again
    expect(cli('forget-host-key', 'drop-2').status).toBe(0);
    const unknown = cli('run', 'drop-3');
    expect([unknown.status, unknown.stdout]).toEqual([2, '']);
    expect(unknown.stderr).toMatch(/^unknown device id\(s\): drop-3; `collector devices export --config /);
  });
});
