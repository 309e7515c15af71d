import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { formatSummary, runCli, USAGE, type Runtime } from './cli.js';
import type { RunSummary } from './dispatch/deviceRun.js';
import { COLLECTOR_VERSION } from './version.js';
import { SqliteStore } from './store/sqlite/sqliteStore.js';
import { DatabaseInUseError, UnknownDevicesError } from './errors.js';
import { openDeviceAdmin, startService } from './service.js';
import { pino } from 'pino';
import { apiDeviceAdmin } from './inventory/deviceAdmin.js';
import { acquireOwnership } from './store/sqlite/ownership.js';
import { deviceConfigSchema } from '../contract/devices.js';
import { mkdirSync, readFileSync } from 'node:fs';

let dir: string;
const TOKEN = 'cli-token-0123456789abcdef';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t), env: {} } };
}

const ok: RunSummary = {
  runId: 7,
  device: 'ap-1',
  status: 'ok',
  errorClass: null,
  message: null,
  server: '10.0.0.1:5201',
  tests: [
    {
      protocol: 'tcp',
      direction: 'upload',
      server: '10.0.0.1:5201',
      startedAt: new Date(0),
      endedAt: new Date(1),
      outcome: { ok: true, raw: '{}', iperfVersion: '3.12', intervals: [], metrics: [{ name: 'tcp_received_bps', value: 9.41e7 }, { name: 'tcp_sent_bps', value: 9.46e7 }, { name: 'tcp_retransmits', value: 12 }] },
    },
    {
      protocol: 'udp',
      direction: 'upload',
      server: '10.0.0.1:5201',
      startedAt: new Date(0),
      endedAt: new Date(1),
      outcome: {
        ok: true,
        raw: '{}',
        iperfVersion: '3.12',
        intervals: [],
        metrics: [
          { name: 'udp_bps', value: 3e7 },
          { name: 'udp_jitter_ms', value: 0.0412 },
          { name: 'udp_lost_percent', value: 0.5 },
          { name: 'udp_lost_packets', value: 13 },
          { name: 'udp_packets', value: 2590 },
        ],
      },
    },
  ],
};
const failed: RunSummary = {
  ...ok,
  runId: 8,
  device: 'ap-2',
  status: 'failed',
  errorClass: 'server-unreachable',
  message: 'tcp upload: unable to connect',
  tests: [{ ...ok.tests[0], outcome: { ok: false, errorClass: 'server-unreachable', message: 'x', raw: null } }],
};

function runtime(results: RunSummary[]): Runtime & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    serve: async (loaded) => {
      calls.push(`serve ${loaded.devices.length}`);
      return 0;
    },
    run: async (_loaded, _logger, devices) => {
      calls.push(`run ${devices.join(',')}`);
      // the real inventory's refusal (its own tests, and the built CLI's below, check when)
      const unknown = devices.filter((d) => d.startsWith('nope'));
      if (unknown.length > 0) throw new UnknownDevicesError(unknown);
      return results;
    },
    forgetHostKey: async (_loaded, device) => {
      calls.push(`forget ${device}`);
      return device.startsWith('nope') ? 'unknown' : 'none';
    },
    deviceAdmin: (loaded, logger) => openDeviceAdmin(loaded, logger),
  };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cli-'));
  writeFileSync(join(dir, 'token'), TOKEN);
  writeFileSync(join(dir, 'key'), 'k');
  writeFileSync(
    join(dir, 'good.yaml'),
    `apiTokenFile: token\nlisten: 127.0.0.1:0\nservers: [{ host: 10.0.0.1 }]\npools: { a: [{ host: b.example }] }\ndevices:\n  - { id: ap-1, host: 10.0.0.2, username: root, privateKeyFile: key }\n  - { id: ap-2, host: 10.0.0.3, username: root, privateKeyFile: key, enabled: false, pool: a }\n`,
  );
  writeFileSync(join(dir, 'bad.yaml'), 'apiTokenFile: token\nservers: [{ host: "999.1.1.1" }]\nclientOptions: { connectTimeout: 1 }\n');
  writeFileSync(join(dir, 'warn.yaml'), 'apiTokenFile: token\ndevices: [{ id: a, host: 10.0.0.2, username: root, privateKeyFile: key }]\n');
});

describe('collector CLI', () => {
  it('prints version and help, and rejects bad usage with exit code 2', async () => {
    let t = io();
    expect(await runCli(['--version'], t.io, runtime([]))).toBe(0);
    expect(t.out.join('')).toBe(`${COLLECTOR_VERSION}\n`);
    t = io();
    expect(await runCli(['--help'], t.io, runtime([]))).toBe(0);
    expect(t.out.join('')).toBe(USAGE);
    t = io();
    expect(await runCli([], t.io, runtime([]))).toBe(2);
    expect(t.err.join('')).toContain('Usage:');
    t = io();
    expect(await runCli(['frobnicate'], t.io, runtime([]))).toBe(2);
    expect(t.err.join('')).toContain('unknown command "frobnicate"');
    t = io();
    expect(await runCli(['serve', '--bogus'], t.io, runtime([]))).toBe(2);
    expect(t.err.join('')).toContain("Unknown option '--bogus'");
  });

  it('check-config summarises a valid file and names every invalid field', async () => {
    let t = io();
    expect(await runCli(['check-config', '-c', join(dir, 'good.yaml')], t.io, runtime([]))).toBe(0);
    expect(t.out.join('')).toMatch(/OK\n {2}devices: 2 \(1 enabled\)\n {2}servers: 1 in the default pool, pools: a\n {2}schedule: "0 2 \* \* \*" UTC/);
    t = io();
    expect(await runCli(['check-config', '--config', join(dir, 'bad.yaml')], t.io, runtime([]))).toBe(2);
    expect(t.err.join('')).toMatch(/servers\.0\.host: must be an IPv4 address[\s\S]*clientOptions\.connectTimeout: must be at least 100 ms/);
    t = io();
    expect(await runCli(['check-config'], { ...t.io, env: { COLLECTOR_CONFIG: join(dir, 'warn.yaml') } }, runtime([]))).toBe(0);
    expect(t.err.join('')).toMatch(/warning: servers: is empty/);
    t = io();
    expect(await runCli(['check-config', '-c', join(dir, 'missing.yaml')], t.io, runtime([]))).toBe(2);
    expect(t.err.join('')).toMatch(/cannot read configuration file/);
  });

  it('reads ./collector.yaml when neither --config nor COLLECTOR_CONFIG is given', async () => {
    const t = io();
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      writeFileSync(join(dir, 'collector.yaml'), 'apiTokenFile: token\n');
      expect(await runCli(['check-config'], t.io, runtime([]))).toBe(0);
      expect(t.out.join('')).toMatch(/^collector\.yaml: OK/);
      // and names it in the hint when a device is unknown
      const r = io();
      expect(await runCli(['run', 'nope-9'], r.io, runtime([]))).toBe(2);
      expect(r.err.join('')).toBe('unknown device id(s): nope-9; `collector devices export --config collector.yaml` lists the devices (the configuration\'s and those added through the API)\n');
    } finally {
      process.chdir(cwd);
    }
  });

  it('run checks device ids, prints a summary and exits 1 when a run did not succeed', async () => {
    const cfg = ['--config', join(dir, 'good.yaml'), '--log-level', 'silent'];
    let t = io();
    expect(await runCli(['run', ...cfg], t.io, runtime([]))).toBe(2);
    expect(t.err.join('')).toMatch(/needs at least one device id/);
    t = io();
    expect(await runCli(['run', 'ap-1', 'nope', 'nope-2', ...cfg], t.io, runtime([]))).toBe(2);
    expect(t.err.join('')).toMatch(/^unknown device id\(s\): nope, nope-2; `collector devices export --config .*good\.yaml` lists the devices/);
    expect(t.out).toEqual([]);
    t = io();
    const rt = runtime([ok]);
    expect(await runCli(['run', 'ap-1', ...cfg], t.io, rt)).toBe(0);
    expect(rt.calls).toEqual(['run ap-1']);
    expect(t.out.join('')).toBe(
      'ap-1: ok via 10.0.0.1:5201 (run 7)\n' +
        '  tcp upload: 94.1 Mbit/s received, 94.6 Mbit/s sent, 12 retransmits\n' +
        '  udp upload: 30.0 Mbit/s, jitter 0.041 ms, loss 0.50% (13/2590)\n',
    );
    t = io();
    expect(await runCli(['run', 'ap-1', 'ap-2', ...cfg], t.io, runtime([ok, failed]))).toBe(1);
    expect(t.out.join('')).toContain('ap-2: failed via 10.0.0.1:5201 [server-unreachable] tcp upload: unable to connect (run 8)\n  tcp upload: failed [server-unreachable]');
  });

  it('forget-host-key takes one device id and says what happened', async () => {
    const cfg = ['--config', join(dir, 'good.yaml')];
    let t = io();
    const rt = runtime([]);
    expect(await runCli(['forget-host-key', 'ap-1', ...cfg], t.io, rt)).toBe(1);
    expect(t.err.join('')).toBe('no host key is recorded for ap-1: nothing to forget\n');
    t = io();
    expect(await runCli(['forget-host-key', 'ap-2', ...cfg], t.io, { ...rt, forgetHostKey: async () => 'forgotten' })).toBe(0);
    expect(t.out.join('')).toMatch(/^forgot the SSH host key recorded for ap-2/);
    t = io();
    expect(await runCli(['forget-host-key', 'nope', ...cfg], t.io, rt)).toBe(2);
    expect(t.err.join('')).toMatch(/^unknown device id nope, and no host key is recorded for it; `collector devices export --config .*good\.yaml` lists the devices/);
    t = io();
    expect(await runCli(['forget-host-key', ...cfg], t.io, rt)).toBe(2);
    expect(await runCli(['forget-host-key', 'ap-1', 'ap-2', ...cfg], t.io, rt)).toBe(2);
    expect(t.err.join('')).toMatch(/^forget-host-key needs one device id, e\.g\./);
    expect(rt.calls).toEqual(['forget ap-1', 'forget nope']);
  });

  it('prints a startup failure in one line with exit code 1, and lets other errors through', async () => {
    const cfg = ['--config', join(dir, 'good.yaml'), '--log-level', 'silent'];
    const t = io();
    const inUse = { ...runtime([]), serve: async () => Promise.reject(new DatabaseInUseError('/data/x.db')) };
    expect(await runCli(['serve', ...cfg], t.io, inUse)).toBe(1);
    expect(t.err.join('')).toMatch(/^error: database \/data\/x\.db is in use by another collector process/);
    const bug = { ...runtime([]), run: async () => Promise.reject(new TypeError('a bug')) };
    await expect(runCli(['run', 'ap-1', ...cfg], io().io, bug)).rejects.toThrow('a bug');
  });

  it('serve takes no device ids and hands the loaded config to the runtime', async () => {
    let t = io();
    const rt = runtime([]);
    expect(await runCli(['serve', 'ap-1', '-c', join(dir, 'good.yaml')], t.io, rt)).toBe(2);
    t = io();
    expect(await runCli(['serve', '-c', join(dir, 'good.yaml'), '--log-level', 'silent'], t.io, rt)).toBe(0);
    expect(rt.calls).toEqual(['serve 2']);
  });

  it('formats a skipped run without tests and a TCP test without retransmits', () => {
    const skipped: RunSummary = { ...ok, status: 'skipped', server: null, errorClass: 'unreachable', message: 'no route', tests: [] };
    const noRetr: RunSummary = { ...ok, tests: [{ ...ok.tests[0], outcome: { ...ok.tests[0].outcome, metrics: [{ name: 'tcp_received_bps', value: 1e6 }] } as RunSummary['tests'][0]['outcome'] }] };
    expect(formatSummary([skipped, noRetr])).toBe('ap-1: skipped [unreachable] no route (run 7)\nap-1: ok via 10.0.0.1:5201 (run 7)\n  tcp upload: 1.0 Mbit/s received, - sent\n');
  });
});

describe('the built collector executable', () => {
  const main = join(process.cwd(), 'collector/dist/main.js');
  beforeAll(() => {
    if (!existsSync(main)) execFileSync('node', ['scripts/build-collector.mjs'], { stdio: 'ignore' });
  });

  it('exits 2 with field errors for an invalid configuration', () => {
    try {
      execFileSync('node', [main, 'check-config', '--config', join(dir, 'bad.yaml')], { encoding: 'utf8', stdio: 'pipe' });
      throw new Error('expected exit code 2');
    } catch (err) {
      const e = err as { status: number; stderr: string };
      expect(e.status).toBe(2);
      expect(e.stderr).toMatch(/servers\.0\.host/);
    }
  });

  it('refuses a second process on a database that serve owns, and names a corrupt database with its fix', async () => {
    const cfgPath = join(dir, 'owned.yaml');
    writeFileSync(cfgPath, `apiTokenFile: token\nlisten: 127.0.0.1:18687\ndatabase: ./owned.db\nservers: [{ host: 127.0.0.1 }]\n`);
    const child = spawn('node', [main, 'serve', '--config', cfgPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    for (let i = 0; i < 100 && !stderr.includes('collector API listening'); i++) await new Promise((r) => setTimeout(r, 100));
    try {
      writeFileSync(cfgPath.replace('owned', 'owned2'), `apiTokenFile: token\nlisten: 127.0.0.1:0\ndatabase: ./owned.db\nservers: [{ host: 127.0.0.1 }]\n`);
      const again = spawnSync('node', [main, 'serve', '--config', cfgPath.replace('owned', 'owned2')], { encoding: 'utf8' });
      expect(again.status).toBe(1);
      expect(again.stderr).toMatch(/^error: database .*owned\.db is in use by another collector process .*POST \/api\/v1\/runs/m);
      expect(again.stderr).not.toMatch(/\n\s+at /); // one clear line, no stack trace
    } finally {
      const exit = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exit;
    }
    writeFileSync(join(dir, 'corrupt.db'), 'this is not a database, just text long enough to fill a header of one hundred bytes or so..........');
    writeFileSync(join(dir, 'corrupt.yaml'), `apiTokenFile: token\nlisten: 127.0.0.1:0\ndatabase: ./corrupt.db\nservers: [{ host: 127.0.0.1 }]\n`);
    const corrupt = spawnSync('node', [main, 'serve', '--config', join(dir, 'corrupt.yaml')], { encoding: 'utf8' });
    expect(corrupt.status).toBe(1);
    expect(corrupt.stderr).toMatch(/^error: cannot use database .*corrupt\.db: .*\(SQLITE_NOTADB\); .*move it aside/m);
    expect(corrupt.stderr).not.toMatch(/\n\s+at /);
  });

  it('forgets a recorded host key on request, and says when there is none or the device is unknown', async () => {
    const cfgPath = join(dir, 'keys.yaml');
    writeFileSync(join(dir, 'k'), 'key');
    writeFileSync(cfgPath, `apiTokenFile: token\ndatabase: ./keys.db\nservers: [{ host: 127.0.0.1 }]\ndevices: [{ id: ap-9, host: 192.0.2.9, username: root, privateKeyFile: k }]\n`);
    const store = SqliteStore.open(join(dir, 'keys.db'));
    await store.hostKeys.record('ap-9', 'SHA256:rotated');
    await store.close();
    const forget = (id: string) => spawnSync('node', [main, 'forget-host-key', id, '--config', cfgPath], { encoding: 'utf8' });
    const first = forget('ap-9');
    expect([first.status, first.stdout]).toEqual([0, expect.stringMatching(/^forgot the SSH host key recorded for ap-9; the next connection records/)]);
    const reader = SqliteStore.open(join(dir, 'keys.db'));
    expect(await reader.hostKeys.get('ap-9')).toBeUndefined();
    await reader.close();
    const again = forget('ap-9');
    expect([again.status, again.stderr]).toEqual([1, 'no host key is recorded for ap-9: nothing to forget\n']);
    const unknown = forget('nope');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/^unknown device id nope, and no host key is recorded for it; `collector devices export/);
    // the run command asks the collector's inventory, which refuses an unknown id before any test
    const run = spawnSync('node', [main, 'run', 'ap-9', 'nope', '--config', cfgPath, '--log-level', 'silent'], { encoding: 'utf8' });
    expect([run.status, run.stdout]).toEqual([2, '']);
    expect(run.stderr).toMatch(/^unknown device id\(s\): nope; `collector devices export --config .*keys\.yaml` lists the devices/m);
  });

  it('serves /healthz, logs JSON lines on stderr, and stops cleanly on SIGTERM', async () => {
    const cfgPath = join(dir, 'serve.yaml');
    writeFileSync(cfgPath, `apiTokenFile: token\nlisten: 127.0.0.1:18686\ndatabase: ./serve.db\nservers: [{ host: 127.0.0.1 }]\n`);
    const child = spawn('node', [main, 'serve', '--config', cfgPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    for (let i = 0; i < 100 && !stderr.includes('collector API listening'); i++) await new Promise((r) => setTimeout(r, 100));
    const res = await fetch('http://127.0.0.1:18686/healthz');
    expect(await res.json()).toEqual({ status: 'ok' });
    const unauth = await fetch('http://127.0.0.1:18686/api/v1/devices');
    expect(unauth.status).toBe(401);
    const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    const lines = stderr.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; level: number });
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['collector API listening', 'collector stopped']));
    expect(stderr).not.toContain(TOKEN);
  });

  describe('devices import and export', () => {
    let base: string;
    const cli = async (...args: string[]) => {
      const t = io();
      const code = await runCli([...args, '--config', join(base, 'collector.yaml'), '--log-level', 'silent'], t.io, runtime([]));
      return { code, out: t.out.join(''), err: t.err.join('') };
    };

    beforeEach(() => {
      base = mkdtempSync(join(tmpdir(), 'cli-devices-'));
      writeFileSync(join(base, 'token'), TOKEN);
      writeFileSync(join(base, 'key'), 'k');
      mkdirSync(join(base, 'creds'));
      writeFileSync(join(base, 'creds', 'id_ed25519'), 'k');
      writeFileSync(
        join(base, 'collector.yaml'),
        'apiTokenFile: token\nlisten: 127.0.0.1:0\ndatabase: ./devices.db\ndeviceCredentialsDir: creds\nservers: [{ host: 10.0.0.1 }]\npools: { edge: [{ host: 10.0.0.9 }] }\n' +
          'devices:\n  - { id: f1, host: 10.0.0.5, username: root, privateKeyFile: key }\n',
      );
      writeFileSync(
        join(base, 'fleet.csv'),
        'id,host,username,privateKeyFile,pool,enabled,labels.site\nap-1,10.0.1.1,root,id_ed25519,edge,yes,lobby\nap-2,10.0.1.2,root,id_ed25519,,no,roof\n',
      );
    });

    it('imports a CSV into the store (no collector running), exports it again, and applies only what changed', async () => {
      expect(await cli('devices', 'import', join(base, 'fleet.csv'))).toEqual({ code: 0, out: `${join(base, 'fleet.csv')}: 2 added, 0 updated, 0 unchanged, 0 refused\n`, err: '' });
      const csv = await cli('devices', 'export');
      expect(csv.out).toBe(
        'id,host,port,username,privateKeyFile,passphraseFile,passwordFile,hostKey,pool,group,enabled,labels.site\n' +
          'ap-1,10.0.1.1,22,root,id_ed25519,,,,edge,,true,lobby\n' +
          'ap-2,10.0.1.2,22,root,id_ed25519,,,,,,false,roof\n' +
          'f1,10.0.0.5,22,root,key,,,,,,true,\n',
      );
      // the export imports back to the same inventory: nothing changes, the file's device included
      writeFileSync(join(base, 'export.csv'), csv.out);
      expect((await cli('devices', 'import', join(base, 'export.csv'))).out).toContain(': 0 added, 0 updated, 3 unchanged, 0 refused');
      const yaml = await cli('devices', 'export', '--format', 'yaml');
      writeFileSync(join(base, 'export.yaml'), yaml.out.replace('host: 10.0.1.2', 'host: 10.0.1.22'));
      expect((await cli('devices', 'import', join(base, 'export.yaml'))).out).toContain(': 0 added, 1 updated, 2 unchanged, 0 refused');
      const store = SqliteStore.open(join(base, 'devices.db'));
      expect((await store.devices.list(['api'])).map((d) => d.device.host)).toEqual(['10.0.1.1', '10.0.1.22']);
      await store.close();
    });

    it('reports refused rows with their row and field, and applies the others', async () => {
      writeFileSync(join(base, 'mixed.csv'), 'id,host,username,privateKeyFile,pool\nf1,10.0.0.99,root,key,\nap-3,10.0.1.3,root,id_ed25519,nope\nap-4,10.0.1.4,root,id_ed25519,\n');
      const res = await cli('devices', 'import', join(base, 'mixed.csv'));
      expect(res.code).toBe(1);
      expect(res.out).toContain(': 1 added, 0 updated, 0 unchanged, 2 refused');
      expect(res.err).toBe(
        'refused (the other rows were applied):\n' +
          'row 2, id: device f1 is managed by the configuration file; change it there\n' +
          'row 3, pool: unknown pool "nope"; known: edge; or leave it out for the default servers\n',
      );
      writeFileSync(join(base, 'bad.csv'), 'id,host,username\nok,10.0.0.1,root\n');
      const bad = await cli('devices', 'import', join(base, 'bad.csv'));
      expect(bad).toEqual({ code: 2, out: '', err: `${join(base, 'bad.csv')}: nothing imported, fix these rows first:\nrow 2, privateKeyFile: set privateKeyFile (recommended) or passwordFile for SSH authentication\n` });
    });

    it('goes through the API of the collector that owns the database, whose inventory changes at once', async () => {
      const { loadConfigFile } = await import('./config/load.js');
      const config = join(base, 'collector.yaml');
      const service = await startService(loadConfigFile(config), pino({ level: 'silent' }), { schedule: false, watchConfig: false });
      try {
        // the daemon listens on a port chosen at start: the configuration names it for the CLI
        writeFileSync(config, readFileSync(config, 'utf8').replace('listen: 127.0.0.1:0', `listen: ${service.url.slice('http://'.length)}`));
        expect((await cli('devices', 'import', join(base, 'fleet.csv'))).out).toContain(': 2 added');
        writeFileSync(join(base, 'fleet.csv'), readFileSync(join(base, 'fleet.csv'), 'utf8').replace('lobby', 'hall'));
        expect((await cli('devices', 'import', join(base, 'fleet.csv'))).out).toContain(': 0 added, 1 updated, 1 unchanged');
        expect([...service.collector.devices()].map((d) => [d.id, d.managedBy])).toEqual([
          ['ap-1', 'api'],
          ['ap-2', 'api'],
          ['f1', 'file'],
        ]);
        await service.store.devices.replaceSource('file:us', [deviceConfigSchema.parse({ id: 'us-1', host: '10.0.9.2', username: 'root', privateKeyFile: 'k' })]);
        writeFileSync(join(base, 'taken.csv'), 'id,host,username,privateKeyFile\nap-5,10.0.1.5,root,../token\nus-1,10.0.1.6,root,id_ed25519\n');
        const refused = await cli('devices', 'import', join(base, 'taken.csv'));
        expect(refused.err).toContain('row 2, privateKeyFile: give a file name inside deviceCredentialsDir');
        expect(refused.err).toContain("row 3, id: device us-1 exists already in a configuration file's devices: list");
        expect((await cli('devices', 'export')).out.split('\n')).toHaveLength(5);
      } finally {
        await service.close();
      }
    });

    it('on PostgreSQL, uses the API of the collector the configuration runs when it answers, else the database', async () => {
      const { loadConfigFile, loadConfigText } = await import('./config/load.js');
      const service = await startService(loadConfigFile(join(base, 'collector.yaml')), pino({ level: 'silent' }), { schedule: false, watchConfig: false });
      try {
        const pgConfig = (listen: string) =>
          loadConfigText(`apiTokenFile: token\nlisten: ${listen}\ndatabase: postgres://nobody@127.0.0.1:1/none\ndeviceCredentialsDir: creds\n`, join(base, 'pg.yaml'));
        const admin = await openDeviceAdmin(pgConfig(service.url.slice('http://'.length)), pino({ level: 'silent' }));
        expect((await admin.records()).map((r) => r.device.id)).toEqual(['f1']);
        await admin.close();
        await expect(openDeviceAdmin(pgConfig('127.0.0.1:9'), pino({ level: 'silent' }))).rejects.toThrow(/127\.0\.0\.1:1/);
      } finally {
        await service.close();
      }
    });

    it('names ids another source holds, and a collector whose API does not answer', async () => {
      const store = SqliteStore.open(join(base, 'devices.db'));
      await store.devices.replaceSource('file:eu', [deviceConfigSchema.parse({ id: 'ap-1', host: '10.0.9.1', username: 'root', privateKeyFile: 'k' })]);
      await store.close();
      const res = await cli('devices', 'import', join(base, 'fleet.csv'));
      expect(res.err).toContain("row 2, id: device ap-1 exists already in a configuration file's devices: list; choose another id, or change it in the file");
      // a daemon owns the database but its API is not where the configuration says
      const owner = acquireOwnership(join(base, 'devices.db'));
      try {
        writeFileSync(join(base, 'collector.yaml'), readFileSync(join(base, 'collector.yaml'), 'utf8').replace('listen: 127.0.0.1:0', 'listen: 127.0.0.1:9'));
        expect(await cli('devices', 'export')).toEqual({ code: 1, out: '', err: expect.stringMatching(/^error: cannot reach the collector API at http:\/\/127\.0\.0\.1:9/) });
      } finally {
        owner.release();
      }
    });

    it('says how to use it, and what is wrong with the file or the API', async () => {
      expect((await cli('devices')).code).toBe(2);
      expect((await cli('devices', 'import')).err).toContain('devices import needs one .csv, .yaml or .yml file');
      expect((await cli('devices', 'import', 'x.json')).code).toBe(2);
      expect((await cli('devices', 'frob')).err).toContain('unknown devices command "frob"');
      expect((await cli('devices', 'export', '--format', 'xml')).err).toContain('--format csv or yaml');
      expect((await cli('devices', 'import', join(base, 'missing.csv'))).err).toBe(`cannot read ${join(base, 'missing.csv')}: ENOENT\n`);
      const unreachable = apiDeviceAdmin('http://127.0.0.1:9', TOKEN);
      await expect(unreachable.records()).rejects.toThrow('cannot reach the collector API at http://127.0.0.1:9');
      // what is not a refusal is not swallowed
      const broken = { ...runtime([]), deviceAdmin: async () => ({ ...unreachable, records: () => Promise.reject(new Error('bug')) }) };
      await expect(runCli(['devices', 'export', '--config', join(base, 'collector.yaml')], io().io, broken)).rejects.toThrow('bug');
    });
  });
});
