/**
 * QueryData: one DataResponse per query, never a crash. Each query is validated with the
 * shared query schema, its devices resolved against the collector's inventory, the data
 * fetched from the collector and turned into frames Grafana's panels and its alerting
 * expressions (Reduce, Threshold) accept: one series per frame with unique labels.
 */
import pLimit from 'p-limit';
import { MAX_POINTS_PER_SERIES, type DeviceInfo, type RunRecord, type SeriesColumns } from '../../contract/api.js';
import {
  querySchema,
  type IntervalsQuery,
  type Iperf3Query,
  type LatestQuery,
  type RunsQuery,
  type TimeSeriesQuery,
} from '../../contract/query.js';
import { catalogueEntry, isDerivedMetric, isStoredMetric, LAST_SUCCESS_AGE } from '../../contract/metrics.js';
import { fieldErrors, formatFieldErrors } from '../../contract/settings.js';
import type { CollectorClient } from './collectorClient.js';
import { selectDevices, type DeviceSelection } from './deviceSelection.js';
import { encodeFrame, type DataFrame, type FieldConfig, type FrameMeta } from './frames.js';
import { describeError, QueryError } from './queryErrors.js';

/** Points per series when Grafana sends no maxDataPoints; the most is the collector's bound. */
export const DEFAULT_MAX_POINTS = 1000;
/** Devices per collector request: keeps URLs short for large fleets. */
export const DEVICES_PER_REQUEST = 100;
/** Collector requests one query has in flight at a time. */
const REQUESTS_IN_FLIGHT = 4;
/** Run-history look-ups (one small request per device) in flight at a time. */
const LOOK_BACKS_IN_FLIGHT = 8;
/** A missed nightly run shows as a gap: points further apart than this are not connected. */
export const NIGHTLY_GAP_MS = 36 * 3600 * 1000;

const TIMESERIES_META: FrameMeta = { type: 'timeseries-multi', typeVersion: [0, 1] };
const NUMERIC_META: FrameMeta = { type: 'numeric-multi', typeVersion: [0, 1] };

/** `pluginv2.DataQuery` as grpc-js decodes it. */
export interface DataQueryMessage {
  refId: string;
  maxDataPoints?: number;
  intervalMS?: number;
  timeRange?: { fromEpochMS?: number; toEpochMS?: number } | null;
  json?: Uint8Array | null;
  queryType?: string;
}

/** `pluginv2.DataResponse`. */
export interface DataResponseMessage {
  frames: Uint8Array[];
  error: string;
  status: number;
  errorSource: string;
}

export interface QueryContext {
  client: CollectorClient;
  /** the request came from alerting (header FromAlert: true) */
  fromAlert: boolean;
  now: () => number;
  signal?: AbortSignal;
}

export function parseQuery(message: DataQueryMessage): Iperf3Query {
  let raw: unknown;
  const text = message.json && message.json.length > 0 ? Buffer.from(message.json).toString('utf8') : '{}';
  try {
    raw = JSON.parse(text);
  } catch {
    throw new QueryError(400, 'the query is not valid JSON');
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new QueryError(400, 'the query must be a JSON object');
  const input = { ...(raw as Record<string, unknown>) };
  input.refId = message.refId || input.refId;
  input.queryType ??= message.queryType || 'timeseries';
  const parsed = querySchema.safeParse(input);
  if (!parsed.success) throw new QueryError(400, `invalid query: ${formatFieldErrors(fieldErrors(parsed.error))}`);
  return parsed.data;
}

export async function runQuery(message: DataQueryMessage, ctx: QueryContext): Promise<DataResponseMessage> {
  try {
    const query = parseQuery(message);
    if (query.hide) return { frames: [], error: '', status: 200, errorSource: '' };
    if (ctx.fromAlert && (query.queryType === 'runs' || query.queryType === 'intervals')) {
      throw new QueryError(400, `"${query.queryType}" queries cannot be used in alert rules; use "timeseries" or "latest"`);
    }
    const frames = await framesFor(query, message, ctx);
    return { frames: frames.map(encodeFrame), error: '', status: 200, errorSource: '' };
  } catch (error) {
    const outcome = describeError(error);
    return { frames: [], error: outcome.message, status: outcome.status, errorSource: outcome.errorSource };
  }
}

function framesFor(query: Iperf3Query, message: DataQueryMessage, ctx: QueryContext): Promise<DataFrame[]> {
  switch (query.queryType) {
    case 'timeseries':
      return timeSeriesFrames(query, message, ctx);
    case 'latest':
      return latestFrames(query, message, ctx);
    case 'runs':
      return runsFrames(query, message, ctx);
    case 'intervals':
      return intervalsFrames(query, ctx);
  }
}

/**
 * The query's time range. Grafana always sends one; without it (or with an end of 0, which no
 * picker produces) the last 24 hours. A start of 0 is the epoch, as sent: proto3 cannot tell it
 * from "unset", and a range that ends is a range that starts somewhere.
 */
export function timeRangeOf(message: DataQueryMessage, now: number): { fromMs: number; toMs: number } {
  const toMs = Number(message.timeRange?.toEpochMS) || now;
  const fromMs = message.timeRange?.toEpochMS ? Number(message.timeRange.fromEpochMS ?? 0) : toMs - 24 * 3600 * 1000;
  if (fromMs > toMs) throw new QueryError(400, 'the time range ends before it starts');
  return { fromMs, toMs };
}

export function maxPointsOf(message: DataQueryMessage): number {
  const requested = Number(message.maxDataPoints) || DEFAULT_MAX_POINTS;
  return Math.min(Math.max(1, Math.floor(requested)), MAX_POINTS_PER_SERIES);
}

/** The query's devices, from the light inventory (ids and labels; GET /devices?lastRun=false). */
async function resolveDevices(query: Iperf3Query, ctx: QueryContext): Promise<DeviceSelection> {
  return selectDevices(query.devices, query.labelMatchers, await ctx.client.queryDevices());
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Labels that identify a series: the device, plus server/direction/metric where they split series. */
export function seriesLabels(
  s: { device: string; server: string | null; direction: string | null; metric: string },
  split: { metric: boolean; server: boolean },
): Record<string, string> {
  // The server of a point is not part of a series' identity unless the query splits by it:
  // alert instances must not change when a device is tested against another server.
  return {
    device: s.device,
    ...(split.server && s.server ? { server: s.server } : {}),
    ...(s.direction ? { direction: s.direction } : {}),
    ...(split.metric ? { metric: s.metric } : {}),
  };
}

function metricConfig(metric: string, labels: Record<string, string>): FieldConfig {
  const definition = catalogueEntry(metric);
  const parts = [labels.device, labels.server, labels.direction].filter(Boolean).join(' ');
  return {
    unit: definition?.unit ?? 'none',
    displayNameFromDS: `${parts} ${definition?.displayName ?? metric}`,
  };
}

/** Grafana's data plane: an empty multi frame says "no data" with the kind still known. */
function emptyFrame(refId: string, meta: FrameMeta): DataFrame {
  return { refId, name: refId, meta, fields: [] };
}

async function timeSeriesFrames(query: TimeSeriesQuery, message: DataQueryMessage, ctx: QueryContext): Promise<DataFrame[]> {
  const { fromMs, toMs } = timeRangeOf(message, ctx.now());
  const maxPoints = maxPointsOf(message);
  const selection = await resolveDevices(query, ctx);
  if (selection.devices.length === 0) return [emptyFrame(query.refId, TIMESERIES_META)];
  const groups = chunks(
    selection.devices.map((d) => d.id),
    DEVICES_PER_REQUEST,
  );
  const responses = await pLimit(REQUESTS_IN_FLIGHT).map(groups, (devices) =>
    ctx.client.seriesColumns(
      {
        devices,
        metrics: query.metrics,
        fromMs,
        toMs,
        maxPoints,
        server: query.server,
        direction: query.direction,
        splitByServer: query.splitByServer,
      },
      ctx.signal,
    ),
  );
  const series = responses.flatMap((r) => r.series).filter((s) => s.times.length > 0);
  if (series.length === 0) return [emptyFrame(query.refId, TIMESERIES_META)];
  const split = { metric: query.metrics.length > 1, server: query.splitByServer };
  return series.map((s) => seriesFrame(query.refId, s, split));
}

function seriesFrame(refId: string, s: SeriesColumns, split: { metric: boolean; server: boolean }): DataFrame {
  const { times, values } = sortedColumns(s);
  const labels = seriesLabels(s, split);
  return {
    refId,
    name: s.metric,
    meta: TIMESERIES_META,
    fields: [
      { name: 'time', kind: 'time', values: times },
      {
        name: s.metric,
        kind: 'number',
        values,
        labels,
        config: { ...metricConfig(s.metric, labels), custom: { insertNulls: NIGHTLY_GAP_MS, showPoints: 'always' } },
      },
    ],
  };
}

/** A series' columns as typed arrays in time order (the collector answers them sorted; an older one may not). */
export function sortedColumns(s: Pick<SeriesColumns, 'times' | 'values'>): { times: Float64Array; values: Float64Array } {
  const times = Float64Array.from(s.times);
  const values = Float64Array.from(s.values);
  for (let i = 1; i < times.length; i++) {
    if (times[i - 1] > times[i]) {
      const order = Array.from(times.keys()).sort((a, b) => times[a] - times[b]);
      return { times: Float64Array.from(order, (j) => s.times[j]), values: Float64Array.from(order, (j) => s.values[j]) };
    }
  }
  return { times, values };
}

/**
 * The newest value of each series inside the query's time range: an alert rule over the last
 * 36 h gets no data for a device that stopped being tested, instead of its last value forever.
 */
async function latestFrames(query: LatestQuery, message: DataQueryMessage, ctx: QueryContext): Promise<DataFrame[]> {
  const { fromMs, toMs } = timeRangeOf(message, ctx.now());
  const stored = query.metrics.filter(isStoredMetric);
  const derived = query.metrics.filter(isDerivedMetric);
  // the age of the last success needs the devices' last runs: the full inventory
  const withRuns = derived.includes(LAST_SUCCESS_AGE) ? selectDevices(query.devices, query.labelMatchers, await ctx.client.queryInventory()) : null;
  const selection = withRuns ?? (await resolveDevices(query, ctx));
  if (selection.devices.length === 0) return [emptyFrame(query.refId, NUMERIC_META)];
  const values: { device: string; metric: string; server: string | null; direction: string | null; value: number }[] = [];
  if (stored.length > 0) {
    const groups = chunks(
      selection.devices.map((d) => d.id),
      DEVICES_PER_REQUEST,
    );
    const responses = await pLimit(REQUESTS_IN_FLIGHT).map(groups, (devices) =>
      ctx.client.latest({ devices, metrics: stored, server: query.server, direction: query.direction, fromMs, toMs }, ctx.signal),
    );
    values.push(...responses.flatMap((r) => r.values));
  }
  if (withRuns) {
    const ages = await lastSuccessAges(withRuns.devices, ctx);
    for (const device of withRuns.devices) {
      values.push({ device: device.id, metric: LAST_SUCCESS_AGE, server: null, direction: null, value: ages.get(device.id) as number });
    }
  }
  if (values.length === 0) return [emptyFrame(query.refId, NUMERIC_META)];
  const split = { metric: query.metrics.length > 1, server: query.splitByServer };
  return values.map((v) => {
    const labels = seriesLabels(v, split);
    return {
      refId: query.refId,
      name: v.metric,
      meta: NUMERIC_META,
      fields: [{ name: v.metric, kind: 'number', values: [v.value], labels, config: metricConfig(v.metric, labels) }],
    };
  });
}

/**
 * Seconds since each device's last fully successful run. The inventory's `lastRun` answers
 * for most devices; only devices whose last run failed need a look further back.
 */
async function lastSuccessAges(devices: DeviceInfo[], ctx: QueryContext): Promise<Map<string, number>> {
  const now = ctx.now();
  const successAt = (run: RunRecord): number => Date.parse(run.endedAt ?? run.startedAt);
  const ages = new Map<string, number>();
  const lookBack: DeviceInfo[] = [];
  for (const device of devices) {
    if (device.lastRun?.status === 'ok') ages.set(device.id, (now - successAt(device.lastRun)) / 1000);
    else if (device.lastRun) lookBack.push(device);
    else ages.set(device.id, Number.POSITIVE_INFINITY);
  }
  await pLimit(LOOK_BACKS_IN_FLIGHT).map(lookBack, async (device) => {
    const [run] = await ctx.client.runs({ devices: [device.id], status: ['ok'], limit: 1 }, ctx.signal);
    ages.set(device.id, run ? (now - successAt(run)) / 1000 : Number.POSITIVE_INFINITY);
  });
  return ages;
}

async function runsFrames(query: RunsQuery, message: DataQueryMessage, ctx: QueryContext): Promise<DataFrame[]> {
  const { fromMs, toMs } = timeRangeOf(message, ctx.now());
  const selection = await resolveDevices(query, ctx);
  let runs: RunRecord[] = [];
  if (selection.devices.length > 0) {
    const request = { status: query.status.length > 0 ? query.status : undefined, fromMs, toMs, limit: query.limit };
    if (selection.all) {
      runs = await ctx.client.runs(request, ctx.signal);
    } else {
      const groups = chunks(
        selection.devices.map((d) => d.id),
        DEVICES_PER_REQUEST,
      );
      const results = await pLimit(REQUESTS_IN_FLIGHT).map(groups, (devices) => ctx.client.runs({ ...request, devices }, ctx.signal));
      runs = results.flat();
    }
  }
  runs = runs.sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt) || b.id - a.id).slice(0, query.limit);
  const ms = (iso: string | null): number | null => (iso === null ? null : Date.parse(iso));
  return [
    {
      refId: query.refId,
      name: 'runs',
      meta: { preferredVisualisationType: 'table' },
      fields: [
        { name: 'time', kind: 'time', values: runs.map((r) => ms(r.startedAt)), config: { displayName: 'Started' } },
        { name: 'device', kind: 'string', values: runs.map((r) => r.device), config: { displayName: 'Device' } },
        { name: 'status', kind: 'string', values: runs.map((r) => r.status), config: { displayName: 'Status' } },
        { name: 'errorClass', kind: 'string', values: runs.map((r) => r.errorClass), config: { displayName: 'Error' } },
        { name: 'message', kind: 'string', values: runs.map((r) => r.message), config: { displayName: 'Message' } },
        { name: 'server', kind: 'string', values: runs.map((r) => r.server), config: { displayName: 'Server' } },
        { name: 'trigger', kind: 'string', values: runs.map((r) => r.trigger), config: { displayName: 'Trigger' } },
        {
          name: 'duration',
          kind: 'number',
          values: runs.map((r) => (r.endedAt === null ? null : (Date.parse(r.endedAt) - Date.parse(r.startedAt)) / 1000)),
          config: { displayName: 'Duration', unit: 's' },
        },
        { name: 'tests', kind: 'string', values: runs.map(describeTests), config: { displayName: 'Tests' } },
        { name: 'ended', kind: 'time', values: runs.map((r) => ms(r.endedAt)), config: { displayName: 'Ended' } },
        { name: 'id', kind: 'number', values: runs.map((r) => r.id), config: { displayName: 'Run' } },
        // the device's iperf3, as its tests reported it (docs/iperf3-versions.md: what each version lacks)
        { name: 'iperf3', kind: 'string', values: runs.map((r) => r.tests.find((t) => t.iperfVersion !== null)?.iperfVersion ?? null), config: { displayName: 'iperf3' } },
      ],
    },
  ];
}

function describeTests(run: RunRecord): string {
  return run.tests
    .map((t) => `${t.protocol} ${t.direction} ${t.status}${t.errorClass ? ` (${t.errorClass})` : ''}`)
    .join(', ');
}

async function intervalsFrames(query: IntervalsQuery, ctx: QueryContext): Promise<DataFrame[]> {
  let runId = query.runId;
  if (runId === undefined) {
    const selection = await resolveDevices(query, ctx);
    const device = selection.devices[0];
    if (!device) throw new QueryError(404, 'no device matches the query: pick a device or a run id');
    const recent = await ctx.client.runs({ devices: [device.id], limit: 20 }, ctx.signal);
    const finished = recent.find((r) => r.status !== 'running');
    if (!finished) throw new QueryError(404, `device "${device.id}" has no finished run yet`);
    runId = finished.id;
  }
  const { run, intervals } = await ctx.client.intervals(runId, ctx.signal);
  const groups = new Map<string, typeof intervals>();
  // Omitted seconds (--omit, TCP slow start) are not part of the result, and iperf3 restarts its
  // clock after them: drawn, they would repeat the first timestamps of the real intervals.
  for (const point of intervals.filter((p) => !p.omitted)) {
    const key = `${point.protocol}/${point.direction}`;
    groups.set(key, [...(groups.get(key) ?? []), point]);
  }
  if (groups.size === 0) return [emptyFrame(query.refId, TIMESERIES_META)];
  return [...groups.values()].map((points) => {
    const sorted = [...points].sort((a, b) => a.timeMs - b.timeMs);
    const { protocol, direction } = sorted[0];
    const labels = { device: run.device, protocol, direction, run: String(run.id) };
    return {
      refId: query.refId,
      name: `${protocol} ${direction}`,
      meta: { ...TIMESERIES_META, custom: { runId: run.id, server: run.server } },
      fields: [
        { name: 'time', kind: 'time', values: sorted.map((p) => p.timeMs) },
        {
          name: 'bits_per_second',
          kind: 'number',
          values: sorted.map((p) => p.bitsPerSecond),
          labels,
          config: { unit: 'bps', displayNameFromDS: `${protocol.toUpperCase()} ${direction}` },
        },
      ],
    };
  });
}
