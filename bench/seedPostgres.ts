/**
 * Copies a store seeded by seedRuns (SQLite) into a PostgreSQL store, row for row with the same
 * ids, so that both engines answer the query path from the same history. The schema is the
 * PostgreSQL store's own (PostgresStore.open runs its migrations); the copy drops the indexes
 * of the copied tables, inserts in batches (unnest of arrays), recreates them as the migrations
 * defined them, and analyzes the tables, as a bulk load would.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { PostgresStore } from '../collector/store/postgres/postgresStore.js';

const BATCH = 20_000;

interface Copy {
  table: string;
  /** columns copied as they are, with their PostgreSQL array type for unnest */
  columns: [name: string, type: string][];
  /** the identity column is copied too (same ids in both stores); else PostgreSQL numbers the rows */
  withId: boolean;
}

const COPIES: Copy[] = [
  {
    table: 'runs',
    withId: true,
    columns: [['id', 'bigint'], ['device', 'text'], ['server', 'text'], ['trigger', 'text'], ['status', 'text'], ['started_at', 'bigint'], ['ended_at', 'bigint']],
  },
  {
    table: 'tests',
    withId: true,
    columns: [
      ['id', 'bigint'],
      ['run_id', 'bigint'],
      ['protocol', 'text'],
      ['direction', 'text'],
      ['server', 'text'],
      ['status', 'text'],
      ['started_at', 'bigint'],
      ['ended_at', 'bigint'],
      ['iperf_version', 'text'],
    ],
  },
  {
    // SQLite's metrics have no id of their own (rowid): PostgreSQL numbers them in the same order
    table: 'metrics',
    withId: false,
    columns: [
      ['run_id', 'bigint'],
      ['device', 'text'],
      ['server', 'text'],
      ['direction', 'text'],
      ['name', 'text'],
      ['value', 'float8'],
      ['time_ms', 'bigint'],
      ['failed', 'smallint'],
    ],
  },
];

/** Copies runs, tests and metrics of `sqlitePath` into the (new, empty) database at `url`; returns the rows copied. */
export async function copyToPostgres(sqlitePath: string, url: string, password: string): Promise<number> {
  await (await PostgresStore.open(url, { password })).close(); // the schema, by the real migrations
  // node-postgres lets the URL's fields win over separate ones: the password joins the URL (in memory only)
  const withPassword = new URL(url);
  withPassword.password = encodeURIComponent(password);
  const client = new pg.Client({ connectionString: withPassword.toString() });
  await client.connect();
  const source = new Database(sqlitePath, { readonly: true });
  let copied = 0;
  try {
    const tables = COPIES.map((c) => c.table);
    const { rows: indexes } = await client.query<{ name: string; sql: string }>(
      "SELECT indexname AS name, indexdef AS sql FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY($1) AND indexname NOT LIKE '%_pkey'",
      [tables],
    );
    for (const index of indexes) await client.query(`DROP INDEX ${index.name}`);
    // foreign keys are not checked for rows copied from a store that had them
    await client.query("SET session_replication_role = 'replica'");
    for (const copy of COPIES) {
      const names = copy.columns.map(([name]) => name);
      const select = source.prepare(`SELECT ${names.join(', ')} FROM ${copy.table} ORDER BY rowid`).raw();
      const insert = `INSERT INTO ${copy.table} (${names.join(', ')}) ${copy.withId ? 'OVERRIDING SYSTEM VALUE' : ''}
        SELECT * FROM unnest(${copy.columns.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ')})`;
      let batch: unknown[][] = names.map(() => []);
      let size = 0;
      const flush = async () => {
        if (size === 0) return;
        await client.query(insert, batch);
        copied += size;
        batch = names.map(() => []);
        size = 0;
      };
      for (const row of select.iterate() as Iterable<unknown[]>) {
        row.forEach((value, i) => batch[i].push(value));
        if (++size === BATCH) await flush();
      }
      await flush();
      // the identity goes on after the copied ids
      if (copy.withId) await client.query(`SELECT setval(pg_get_serial_sequence('${copy.table}', 'id'), (SELECT COALESCE(max(id), 1) FROM ${copy.table}))`);
    }
    await client.query("SET session_replication_role = 'origin'");
    await client.query('SET maintenance_work_mem = 524288'); // kB: room to sort while the indexes are rebuilt
    for (const index of indexes) await client.query(index.sql);
    await client.query(`ANALYZE ${tables.join(', ')}`);
  } finally {
    source.close();
    await client.end();
  }
  return copied;
}
