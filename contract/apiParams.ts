/**
 * Schemas of the collector API's query strings, path parameters and bodies: the collector's
 * routes validate with them and generate the OpenAPI document from them. Query values arrive as
 * strings, or arrays of strings when a parameter is repeated; list parameters also accept
 * comma-separated values.
 */
import { z } from 'zod';
import { DEFAULT_RUNS_PER_REQUEST, MAX_POINTS_PER_SERIES, MAX_RUNS_PER_REQUEST, runNowRequestSchema, runStatusSchema } from './api.js';
import { deviceConfigSchema, deviceIdSchema, devicePatchSchema } from './devices.js';
import { DIRECTIONS, METRIC_NAMES } from './metrics.js';
import { settingsSchema } from './settings.js';

export interface ApiLimits {
  /** most devices one request may name (default 1000) */
  maxDevices: number;
  /** longest time range of a series request (default 5 years) */
  maxRangeMs: number;
  /** most runs one GET /api/v1/runs returns (default 1000) */
  maxRuns: number;
  /** most points per series (default 10000) */
  maxPoints: number;
  /** largest request body in bytes (default 1 MiB) */
  bodyLimit: number;
  /** how long GET /api/v1/health waits for each iperf3 server (default 2000 ms) */
  healthCheckTimeoutMs: number;
}

export const DEFAULT_API_LIMITS: ApiLimits = {
  maxDevices: 1000,
  maxRangeMs: 5 * 366 * 86_400_000,
  maxRuns: MAX_RUNS_PER_REQUEST,
  maxPoints: MAX_POINTS_PER_SERIES,
  bodyLimit: 1024 * 1024,
  healthCheckTimeoutMs: 2000,
};

const TIME_HELP = 'use epoch milliseconds (e.g. 1735689600000) or an ISO-8601 time (e.g. 2025-01-01T00:00:00Z)';
const ISO_START = /^\d{4}-\d{2}-\d{2}/;

/** One value: rejects a repeated parameter, says what is missing. */
const single = (what: string) =>
  z.string({ error: (iss) => (iss.input === undefined ? `required: ${what}` : 'give this parameter once') }).trim();

const time = (what: string) =>
  single(what).transform((s, ctx) => {
    const ms = /^\d+$/.test(s) ? Number(s) : ISO_START.test(s) ? Date.parse(s) : Number.NaN;
    if (!Number.isSafeInteger(ms)) {
      ctx.addIssue({ code: 'custom', message: `"${s}" is not a time; ${TIME_HELP}` });
      return z.NEVER;
    }
    return ms;
  });

const wholeNumber = (min: number, max: number) =>
  single(`a whole number from ${min} to ${max}`)
    .regex(/^\d+$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().min(min, `must be from ${min} to ${max}`).max(max, `must be from ${min} to ${max}`));

/** `a,b` or `x=a&x=b` (or both) as a list without empty items. */
const list = <T extends z.ZodType>(item: T, what: string) =>
  z.preprocess(
    (v) => (v === undefined ? undefined : (Array.isArray(v) ? v : [v]).flatMap((s) => String(s).split(',')).map((s) => s.trim()).filter((s) => s !== '')),
    z.array(item, { error: `required: ${what}` }),
  );

const deviceId = z.string().max(200, 'a device id has at most 200 characters');

function deviceList(limits: ApiLimits) {
  return list(deviceId, 'one or more device ids').pipe(
    z
      .array(deviceId)
      .min(1, 'name at least one device')
      .max(limits.maxDevices, `at most ${limits.maxDevices} devices per request; split the request`),
  );
}

/** A device list, or `all` for every device. */
function devicesOrAll(limits: ApiLimits) {
  return deviceList(limits).transform((d): string[] | 'all' => (d.length === 1 && d[0] === 'all' ? 'all' : d));
}

const metricList = list(
  z.enum(METRIC_NAMES, { error: (iss) => `"${String(iss.input)}" is not a metric; use one of ${METRIC_NAMES.join(', ')}` }),
  `one or more metrics (${METRIC_NAMES.join(', ')})`,
).pipe(z.array(z.enum(METRIC_NAMES)).min(1, `name at least one metric (${METRIC_NAMES.join(', ')})`));

const statusList = list(runStatusSchema, 'one or more statuses');

const direction = z.enum(DIRECTIONS, { error: `use one of ${DIRECTIONS.join(', ')}` });
const server = single('host:port of an iperf3 server').min(1, 'give the server as host:port, e.g. 10.0.0.1:5201');

/** from <= to, and (for series) not further apart than the limit. */
function checkRange(maxRangeMs: number) {
  const days = Math.round(maxRangeMs / 86_400_000);
  return (q: { from?: number; to?: number }, ctx: z.core.$RefinementCtx) => {
    if (q.from === undefined || q.to === undefined) return;
    if (q.from > q.to) ctx.addIssue({ code: 'custom', path: ['from'], message: 'must not be after "to"' });
    else if (q.to - q.from > maxRangeMs)
      ctx.addIssue({ code: 'custom', path: ['from'], message: `the range from..to may span at most ${days} days; narrow it` });
  };
}

/** How GET /series answers: `points` (triples, the original form), `columns` (one array per column) or `binary` (the columns as bytes). */
export const SERIES_FORMATS = ['points', 'columns', 'binary'] as const;
export type SeriesFormat = (typeof SERIES_FORMATS)[number];

export function apiSchemas(limits: ApiLimits) {
  return {
    runsQuery: z
      .strictObject({
        device: deviceList(limits).optional(),
        status: statusList.optional(),
        from: time('a time').optional(),
        to: time('a time').optional(),
        limit: wholeNumber(1, limits.maxRuns).default(DEFAULT_RUNS_PER_REQUEST),
      })
      .superRefine(checkRange(Number.POSITIVE_INFINITY)),
    seriesQuery: z
      .strictObject({
        device: devicesOrAll(limits),
        metric: metricList,
        from: time(`the start of the range; ${TIME_HELP}`),
        to: time(`the end of the range; ${TIME_HELP}`),
        maxPoints: wholeNumber(1, limits.maxPoints).default(1000),
        server: server.optional(),
        direction: direction.optional(),
        splitByServer: z.stringbool({ error: 'use true or false' }).default(false),
        format: z
          .enum(SERIES_FORMATS, { error: `use one of ${SERIES_FORMATS.join(', ')}` })
          .default('points')
          .describe('points: [time, value, failed] triples per series (the default); columns: times, values and failed as three arrays per series; binary: the same columns as little-endian bytes (docs/api.md, "Binary series")'),
      })
      .superRefine(checkRange(limits.maxRangeMs)),
    latestQuery: z
      .strictObject({
        device: devicesOrAll(limits),
        metric: metricList,
        server: server.optional(),
        direction: direction.optional(),
        from: time('a time').optional(),
        to: time('a time').optional(),
      })
      .superRefine(checkRange(Number.POSITIVE_INFINITY)),
    runId: z.strictObject({
      id: z.string().regex(/^[1-9]\d{0,15}$/, 'a run id is a positive whole number').transform(Number),
    }),
    /** GET /api/v1/devices */
    devicesQuery: z.strictObject({
      lastRun: z
        .stringbool({ error: 'use true or false' })
        .default(true)
        .describe("false: the devices without their last runs (lighter: ids and labels, as the plugin needs them to resolve a query's devices)"),
    }),
    /** POST /api/v1/devices */
    deviceBody: deviceConfigSchema,
    /** PATCH /api/v1/devices/{id} */
    devicePatchBody: devicePatchSchema,
    deviceId: z.strictObject({ id: deviceIdSchema }),
    /** DELETE /api/v1/devices/{id}: the device's runs, series and latest values stay unless history=delete */
    deviceDeleteQuery: z.strictObject({
      history: z.enum(['keep', 'delete'], { error: 'use keep (the default: runs stay queryable) or delete (runs, metrics and the recorded host key go too)' }).default('keep'),
    }),
    runNowBody: runNowRequestSchema.extend({
      devices: runNowRequestSchema.shape.devices.max(limits.maxDevices, `at most ${limits.maxDevices} devices per request; split the request`),
    }),
  };
}

/**
 * Settings pushed through PUT /api/v1/settings. File paths belong to the collector's own
 * configuration: a pushed path would be stored and shown as if it were in effect, and could
 * point the collector at any file it can read.
 */
export const pushedSettingsSchema = settingsSchema.superRefine((settings, ctx) => {
  const auth = settings.clientOptions.auth;
  for (const key of ['passwordFile', 'rsaPublicKeyFile'] as const) {
    if (auth?.[key] !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['clientOptions', 'auth', key],
        message: 'file paths cannot be pushed: passwordFile and rsaPublicKeyFile belong to the collector configuration file; push the password (secure field) and the PEM itself',
      });
    }
  }
});
