/**
 * Where the CPU goes per test in a scheduled round (issue 16): one round of this collector at
 * the largest fleet size of the scheduling section, under V8's sampling profiler (node:inspector,
 * as `node --cpu-prof` does), every sample charged to the innermost frame of a known part of the
 * collector: server registry, store, parser, logging, telemetry, dispatcher, device run.
 */
import { Session } from 'node:inspector/promises';
import { startPostgresCluster } from '../tests/support/postgresCluster.js';
import { table, type SectionResult } from './report.js';
import { FLEET_TIMING, fleetSizes, runOurs, type BenchEngine } from './scheduling.js';
import { fixed } from './stats.js';

interface CallFrame {
  functionName: string;
  url: string;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const IDLE = 'idle';
const STORE = 'store: runs.start and runs.finish (on PostgreSQL also server locks)';
/** first match from the sampled frame outwards wins */
const PARTS: [string, (f: CallFrame) => boolean][] = [
  [IDLE, (f) => f.functionName === '(idle)'],
  ['garbage collection', (f) => f.functionName === '(garbage collector)'],
  ['server registry (acquireFree, waking waiters)', (f) => /dispatch\/serverRegistry|async-mutex/.test(f.url)],
  [STORE, (f) => /store\/(sqlite|postgres|groupCommit)|better-sqlite3|node_modules\/(pg|pg-protocol|pg-pool|pg-types)\//.test(f.url)],
  ['iperf3 JSON parse', (f) => /iperf3\/parse/.test(f.url)],
  ['logging (pino)', (f) => /pino/.test(f.url)],
  ['telemetry', (f) => /telemetry|prom-client/.test(f.url)],
  ['run progress (GET /api/v1/runs)', (f) => /runProgress/.test(f.url)],
  ['dispatcher queue', (f) => /dispatch\/dispatcher/.test(f.url)],
  ['device run and SSH bookkeeping', (f) => /dispatch\/(deviceRun|runner)|\/ssh\//.test(f.url)],
  ['simulated devices (the bench itself)', (f) => /simulatedDevices/.test(f.url)],
  ['setup: device config (YAML), run-log read', (f) => /collectorConfig|config\/|yaml|zod|bench\/scheduling/.test(f.url)],
];
const OTHER = 'other: timers, promises, Node.js internals';

/**
 * ms of main-thread CPU per test at 10,000 devices on 100 servers before the registry woke one
 * waiter per release (the code of issue 16, `node --cpu-prof` on the same round, same charging).
 */
const BEFORE_MS_PER_TEST: Record<string, number> = {
  'server registry (acquireFree, waking waiters)': 0.604,
  [STORE]: 0.263,
  'garbage collection': 0.121,
  'setup: device config (YAML), run-log read': 0.09,
  [OTHER]: 0.054,
  'iperf3 JSON parse': 0.023,
  'device run and SSH bookkeeping': 0.014,
  'dispatcher queue': 0.006,
  telemetry: 0.005,
  'simulated devices (the bench itself)': 0.003,
  'run progress (GET /api/v1/runs)': 0.002,
  'logging (pino)': 0.001,
};
const BEFORE_TOTAL_MS_PER_TEST = 1.186;

/** CPU microseconds per part (idle included, under 'idle'). */
export function chargeSamples(profile: CpuProfile): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const parts = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    let part = OTHER;
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const hit = PARTS.find(([, match]) => match((byId.get(cur) as ProfileNode).callFrame));
      if (hit) {
        part = hit[0];
        break;
      }
    }
    parts.set(part, (parts.get(part) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  return parts;
}

/** ms of main-thread CPU per test in the previous report (5 December 2026, SQLite, 10,000 devices on 100 servers). */
const PREVIOUS_MS_PER_TEST: Record<string, number> = {
  [STORE]: 0.229,
  'setup: device config (YAML), run-log read': 0.062,
  'garbage collection': 0.05,
  [OTHER]: 0.009,
  'server registry (acquireFree, waking waiters)': 0.008,
  'iperf3 JSON parse': 0.007,
  'device run and SSH bookkeeping': 0.006,
  'simulated devices (the bench itself)': 0.001,
  'dispatcher queue': 0.001,
  telemetry: 0.001,
  'run progress (GET /api/v1/runs)': 0.001,
  'logging (pino)': 0,
};
const PREVIOUS_TOTAL_MS_PER_TEST = 0.376;

function figure(table: Record<string, number>, part: string): string {
  const v = table[part];
  return v === undefined ? '' : `${fixed(v, 3)} ms`;
}

interface Profiled {
  parts: Map<string, number>;
  total: number;
  busy: number;
  tests: number;
  ratio: number;
  writesPerTransaction: { starts: number; finishes: number } | null;
}

async function profileRound(size: { devices: number; servers: number }, engine: BenchEngine): Promise<Profiled> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  let profile: CpuProfile;
  let tests: number;
  let ratio: number;
  let writesPerTransaction: Profiled['writesPerTransaction'];
  try {
    const m = await runOurs({ ...size, timing: FLEET_TIMING, repetitions: 1 }, engine);
    tests = m.tests;
    ratio = m.makespanMs / m.idealMs;
    writesPerTransaction = m.writesPerTransaction;
  } finally {
    profile = ((await session.post('Profiler.stop')) as { profile: CpuProfile }).profile;
    session.disconnect();
  }
  const parts = chargeSamples(profile);
  const total = [...parts.values()].reduce((a, b) => a + b, 0);
  return { parts, total, busy: total - (parts.get(IDLE) ?? 0), tests, ratio, writesPerTransaction };
}

export async function benchSchedulingProfile(_options: unknown, log: (line: string) => void): Promise<SectionResult> {
  const size = fleetSizes().at(-1) as { devices: number; servers: number };
  const sqlite = await profileRound(size, { kind: 'sqlite' });
  log(`scheduling profile, SQLite: ${fixed(sqlite.busy / 1000 / sqlite.tests, 3)} ms of main-thread CPU per test`);
  const cluster = await startPostgresCluster();
  let postgres: Profiled;
  try {
    postgres = await profileRound(size, { kind: 'postgres', cluster });
  } finally {
    cluster.destroy();
  }
  log(`scheduling profile, PostgreSQL: ${fixed(postgres.busy / 1000 / postgres.tests, 3)} ms of main-thread CPU per test`);
  const batches = (p: Profiled) =>
    p.writesPerTransaction ? `${fixed(p.writesPerTransaction.starts, 1)} starts and ${fixed(p.writesPerTransaction.finishes, 1)} finishes per transaction` : 'not measured';
  const perTest = (p: Profiled, part: string) => `${fixed((p.parts.get(part) ?? 0) / 1000 / p.tests, 3)} ms`;
  const share = (p: Profiled, part: string) => `${fixed((100 * (p.parts.get(part) ?? 0)) / p.busy, 1)} %`;
  const rows = [...sqlite.parts]
    .filter(([part]) => part !== IDLE)
    .sort((a, b) => b[1] - a[1])
    .map(([part, us]) => [
      part,
      `${fixed(us / 1e6, 2)} s`,
      share(sqlite, part),
      perTest(sqlite, part),
      figure(PREVIOUS_MS_PER_TEST, part),
      figure(BEFORE_MS_PER_TEST, part),
      perTest(postgres, part),
      share(postgres, part),
    ]);
  rows.push([
    '**main thread busy**',
    `${fixed(sqlite.busy / 1e6, 2)} s`,
    '100 %',
    `**${fixed(sqlite.busy / 1000 / sqlite.tests, 3)} ms**`,
    `${fixed(PREVIOUS_TOTAL_MS_PER_TEST, 3)} ms`,
    `${fixed(BEFORE_TOTAL_MS_PER_TEST, 3)} ms`,
    `**${fixed(postgres.busy / 1000 / postgres.tests, 3)} ms**`,
    '100 %',
  ]);
  const idle = (p: Profiled) => `${fixed((100 * (p.parts.get(IDLE) ?? 0)) / p.total, 1)} % of the ${fixed(p.total / 1e6, 1)} s`;
  const markdown = [
    `One round of ${size.devices} devices on ${size.servers} servers per store (tests ${FLEET_TIMING.testMs} ms, ${sqlite.tests} tests on SQLite,`,
    `${postgres.tests} on PostgreSQL; ${fixed(sqlite.ratio, 3)}x and ${fixed(postgres.ratio, 3)}x ideal under the profiler), each under V8's sampling profiler;`,
    `the main thread was idle ${idle(sqlite)} on SQLite and ${idle(postgres)} on PostgreSQL. Each sample is charged to the`,
    'innermost frame of a known part ("store" is the store\'s own code, better-sqlite3 and node-postgres). PostgreSQL\'s own',
    'processes are not in this profile (see "PostgreSQL CPU per test" in the fleet table). The bench logs at level silent: at info the',
    'collector writes one line per run, not per test.',
    `\`BENCH_SCHEDULING_LARGE=1 npm run bench -- --only scheduling-profile\` profiles 10,000 devices on 100 servers.`,
    '"Previous report" is the SQLite figure of the report before this one. "Before (issue 16)": the code of issue 16, where every',
    'release woke every waiting device to rescan every server (0.6 ms per test at 100 servers, half of the busy CPU).',
    '',
    table(
      ['part', 'SQLite: CPU', 'share of busy CPU', 'per test', 'per test, previous report', 'per test before (issue 16)', 'PostgreSQL: per test', 'share of busy CPU'],
      rows,
    ),
    '',
    `- The hot path's writes are group-committed (collector/store/groupCommit.ts): runs.start and runs.finish calls of one turn of the event`,
    `  loop, or arriving while a batch commits, share one transaction (here ${batches(sqlite)} on SQLite, ${batches(postgres)} on PostgreSQL),`,
    '  each caller answered after the commit. On PostgreSQL a batch is a fixed number of statements (arrays and unnest) whatever its size,',
    "  a server lock's release and its NOTIFY are one round trip on the collector's session, and a collector no longer wakes every",
    '  waiting device to rescan every server on each release (nor on its own NOTIFY). The fleet table above measures the group commit',
    '  side by side (`maxWriteBatch: 1`).',
    `- What is left on SQLite (${share(sqlite, STORE)} of the busy main thread): SQLite itself, which runs in the collector's process, inserting`,
    "  each test's raw JSON, its metrics with their covering index and its intervals. A writer thread would take it off the event loop but",
    '  not off the 2 cores; fewer rows per test (intervals and raw JSON kept compressed, or in one row per run) would cut it.',
    `- On PostgreSQL the same writes are done by the server's processes (the "PostgreSQL CPU per test" of the fleet table), not by this thread.`,
  ].join('\n');
  return {
    title: 'Scheduling: where the CPU goes per test',
    markdown,
    summary: [
      `scheduling profile (${size.devices} devices on ${size.servers} servers): ${fixed(sqlite.busy / 1000 / sqlite.tests, 3)} ms of main-thread CPU per test on SQLite ` +
        `(previous report ${fixed(PREVIOUS_TOTAL_MS_PER_TEST, 3)} ms), ${fixed(postgres.busy / 1000 / postgres.tests, 3)} ms on PostgreSQL`,
    ],
  };
}
