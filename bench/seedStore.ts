/**
 * Fills a collector database with a fleet's history quickly: rows inserted straight into the
 * store's own schema (created by SqliteStore.open, i.e. the real migrations), one transaction
 * per batch. Each run looks like a default nightly run: TCP and UDP, upload and download
 * (4 test rows, no raw JSON: the query path never reads it) and the 20 metric rows the
 * collector writes for it.
 */
import Database from 'better-sqlite3';
import { SqliteStore } from '../collector/store/sqlite/sqliteStore.js';
import type { MetricName } from '../contract/metrics.js';

export interface SeedPlan {
  devices: string[];
  servers: string[];
  /** one run per device at each of these times (plus the device's offset) */
  times: number[];
  /** devices start this far apart within a round (a round is sequential per server) */
  deviceSpacingMs: number;
  trigger: 'schedule' | 'manual';
}

const PER_DIRECTION: MetricName[] = [
  'tcp_received_bps',
  'tcp_sent_bps',
  'tcp_bytes',
  'tcp_retransmits',
  'udp_bps',
  'udp_jitter_ms',
  'udp_lost_packets',
  'udp_packets',
  'udp_lost_percent',
];
export const METRIC_ROWS_PER_RUN = PER_DIRECTION.length * 2 + 2;

/** Deterministic noise in [0, 1): the same database every time. */
function noise(a: number, b: number): number {
  const x = Math.sin(a * 12.9898 + b * 78.233) * 43758.5453;
  return x - Math.floor(x);
}

export function seedRuns(databasePath: string, plans: SeedPlan[]): { runs: number; metricRows: number } {
  void SqliteStore.open(databasePath).close(); // schema by the real migrations (SQLite closes synchronously)
  const db = new Database(databasePath);
  db.pragma('synchronous = OFF');
  // room to sort when the indexes are rebuilt
  db.pragma('cache_size = -1048576');
  // Filling indexes row by row in this order is slow (random inserts into three B-trees):
  // drop the schema's indexes, insert, then recreate them exactly as the migrations defined them.
  const indexes = db
    .prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('runs', 'tests', 'metrics')")
    .pluck()
    .all() as string[];
  for (const sql of indexes) db.exec(`DROP INDEX ${/^CREATE INDEX (\S+)/.exec(sql)?.[1]}`);
  const insertRun = db.prepare(
    "INSERT INTO runs (device, server, trigger, status, started_at, ended_at) VALUES (?, ?, ?, 'ok', ?, ?)",
  );
  const insertTest = db.prepare(
    "INSERT INTO tests (run_id, protocol, direction, server, status, started_at, ended_at, iperf_version) VALUES (?, ?, ?, ?, 'ok', ?, ?, '3.12')",
  );
  const insertMetric = db.prepare(
    'INSERT INTO metrics (run_id, device, server, direction, name, value, time_ms, failed) VALUES (?, ?, ?, ?, ?, ?, ?, 0)',
  );
  let runs = 0;
  let metricRows = 0;
  const batch = db.transaction((plan: SeedPlan, time: number, timeIndex: number) => {
    plan.devices.forEach((device, d) => {
      const server = plan.servers[d % plan.servers.length];
      const start = time + Math.floor(d / plan.servers.length) * plan.deviceSpacingMs;
      const runId = Number(insertRun.run(device, server, plan.trigger, start, start + 42_000).lastInsertRowid);
      runs++;
      let at = start + 1000;
      for (const protocol of ['tcp', 'udp'] as const) {
        for (const direction of ['upload', 'download'] as const) {
          insertTest.run(runId, protocol, direction, server, at, at + 10_000);
          at += 10_500;
        }
      }
      const link = 20e6 + (d % 50) * 10e6; // 20..510 Mbit/s per device
      for (const direction of ['upload', 'download'] as const) {
        const r = noise(d + (direction === 'upload' ? 0 : 0.5), timeIndex);
        const received = link * (0.85 + 0.1 * r);
        const values: Record<string, number> = {
          tcp_received_bps: received,
          tcp_sent_bps: received * 1.01,
          tcp_bytes: (received / 8) * 10,
          tcp_retransmits: Math.floor(r * 40),
          udp_bps: 29.5e6 + r * 0.5e6,
          udp_jitter_ms: 0.05 + r,
          udp_lost_packets: Math.floor(r * 20),
          udp_packets: 25_700,
          udp_lost_percent: (Math.floor(r * 20) / 25_700) * 100,
        };
        for (const name of PER_DIRECTION) insertMetric.run(runId, device, server, direction, name, values[name], start);
      }
      insertMetric.run(runId, device, server, null, 'result', 1, start);
      insertMetric.run(runId, device, server, null, 'duration_s', 42, start);
      metricRows += METRIC_ROWS_PER_RUN;
    });
  });
  for (const plan of plans) plan.times.forEach((time, i) => batch(plan, time, i));
  for (const sql of indexes) db.exec(sql);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return { runs, metricRows };
}
