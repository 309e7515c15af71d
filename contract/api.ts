/**
 * Payloads of the collector's HTTP API (docs/api.md), shared by the collector that serves
 * them and the plugin backend that reads them, with the schemas of the values both check.
 * Times are ISO-8601 strings in UTC unless the name ends in `Ms` (Unix epoch milliseconds).
 */
import { z } from 'zod';
import type { Direction, MetricName } from './metrics.js';
import type { Settings } from './settings.js';

export const API_PREFIX = '/api/v1';

/** Most points per series one GET /api/v1/series returns; the plugin never asks for more. */
export const MAX_POINTS_PER_SERIES = 10_000;

/** Most runs one GET /api/v1/runs returns; the query model and the editors use the same bound. */
export const MAX_RUNS_PER_REQUEST = 1000;

/** Runs one request returns when it names no limit: the collector's API and the plugin's `runs` resource. */
export const DEFAULT_RUNS_PER_REQUEST = 100;

const LIMIT_RANGE = `must be a whole number from 1 to ${MAX_RUNS_PER_REQUEST}`;
/** How many runs to list (GET /api/v1/runs, the plugin's `runs` resource, the run-log query). */
export const runsLimitSchema = z
  .number({ error: LIMIT_RANGE })
  .int(LIMIT_RANGE)
  .min(1, LIMIT_RANGE)
  .max(MAX_RUNS_PER_REQUEST, `at most ${MAX_RUNS_PER_REQUEST} runs per request`);

export const RUN_STATUSES = ['running', 'ok', 'failed', 'skipped', 'interrupted'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const runStatusSchema = z.enum(RUN_STATUSES, {
  error: (issue) => `"${String(issue.input)}" is not a run status; use one of ${RUN_STATUSES.join(', ')}`,
});

export const ERROR_CLASSES = [
  'unreachable', // SSH TCP connect failed / timed out: run is `skipped`, no zeros written
  'ssh-auth',
  'host-key-mismatch',
  'iperf3-missing',
  'server-busy',
  'server-unreachable',
  'iperf3-auth',
  'timeout',
  'parse-error',
  'interrupted', // the collector stopped (crash, restart) while the run was in progress
  'iperf3-error', // any other error iperf3 reported in its JSON `error` key
  'output-too-large', // the device printed more than the collector keeps (16 MiB): the command was stopped
  'internal',
] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];

export const TRIGGERS = ['schedule', 'manual'] as const;
export type Trigger = (typeof TRIGGERS)[number];

export type TestProtocol = 'tcp' | 'udp';

export interface DeviceInfo {
  id: string;
  host: string;
  port: number;
  labels: Record<string, string>;
  /** named pool, or null for the default pool */
  pool: string | null;
  enabled: boolean;
  /** `file`: listed in the collector's configuration file (edit it to change the device); `api`: added through the API. Absent from older collectors. */
  managedBy?: 'file' | 'api';
  lastRun: RunRecord | null;
}

/** A device as GET /devices?lastRun=false lists it: without its last run (ids and labels resolve queries). */
export type DeviceEntry = Omit<DeviceInfo, 'lastRun'>;

export interface ServerInfo {
  host: string;
  port: number;
  label?: string;
  /** `host:port`, the value stored in runs and used as the `server` label */
  key: string;
  /** named pool, or null for the default pool */
  pool: string | null;
  busy: boolean;
  /** seconds this server has spent running tests since the collector started */
  busySeconds: number;
}

export interface ServerHealth extends ServerInfo {
  /** a TCP connection to the iperf3 port succeeded from the collector */
  reachable: boolean;
  error?: string;
}

/** The test a running run is in, as the collector that runs it knows it. */
export interface CurrentTest {
  protocol: TestProtocol;
  direction: Direction;
  /** 1-based position among the run's planned tests, and how many are planned */
  index: number;
  of: number;
  startedAt: string;
}

export interface RunRecord {
  id: number;
  device: string;
  /** `host:port` of the iperf3 server, null when no server was taken (skipped) */
  server: string | null;
  trigger: Trigger;
  status: RunStatus;
  errorClass: ErrorClass | null;
  message: string | null;
  startedAt: string;
  endedAt: string | null;
  tests: TestRecord[];
  /** only on a `running` run, when the collector that answers is the one running it */
  current?: CurrentTest;
}

export interface TestRecord {
  id: number;
  protocol: TestProtocol;
  direction: Direction;
  status: 'ok' | 'failed';
  errorClass: ErrorClass | null;
  message: string | null;
  /** the device's iperf3 version as the test reported it (e.g. "3.12"); null when it printed none */
  iperfVersion: string | null;
  startedAt: string;
  endedAt: string;
}

export interface RunsResponse {
  runs: RunRecord[];
}

/** [time (epoch ms), value, failed (1 when written for a failed test)] */
export type SeriesPoint = [number, number, 0 | 1];

export interface Series {
  device: string;
  metric: MetricName;
  /** set when the request asked to split by server */
  server: string | null;
  direction: Direction | null;
  points: SeriesPoint[];
}

/** GET /api/v1/series: which points, for which devices (the store also takes 'all'). */
export interface SeriesParams {
  devices: string[];
  metrics: MetricName[];
  fromMs: number;
  toMs: number;
  maxPoints: number;
  /** only points measured against this server (`host:port`) */
  server?: string;
  /** only this direction; per-run metrics (direction null) are always included */
  direction?: Direction;
  /** one series per server instead of one per device+metric+direction */
  splitByServer?: boolean;
}

/** GET /api/v1/latest */
export interface LatestParams {
  devices: string[];
  metrics: MetricName[];
  server?: string;
  direction?: Direction;
  /** only values measured at or after this time (the start of the panel's or rule's range) */
  fromMs?: number;
  /** the newest value at or before this time (the end of the range) */
  toMs?: number;
}

export interface SeriesResponse {
  fromMs: number;
  toMs: number;
  maxPoints: number;
  series: Series[];
}

/** A series as GET /series?format=columns answers it: one array per column, in time order. */
export interface SeriesColumns {
  device: string;
  metric: MetricName;
  server: string | null;
  direction: Direction | null;
  /** epoch ms (typed arrays when read from `format=binary`) */
  times: number[] | Float64Array;
  values: number[] | Float64Array;
  /** 1 where the point was written for a failed test */
  failed: (0 | 1)[] | Uint8Array;
}

export interface SeriesColumnsResponse {
  fromMs: number;
  toMs: number;
  maxPoints: number;
  format: 'columns';
  series: SeriesColumns[];
}

/** The columns of one series (points sorted by time first). */
export function seriesToColumns(s: Series): SeriesColumns {
  let sorted = true;
  for (let i = 1; i < s.points.length && sorted; i++) sorted = s.points[i - 1][0] <= s.points[i][0];
  const points = sorted ? s.points : [...s.points].sort((a, b) => a[0] - b[0]);
  const n = points.length;
  const times = new Array<number>(n);
  const values = new Array<number>(n);
  const failed = new Array<0 | 1>(n);
  for (let i = 0; i < n; i++) {
    const p = points[i];
    times[i] = p[0];
    values[i] = p[1];
    failed[i] = p[2];
  }
  return { device: s.device, metric: s.metric, server: s.server, direction: s.direction, times, values, failed };
}

export interface LatestValue {
  device: string;
  metric: MetricName;
  server: string | null;
  direction: Direction | null;
  timeMs: number;
  value: number;
  failed: 0 | 1;
}

export interface LatestResponse {
  values: LatestValue[];
}

export interface IntervalPoint {
  protocol: TestProtocol;
  direction: Direction;
  /** seconds since the start of the test */
  start: number;
  end: number;
  /** absolute time of the interval end (epoch ms) */
  timeMs: number;
  bitsPerSecond: number;
  omitted: boolean;
}

export interface IntervalsResponse {
  run: RunRecord;
  intervals: IntervalPoint[];
}

export interface HealthResponse {
  status: 'ok';
  version: string;
  startedAt: string;
  devices: number;
  enabledDevices: number;
  servers: ServerHealth[];
  /** next scheduled run (ISO), null when the schedule is off */
  nextRun: string | null;
  lastScheduledRun: string | null;
  running: boolean;
  queueLength: number;
  settingsSource: 'file' | 'api';
}

export interface SettingsResponse {
  settings: Settings;
  source: 'file' | 'api';
  updatedAt: string | null;
}

/** POST /api/v1/runs: test these devices now. */
export const runNowRequestSchema = z.strictObject(
  {
    devices: z
      .array(z.string().trim().min(1, 'a device id cannot be empty').max(200, 'a device id has at most 200 characters'), {
        error: 'required: a list of device ids, e.g. ["r1"]',
      })
      .min(1, 'name at least one device'),
  },
  { error: (issue) => (issue.code === 'invalid_type' ? 'send a JSON object such as {"devices": ["r1"]}' : undefined) },
);
export type RunNowRequest = z.infer<typeof runNowRequestSchema>;

export interface RunNowResponse {
  queued: string[];
}

/** The plugin's `runs` POST resource (Run now): what the collector queued, and the newest run id before. */
export interface RunNowResourceResponse extends RunNowResponse {
  /** runs of the queued devices with a greater id are the ones this request started */
  after: number;
}

/** Most devices one Run now starts and follows (the plugin's `runs` and `runs/progress` resources). */
export const MAX_RUN_NOW_DEVICES = 100;

/** Metrics the plugin's `runs/progress` resource reports for a run that ended well. */
export const RUN_RESULT_METRICS = ['tcp_received_bps', 'udp_jitter_ms', 'udp_lost_percent'] as const satisfies readonly MetricName[];

export const RUN_PROGRESS_STATES = ['queued', 'running', 'done', 'failed'] as const;
export type RunProgressState = (typeof RUN_PROGRESS_STATES)[number];

/** One device of a Run now: queued (no run yet), running, done (ok) or failed (failed, skipped, interrupted). */
export interface RunProgress {
  device: string;
  state: RunProgressState;
  /** the run this Run now started; null while queued */
  run: RunRecord | null;
  /** when done: the run's values of RUN_RESULT_METRICS */
  results: LatestValue[];
}

/** The plugin's `runs/progress?device=&after=` resource. */
export interface RunProgressResponse {
  devices: RunProgress[];
}

export interface ApiErrorBody {
  error: string;
  message: string;
  fields?: { field: string; message: string }[];
}
