/**
 * The collector end to end against the real lab: OpenSSH and dropbear devices in network
 * namespaces with tc-shaped links, real iperf3 servers, nftables loss, real SQLite.
 */
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile, type LoadedConfig } from '../../collector/config/load.js';
import type { RunSummary } from '../../collector/dispatch/deviceRun.js';
import { runOnce, startService } from '../../collector/service.js';
import { SqliteStore } from '../../collector/store/sqlite/sqliteStore.js';
import { createLab, type Lab } from '../lab/lab.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const TOKEN = 'lab-token-0123456789abcdef';
const RATE = 20; // Mbit/s on every device link

let lab: Lab;
let dir: string;

function metric(r: RunSummary, protocol: 'tcp' | 'udp', direction: 'upload' | 'download', name: string): number {
  const t = r.tests.find((x) => x.protocol === protocol && x.direction === direction);
  if (!t?.outcome.ok) throw new Error(`${protocol} ${direction} of ${r.device} failed: ${JSON.stringify(t?.outcome)}`);
  const m = t.outcome.metrics.find((x) => x.name === name);
  if (!m) throw new Error(`no ${name}`);
  return m.value;
}

interface ConfigOptions {
  devices: string[];
  servers?: string[];
  clientOptions?: Record<string, unknown>;
  extra?: Record<string, unknown>;
  deviceOverrides?: Record<string, Record<string, unknown>>;
  db?: string;
}

/** Writes a collector YAML for lab devices/servers and loads it the way the CLI does. */
function config(name: string, o: ConfigOptions): LoadedConfig {
  const cfgDir = mkdtempSync(join(dir, `${name}-`));
  writeFileSync(join(cfgDir, 'token'), TOKEN);
  writeFileSync(join(cfgDir, 'id_ed25519'), lab.clientKey.privateKey);
  const yaml = {
    listen: '127.0.0.1:0',
    database: o.db ?? './iperf3.db',
    apiTokenFile: 'token',
    schedule: { cron: '0 2 * * *', timezone: 'Europe/Rome' },
    servers: (o.servers ?? ['s1']).map((id) => ({ host: lab.server(id).host, port: lab.server(id).port, label: id })),
    clientOptions: { time: 3, omit: 1, connectTimeout: 2000, udp: { enabled: true, bitrate: '8M' }, ...o.clientOptions },
    busyRetry: { attempts: 2, backoffMs: 500 },
    ssh: { connectTimeoutMs: 3000 },
    devices: o.devices.map((id) => {
      const d = lab.devices.find((x) => x.id === id);
      return {
        id,
        host: d?.host ?? lab.unusedAddress,
        port: d?.port ?? 22,
        username: d?.username ?? 'root',
        privateKeyFile: 'id_ed25519',
        labels: { site: 'lab', ssh: d?.ssh ?? 'none' },
        ...o.deviceOverrides?.[id],
      };
    }),
    ...o.extra,
  };
  const path = join(cfgDir, 'collector.yaml');
  writeFileSync(path, stringify(yaml));
  return loadConfigFile(path);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'collector-lab-'));
  lab = await createLab({
    name: 'coll',
    devices: [
      { id: 'osh', ssh: 'openssh', rateMbit: RATE },
      { id: 'drop', ssh: 'dropbear', rateMbit: RATE },
      { id: 'noiperf', ssh: 'openssh', iperf3: false },
      { id: 'x1', ssh: 'dropbear', rateMbit: 50 },
      { id: 'x2', ssh: 'openssh', rateMbit: 50 },
    ],
    servers: [{ id: 's1' }, { id: 's2' }, { id: 'auth', auth: { username: 'mon', password: 'right-password' } }],
  });
}, 120_000);

afterAll(async () => {
  await lab?.destroy();
});

describe('collector against the lab', () => {
  it('measures TCP upload and download within 10% of the shaped rate, over OpenSSH and dropbear', async () => {
    const loaded = config('rate', { devices: ['osh', 'drop'], servers: ['s1', 's2'] });
    const results = await runOnce(loaded, logger, ['osh', 'drop']);
    for (const r of results) {
      expect(r.status, JSON.stringify(r)).toBe('ok');
      for (const direction of ['upload', 'download'] as const) {
        const bps = metric(r, 'tcp', direction, 'tcp_received_bps');
        expect(bps / 1e6).toBeGreaterThan(RATE * 0.9);
        expect(bps / 1e6).toBeLessThan(RATE * 1.1);
        const udp = metric(r, 'udp', direction, 'udp_bps');
        expect(udp / 1e6).toBeGreaterThan(8 * 0.85);
        expect(metric(r, 'udp', direction, 'udp_lost_percent')).toBeLessThan(1);
      }
    }
    // stored: the run, its tests with raw JSON, and the metrics series
    const store = SqliteStore.open(loaded.databasePath);
    try {
      const runs = await store.runs.list({});
      expect(runs.map((r) => r.status).sort()).toEqual(['ok', 'ok']);
      expect(runs[0].tests.map((t) => `${t.protocol}-${t.direction}`)).toEqual(['tcp-upload', 'tcp-download', 'udp-upload', 'udp-download']);
      const series = await store.metrics.series({ devices: ['osh'], metrics: ['tcp_received_bps', 'result'], fromMs: 0, toMs: Date.now() + 1000, maxPoints: 100 });
      expect(series.map((s) => `${s.metric}/${s.direction}`).sort()).toEqual(['result/null', 'tcp_received_bps/download', 'tcp_received_bps/upload']);
      expect(series.find((s) => s.metric === 'result')?.points[0][1]).toBe(1);
      expect((await store.runs.intervals(runs[0].id)).length).toBeGreaterThanOrEqual(8);
      // trust on first use recorded the host keys
      expect(await store.hostKeys.get('osh')).toBe(lab.device('osh').hostKeyFingerprint);
    } finally {
      await store.close();
    }
  });

  it('reports UDP loss near the loss injected with nftables', async () => {
    await lab.setLoss('s1', 'x1', 5, 'upload');
    try {
      const loaded = config('loss', { devices: ['x1'], clientOptions: { directions: ['upload'], udp: { enabled: true, bitrate: '10M' } } });
      const [r] = await runOnce(loaded, logger, ['x1']);
      expect(r.status, JSON.stringify(r.message)).toBe('ok');
      const loss = metric(r, 'udp', 'upload', 'udp_lost_percent');
      expect(loss).toBeGreaterThan(3);
      expect(loss).toBeLessThan(7);
    } finally {
      await lab.setLoss('s1', 'x1', 0, 'upload');
    }
  });

  it('never runs two tests on one server, and keeps every server busy, with more devices than servers', async () => {
    const loaded = config('overlap', { devices: ['osh', 'drop', 'x1', 'x2'], servers: ['s1', 's2'], clientOptions: { time: 2, omit: 0, udp: { enabled: false } } });
    const results = await runOnce(loaded, logger, ['osh', 'drop', 'x1', 'x2']);
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
    const store = SqliteStore.open(loaded.databasePath);
    try {
      const tests = (await store.runs.list({})).flatMap((r) => r.tests.map((t) => ({ ...t, server: r.server })));
      expect(tests).toHaveLength(8);
      const byServer = new Map<string, { start: number; end: number }[]>();
      for (const r of await store.runs.list({})) {
        const start = Date.parse(r.tests[0].startedAt);
        const end = Date.parse(r.tests.at(-1)?.endedAt as string);
        byServer.set(r.server as string, [...(byServer.get(r.server as string) ?? []), { start, end }]);
      }
      expect([...byServer.keys()].sort()).toHaveLength(2); // both servers were used
      for (const intervals of byServer.values()) {
        intervals.sort((a, b) => a.start - b.start);
        for (let i = 1; i < intervals.length; i++) expect(intervals[i].start).toBeGreaterThanOrEqual(intervals[i - 1].end);
      }
    } finally {
      await store.close();
    }
  });

  it('classifies each failure by its real cause', async () => {
    const wrongKeyDir = mkdtempSync(join(dir, 'wrongkey-'));
    const { execFileSync } = await import('node:child_process');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(wrongKeyDir, 'k')]);
    const loaded = config('errors', {
      devices: ['noiperf', 'osh', 'ghost'],
      servers: ['s2'],
      clientOptions: { time: 1, omit: 0, directions: ['upload'], udp: { enabled: false } },
      deviceOverrides: { osh: { privateKeyFile: join(wrongKeyDir, 'k') } },
    });
    const [missing, auth, ghost] = await runOnce(loaded, logger, ['noiperf', 'osh', 'ghost']);
    expect([missing.status, missing.errorClass]).toEqual(['failed', 'iperf3-missing']);
    expect([auth.status, auth.errorClass]).toEqual(['failed', 'ssh-auth']);
    expect([ghost.status, ghost.errorClass]).toEqual(['skipped', 'unreachable']);

    // server down
    await lab.stopServer('s2');
    try {
      const down = config('down', { devices: ['x2'], servers: ['s2'], clientOptions: { time: 1, omit: 0, directions: ['upload'] } });
      const [r] = await runOnce(down, logger, ['x2']);
      expect([r.status, r.errorClass]).toEqual(['failed', 'server-unreachable']);
      // zeros flagged as failures for what could not be measured, and result = 0
      const store = SqliteStore.open(down.databasePath);
      const zeros = await store.metrics.series({ devices: ['x2'], metrics: ['tcp_received_bps', 'udp_bps', 'result'], fromMs: 0, toMs: Date.now() + 1000, maxPoints: 10 });
      await store.close();
      expect(zeros.map((s) => [s.metric, s.points[0][1], s.points[0][2]]).sort()).toEqual([
        ['result', 0, 1],
        ['tcp_received_bps', 0, 1],
        ['udp_bps', 0, 1],
      ]);
    } finally {
      await lab.startServer('s2');
    }
  });

  it('fails the run when the device presents a changed host key', async () => {
    const loaded = config('hostkey', { devices: ['x2'], servers: ['s2'], clientOptions: { time: 1, omit: 0, directions: ['upload'], udp: { enabled: false } } });
    const [first] = await runOnce(loaded, logger, ['x2']);
    expect(first.status).toBe('ok');
    await lab.rotateHostKey('x2');
    const [second] = await runOnce(loaded, logger, ['x2']);
    expect([second.status, second.errorClass]).toEqual(['failed', 'host-key-mismatch']);
    expect(second.message).toMatch(/SHA256:/);
  });

  it('reports a busy server after trying the others and retrying with backoff', async () => {
    // another client, outside our control, holds s1 for the whole test
    const s1 = lab.server('s1');
    const hog = lab.exec('x1', ['iperf3', '-c', s1.host, '-p', String(s1.port), '-t', '12', '-b', '1M'], { timeoutMs: 20_000 });
    await new Promise((r) => setTimeout(r, 1500));
    try {
      const loaded = config('busy', { devices: ['drop'], servers: ['s1'], clientOptions: { time: 1, omit: 0, directions: ['upload'], udp: { enabled: false } } });
      const [r] = await runOnce(loaded, logger, ['drop']);
      expect([r.status, r.errorClass]).toEqual(['failed', 'server-busy']);
      expect(r.message).toMatch(/busy/);
      // with a second, free server the same device succeeds on it
      const two = config('busy2', { devices: ['drop'], servers: ['s1', 's2'], clientOptions: { time: 1, omit: 0, directions: ['upload'], udp: { enabled: false } } });
      const [ok] = await runOnce(two, logger, ['drop']);
      expect(ok.status).toBe('ok');
      expect(ok.server).toBe(`${lab.server('s2').host}:${lab.server('s2').port}`);
    } finally {
      await hog;
    }
  });

  it('kills a test that exceeds its deadline and records a timeout', async () => {
    const s2 = lab.server('s2');
    const x1 = lab.device('x1');
    const loaded = config('deadline', { devices: ['x1'], servers: ['s2'], clientOptions: { time: 2, omit: 0, directions: ['upload'], udp: { enabled: false } } });
    // black-hole the device's traffic at the server one second into the test: iperf3 hangs
    const blackhole = setTimeout(() => {
      void lab.exec('s2', ['nft', 'add table inet blackhole; add chain inet blackhole in { type filter hook input priority -10; }; add rule inet blackhole in ip saddr ' + x1.host + ' drop']);
    }, 1000);
    try {
      const [r] = await runOnce(loaded, logger, ['x1']);
      expect([r.status, r.errorClass]).toEqual(['failed', 'timeout']);
      const left = (await lab.processes('x1')).filter((p) => p.argv[0]?.endsWith('iperf3') && p.argv.includes(s2.host));
      expect(left).toEqual([]);
    } finally {
      clearTimeout(blackhole);
      await lab.exec('s2', ['nft', 'delete table inet blackhole']);
    }
  });

  it('authenticates to an iperf3 server with a temporary key file that is removed afterwards', async () => {
    const server = lab.server('auth');
    const before = new Set(readdirSync('/tmp'));
    const keyDir = mkdtempSync(join(dir, 'auth-'));
    writeFileSync(join(keyDir, 'pass'), 'right-password');
    writeFileSync(join(keyDir, 'wrong'), 'wrong-password');
    writeFileSync(join(keyDir, 'server.pem'), server.auth?.publicKeyPem as string);
    const opts = (passwordFile: string, more: Partial<ConfigOptions> = {}): ConfigOptions => ({
      devices: ['osh'],
      servers: ['auth'],
      clientOptions: { time: 1, omit: 0, directions: ['upload'], udp: { enabled: false }, auth: { username: 'mon', passwordFile: join(keyDir, passwordFile), rsaPublicKeyFile: join(keyDir, 'server.pem') } },
      ...more,
    });
    // a password is at stake: an unknown, unpinned host key is not trusted on first use
    const [unpinned] = await runOnce(config('auth-unpinned', opts('pass')), logger, ['osh']);
    expect([unpinned.status, unpinned.errorClass]).toEqual(['failed', 'host-key-mismatch']);
    expect(unpinned.message).toContain(`pin it as hostKey: ${lab.device('osh').hostKeyFingerprint}`);
    expect(unpinned.tests).toEqual([]);
    const pinned = { deviceOverrides: { osh: { hostKey: lab.device('osh').hostKeyFingerprint } } };
    const [ok] = await runOnce(config('auth-ok', opts('pass', pinned)), logger, ['osh']);
    expect(ok.status, ok.message ?? '').toBe('ok');
    // or the operator opts into trust on first use (and is warned)
    const tofu = config('auth-bad', opts('wrong', { extra: { ssh: { connectTimeoutMs: 3000, trustOnFirstUse: true } } }));
    expect(tofu.warnings.join()).toMatch(/ssh.trustOnFirstUse is on/);
    const [bad] = await runOnce(tofu, logger, ['osh']);
    expect([bad.status, bad.errorClass]).toEqual(['failed', 'iperf3-auth']);
    // no key file left on the device (the namespaces share this filesystem)
    const pem = server.auth?.publicKeyPem as string;
    const leftovers = readdirSync('/tmp')
      .filter((f) => !before.has(f))
      .filter((f) => {
        const p = join('/tmp', f);
        return statSync(p).isFile() && readFileSync(p, 'utf8') === pem;
      });
    expect(leftovers).toEqual([]);
  });

  it('serves the API, runs a round at start-up and reports it', async () => {
    const loaded = config('serve', {
      devices: ['x2'],
      servers: ['s2'],
      clientOptions: { time: 1, omit: 0, directions: ['upload'], udp: { enabled: false } },
      extra: { schedule: { cron: '0 2 * * *', timezone: 'UTC', runAtStart: true } },
    });
    const service = await startService(loaded, logger);
    try {
      const auth = { authorization: `Bearer ${TOKEN}` };
      expect((await fetch(`${service.url}/api/v1/health`)).status).toBe(401);
      let runs: { status: string }[] = [];
      for (let i = 0; i < 60 && runs.filter((r) => r.status !== 'running').length === 0; i++) {
        await new Promise((r) => setTimeout(r, 250));
        runs = ((await (await fetch(`${service.url}/api/v1/runs`, { headers: auth })).json()) as { runs: { status: string }[] }).runs;
      }
      expect(runs.map((r) => r.status)).toEqual(['ok']);
      const health = (await (await fetch(`${service.url}/api/v1/health`, { headers: auth })).json()) as { devices: number; nextRun: string; servers: { reachable: boolean }[] };
      expect(health.devices).toBe(1);
      expect(health.servers[0].reachable).toBe(true);
      expect(health.nextRun).toMatch(/T02:00:00/);
      const now = await fetch(`${service.url}/api/v1/runs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ devices: ['x2'] }) });
      expect(now.status).toBe(202);
      const again = await fetch(`${service.url}/api/v1/runs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ devices: ['x2'] }) });
      expect(again.status).toBe(409);
    } finally {
      await service.close();
      await service.close();
    }
  });
});
