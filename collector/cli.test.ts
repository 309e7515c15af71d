import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatSummary, runCli, USAGE, type Runtime } from './cli.js';
import type { RunSummary } from './dispatch/deviceRun.js';
import { COLLECTOR_VERSION } from './version.js';
import { SqliteStore } from './store/sqlite/sqliteStore.js';
import { DatabaseInUseError } from './errors.js';

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
      return results;
    },
    forgetHostKey: async (_loaded, device) => {
      calls.push(`forget ${device}`);
      return false;
    },
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
      // and an inventory without devices says so when a device is asked for
      const r = io();
      expect(await runCli(['run', 'ap-9'], r.io, runtime([]))).toBe(2);
      expect(r.err.join('')).toMatch(/unknown device id\(s\): ap-9; known: \(none\)/);
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
    expect(await runCli(['run', 'nope', ...cfg], t.io, runtime([]))).toBe(2);
    expect(t.err.join('')).toMatch(/unknown device id\(s\): nope; known: ap-1, ap-2/);
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

  it('forget-host-key takes one device of the configuration and says what happened', async () => {
    const cfg = ['--config', join(dir, 'good.yaml')];
    let t = io();
    const rt = runtime([]);
    expect(await runCli(['forget-host-key', 'ap-1', ...cfg], t.io, rt)).toBe(1);
    expect(t.err.join('')).toBe('no host key is recorded for ap-1: nothing to forget\n');
    t = io();
    expect(await runCli(['forget-host-key', 'ap-2', ...cfg], t.io, { ...rt, forgetHostKey: async () => true })).toBe(0);
    expect(t.out.join('')).toMatch(/^forgot the SSH host key recorded for ap-2/);
    t = io();
    expect(await runCli(['forget-host-key', ...cfg], t.io, rt)).toBe(2);
    expect(await runCli(['forget-host-key', 'ap-1', 'ap-2', ...cfg], t.io, rt)).toBe(2);
    expect(rt.calls).toEqual(['forget ap-1']);
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
    expect(unknown.stderr).toMatch(/forget-host-key needs one device id of the configuration/);
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
});
