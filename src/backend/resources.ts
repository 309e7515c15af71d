/**
 * CallResource: small JSON endpoints for the editors, template variables and actions.
 *   GET  devices    DeviceInfo[]: the inventory (id, host, labels, pool, enabled, last run)
 *   GET  servers    ServerInfo[]: the collector's iperf3 servers
 *   GET  metrics    CatalogueEntry[]: the metric catalogue of contract/metrics.ts, derived metrics included
 *   GET  runs?device=&status=&limit=   RunsResponse: recent runs
 *   POST runs  {"devices": [...]} (or {"device": "..."})   RunNowResourceResponse, 202: run now
 *   GET  runs/progress?device=&after=   RunProgressResponse: how the runs that Run now started are going
 */
import { z } from 'zod';
import {
  DEFAULT_RUNS_PER_REQUEST,
  MAX_RUN_NOW_DEVICES,
  MAX_RUNS_PER_REQUEST,
  RUN_RESULT_METRICS,
  runNowRequestSchema,
  runsLimitSchema,
  runStatusSchema,
  type LatestValue,
  type RunNowResourceResponse,
  type RunProgress,
  type RunProgressResponse,
  type RunRecord,
  type RunsResponse,
} from '../../contract/api.js';
import { fieldErrors, formatFieldErrors } from '../../contract/settings.js';
import type { CollectorClient } from './collectorClient.js';
import type { DataSourceInstance } from './instanceSettings.js';
import { METRIC_CATALOGUE } from '../../contract/metrics.js';
import { describeError } from './queryErrors.js';
import { expandDeviceEntries } from './deviceSelection.js';

export interface ResourceRequest {
  path: string;
  method: string;
  /** the full URL Grafana received, with the query string */
  url: string;
  body: Uint8Array | null;
}

export interface ResourceResponse {
  code: number;
  headers: Record<string, { values: string[] }>;
  body: Uint8Array;
}

export function jsonResponse(code: number, value: unknown): ResourceResponse {
  return {
    code,
    headers: { 'Content-Type': { values: ['application/json'] } },
    body: Buffer.from(JSON.stringify(value)),
  };
}

function errorResponse(code: number, error: string, message: string): ResourceResponse {
  return jsonResponse(code, { error, message });
}

/** The collector's run-now body, plus `{"device": "r1"}` as a shorthand of `{"devices": ["r1"]}`. */
const runNowBodySchema = z.preprocess((body) => {
  if (body === null || typeof body !== 'object' || !('device' in body) || 'devices' in body) return body;
  const { device, ...rest } = body;
  return { ...rest, devices: [device] };
}, runNowRequestSchema.refine((body) => new Set(body.devices).size <= MAX_RUN_NOW_DEVICES, {
  path: ['devices'],
  message: `at most ${MAX_RUN_NOW_DEVICES} devices per Run now; narrow the selection`,
}));

const DEVICES_RANGE = `name from 1 to ${MAX_RUN_NOW_DEVICES} devices, e.g. device=r1&device=r2`;
const AFTER_RANGE = 'must be the "after" run id the Run now answered (a whole number, 0 or more)';
/** GET runs/progress: the devices of one Run now and the run id it answered. */
const progressParamsSchema = z.object({
  devices: z.array(z.string().trim().min(1, 'a device id cannot be empty')).min(1, DEVICES_RANGE).max(MAX_RUN_NOW_DEVICES, DEVICES_RANGE),
  after: z.number({ error: AFTER_RANGE }).int(AFTER_RANGE).min(0, AFTER_RANGE),
});

type Handler = (client: CollectorClient, params: URLSearchParams, body: Uint8Array | null) => Promise<ResourceResponse>;

const HANDLERS: Record<string, Partial<Record<'GET' | 'POST', Handler>>> = {
  devices: { GET: async (client) => jsonResponse(200, await client.devices()) },
  servers: { GET: async (client) => jsonResponse(200, await client.servers()) },
  runs: { GET: listRuns, POST: runNow },
  'runs/progress': { GET: runProgress },
};

/** Every resource path the plugin serves. */
export const RESOURCE_PATHS: readonly string[] = [...Object.keys(HANDLERS), 'metrics'].sort();

/** Resources that need no collector, available even before the settings are valid. */
export function staticResource(path: string, method: string): ResourceResponse | null {
  if (path === 'metrics' && method.toUpperCase() === 'GET') return jsonResponse(200, METRIC_CATALOGUE);
  return null;
}

export async function handleResource(request: ResourceRequest, instance: () => DataSourceInstance): Promise<ResourceResponse> {
  const path = request.path.replace(/^\/+|\/+$/g, '');
  const method = request.method.toUpperCase();
  const fixed = staticResource(path, method);
  if (fixed) return fixed;
  const routes = HANDLERS[path];
  if (!routes) {
    const available = RESOURCE_PATHS.join(', ');
    return errorResponse(404, 'not-found', `no resource "${path}"; available: ${available}`);
  }
  const handler = routes[method as 'GET' | 'POST'];
  if (!handler) return errorResponse(405, 'method-not-allowed', `${path} accepts ${Object.keys(routes).join(', ')}`);
  try {
    const params = new URL(request.url || `/${path}`, 'http://grafana.invalid').searchParams;
    return await handler(instance().client, params, request.body);
  } catch (error) {
    const outcome = describeError(error);
    return errorResponse(outcome.status, outcome.errorSource === 'plugin' ? 'internal' : 'downstream', outcome.message);
  }
}

async function listRuns(client: CollectorClient, params: URLSearchParams): Promise<ResourceResponse> {
  const status = z.array(runStatusSchema).safeParse(params.getAll('status'));
  if (!status.success) return errorResponse(400, 'invalid-status', formatFieldErrors(fieldErrors(status.error, 'status')));
  const limit = runsLimitSchema.safeParse(params.has('limit') ? Number(params.get('limit')) : DEFAULT_RUNS_PER_REQUEST);
  if (!limit.success) return errorResponse(400, 'invalid-limit', formatFieldErrors(fieldErrors(limit.error, 'limit')));
  const devices = expandDeviceEntries(params.getAll('device'));
  const runs = await client.runs({
    devices: devices.length > 0 ? devices : undefined,
    status: status.data.length > 0 ? status.data : undefined,
    limit: limit.data,
  });
  return jsonResponse(200, { runs } satisfies RunsResponse);
}

async function runNow(client: CollectorClient, _params: URLSearchParams, body: Uint8Array | null): Promise<ResourceResponse> {
  let parsedBody: unknown;
  try {
    parsedBody = JSON.parse(Buffer.from(body ?? new Uint8Array()).toString('utf8') || 'null');
  } catch {
    return errorResponse(400, 'invalid-json', 'the body is not valid JSON; send {"devices": ["<device id>"]}');
  }
  const parsed = runNowBodySchema.safeParse(parsedBody);
  if (!parsed.success) {
    return errorResponse(400, 'invalid-body', `${formatFieldErrors(fieldErrors(parsed.error))}; send {"devices": ["<device id>"]}`);
  }
  const devices = [...new Set(parsed.data.devices)];
  // run ids grow as runs start: a run of these devices with a greater id than any of theirs now
  // is one this request queued (the list is by start time, so a few per device are read)
  const recent = await client.runs({ devices, limit: Math.min(MAX_RUNS_PER_REQUEST, devices.length * 4) });
  const after = Math.max(0, ...recent.map((r) => r.id));
  const queued = await client.runNow(devices);
  return jsonResponse(202, { ...queued, after } satisfies RunNowResourceResponse);
}

function progressState(run: RunRecord | undefined): RunProgress['state'] {
  if (!run) return 'queued';
  if (run.status === 'running') return 'running';
  return run.status === 'ok' ? 'done' : 'failed';
}

/**
 * Per device, the first run after `after`: none yet (queued), running (with the test it is in,
 * when the collector says), done (with its results) or failed (with its error class).
 */
async function runProgress(client: CollectorClient, params: URLSearchParams): Promise<ResourceResponse> {
  const parsed = progressParamsSchema.safeParse({
    devices: [...new Set(expandDeviceEntries(params.getAll('device')))],
    after: params.has('after') ? Number(params.get('after')) : undefined,
  });
  if (!parsed.success) {
    return errorResponse(400, 'invalid-parameters', formatFieldErrors(fieldErrors(parsed.error).map((e) => ({ ...e, field: e.field.replace(/^devices/, 'device') }))));
  }
  const { devices, after } = parsed.data;
  // newest first; a device has at most one run after `after` unless the schedule ran it again since
  const recent = await client.runs({ devices, limit: Math.min(MAX_RUNS_PER_REQUEST, devices.length * 4) });
  const firstAfter = new Map<string, RunRecord>();
  for (const run of recent) if (run.id > after && (firstAfter.get(run.device)?.id ?? Infinity) > run.id) firstAfter.set(run.device, run);
  const done = devices.map((d) => firstAfter.get(d)).filter((r): r is RunRecord => r?.status === 'ok');
  const results = new Map<string, LatestValue[]>();
  if (done.length > 0) {
    const since = Math.min(...done.map((r) => Date.parse(r.startedAt)));
    const latest = await client.latest({ devices: done.map((r) => r.device), metrics: [...RUN_RESULT_METRICS], fromMs: since });
    for (const value of latest.values) {
      const run = firstAfter.get(value.device) as RunRecord;
      if (value.timeMs >= Date.parse(run.startedAt)) results.set(value.device, [...(results.get(value.device) ?? []), value]);
    }
  }
  const progress: RunProgress[] = devices.map((device) => {
    const run = firstAfter.get(device);
    return { device, state: progressState(run), run: run ?? null, results: results.get(device) ?? [] };
  });
  return jsonResponse(200, { devices: progress } satisfies RunProgressResponse);
}
