/**
 * CallResource: small JSON endpoints for the editors, template variables and actions.
 *   GET  devices    DeviceInfo[]: the inventory (id, host, labels, pool, enabled, last run)
 *   GET  servers    ServerInfo[]: the collector's iperf3 servers
 *   GET  metrics    CatalogueEntry[]: the metric catalogue of contract/metrics.ts, derived metrics included
 *   GET  runs?device=&status=&limit=   RunsResponse: recent runs
 *   POST runs  {"devices": [...]} (or {"device": "..."})   RunNowResponse, 202: run now
 */
import { z } from 'zod';
import {
  DEFAULT_RUNS_PER_REQUEST,
  runNowRequestSchema,
  runsLimitSchema,
  runStatusSchema,
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
}, runNowRequestSchema);

type Handler = (client: CollectorClient, params: URLSearchParams, body: Uint8Array | null) => Promise<ResourceResponse>;

const HANDLERS: Record<string, Partial<Record<'GET' | 'POST', Handler>>> = {
  devices: { GET: async (client) => jsonResponse(200, await client.devices()) },
  servers: { GET: async (client) => jsonResponse(200, await client.servers()) },
  runs: { GET: listRuns, POST: runNow },
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
  return jsonResponse(202, await client.runNow(parsed.data.devices));
}
