/**
 * Several collectors on one real PostgreSQL, with simulated devices (bench/simulatedDevices.ts:
 * real iperf3 output after a fixed time) so that rounds are fast: every device tested once per
 * round by a collector of its group, never two tests on one server across collectors, and a
 * collector that dies mid-round is taken over (its run interrupted, the device run again).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { SimulatedConnector } from '../../bench/simulatedDevices.js';
import { Collector } from '../../collector/collector.js';
import { loadConfigText } from '../../collector/config/load.js';
import { deviceConfigSchema } from '../../contract/devices.js';
import { PostgresStore } from '../../collector/store/postgres/postgresStore.js';
import { Telemetry } from '../../collector/telemetry.js';
import { startPostgresCluster, type PostgresCluster } from '../support/postgresCluster.js';
import { expectNoOverlapPerServer, roundRuns } from '../support/postgresRunLog.js';

const silent = pino({ level: process.env.MC_LOG ?? 'silent' });
const SERVERS = [1, 2, 3].map((i) => ({ host: `10.9.0.${i}`, port: 5201 }));
const US_POOL = [{ host: '10.9.1.1', port: 5201 }];
// 6 pinned to eu, 4 to us, 2 by their pool to us, 6 unpinned: more devices than servers
const DEVICES: { id: string; group?: string; pool?: string }[] = [
  ...Array.from({ length: 6 }, (_, i) => ({ id: `eu-${i}`, group: 'eu' })),
  ...Array.from({ length: 4 }, (_, i) => ({ id: `us-${i}`, group: 'us' })),
  ...Array.from({ length: 2 }, (_, i) => ({ id: `uspool-${i}`, pool: 'us-servers' })),
  ...Array.from({ length: 6 }, (_, i) => ({ id: `any-${i}` })),
];
/** the group a device is pinned to, by itself or by its pool */
const pinnedGroup = (device: string): string | undefined => {
  const d = DEVICES.find((x) => x.id === device)!;
  return d.group ?? (d.pool ? 'us' : undefined);
};

/** how long PostgreSQL is stopped mid-round (the lab's scenario uses 20 s; 4 s keeps this test short) */
const OUTAGE_MS = 4000;
let cluster: PostgresCluster;
let dir: string;
let admin: pg.Client;

interface Member {
  group: string;
  store: PostgresStore;
  collector: Collector;
  pid: number;
}

async function member(url: string, group: string, testMs: number, extra: { runAtStart?: boolean; clock?: () => Date } = {}): Promise<Member> {
  const yaml = stringify({
    database: url,
    databasePasswordFile: 'pgpass',
    group,
    apiTokenFile: 'token',
    servers: SERVERS,
    pools: { 'us-servers': { group: 'us', servers: US_POOL } },
    deviceCredentialsDir: dir,
    schedule: { cron: '0 2 1 1 *', runAtStart: extra.runAtStart ?? false },
    devices: DEVICES.map((d) => ({ ...d, host: '127.0.0.1', username: 'root', privateKeyFile: 'key' })),
  });
  const loaded = loadConfigText(yaml, join(dir, `${group}.yaml`));
  const store = await PostgresStore.open(loaded.postgres!.url, { password: loaded.postgres!.password });
  const collector = await Collector.open({
    loaded,
    store,
    connector: new SimulatedConnector({ connectMs: 5, testMs }),
    logger: silent,
    telemetry: new Telemetry(),
    roundRecheckMs: 100,
    clock: extra.clock,
  });
  return { group, store, collector, pid: store.db.identity().pid };
}

beforeAll(async () => {
  cluster = await startPostgresCluster();
  dir = mkdtempSync(join(tmpdir(), 'multi-collector-'));
  writeFileSync(join(dir, 'token'), 'm'.repeat(32));
  writeFileSync(join(dir, 'key'), 'not a key: simulated devices\n');
  writeFileSync(join(dir, 'pgpass'), cluster.password, { mode: 0o600 });
});
afterAll(async () => {
  await admin?.end();
  cluster?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('collectors sharing one PostgreSQL', () => {
  it('test every device once per round, in its group, one test per server at a time; a collector that dies is taken over', async () => {
    const url = cluster.url((await cluster.createDatabase()).split('/').pop() as string);
    admin = await cluster.admin(new URL(url).pathname.slice(1));
    const members = [await member(url, 'eu', 40), await member(url, 'eu', 40), await member(url, 'us', 40)];
    const groupOf = new Map(members.map((m) => [m.pid, m.group]));

    // every collector fires the same planned time
    // planned times of today: retention (400 days) must not touch them
    const planned = new Date(Math.floor(Date.now() / 60_000) * 60_000);
    await Promise.all(members.map((m) => m.collector.scheduler.fire(planned)));
    const rounds = (await admin.query<{ id: number; status: string }>('SELECT id, status FROM rounds')).rows;
    expect(rounds).toEqual([{ id: expect.any(Number), status: 'done' }]);
    const runs = await roundRuns(admin, rounds[0].id);
    expect(runs.map((r) => r.device).sort()).toEqual(DEVICES.map((d) => d.id).sort());
    expect(runs.every((r) => r.status === 'ok')).toBe(true);
    for (const r of runs) {
      const pinned = pinnedGroup(r.device);
      if (pinned) expect(groupOf.get(r.owner_pid), r.device).toBe(pinned);
    }
    // both groups ran their devices. Within a group the work need not be spread: a collector
    // hands a server it frees to its own waiting device first (no round trip, the server stays
    // busy), so on a loaded machine one eu collector may run the whole group's share; every
    // device once per round, by its group, with no overlap on a server, is the contract
    expect(new Set(runs.map((r) => groupOf.get(r.owner_pid)))).toEqual(new Set(['eu', 'us']));
    await expectNoOverlapPerServer(admin);

    // next night: one eu collector dies in the middle of a test
    const [victim, survivor, us] = members;
    const night2 = new Date(planned.getTime() + 60_000);
    // the victim fires first and is testing before the others fire the same planned time (on a
    // loaded machine the others could otherwise finish the round before the victim took a device)
    const victimRound = victim.collector.scheduler.fire(night2);
    for (const deadline = Date.now() + 20_000; ; ) {
      const { rows } = await admin.query("SELECT 1 FROM runs WHERE status = 'running' AND owner_pid = $1", [victim.pid]);
      if (rows.length > 0) break;
      if (Date.now() > deadline) throw new Error('the victim collector never started a test of round 2');
      await new Promise((r) => setTimeout(r, 5));
    }
    const rounds2 = [victimRound, survivor.collector.scheduler.fire(night2), us.collector.scheduler.fire(night2)];
    // its connections end (as when the process is killed): the database releases its locks and claims
    void victim.store.close();
    await Promise.all([rounds2[1], rounds2[2]]);
    // the victim is not shut down: a killed process does not get to (its in-process leftovers stay idle)
    const round2 = (await admin.query<{ id: number; status: string }>('SELECT id, status FROM rounds WHERE planned_at = $1', [night2.getTime()])).rows[0];
    expect(round2.status).toBe('done');
    const runs2 = await roundRuns(admin, round2.id);
    const interrupted = runs2.filter((r) => r.status !== 'ok');
    const ok = runs2.filter((r) => r.status === 'ok');
    // every device ok exactly once; the run cut off is recorded as interrupted and was run again by its group
    expect(ok.map((r) => r.device).sort()).toEqual(DEVICES.map((d) => d.id).sort());
    expect(interrupted.length).toBeGreaterThanOrEqual(1);
    for (const r of interrupted) {
      expect(r).toMatchObject({ status: 'interrupted', owner_pid: victim.pid });
      const rerun = ok.find((o) => o.device === r.device)!;
      expect(rerun.id).toBeGreaterThan(r.id);
      const pinned = pinnedGroup(r.device);
      expect([survivor.pid, ...(pinned === 'eu' ? [] : [us.pid])]).toContain(rerun.owner_pid);
    }
    await expectNoOverlapPerServer(admin);
    await Promise.all([survivor, us].map(async (m) => {
      await m.collector.shutdown();
      await m.store.close();
    }));
  });

  it('survive PostgreSQL stopping mid-round: no duplicate runs, no lost results', async () => {
    const url = await cluster.createDatabase();
    await admin?.end();
    admin = await cluster.admin(new URL(url).pathname.slice(1));
    const members = [await member(url, 'eu', 60), await member(url, 'us', 60)];
    const planned = new Date(Math.floor(Date.now() / 60_000) * 60_000 + 120_000);
    const round = Promise.all(members.map((m) => m.collector.scheduler.fire(planned)));
    // wait until some runs are stored and others are running
    for (;;) {
      const { rows } = await admin.query<{ ok: number; running: number }>(
        "SELECT count(*) FILTER (WHERE status = 'ok')::int AS ok, count(*) FILTER (WHERE status = 'running')::int AS running FROM runs",
      );
      if (rows[0].ok >= 3 && rows[0].running > 0) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    await admin.end();
    cluster.stop();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    cluster.start();
    admin = await cluster.admin(new URL(url).pathname.slice(1));
    await round;
    const roundId = (await admin.query<{ id: number }>('SELECT id FROM rounds WHERE planned_at = $1', [planned.getTime()])).rows[0].id;
    const runs = await roundRuns(admin, roundId);
    const ok = runs.filter((r) => r.status === 'ok').map((r) => r.device);
    // every device has exactly one stored result; runs cut by the outage are interrupted, none is left running
    expect(ok.sort()).toEqual(DEVICES.map((d) => d.id).sort());
    const cut = runs.filter((r) => r.status !== 'ok');
    expect(cut.length).toBeGreaterThanOrEqual(1);
    expect(cut.every((r) => r.status === 'interrupted')).toBe(true);
    const metrics = (await admin.query<{ n: number }>('SELECT count(DISTINCT run_id)::int AS n FROM metrics')).rows[0].n;
    expect(metrics).toBe(DEVICES.length);
    await expectNoOverlapPerServer(admin);
    for (const m of members) {
      await m.collector.shutdown();
      await m.store.close();
    }
  });

  it('started together with runAtStart, join one round (planned at the start minute) instead of one round each', async () => {
    const url = await cluster.createDatabase();
    await admin?.end();
    admin = await cluster.admin(new URL(url).pathname.slice(1));
    // two collectors started 29 s apart within one minute (clocks running from a fixed second of this minute)
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    const t0 = Date.now();
    const at = (second: number) => () => new Date(minute + second * 1000 + (Date.now() - t0));
    const members = [await member(url, 'eu', 20, { runAtStart: true, clock: at(12) }), await member(url, 'us', 20, { runAtStart: true, clock: at(41) })];
    await Promise.all(members.map((m) => m.collector.startSchedule()));
    const rounds = (await admin.query<{ id: number; planned_at: number; status: string }>('SELECT id, planned_at, status FROM rounds')).rows;
    expect(rounds).toHaveLength(1);
    expect(rounds[0].status).toBe('done');
    expect(rounds[0].planned_at % 60_000).toBe(0);
    expect(rounds[0].planned_at).toBe(minute);
    const ok = (await roundRuns(admin, rounds[0].id)).filter((r) => r.status === 'ok').map((r) => r.device);
    expect(ok.sort()).toEqual(DEVICES.map((d) => d.id).sort());
    for (const m of members) {
      await m.collector.shutdown();
      await m.store.close();
    }
  });

  it('stop in bounded time while PostgreSQL is down, with tests waiting for a server another collector held', async () => {
    const url = await cluster.createDatabase();
    await admin?.end();
    admin = await cluster.admin(new URL(url).pathname.slice(1));
    // two collectors on three servers, six tests at a time: some runs wait for a server the other holds
    const members = [await member(url, 'eu', 400), await member(url, 'us', 400)];
    const planned = new Date(Math.floor(Date.now() / 60_000) * 60_000 + 240_000);
    const round = Promise.all(members.map((m) => m.collector.scheduler.fire(planned)));
    for (;;) {
      const { rows } = await admin.query<{ running: number }>("SELECT count(*)::int AS running FROM runs WHERE status = 'running'");
      if (rows[0].running >= 5) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    await admin.end();
    cluster.stop();
    try {
      const stopped = Promise.all(members.map((m) => m.collector.shutdown())).then(() => 'stopped');
      // a test in progress finishes (it cannot be stored); one waiting for a server gives up
      const bound = new Promise((r) => setTimeout(() => r('still waiting'), 20_000));
      expect(await Promise.race([stopped, bound])).toBe('stopped');
      await round;
      for (const m of members) await m.store.close();
    } finally {
      cluster.start();
      admin = await cluster.admin(new URL(url).pathname.slice(1));
    }
    // nothing half-written: every run is still running (its collector could not record it) or complete
    const { rows } = await admin.query<{ status: string; metrics: number }>(
      'SELECT status, (SELECT count(*)::int FROM metrics m WHERE m.run_id = r.id) AS metrics FROM runs r',
    );
    for (const r of rows) expect(r.status === 'ok' ? r.metrics > 0 : r.metrics === 0).toBe(true);
  }, 60_000);
  it('see a device that another collector added, changed or removed through its API at once, not from their next round', async () => {
    const url = await cluster.createDatabase();
    await admin?.end();
    admin = await cluster.admin(new URL(url).pathname.slice(1));
    const [a, b] = [await member(url, 'eu', 20), await member(url, 'us', 20)];
    const listed = (m: Member, id: string) => [...m.collector.devices()].find((d) => d.id === id);
    const until = async (what: string, check: () => boolean | Promise<boolean>) => {
      for (const end = Date.now() + 15_000; !(await check()); await new Promise((r) => setTimeout(r, 20))) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      }
    };
    try {
      await a.collector.addDevice(deviceConfigSchema.parse({ id: 'new-1', host: '127.0.0.1', username: 'root', privateKeyFile: 'key', labels: { site: 'roof' } }));
      await until('the other collector to list new-1', () => listed(b, 'new-1') !== undefined);
      expect(listed(b, 'new-1')).toMatchObject({ managedBy: 'api', labels: { site: 'roof' }, enabled: true });
      // and to run it now, as Grafana's Run now does through any collector
      expect(b.collector.runNow(['new-1'])).toEqual({ queued: ['new-1'] });
      await until('the run of new-1 by the other collector', async () => {
        const { rows } = await admin.query("SELECT 1 FROM runs WHERE device = 'new-1' AND status = 'ok' AND owner_pid = $1", [b.pid]);
        return rows.length === 1;
      });
      await a.collector.updateDevice('new-1', { enabled: false });
      await until('the other collector to see new-1 disabled', () => listed(b, 'new-1')?.enabled === false);
      await a.collector.removeDevice('new-1', false);
      await until('the other collector to drop new-1', () => listed(b, 'new-1') === undefined);
    } finally {
      for (const m of [a, b]) {
        await m.collector.shutdown();
        await m.store.close();
      }
    }
  });
});
