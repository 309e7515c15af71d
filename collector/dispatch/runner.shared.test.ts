/**
 * The end of a round on a store shared by several collectors (real PostgreSQL): a device held by
 * another live collector is waited for, then left when it makes no progress; a database fault
 * while reading the round is retried, not fatal.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { SimulatedConnector } from '../../bench/simulatedDevices.js';
import { startPostgresCluster, type PostgresCluster } from '../../tests/support/postgresCluster.js';
import { Collector } from '../collector.js';
import { loadConfigText } from '../config/load.js';
import { PostgresStore } from '../store/postgres/postgresStore.js';
import type { Store } from '../store/store.js';
import { Telemetry } from '../telemetry.js';
import { okOutcome } from '../../tests/support/storeFixtures.js';

let cluster: PostgresCluster;
let dir: string;

beforeAll(async () => {
  cluster = await startPostgresCluster();
  dir = mkdtempSync(join(tmpdir(), 'runner-shared-'));
  writeFileSync(join(dir, 'token'), 'r'.repeat(32));
  writeFileSync(join(dir, 'key'), 'not a key: simulated devices\n');
});
afterAll(() => {
  cluster?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

it('waits for a device another collector holds, leaves it when it makes no progress, and retries a database fault', async () => {
  const url = await cluster.createDatabase();
  const other = await PostgresStore.open(url, { password: cluster.password });
  const mine = await PostgresStore.open(url, { password: cluster.password });
  const round = await other.rounds.start(new Date());
  // the other collector is testing `held` and never finishes (alive, but stuck)
  await other.runs.start({ device: 'held', trigger: 'schedule', roundId: round, startedAt: new Date() });

  // fault injection: the first read of the round fails as if the database were away
  let faults = 1;
  const rounds = Object.create(mine.rounds) as Store['rounds'];
  rounds.devicesDone = async (id) => {
    if (faults-- > 0) throw new Error('connect ECONNREFUSED');
    return mine.rounds.devicesDone(id);
  };
  const store = Object.assign(Object.create(mine) as Store, { rounds });
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line).msg) });
  const yaml = stringify({
    database: url,
    apiTokenFile: 'token',
    servers: [{ host: '10.8.0.1', port: 5201 }],
    schedule: { cron: '0 2 1 1 *' },
    devices: ['free', 'held'].map((id) => ({ id, host: '127.0.0.1', username: 'root', privateKeyFile: 'key' })),
  });
  const collector = await Collector.open({
    loaded: loadConfigText(yaml, join(dir, 'c.yaml')),
    store,
    connector: new SimulatedConnector({ connectMs: 1, testMs: 5 }),
    logger,
    telemetry: new Telemetry(),
    roundRecheckMs: 30,
    roundStallMs: 300,
  });
  const started = Date.now();
  await collector.runner.runRound(round, ['free', 'held']);
  expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  expect(warnings).toEqual(['cannot read the round: looking again', 'devices of the round still claimed elsewhere: leaving them']);
  expect(await mine.rounds.devicesDone(round)).toEqual(['free']);
  await collector.shutdown();
  await mine.close();
  await other.close();
});

it('logs a run that could not start because the database is away as a warning without a stack, and tests the device once it is back', async () => {
  const url = await cluster.createDatabase();
  const mine = await PostgresStore.open(url, { password: cluster.password, reconnectMs: { first: 60_000, max: 60_000 } });
  const round = await mine.rounds.start(new Date());
  // the session is lost: the first claim fails (and asks for a reconnection)
  const admin = await cluster.admin(new URL(url).pathname.slice(1));
  await admin.query('SELECT pg_terminate_backend($1)', [mine.db.identity().pid]);
  await admin.end();
  while (mine.db.connected) await new Promise((r) => setTimeout(r, 10));
  const lines: { level: number; msg: string; err?: unknown; reason?: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const collector = await Collector.open({
    loaded: loadConfigText(
      stringify({
        database: url,
        apiTokenFile: 'token',
        servers: [{ host: '10.8.0.2', port: 5201 }],
        schedule: { cron: '0 2 1 1 *' },
        devices: [{ id: 'd', host: '127.0.0.1', username: 'root', privateKeyFile: 'key' }],
      }),
      join(dir, 'd.yaml'),
    ),
    store: mine,
    connector: new SimulatedConnector({ connectMs: 1, testMs: 5 }),
    logger,
    telemetry: new Telemetry(),
    roundRecheckMs: 50,
  });
  await collector.runner.runRound(round, ['d']);
  const notStarted = lines.filter((l) => l.msg === 'database unreachable: run not started');
  // one warning per look at the round until the session is back (one, or more on a loaded machine)
  expect(notStarted.length).toBeGreaterThanOrEqual(1);
  for (const line of notStarted) {
    expect(line).toMatchObject({ level: 40, reason: 'the PostgreSQL session is lost; reconnecting' });
    expect(line.err).toBeUndefined();
  }
  expect(lines.filter((l) => l.msg === 'run crashed')).toEqual([]);
  expect(await mine.rounds.devicesDone(round)).toEqual(['d']);
  await collector.shutdown();
  await mine.close();
});

it('leaves the round as soon as another collector stores the last device (NOTIFY), not at its next look', async () => {
  const url = await cluster.createDatabase();
  const other = await PostgresStore.open(url, { password: cluster.password });
  const mine = await PostgresStore.open(url, { password: cluster.password });
  const round = await other.rounds.start(new Date());
  const held = await other.runs.start({ device: 'held', trigger: 'schedule', roundId: round, startedAt: new Date() });
  const collector = await Collector.open({
    loaded: loadConfigText(
      stringify({
        database: url,
        apiTokenFile: 'token',
        servers: [{ host: '10.8.0.3', port: 5201 }],
        schedule: { cron: '0 2 1 1 *' },
        devices: ['free', 'held'].map((id) => ({ id, host: '127.0.0.1', username: 'root', privateKeyFile: 'key' })),
      }),
      join(dir, 'n.yaml'),
    ),
    store: mine,
    connector: new SimulatedConnector({ connectMs: 1, testMs: 5 }),
    logger: pino({ level: 'silent' }),
    telemetry: new Telemetry(),
    // the timer alone would look again in a minute
    roundRecheckMs: 60_000,
  });
  const following = collector.runner.runRound(round, ['free', 'held']).then(() => 'left');
  while (!(await mine.rounds.devicesDone(round)).includes('free')) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 100));
  await other.runs.finish(held, okOutcome(Date.now(), 10e6, 20e6));
  const bound = new Promise((r) => setTimeout(() => r('still waiting'), 10_000));
  expect(await Promise.race([following, bound])).toBe('left');
  expect(await mine.rounds.devicesDone(round)).toEqual(['free', 'held']);
  await collector.shutdown();
  await mine.close();
  await other.close();
});
