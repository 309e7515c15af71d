/**
 * Server exclusivity across collectors on a real PostgreSQL: advisory locks on each collector's
 * session, NOTIFY on release, release by the database when a collector's session ends.
 */
import { describe, expect, it } from 'vitest';
import { ServerRegistry, type ServerLease } from '../../dispatch/serverRegistry.js';
import { postgresPerTest } from '../../../tests/support/postgresPerTest.js';

const pgt = postgresPerTest({ reconnectMs: { first: 100, max: 200 } });

const A = { host: '10.0.0.1', port: 5201 };
const B = { host: '10.0.0.2', port: 5201 };

describe('PgServerLocks', () => {
  it('lets one collector hold a server, announces its release, and is released by the database when the holder dies', async () => {
    const [one, two] = await Promise.all([pgt.open(), pgt.open()]);
    const freed: (string | null)[] = [];
    await two.serverLocks.onFreed((key) => freed.push(key));
    expect(await one.serverLocks.tryLock('10.0.0.1:5201')).toBe(true);
    expect(await two.serverLocks.tryLock('10.0.0.1:5201')).toBe(false);
    expect(await two.serverLocks.tryLock('10.0.0.2:5201')).toBe(true);
    const freedAtOne: (string | null)[] = [];
    await one.serverLocks.onFreed((key) => freedAtOne.push(key));
    await one.serverLocks.unlock('10.0.0.1:5201');
    await waitFor(() => freed.includes('10.0.0.1:5201'));
    expect(await two.serverLocks.tryLock('10.0.0.1:5201')).toBe(true);
    // a collector is not told of its own releases (its registry knows them): one hears two's release only
    await two.serverLocks.unlock('10.0.0.2:5201');
    await waitFor(() => freedAtOne.length > 0);
    expect(freedAtOne).toEqual(['10.0.0.2:5201']);
    expect(freed).toEqual(['10.0.0.1:5201']);
    expect(await two.serverLocks.tryLock('10.0.0.2:5201')).toBe(true);

    // two dies holding both servers: the database frees them, one can take them
    await pgt.admin.query('SELECT pg_terminate_backend($1)', [two.db.identity().pid]);
    await waitFor(async () => one.serverLocks.tryLock('10.0.0.2:5201'));
    // two's session comes back and tells its listeners to look again
    await waitFor(() => freed.includes(null));
    expect(await two.serverLocks.tryLock('10.0.0.2:5201')).toBe(false);
  });
});

describe('ServerRegistry across collectors', () => {
  it('never puts two tests on one server across three collectors, and hands a freed server on at once', async () => {
    const stores = await Promise.all([pgt.open(), pgt.open(), pgt.open()]);
    // a long recheck: hand-overs between collectors must come from NOTIFY, not from the backstop
    const registries = stores.map((s) => new ServerRegistry(Date.now, undefined, s.serverLocks, 60_000));
    const holders = new Map<string, number>();
    let active = 0;
    let maxActive = 0;
    const handOverMs: number[] = [];
    let lastRelease = 0;
    await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const lease: ServerLease = await registries[i % 3].acquireFree([A, B]);
        if (lastRelease > 0) handOverMs.push(Date.now() - lastRelease);
        holders.set(lease.key, (holders.get(lease.key) ?? 0) + 1);
        expect(holders.get(lease.key)).toBe(1);
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 30));
        active--;
        holders.set(lease.key, (holders.get(lease.key) as number) - 1);
        lastRelease = Date.now();
        lease.release();
      }),
    );
    expect(maxActive).toBe(2);
    // 24 tests of 30 ms on 2 servers: about 360 ms of work; a polling or backstop hand-over would take seconds
    expect(Math.max(...handOverMs)).toBeLessThan(1000);
  });

  it('wakes a waiter when the collector holding the server dies (the backstop re-check)', async () => {
    const [one, two] = await Promise.all([pgt.open(), pgt.open()]);
    const holder = new ServerRegistry(Date.now, undefined, one.serverLocks, 60_000);
    const waiter = new ServerRegistry(Date.now, undefined, two.serverLocks, 200);
    await holder.acquireFree([A]);
    let got: ServerLease | null = null;
    const waiting = waiter.acquireFree([A]).then((l) => (got = l));
    await new Promise((r) => setTimeout(r, 300));
    expect(got).toBeNull();
    await pgt.admin.query('SELECT pg_terminate_backend($1)', [one.db.identity().pid]);
    await waiting;
    expect(got!.key).toBe('10.0.0.1:5201');
  });
});

async function waitFor(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
