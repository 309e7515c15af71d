/**
 * Schemas of the collector API's answers, typed against the payload interfaces of api.ts. The
 * collector's routes serialize through them (an answer that breaks its contract is a 500, never
 * a half-valid reply), the OpenAPI document publishes them, and the plugin backend parses every
 * reply with them, so a collector of another version is named instead of crashing a panel.
 */
import { z } from 'zod';
import {
  ERROR_CLASSES,
  type ApiErrorBody,
  RUN_STATUSES,
  TRIGGERS,
  type DeviceEntry,
  type DeviceInfo,
  type HealthResponse,
  type IntervalsResponse,
  type LatestResponse,
  type LatestValue,
  RUN_PROGRESS_STATES,
  type RunNowResourceResponse,
  type RunProgressResponse,
  type RunNowResponse,
  type RunRecord,
  type RunsResponse,
  type SeriesResponse,
  type SeriesColumnsResponse,
  MAX_POINTS_PER_SERIES,
  type ServerHealth,
  type ServerInfo,
  type SettingsResponse,
  type TestRecord,
} from './api.js';
import { deviceConfigSchema, type DeviceRecord } from './devices.js';
import { DIRECTIONS, METRIC_NAMES } from './metrics.js';
import { settingsSchema } from './settings.js';

const iso = z.string().describe('ISO-8601 time in UTC');
const protocol = z.enum(['tcp', 'udp']);
const direction = z.enum(DIRECTIONS);
const errorClass = z.enum(ERROR_CLASSES).nullable();

export const testRecordSchema: z.ZodType<TestRecord> = z.object({
  id: z.number().int(),
  protocol,
  direction,
  status: z.enum(['ok', 'failed']),
  errorClass,
  message: z.string().nullable(),
  iperfVersion: z.string().nullable(),
  startedAt: iso,
  endedAt: iso,
});

export const runRecordSchema: z.ZodType<RunRecord> = z.object({
  id: z.number().int(),
  device: z.string(),
  server: z.string().nullable(),
  trigger: z.enum(TRIGGERS),
  status: z.enum(RUN_STATUSES),
  errorClass,
  message: z.string().nullable(),
  startedAt: iso,
  endedAt: iso.nullable(),
  tests: z.array(testRecordSchema),
  current: z
    .object({ protocol, direction, index: z.number().int().min(1), of: z.number().int().min(1), startedAt: iso })
    .optional()
    .describe('the test a running run is in (only from the collector that runs it)'),
});

const deviceEntryShape = {
  id: z.string(),
  host: z.string(),
  port: z.number().int(),
  labels: z.record(z.string(), z.string()),
  pool: z.string().nullable(),
  enabled: z.boolean(),
  managedBy: z.enum(['file', 'api']).optional(),
};
export const deviceInfoSchema: z.ZodType<DeviceInfo> = z.object({ ...deviceEntryShape, lastRun: runRecordSchema.nullable() });
/** A device of GET /devices?lastRun=false (an older collector's `lastRun`, always sent, is dropped unread). */
export const deviceEntrySchema: z.ZodType<DeviceEntry> = z.object(deviceEntryShape);

const serverInfoShape = {
  host: z.string(),
  port: z.number().int(),
  label: z.string().optional(),
  key: z.string(),
  pool: z.string().nullable(),
  busy: z.boolean(),
  busySeconds: z.number(),
};
export const serverInfoSchema: z.ZodType<ServerInfo> = z.object(serverInfoShape);
export const serverHealthSchema: z.ZodType<ServerHealth> = z.object({ ...serverInfoShape, reachable: z.boolean(), error: z.string().optional() });

export const healthResponseSchema: z.ZodType<HealthResponse> = z.object({
  status: z.literal('ok'),
  version: z.string(),
  startedAt: iso,
  devices: z.number().int(),
  enabledDevices: z.number().int(),
  servers: z.array(serverHealthSchema),
  nextRun: iso.nullable(),
  lastScheduledRun: iso.nullable(),
  running: z.boolean(),
  queueLength: z.number().int(),
  settingsSource: z.enum(['file', 'api']),
});

export const devicesResponseSchema: z.ZodType<{ devices: DeviceInfo[] }> = z.object({ devices: z.array(deviceInfoSchema) });
export const deviceEntriesResponseSchema: z.ZodType<{ devices: DeviceEntry[] }> = z.object({ devices: z.array(deviceEntrySchema) });
const managedBy = z.enum(['file', 'api']);
export const deviceRecordSchema: z.ZodType<DeviceRecord> = z.object({ device: deviceConfigSchema, managedBy });
export const deviceRecordsResponseSchema: z.ZodType<{ devices: DeviceRecord[] }> = z.object({ devices: z.array(deviceRecordSchema) });
export const deviceRemovedResponseSchema: z.ZodType<DeviceRemovedResponse> = z.object({ removed: z.string(), history: z.enum(['kept', 'deleted']) });
export interface DeviceRemovedResponse {
  removed: string;
  history: 'kept' | 'deleted';
}
export const serversResponseSchema: z.ZodType<{ servers: ServerInfo[] }> = z.object({ servers: z.array(serverInfoSchema) });
export const runsResponseSchema: z.ZodType<RunsResponse> = z.object({ runs: z.array(runRecordSchema) });
export const runNowResponseSchema: z.ZodType<RunNowResponse> = z.object({ queued: z.array(z.string()) });

export const settingsResponseSchema: z.ZodType<SettingsResponse> = z.object({
  settings: settingsSchema,
  source: z.enum(['file', 'api']),
  updatedAt: iso.nullable(),
});

/** The range every form of a GET /series answer starts with (points, columns, the binary form's header). */
export const seriesHeadShape = {
  fromMs: z.number(),
  toMs: z.number(),
  maxPoints: z.number().int(),
};

/** What a series is, in every form of a GET /series answer. */
export const seriesIdentityShape = {
  device: z.string(),
  metric: z.enum(METRIC_NAMES),
  server: z.string().nullable(),
  direction: direction.nullable(),
};

export const seriesResponseSchema: z.ZodType<SeriesResponse> = z.object({
  ...seriesHeadShape,
  series: z.array(
    z.object({
      ...seriesIdentityShape,
      points: z.array(z.tuple([z.number(), z.number(), z.union([z.literal(0), z.literal(1)])])),
    }),
  ),
});

/** GET /series?format=columns as the collector answers it and the OpenAPI document describes it. */
export const seriesColumnsResponseSchema: z.ZodType<SeriesColumnsResponse> = z.object({
  ...seriesHeadShape,
  format: z.literal('columns'),
  series: z.array(
    z.object({
      ...seriesIdentityShape,
      times: z.array(z.number()).max(MAX_POINTS_PER_SERIES).describe('epoch ms, ascending'),
      values: z.array(z.number()).max(MAX_POINTS_PER_SERIES).describe('one value per time'),
      failed: z.array(z.union([z.literal(0), z.literal(1)])).max(MAX_POINTS_PER_SERIES).describe('1 where the point was written for a failed test'),
    }),
  ),
});

/** GET /series?format=binary in the OpenAPI document (the layout is in docs/api.md, "Binary series"). */
export const seriesBinarySchema = z.string().meta({
  format: 'binary',
  description:
    '"IPS1", version 1 (uint32 LE), header length H (uint32 LE), H bytes of JSON header {fromMs, toMs, maxPoints, series: [{device, metric, server, direction, points}]}, ' +
    'zero bytes to a multiple of 8, then the P points of all series in header order: P times (float64 LE, epoch ms), P values (float64 LE), P failed flags (uint8)',
});

/** A column of at most MAX_POINTS_PER_SERIES finite numbers, checked in one loop (no object per point). */
function numberColumn(what: string, check: (v: unknown) => boolean = (v) => typeof v === 'number' && Number.isFinite(v)) {
  return z.custom<number[]>(
    (v) => {
      if (!Array.isArray(v) || v.length > MAX_POINTS_PER_SERIES) return false;
      for (let i = 0; i < v.length; i++) if (!check(v[i])) return false;
      return true;
    },
    { message: `must be an array of at most ${MAX_POINTS_PER_SERIES} ${what}` },
  );
}

/**
 * The same answer as the plugin checks it: per column its type, length bound and element
 * types in one pass, and that the columns of a series are equally long, without building a
 * zod issue path per point (a 5,000-device answer has millions of numbers).
 */
export const seriesColumnsReplySchema: z.ZodType<SeriesColumnsResponse> = z.object({
  ...seriesHeadShape,
  format: z.literal('columns'),
  series: z.array(
    z
      .object({
        ...seriesIdentityShape,
        times: numberColumn('times (epoch ms)'),
        values: numberColumn('numbers'),
        failed: numberColumn('0 or 1 flags', (v) => v === 0 || v === 1) as z.ZodType<(0 | 1)[]>,
      })
      .superRefine((s, ctx) => {
        if (s.values.length !== s.times.length || s.failed.length !== s.times.length) {
          ctx.addIssue({
            code: 'custom',
            path: ['values'],
            message: `times, values and failed must be equally long (${s.times.length}, ${s.values.length}, ${s.failed.length})`,
          });
        }
      }),
  ),
});

const latestValueSchema: z.ZodType<LatestValue> = z.object({
  ...seriesIdentityShape,
  timeMs: z.number(),
  value: z.number(),
  failed: z.union([z.literal(0), z.literal(1)]),
});

export const latestResponseSchema: z.ZodType<LatestResponse> = z.object({ values: z.array(latestValueSchema) });

export const runNowResourceResponseSchema: z.ZodType<RunNowResourceResponse> = z.object({
  queued: z.array(z.string()),
  after: z.number().int().min(0),
});

export const runProgressResponseSchema: z.ZodType<RunProgressResponse> = z.object({
  devices: z.array(
    z.object({
      device: z.string(),
      state: z.enum(RUN_PROGRESS_STATES),
      run: runRecordSchema.nullable(),
      results: latestValueSchema.array(),
    }),
  ),
});

export const intervalsResponseSchema: z.ZodType<IntervalsResponse> = z.object({
  run: runRecordSchema,
  intervals: z.array(
    z.object({
      protocol,
      direction,
      start: z.number(),
      end: z.number(),
      timeMs: z.number(),
      bitsPerSecond: z.number(),
      omitted: z.boolean(),
    }),
  ),
});

/** Every error answer of the collector API: what went wrong, and per field when a parameter or body was bad. */
export const apiErrorBodySchema: z.ZodType<ApiErrorBody> = z.object({
  error: z.string(),
  message: z.string(),
  fields: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
});
