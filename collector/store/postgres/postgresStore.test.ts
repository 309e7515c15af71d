/**
 * What only the PostgreSQL store does: migrations shared by collectors starting together, one
 * round per planned time, runs owned by a collector's database session, reconnection.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { loadConfigText } from '../../config/load.js';
import { forgetHostKey, openStore } from '../../service.js';
import { okOutcome } from '../../../tests/support/storeFixtures.js';
import { postgresPerTest } from '../../../tests/support/postgresPerTest.js';
import { SqliteStore } from '../sqlite/sqliteStore.js';
import { PostgresUnavailableError } from './database.js';
import { applyPgMigrations, PG_MIGRATIONS, PgSchemaTooNewError } from './migrations.js';
import { PostgresStore } from './postgresStore.js';
import { RoundClaimedError } from '../store.js';

const pgt = postgresPerTest();

const T0 = Date.parse('2025-02-01T02:00:00.000Z');

async function waitFor(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('migrations', () => {
  it('are applied once when several collectors start together', async () => {
    const stores = await Promise.all([pgt.open(), pgt.open(), pgt.open(), pgt.open()]);
    expect(await stores[0].schemaVersion()).toBe(PG_MIGRATIONS.length);
    const { rows } = await pgt.admin.query('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows).toEqual(PG_MIGRATIONS.map((m) => ({ version: m.version })));
    // a later start finds nothing to do
    expect(await applyPgMigrations(pgt.admin)).toEqual([]);
  });

  it('roll a failed migration back whole and release the lock', async () => {
    await pgt.open();
    const next = PG_MIGRATIONS.length + 1;
    const broken = [...PG_MIGRATIONS, { version: next, description: 'broken', sql: 'CREATE TABLE half (x int); SELECT no_such_function()' }];
    await expect(applyPgMigrations(pgt.admin, broken)).rejects.toThrow(/no_such_function/);
    expect((await pgt.admin.query("SELECT to_regclass('half') AS t")).rows[0].t).toBeNull();
    expect((await pgt.admin.query('SELECT max(version) AS v FROM schema_migrations')).rows[0].v).toBe(PG_MIGRATIONS.length);
    // the lock was released: another collector migrates
    const fixed = [...PG_MIGRATIONS, { version: next, description: 'fixed', sql: 'CREATE TABLE half (x int)' }];
    const other = await pgt.cluster.admin(new URL(pgt.url).pathname.slice(1));
    try {
      expect(await applyPgMigrations(other, fixed)).toEqual([next]);
    } finally {
      await other.end();
    }
  });

  it('refuse a database migrated by a newer collector, and a list out of order', async () => {
    await pgt.open();
    await pgt.admin.query("INSERT INTO schema_migrations (version, description) VALUES (99, 'future')");
    await expect(PostgresStore.open(pgt.url, { password: pgt.cluster.password })).rejects.toThrow(PgSchemaTooNewError);
    await expect(PostgresStore.open(pgt.url, { password: pgt.cluster.password })).rejects.toThrow(
      `the PostgreSQL database has schema version 99, but this collector knows versions up to ${PG_MIGRATIONS.length}`,
    );
    await expect(applyPgMigrations(pgt.admin, [{ version: 2, description: 'x', sql: '' }])).rejects.toThrow(
      'migration list out of order: position 1 has version 2',
    );
  });
});

describe('connection', () => {
  it('fails to open with a wrong password without naming it', async () => {
    const wrong = 'Wrong-Password-123';
    const err = (await PostgresStore.open(pgt.url, { password: wrong }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/password authentication failed/);
    expect(`${err.message} ${err.stack}`).not.toContain(wrong);
  });

  it('takes the password from PGPASSWORD when none is given', async () => {
    vi.stubEnv('PGPASSWORD', pgt.cluster.password);
    try {
      const store = await PostgresStore.open(pgt.url, { password: null });
      await store.close();
    } finally {
      vi.unstubAllEnvs();
    }
    await expect(PostgresStore.open(pgt.url, { password: null, connectTimeoutMs: 2000 })).rejects.toThrow(/password/);
  });

  it('is chosen by the composition root for a postgres:// database, SQLite otherwise', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-root-'));
    try {
      const text = (db: string) => `apiTokenFile: token\ndatabase: "${db}"\n`;
      const { writeFileSync } = await import('node:fs');
      writeFileSync(join(dir, 'token'), 'b'.repeat(32));
      writeFileSync(join(dir, 'pgpass'), pgt.cluster.password);
      const pgStore = await openStore(loadConfigText(`${text(pgt.url)}databasePasswordFile: pgpass\n`, join(dir, 'c.yaml')));
      expect(pgStore).toBeInstanceOf(PostgresStore);
      await pgStore.close();
      const sqlite = await openStore(loadConfigText(text('./c.db'), join(dir, 'c.yaml')));
      expect(sqlite).toBeInstanceOf(SqliteStore);
      await sqlite.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is what `forget-host-key` forgets in on a postgres:// configuration, with a device of the API', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-forget-'));
    const cwd = process.cwd();
    try {
      writeFileSync(join(dir, 'token'), 'b'.repeat(32));
      writeFileSync(join(dir, 'pgpass'), pgt.cluster.password);
      const config = loadConfigText(`apiTokenFile: token\ndatabase: "${pgt.url}"\ndatabasePasswordFile: pgpass\n`, join(dir, 'c.yaml'));
      const store = await pgt.open();
      await store.devices.add({ id: 'api-1', host: '10.9.0.12', port: 22, username: 'root', privateKeyFile: 'key', enabled: true, labels: {} });
      await store.hostKeys.record('api-1', 'SHA256:old');
      process.chdir(dir);
      expect(await forgetHostKey(config, 'api-1')).toBe('forgotten');
      expect(await store.hostKeys.get('api-1')).toBeUndefined();
      expect(await forgetHostKey(config, 'api-1')).toBe('none');
      expect(await forgetHostKey(config, 'nope')).toBe('unknown');
      // nothing but the configuration's own files: no SQLite database named after the URL
      expect(readdirSync(dir).sort()).toEqual(['pgpass', 'token']);
    } finally {
      process.chdir(cwd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers a batch of finishes at once when the database is away, without writing each member alone', async () => {
    const store = await pgt.open();
    const ids = await Promise.all([0, 1, 2, 3, 4].map((i) => store.runs.start({ device: `d${i}`, trigger: 'manual', roundId: null, startedAt: new Date(T0) })));
    const before = { ...store.runs.writeStats.finishes };
    // the test's admin connection is cut too (57P01); the store's own connections handle it
    pgt.admin.on('error', () => {});
    pgt.cluster.stop();
    try {
      const results = await Promise.allSettled(ids.map((id) => store.runs.finish(id, okOutcome(T0, 1e6, 2e6))));
      expect(results.map((r) => r.status)).toEqual(Array(5).fill('rejected'));
      const after = store.runs.writeStats.finishes;
      expect([after.transactions - before.transactions, after.retriedBatches - before.retriedBatches]).toEqual([1, 0]);
    } finally {
      pgt.cluster.start();
    }
  });

  it('reconnects its session with backoff after losing it, and refuses to start runs meanwhile', async () => {
    const store = await pgt.open({ reconnectMs: { first: 200, max: 400 } });
    const before = store.db.identity();
    expect(store.db.connected).toBe(true);
    await pgt.admin.query('SELECT pg_terminate_backend($1)', [before.pid]);
    await waitFor(() => !store.db.connected);
    await expect(store.runs.start({ device: 'a', trigger: 'manual', roundId: null, startedAt: new Date(T0) })).rejects.toThrow(PostgresUnavailableError);
    await waitFor(() => store.db.connected);
    expect(store.db.identity().pid).not.toBe(before.pid);
    const id = await store.runs.start({ device: 'a', trigger: 'manual', roundId: null, startedAt: new Date(T0) });
    expect((await store.runs.get(id))!.status).toBe('running');
  });

  it('keeps retrying while the database refuses the session', async () => {
    const store = await pgt.open({ reconnectMs: { first: 50, max: 100 } });
    // no new connections to this database for a while: every reconnection attempt fails
    const database = new URL(pgt.url).pathname.slice(1);
    const root = await pgt.cluster.admin('postgres');
    try {
      await root.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS false`);
      await root.query('SELECT pg_terminate_backend($1)', [store.db.identity().pid]);
      await waitFor(() => !store.db.connected);
      await new Promise((r) => setTimeout(r, 400));
      expect(store.db.connected).toBe(false);
      await root.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`);
      await waitFor(() => store.db.connected);
    } finally {
      await root.end();
    }
  });

  it('reconnects at once when asked for its session, not only at the next backoff step (the database may be back)', async () => {
    // the timer alone would try again in a minute
    const store = await pgt.open({ reconnectMs: { first: 60_000, max: 60_000 } });
    const before = store.db.identity();
    await pgt.admin.query('SELECT pg_terminate_backend($1)', [before.pid]);
    await waitFor(() => !store.db.connected);
    // a claim finds the session lost: it fails, and the session is opened again now
    await expect(store.runs.start({ device: 'a', trigger: 'manual', roundId: null, startedAt: new Date(T0) })).rejects.toThrow(PostgresUnavailableError);
    // asked again while that attempt is under way: no second attempt
    expect(() => store.db.identity()).toThrow(PostgresUnavailableError);
    await waitFor(() => store.db.connected, 5000);
    expect(store.db.identity().pid).not.toBe(before.pid);
    // lost again right away: the next attempt waits for the backoff, at most one attempt per first delay
    await pgt.admin.query('SELECT pg_terminate_backend($1)', [store.db.identity().pid]);
    await waitFor(() => !store.db.connected);
    await expect(store.serverLocks.tryLock('s')).rejects.toThrow(PostgresUnavailableError);
    await new Promise((r) => setTimeout(r, 300));
    expect(store.db.connected).toBe(false);
  });

  it('closes idempotently, also while a reconnection is pending', async () => {
    const store = await pgt.open({ reconnectMs: { first: 5000, max: 5000 } });
    await pgt.admin.query('SELECT pg_terminate_backend($1)', [store.db.identity().pid]);
    await waitFor(() => !store.db.connected);
    await store.close();
    await store.close();
    // a closed store does not reconnect when asked for its session
    expect(() => store.db.identity()).toThrow(PostgresUnavailableError);
    expect(store.db.connected).toBe(false);
  });

  it('destroys a pooled connection that cannot roll back', async () => {
    const store = await pgt.open();
    await expect(
      store.db.tx(async (client) => {
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await pgt.admin.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
        await new Promise((r) => setTimeout(r, 100));
        throw new Error('failed mid-transaction');
      }),
    ).rejects.toThrow('failed mid-transaction');
    // the pool replaces the dead connection
    expect(await store.hostKeys.get('x')).toBeUndefined();
  });
});

describe('shared by several collectors', () => {
  it('creates one round per planned time, however many collectors start it', async () => {
    const [a, b] = await Promise.all([pgt.open(), pgt.open()]);
    const ids = await Promise.all([a.rounds.start(new Date(T0)), b.rounds.start(new Date(T0)), a.rounds.start(new Date(T0))]);
    expect(new Set(ids).size).toBe(1);
    expect((await pgt.admin.query('SELECT count(*)::int AS n FROM rounds')).rows[0].n).toBe(1);
    expect(await b.rounds.start(new Date(T0 + 1))).not.toBe(ids[0]);
  });

  it('claims a device once per round across collectors, and takes over the claim of a collector that died', async () => {
    const [a, b] = await Promise.all([pgt.open(), pgt.open()]);
    const round = await a.rounds.start(new Date(T0));
    const start = (store: PostgresStore, device: string, roundId: number | null = round) =>
      store.runs.start({ device, trigger: 'schedule', roundId, startedAt: new Date(T0) });
    const [first, second] = await Promise.allSettled([start(a, 'dev'), start(b, 'dev')]);
    const won = [first, second].filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    const lost = [first, second].find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(RoundClaimedError);
    expect(lost.reason.message).toBe(`device dev is done or running elsewhere in round ${round}`);
    // manual runs and other rounds are not claims
    await start(b, 'dev', null);
    const next = await a.rounds.start(new Date(T0 + 1));
    await start(b, 'dev', next);

    // the holder dies: its run is interrupted by the next claim, which succeeds
    const holder = first.status === 'fulfilled' ? a : b;
    const other = holder === a ? b : a;
    const pid = holder.db.identity().pid;
    await holder.close();
    await waitFor(async () => (await pgt.admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pid])).rows[0].n === 0);
    const taken = await start(other, 'dev');
    await other.runs.finish(taken, okOutcome(T0, 1, 1));
    const runs = await other.runs.list({ devices: ['dev'] });
    expect(runs.filter((r) => r.status === 'interrupted')).toHaveLength(1);
    // done: no third run in this round
    await expect(start(other, 'dev')).rejects.toThrow(RoundClaimedError);
  });

  it('claims each device once when two collectors start the same devices in batches at once, in opposite orders (no deadlock)', async () => {
    const [a, b] = await Promise.all([pgt.open(), pgt.open()]);
    const round = await a.rounds.start(new Date(T0));
    const devices = Array.from({ length: 40 }, (_, i) => `dev-${String(i).padStart(2, '0')}`);
    const start = (store: PostgresStore, device: string) => store.runs.start({ device, trigger: 'schedule', roundId: round, startedAt: new Date(T0) });
    // a device twice in one batch: the second is refused like a claim from elsewhere
    const results = await Promise.allSettled([...devices.map((d) => start(a, d)), start(a, devices[0]), ...[...devices].reverse().map((d) => start(b, d))]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(devices.length);
    expect(lost).toHaveLength(devices.length + 1);
    expect(lost.every((r) => r.reason instanceof RoundClaimedError)).toBe(true);
    expect(String(results[devices.length].status)).toBe('rejected');
    const { rows } = await pgt.admin.query<{ device: string; n: number }>("SELECT device, count(*)::int AS n FROM runs WHERE status = 'running' GROUP BY device ORDER BY device");
    expect(rows).toEqual(devices.map((device) => ({ device, n: 1 })));
    // one transaction per collector's batch: the runs of a batch share their inserting transaction
    const { rows: xacts } = await pgt.admin.query<{ n: number }>('SELECT count(DISTINCT xmin::text)::int AS n FROM runs');
    expect(xacts[0].n).toBeLessThanOrEqual(2);
    expect(a.runs.writeStats.starts.retriedBatches + b.runs.writeStats.starts.retriedBatches).toBe(0);
  });

  it("interrupts only the runs of collectors whose session is gone, and leaves a round running while a collector carries it", async () => {
    const [a, b] = await Promise.all([pgt.open(), pgt.open()]);
    const round = await a.rounds.start(new Date(T0));
    const runA = await a.runs.start({ device: 'dev-a', trigger: 'schedule', roundId: round, startedAt: new Date(T0) });
    const runB = await b.runs.start({ device: 'dev-b', trigger: 'schedule', roundId: round, startedAt: new Date(T0) });
    const gone = async (store: PostgresStore) => {
      const pid = store.db.identity().pid;
      await store.close();
      await waitFor(async () => (await pgt.admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pid])).rows[0].n === 0);
    };

    // a third collector starting while a and b are testing touches nothing of theirs
    const c = await pgt.open();
    expect(await c.markInterrupted()).toBe(0);
    expect((await c.runs.get(runA))!.status).toBe('running');
    expect((await c.rounds.last())!.status).toBe('running');

    // a dies (the database ends its session): its run is orphaned, b's is not, and b carries the round on
    await gone(a);
    expect(await c.markInterrupted()).toBe(1);
    expect(await c.runs.get(runA)).toMatchObject({ status: 'interrupted', errorClass: 'interrupted' });
    expect((await c.runs.get(runB))!.status).toBe('running');
    expect((await c.rounds.last())!.status).toBe('running');
    // the run a lost cannot be finished any more; b finishes its own
    await expect(c.runs.finish(runA, okOutcome(T0, 1, 1))).rejects.toThrow(`run ${runA} is not running`);
    await b.runs.finish(runB, okOutcome(T0, 1, 1));
    expect(await c.rounds.devicesDone(round)).toEqual(['dev-b']);

    // b stops too: a collector starting now is alone, so the round is interrupted (to be resumed)
    await gone(b);
    await gone(c);
    const d = await pgt.open();
    expect(await d.markInterrupted()).toBe(0);
    expect((await d.rounds.last())!.status).toBe('interrupted');
  });
});
