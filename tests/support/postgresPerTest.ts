/**
 * One real PostgreSQL cluster per test file and a fresh database per test: registers the
 * vitest hooks and closes every store a test opened (and the admin client) before the next.
 */
import type pg from 'pg';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import type { PostgresOptions } from '../../collector/store/postgres/database.js';
import { PostgresStore } from '../../collector/store/postgres/postgresStore.js';
import { startPostgresCluster, type PostgresCluster } from './postgresCluster.js';

export interface PostgresPerTest {
  readonly cluster: PostgresCluster;
  /** this test's database (no password in it) */
  readonly url: string;
  /** a superuser client on this test's database */
  readonly admin: pg.Client;
  /** a store on this test's database, closed after the test */
  open(options?: Omit<PostgresOptions, 'password'>): Promise<PostgresStore>;
}

export function postgresPerTest(defaults: Omit<PostgresOptions, 'password'> = {}): PostgresPerTest {
  let cluster: PostgresCluster | undefined;
  let url = '';
  let admin: pg.Client | undefined;
  const stores: PostgresStore[] = [];
  const closeAll = async () => {
    while (stores.length) await stores.pop()!.close();
    await admin?.end();
    admin = undefined;
  };
  beforeAll(async () => {
    cluster = await startPostgresCluster();
  });
  beforeEach(async () => {
    await closeAll();
    url = await cluster!.createDatabase();
    admin = await cluster!.admin(new URL(url).pathname.slice(1));
  });
  afterAll(async () => {
    await closeAll();
    cluster?.destroy();
  });
  return {
    get cluster() {
      return cluster!;
    },
    get url() {
      return url;
    },
    get admin() {
      return admin!;
    },
    async open(options = {}) {
      const store = await PostgresStore.open(url, { password: cluster!.password, ...defaults, ...options });
      stores.push(store);
      return store;
    },
  };
}
