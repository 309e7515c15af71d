/**
 * Scale-out: a round of 400 devices on 8 iperf3 servers with 1, 2 and 4 collectors sharing one
 * PostgreSQL (a real cluster started for the benchmark, real advisory locks, claims and NOTIFY),
 * next to one collector on SQLite. Devices are simulated (bench/simulatedDevices.ts: real iperf3
 * output after a fixed time): TCP upload then UDP upload, 100 ms each. Every figure is read back
 * from the stored runs and tests.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { Collector } from '../collector/collector.js';
import { loadConfigText } from '../collector/config/load.js';
import { PostgresStore } from '../collector/store/postgres/postgresStore.js';
import { SqliteStore } from '../collector/store/sqlite/sqliteStore.js';
import type { Store } from '../collector/store/store.js';
import { Telemetry } from '../collector/telemetry.js';
import { startPostgresCluster, type PostgresCluster } from '../tests/support/postgresCluster.js';
import { table, verdict, type SectionResult } from './report.js';
import { maxConcurrency } from './scheduling.js';
import { SimulatedConnector } from './simulatedDevices.js';
import { pct } from './stats.js';

const DEVICES = 400;
const SERVERS = 8;
const TIMING = { connectMs: 10, testMs: 100 };
const TESTS_PER_DEVICE = 2;
const IDEAL_MS = Math.ceil(DEVICES / SERVERS) * TESTS_PER_DEVICE * TIMING.testMs;
const silent = pino({ level: 'silent' });

interface Row {
  setup: string;
  makespanMs: number;
  okRuns: number;
  overlaps: number;
}

interface TestRow {
  server: string;
  startedAt: number;
  endedAt: number;
}

function configYaml(database: string, extra: Record<string, unknown> = {}): string {
  return stringify({
    database,
    apiTokenFile: 'token',
    schedule: { cron: '0 2 1 1 *' },
    servers: Array.from({ length: SERVERS }, (_, i) => ({ host: `10.77.0.${i + 1}`, port: 5201 })),
    clientOptions: { directions: ['upload'], udp: { enabled: true } },
    devices: Array.from({ length: DEVICES }, (_, i) => ({ id: `dev-${i}`, host: '127.0.0.1', username: 'root', privateKeyFile: 'key' })),
    ...extra,
  });
}

async function runRound(dir: string, stores: Store[], yaml: string): Promise<void> {
  const collectors = await Promise.all(
    stores.map((store) =>
      Collector.open({
        loaded: loadConfigText(yaml, join(dir, 'collector.yaml')),
        store,
        connector: new SimulatedConnector(TIMING),
        logger: silent,
        telemetry: new Telemetry(),
        roundRecheckMs: 200,
      }),
    ),
  );
  const planned = new Date(Math.floor(Date.now() / 60_000) * 60_000);
  await Promise.all(collectors.map((c) => c.scheduler.fire(planned)));
  for (const c of collectors) await c.shutdown();
}

function summarise(setup: string, tests: TestRow[], runs: { ok: number; first: number; last: number }): Row {
  return { setup, makespanMs: runs.last - runs.first, okRuns: runs.ok, overlaps: maxConcurrency(tests).overlaps };
}

async function sqliteRow(dir: string): Promise<Row> {
  const path = join(dir, 'one.db');
  const store = SqliteStore.open(path);
  await runRound(dir, [store], configYaml(path));
  await store.close();
  const db = new Database(path, { readonly: true });
  try {
    const tests = db.prepare('SELECT server, started_at AS startedAt, ended_at AS endedAt FROM tests').all() as TestRow[];
    const runs = db.prepare("SELECT sum(status = 'ok') AS ok, min(started_at) AS first, max(ended_at) AS last FROM runs").get() as Row & { ok: number; first: number; last: number };
    return summarise('1 collector, SQLite', tests, runs);
  } finally {
    db.close();
  }
}

async function postgresRow(dir: string, cluster: PostgresCluster, collectors: number): Promise<Row> {
  const url = await cluster.createDatabase();
  const stores = await Promise.all(Array.from({ length: collectors }, () => PostgresStore.open(url, { password: cluster.password })));
  await runRound(dir, stores, configYaml(url));
  await Promise.all(stores.map((s) => s.close()));
  const admin = await cluster.admin(new URL(url).pathname.slice(1));
  try {
    const tests = (await admin.query<TestRow>('SELECT server, started_at AS "startedAt", ended_at AS "endedAt" FROM tests')).rows;
    const runs = (await admin.query<{ ok: number; first: number; last: number }>(
      "SELECT count(*) FILTER (WHERE status = 'ok')::int AS ok, min(started_at) AS first, max(ended_at) AS last FROM runs",
    )).rows[0];
    return summarise(`${collectors} collector${collectors > 1 ? 's' : ''}, PostgreSQL`, tests, runs);
  } finally {
    await admin.end();
  }
}

export async function benchScaleOut(_options: unknown, log: (line: string) => void): Promise<SectionResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-scale-out-'));
  writeFileSync(join(dir, 'token'), 's'.repeat(32));
  writeFileSync(join(dir, 'key'), 'not a key: simulated devices\n');
  const cluster = await startPostgresCluster();
  try {
    const rows: Row[] = [await sqliteRow(dir)];
    log(`  ${rows[0].setup}: ${rows[0].makespanMs} ms`);
    for (const n of [1, 2, 4]) {
      rows.push(await postgresRow(dir, cluster, n));
      log(`  ${rows.at(-1)!.setup}: ${rows.at(-1)!.makespanMs} ms`);
    }
    const within = (r: Row) => r.makespanMs <= IDEAL_MS * 1.05;
    const markdown = [
      `A round of ${DEVICES} devices on ${SERVERS} iperf3 servers, ${TESTS_PER_DEVICE} tests of ${TIMING.testMs} ms per device ` +
        `(simulated devices, real store, locks and claims): ideal makespan ${IDEAL_MS} ms (${DEVICES / SERVERS} devices per server, back to back). ` +
        'Makespan is read from the stored runs (first start to last end); overlaps are tests that ran at the same time on one server (must be 0).',
      '',
      table(
        ['setup', 'makespan', 'vs ideal', 'runs ok', 'overlaps', 'within 5 %'],
        rows.map((r) => [r.setup, `${r.makespanMs} ms`, `+${pct(r.makespanMs / IDEAL_MS - 1)}`, `${r.okRuns}/${DEVICES}`, r.overlaps, verdict(within(r))]),
      ),
    ].join('\n');
    return {
      title: 'Scale-out: several collectors on PostgreSQL',
      markdown,
      summary: rows.map((r) => `${r.setup}: makespan ${r.makespanMs} ms (+${pct(r.makespanMs / IDEAL_MS - 1)} vs ideal ${IDEAL_MS} ms), ${r.overlaps} overlaps`),
    };
  } finally {
    cluster.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
