/**
 * Scale-out for real: three built collector processes (`collector/dist/main.js serve`) on one
 * real PostgreSQL, testing real OpenSSH and dropbear devices against real iperf3 servers in the
 * lab's network namespaces. Two groups (eu: two collectors, us: one), more devices than servers.
 *
 * Round 1 (runAtStart, the three started together): every device tested exactly once, by a
 * collector of its group; stored tests never overlap on a server across collectors.
 * Round 2 (the cron, a minute later): one eu collector is killed with SIGKILL in the middle of a
 * test, then PostgreSQL is stopped for 20 s in the middle of the round and started again on the
 * same port. The others finish the round; the killed run and the runs cut by the outage are
 * recorded interrupted and tested again; no device has two results, none has none.
 * Then the plugin executable, under Grafana's Go SDK, queries the one collector that ran no
 * test at all and sees every device's results.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab } from '../lab/lab.js';
import { GrafanaHost, values } from '../support/grafanaHost.js';
import { ensurePluginBuilt, REPO_ROOT } from '../support/pluginProcess.js';
import { freePort, startPostgresCluster, type PostgresCluster } from '../support/postgresCluster.js';
import { expectNoOverlapPerServer, roundRuns, type RunRow } from '../support/postgresRunLog.js';

const MAIN = join(REPO_ROOT, 'collector/dist/main.js');
const TOKEN = 'scale-out-lab-token-0123456789abcdef';
const OUTAGE_MS = 20_000;
/** device -> its group (undefined: unpinned); 7 devices, 2 servers */
const DEVICES: Record<string, { ssh: 'openssh' | 'dropbear'; group?: string }> = {
  e1: { ssh: 'openssh', group: 'eu' },
  e2: { ssh: 'dropbear', group: 'eu' },
  e3: { ssh: 'openssh', group: 'eu' },
  u1: { ssh: 'dropbear', group: 'us' },
  u2: { ssh: 'openssh', group: 'us' },
  a1: { ssh: 'openssh' },
  a2: { ssh: 'dropbear' },
};
const IDS = Object.keys(DEVICES).sort();
/** collector name -> group; the name is its PostgreSQL application_name. us-d joins only at the end, to answer the plugin */
const COLLECTORS = { 'eu-a': 'eu', 'eu-b': 'eu', 'us-c': 'us', 'us-d': 'us' } as const;
type Name = keyof typeof COLLECTORS;

let lab: Lab;
let cluster: PostgresCluster;
let dir: string;
let url: string;
let admin: pg.Client | null = null;
const children = new Map<Name, { child: ChildProcess; url: string; exited: Promise<number | null> }>();
/** PostgreSQL backend pid -> collector name, learnt while the collectors run (a reconnection makes a new pid) */
const sessions = new Map<number, Name>();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | null | undefined | false>): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

async function db(): Promise<pg.Client> {
  admin ??= await cluster.admin(new URL(url).pathname.slice(1));
  return admin;
}

async function learnSessions(): Promise<void> {
  const { rows } = await (await db()).query<{ pid: number; name: Name }>(
    "SELECT pid, application_name AS name FROM pg_stat_activity WHERE application_name LIKE 'eu-%' OR application_name LIKE 'us-%'",
  );
  for (const r of rows) sessions.set(r.pid, r.name);
}

function configFile(name: Name, cron: string, runAtStart: boolean): string {
  const cfgDir = join(dir, name);
  const yaml = {
    listen: '127.0.0.1:0',
    // the application name tells the test which collector owns a session
    database: `${url}?application_name=${name}`,
    databasePasswordFile: '../pgpass',
    group: COLLECTORS[name],
    apiTokenFile: '../token',
    schedule: { cron, timezone: 'UTC', runAtStart },
    servers: lab.servers.map((s) => ({ host: s.host, port: s.port, label: s.id })),
    clientOptions: { time: 2, omit: 0, connectTimeout: 2000, directions: ['upload'], udp: { enabled: false } },
    busyRetry: { attempts: 4, backoffMs: 500 },
    ssh: { connectTimeoutMs: 3000 },
    devices: IDS.map((id) => {
      const d = lab.device(id);
      return { id, host: d.host, port: d.port, username: d.username, privateKeyFile: '../id_ed25519', ...(DEVICES[id].group ? { group: DEVICES[id].group } : {}) };
    }),
  };
  execFileSync('mkdir', ['-p', cfgDir]);
  const path = join(cfgDir, 'collector.yaml');
  writeFileSync(path, stringify(yaml));
  return path;
}

async function startCollector(name: Name, cron: string, runAtStart = true): Promise<void> {
  const path = configFile(name, cron, runAtStart);
  const port = await freePort();
  writeFileSync(path, readFileSync(path, 'utf8').replace('127.0.0.1:0', `127.0.0.1:${port}`));
  const child = spawn(process.execPath, [MAIN, 'serve', '--config', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(join(dir, `${name}.log`), { flags: 'a' });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  children.set(name, { child, url: `http://127.0.0.1:${port}`, exited });
}

async function stopCollector(name: Name, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const c = children.get(name);
  if (!c) return;
  c.child.kill(signal);
  await c.exited;
  children.delete(name);
}

/** The round planned at `plannedMs`, once every device has a result in it and nothing of it runs. */
async function roundComplete(plannedMs: number, ms: number): Promise<number> {
  return waitFor(`the round planned at ${new Date(plannedMs).toISOString()} to complete`, ms, async () => {
    await learnSessions();
    const round = (await (await db()).query<{ id: number }>('SELECT id FROM rounds WHERE planned_at = $1', [plannedMs])).rows[0];
    if (!round) return null;
    const runs = await roundRuns(await db(), round.id);
    const done = new Set(runs.filter((r) => ['ok', 'failed', 'skipped'].includes(r.status)).map((r) => r.device));
    if (runs.some((r) => r.status === 'running') || IDS.some((id) => !done.has(id))) return null;
    return round.id;
  });
}

function groupOfOwner(run: RunRow): string {
  const name = sessions.get(run.owner_pid);
  if (!name) throw new Error(`run ${run.id}: owner session ${run.owner_pid} unknown`);
  return COLLECTORS[name];
}

beforeAll(async () => {
  if (!existsSync(MAIN)) execFileSync(process.execPath, ['scripts/build-collector.mjs'], { cwd: REPO_ROOT, stdio: 'ignore' });
  dir = mkdtempSync(join(tmpdir(), 'scale-out-lab-'));
  [lab, cluster] = await Promise.all([
    createLab({
      name: 'scale',
      devices: IDS.map((id) => ({ id, ssh: DEVICES[id].ssh, rateMbit: 50 })),
      servers: [{ id: 's1' }, { id: 's2' }],
    }),
    startPostgresCluster(),
  ]);
  url = await cluster.createDatabase();
  writeFileSync(join(dir, 'token'), TOKEN, { mode: 0o600 });
  writeFileSync(join(dir, 'pgpass'), cluster.password, { mode: 0o600 });
  writeFileSync(join(dir, 'id_ed25519'), lab.clientKey.privateKey, { mode: 0o600 });
}, 120_000);

afterAll(async () => {
  for (const name of [...children.keys()]) await stopCollector(name, 'SIGKILL');
  await admin?.end().catch(() => {});
  cluster?.destroy();
  await lab?.destroy();
  if (dir && !process.env.KEEP_SCALE_OUT_LAB) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('three collector processes on one PostgreSQL, in the lab', () => {
  it('test every device once per round by a collector of its group; survive a SIGKILLed collector and a 20 s database outage; any collector answers the plugin for all', async () => {
    // Round 1: the three start together within one minute (runAtStart: the round of that minute)
    // early in a minute, so that round 1 (about 12 s) is over before the cron fires round 2 at the next one
    if (Date.now() % 60_000 > 30_000) await sleep(60_000 - (Date.now() % 60_000) + 200);
    const minute1 = Math.floor(Date.now() / 60_000) * 60_000;
    const next = new Date(minute1 + 60_000);
    // round 2 is the cron's, at the next minute
    const cron = `${next.getUTCMinutes()} ${next.getUTCHours()} * * *`;
    await Promise.all((['eu-a', 'eu-b', 'us-c'] as const).map((name) => startCollector(name, cron)));
    const round1 = await roundComplete(minute1, 45_000);
    expect((await (await db()).query('SELECT planned_at FROM rounds')).rows).toEqual([{ planned_at: minute1 }]);
    const runs1 = await roundRuns(await db(), round1);
    // exactly one run per device, each ok
    expect(runs1.map((r) => r.device).sort()).toEqual(IDS);
    expect(runs1.map((r) => r.status)).toEqual(IDS.map(() => 'ok'));
    for (const r of runs1) if (DEVICES[r.device].group) expect(groupOfOwner(r), r.device).toBe(DEVICES[r.device].group);
    expect((await expectNoOverlapPerServer(await db())).size).toBe(2);

    // Round 2: the cron fires in every collector at the next minute
    const victimRun = await waitFor('an eu-pinned device under test by an eu collector', 70_000, async () => {
      await learnSessions();
      const { rows } = await (await db()).query<RunRow>(
        "SELECT r.id, r.device, r.status, r.owner_pid FROM runs r JOIN rounds o ON o.id = r.round_id WHERE o.planned_at = $1 AND r.status = 'running' AND r.device IN ('e1', 'e2', 'e3')",
        [next.getTime()],
      );
      return rows[0];
    });
    const victim = sessions.get(victimRun.owner_pid) as Name;
    expect(['eu-a', 'eu-b']).toContain(victim);
    // in the middle of its 2 s test
    await sleep(800);
    await stopCollector(victim, 'SIGKILL');
    const victimKilledAt = Date.now();

    // then the database goes away for 20 s in the middle of the round
    await waitFor('a result stored after the kill, and another run under way', 30_000, async () => {
      const { rows } = await (await db()).query<{ ok: number; running: number }>(
        `SELECT count(*) FILTER (WHERE r.status = 'ok' AND r.id > $2)::int AS ok, count(*) FILTER (WHERE r.status = 'running' AND r.owner_pid <> $3)::int AS running
         FROM runs r JOIN rounds o ON o.id = r.round_id WHERE o.planned_at = $1`,
        [next.getTime(), victimRun.id, victimRun.owner_pid],
      );
      return rows[0].ok >= 1 && rows[0].running >= 1;
    });
    await sleep(500);
    await admin?.end();
    admin = null;
    cluster.stop();
    await sleep(OUTAGE_MS);
    cluster.start();
    const back = Date.now();
    const round2 = await roundComplete(next.getTime(), 120_000);
    const { rows: resumed } = await (await db()).query<{ first: number }>('SELECT min(started_at) AS first FROM runs WHERE started_at > $1', [back]);
    // figures for docs/scale-out.md (what happens on a failure, as measured here)
    process.stdout.write(`scale-out lab: outage began ${back - victimKilledAt - OUTAGE_MS} ms after the kill; first run claimed ${resumed[0].first - back} ms after the database was back; round complete ${Date.now() - back} ms after\n`);
    await learnSessions();
    const runs2 = await roundRuns(await db(), round2);
    const ok = runs2.filter((r) => r.status === 'ok');
    const cut = runs2.filter((r) => r.status !== 'ok');
    // every device has exactly one result; what was cut is interrupted, and each was tested again later
    expect(ok.map((r) => r.device).sort()).toEqual(IDS);
    expect(cut.map((r) => r.status)).toEqual(cut.map(() => 'interrupted'));
    expect(cut.find((r) => r.id === victimRun.id)).toBeDefined();
    expect(cut.length).toBeGreaterThanOrEqual(2); // the killed run and at least one run cut by the outage
    for (const r of cut) expect(ok.find((o) => o.device === r.device)!.id).toBeGreaterThan(r.id);
    // the killed collector's device was retried by the other eu collector
    const retried = ok.find((o) => o.device === victimRun.device)!;
    expect(sessions.get(retried.owner_pid)).toBe(victim === 'eu-a' ? 'eu-b' : 'eu-a');
    for (const r of ok) if (DEVICES[r.device].group) expect(groupOfOwner(r), r.device).toBe(DEVICES[r.device].group);
    // one stored result (metrics and tests) per ok run, none for an interrupted one
    const stored = (await (await db()).query<{ run_id: number }>('SELECT DISTINCT run_id FROM metrics WHERE run_id = ANY($1::bigint[]) ORDER BY run_id', [runs2.map((r) => r.id)])).rows;
    expect(stored.map((r) => r.run_id)).toEqual(ok.map((r) => r.id));
    const tests = (await (await db()).query<{ run_id: number }>('SELECT run_id FROM tests WHERE run_id = ANY($1::bigint[]) ORDER BY run_id', [runs2.map((r) => r.id)])).rows;
    expect(tests.map((r) => r.run_id)).toEqual(ok.map((r) => r.id));
    expect((await expectNoOverlapPerServer(await db())).size).toBe(2);

    // The plugin, through its executable, on a fourth collector that never ran a test
    await startCollector('us-d', '0 2 1 1 *', false);
    const idle = children.get('us-d')!;
    const host = GrafanaHost.start({ plugin: ensurePluginBuilt() });
    try {
      await waitFor('the idle collector to answer', 15_000, async () => (await fetch(`${idle.url}/healthz`)).ok);
      const ds = { uid: 'scale-out', jsonData: { collectorUrl: idle.url }, secure: { apiToken: TOKEN } };
      const r = await host.query(ds, [
        { refId: 'latest', json: { queryType: 'latest', devices: ['*'], metrics: ['tcp_received_bps'], direction: 'upload' }, fromMs: minute1 - 60_000, toMs: Date.now() },
        { refId: 'runs', json: { queryType: 'runs', devices: ['*'] }, fromMs: minute1 - 60_000, toMs: Date.now() },
      ]);
      expect(r.latest.status).toBe(200);
      const latest = Object.fromEntries(r.latest.frames.map((f) => [f.fields[0].labels?.device, values(f, 'tcp_received_bps')[0] as number]));
      expect(Object.keys(latest).sort()).toEqual(IDS);
      for (const id of IDS) expect(latest[id], id).toBeGreaterThan(40e6);
      const statuses = values(r.runs.frames[0], 'status') as string[];
      expect(statuses.filter((s) => s === 'ok')).toHaveLength(2 * IDS.length);
      expect(statuses.filter((s) => s === 'interrupted')).toHaveLength(cut.length);
      // nothing was tested by it
      expect((await (await db()).query("SELECT 1 FROM runs r JOIN pg_stat_activity a ON a.pid = r.owner_pid WHERE a.application_name = 'us-d'")).rows).toEqual([]);
    } finally {
      await host.close();
    }
  }, 300_000);
});
