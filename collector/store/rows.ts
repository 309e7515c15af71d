/**
 * The rows both stores read (rounds, runs, tests, metrics) and their mapping to records: one
 * definition, so SQLite and PostgreSQL answer the same records. Only the SQL differs per engine.
 */
import type { Direction, MetricName } from '../../contract/metrics.js';
import type { ErrorClass, LatestValue, RunRecord, RunStatus, TestProtocol, TestRecord, Trigger } from '../../contract/api.js';
import type { RoundRecord, RoundStatus } from './store.js';

export interface RunRow {
  id: number;
  device: string;
  server: string | null;
  trigger: Trigger;
  status: RunStatus;
  error_class: ErrorClass | null;
  message: string | null;
  started_at: number;
  ended_at: number | null;
}

export interface TestRow {
  id: number;
  run_id: number;
  protocol: TestProtocol;
  direction: Direction;
  status: 'ok' | 'failed';
  error_class: ErrorClass | null;
  message: string | null;
  started_at: number;
  ended_at: number;
  iperf_version: string | null;
}

export const RUN_COLUMNS = 'id, device, server, trigger, status, error_class, message, started_at, ended_at';
export const TEST_COLUMNS = 'id, run_id, protocol, direction, status, error_class, message, started_at, ended_at, iperf_version';

const iso = (ms: number): string => new Date(ms).toISOString();

/** Run records with their tests; `testRows` ordered by run, then test id. */
export function runRecords(rows: RunRow[], testRows: TestRow[]): RunRecord[] {
  const tests = new Map<number, TestRecord[]>();
  for (const t of testRows) {
    const list = tests.get(t.run_id) ?? [];
    list.push({
      id: t.id,
      protocol: t.protocol,
      direction: t.direction,
      status: t.status,
      errorClass: t.error_class,
      iperfVersion: t.iperf_version,
      message: t.message,
      startedAt: iso(t.started_at),
      endedAt: iso(t.ended_at),
    });
    tests.set(t.run_id, list);
  }
  return rows.map((r) => ({
    id: r.id,
    device: r.device,
    server: r.server,
    trigger: r.trigger,
    status: r.status,
    errorClass: r.error_class,
    message: r.message,
    startedAt: iso(r.started_at),
    endedAt: r.ended_at === null ? null : iso(r.ended_at),
    tests: tests.get(r.id) ?? [],
  }));
}

export interface RoundRow {
  id: number;
  planned_at: number;
  started_at: number;
  ended_at: number | null;
  status: RoundStatus;
}

export function roundRecord(row: RoundRow): RoundRecord {
  return {
    id: row.id,
    plannedAt: new Date(row.planned_at),
    startedAt: new Date(row.started_at),
    endedAt: row.ended_at === null ? null : new Date(row.ended_at),
    status: row.status,
  };
}

/** A metrics row as both stores select it, in array form: device, name, direction, server, time_ms, value, failed. */
export type MetricRow = [device: string, name: MetricName, direction: Direction | null, server: string | null, timeMs: number, value: number, failed: 0 | 1];

export function latestValue([device, metric, direction, server, timeMs, value, failed]: MetricRow): LatestValue {
  return { device, metric, server, direction, timeMs, value, failed };
}

