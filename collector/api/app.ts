/**
 * The collector's HTTP API (docs/api.md). Query parameters and bodies are validated with zod
 * here, at the boundary; every error is an ApiErrorBody naming the parameter and the fix.
 */
import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { z } from 'zod';
import {
  API_PREFIX,
  MAX_RUNS_PER_REQUEST,
  type ApiErrorBody,
  type HealthResponse,
  type IntervalsResponse,
  type LatestResponse,
  type RunNowResponse,
  type RunRecord,
  type RunsResponse,
  type SeriesResponse,
  type ServerHealth,
  type SettingsResponse,
} from '../../contract/api.js';
import { fieldErrors, formatFieldErrors, settingsSchema, type FieldError, type Settings } from '../../contract/settings.js';
import { bearerTokenHook } from './auth.js';
import { DevicesBusyError, SettingsRejectedError, UnknownDevicesError } from '../errors.js';
import { apiSchemas, paramErrors } from './params.js';
import type { ApiDeps, ApiLimits, DevicesResponse, ServersResponse, ServerCheck } from './types.js';

export const DEFAULT_LIMITS: ApiLimits = {
  maxDevices: 1000,
  maxRangeMs: 5 * 366 * 86_400_000,
  maxRuns: MAX_RUNS_PER_REQUEST,
  maxPoints: 10_000,
  bodyLimit: 1024 * 1024,
  healthCheckTimeoutMs: 2000,
};

/** Server timeouts, set explicitly rather than left to Node's defaults. */
export const SERVER_TIMEOUTS = {
  /** idle socket timeout */
  connectionTimeout: 30_000,
  /** whole request (headers and body) */
  requestTimeout: 30_000,
  /** idle keep-alive connection; Grafana reuses connections */
  keepAliveTimeout: 5_000,
} as const;

const MASK = '********';

/** How to fix the client errors fastify raises itself (its messages say what, not how). */
const FIXES: Partial<Record<number, string>> = {
  413: 'the body is larger than the collector accepts',
  415: 'send the body as JSON with "Content-Type: application/json"',
};

/** Secrets never leave the process: an iperf3 password pushed by Grafana is masked. */
function withoutSecrets(settings: Settings): Settings {
  const auth = settings.clientOptions.auth;
  if (!auth?.password) return settings;
  return { ...settings, clientOptions: { ...settings.clientOptions, auth: { ...auth, password: MASK } } };
}

function sendError(reply: FastifyReply, status: number, body: ApiErrorBody): FastifyReply {
  return reply.code(status).send(body);
}

function invalid(reply: FastifyReply, fields: FieldError[]): FastifyReply {
  return sendError(reply, 400, { error: 'invalid-request', message: formatFieldErrors(fields), fields });
}

/** Parses `input`, or answers 400 naming each bad parameter and returns undefined. */
function parseOr400<S extends z.ZodType>(reply: FastifyReply, schema: S, input: unknown, known: readonly string[]): z.output<S> | undefined {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  invalid(reply, paramErrors(result.error, known));
  return undefined;
}

function withTimeout(check: Promise<ServerCheck>, ms: number): Promise<ServerCheck> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<ServerCheck>((resolve) => {
    timer = setTimeout(() => resolve({ reachable: false, error: `no answer within ${ms} ms` }), ms);
  });
  return Promise.race([
    check.catch((err: unknown): ServerCheck => ({ reachable: false, error: err instanceof Error ? err.message : String(err) })),
    timeout,
  ]).finally(() => clearTimeout(timer));
}

export function buildApi(deps: ApiDeps): FastifyInstance {
  const limits: ApiLimits = { ...DEFAULT_LIMITS, ...deps.limits };
  const schemas = apiSchemas(limits);
  const startedAt = (deps.startedAt ?? new Date()).toISOString();
  const { store, control } = deps;
  const authenticate = bearerTokenHook(deps.token);

  const app = Fastify({
    ...SERVER_TIMEOUTS,
    bodyLimit: limits.bodyLimit,
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
  }) as unknown as FastifyInstance;

  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, { error: 'not-found', message: `no route ${request.method} ${request.url.split('?')[0]}; docs/api.md lists the routes` }),
  );

  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof UnknownDevicesError) return sendError(reply, 404, { error: 'unknown-device', message: err.message });
    if (err instanceof DevicesBusyError) return sendError(reply, 409, { error: 'already-running', message: err.message });
    if (err instanceof SettingsRejectedError)
      return sendError(reply, 400, { error: 'settings-rejected', message: err.message, fields: err.fields });
    const status = err.statusCode ?? 500;
    if (status < 500) {
      // fastify's own errors (bad JSON, wrong content type, body too large) carry clear messages
      const error = (STATUS_CODES[status] as string).toLowerCase().replace(/[^a-z]+/g, '-');
      const fix = FIXES[status];
      return sendError(reply, status, { error, message: fix ? `${err.message}; ${fix}` : err.message });
    }
    request.log.error({ err }, 'request failed');
    return sendError(reply, 500, { error: 'internal', message: 'internal error; the collector log has the details' });
  });

  // Every route but the liveness probe needs the token, unknown routes included.
  app.addHook('onRequest', async (request, reply) => (request.routeOptions.url === '/healthz' ? undefined : authenticate(request, reply)));

  // Liveness for container health checks: no token, no work.
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/metrics', async (_request, reply) => {
    const text = await deps.telemetry.metrics();
    return reply.type(deps.telemetry.contentType).send(text);
  });

  app.get(`${API_PREFIX}/health`, async (): Promise<HealthResponse> => {
    const status = await control.status();
    const devices = control.devices();
    const servers = await Promise.all(
      control.servers().map(async (s): Promise<ServerHealth> => {
        const check = await withTimeout(control.checkServer(s.host, s.port, limits.healthCheckTimeoutMs), limits.healthCheckTimeoutMs);
        return { ...s, ...check };
      }),
    );
    return {
      status: 'ok',
      version: deps.version,
      startedAt,
      devices: devices.length,
      enabledDevices: devices.filter((d) => d.enabled).length,
      servers,
      nextRun: status.nextRun?.toISOString() ?? null,
      lastScheduledRun: status.lastScheduledRun?.toISOString() ?? null,
      running: status.running,
      queueLength: status.queueLength,
      settingsSource: status.settingsSource,
    };
  });

  app.get(`${API_PREFIX}/devices`, async (): Promise<DevicesResponse> => {
    const devices = control.devices();
    const last = await store.runs.lastOf(devices.map((d) => d.id));
    return { devices: devices.map((d) => ({ ...d, lastRun: last.get(d.id) ?? null })) };
  });

  app.get(`${API_PREFIX}/servers`, async (): Promise<ServersResponse> => ({ servers: control.servers() }));

  app.get(`${API_PREFIX}/settings`, async (): Promise<SettingsResponse> => {
    const current = control.currentSettings();
    return { ...current, settings: withoutSecrets(current.settings) };
  });

  app.put(`${API_PREFIX}/settings`, async (request, reply) => {
    const parsed = settingsSchema.safeParse(request.body);
    if (!parsed.success) return invalid(reply, fieldErrors(parsed.error));
    // saved and applied in one transaction: when applying throws, nothing is stored
    const updatedAt = await store.settings.save(parsed.data, (at) => control.applySettings(parsed.data, at));
    const body: SettingsResponse = { settings: withoutSecrets(parsed.data), source: 'api', updatedAt };
    return body;
  });

  app.post(`${API_PREFIX}/runs`, async (request, reply) => {
    const body = parseOr400(reply, schemas.runNowBody, request.body, ['devices']);
    if (!body) return reply;
    const result: RunNowResponse = control.runNow([...new Set(body.devices)]);
    return reply.code(202).send(result);
  });

  app.get(`${API_PREFIX}/runs`, async (request, reply) => {
    const q = parseOr400(reply, schemas.runsQuery, request.query, Object.keys(schemas.runsQuery.shape));
    if (!q) return reply;
    const body: RunsResponse = {
      runs: await store.runs.list({ devices: q.device, status: q.status, fromMs: q.from, toMs: q.to, limit: q.limit }),
    };
    return body;
  });

  const findRun = async (params: unknown, reply: FastifyReply): Promise<RunRecord | undefined> => {
    const p = parseOr400(reply, schemas.runId, params, ['id']);
    if (!p) return undefined;
    const run = await store.runs.get(p.id);
    if (!run) sendError(reply, 404, { error: 'not-found', message: `no run with id ${p.id}; GET /api/v1/runs lists the runs` });
    return run ?? undefined;
  };

  app.get(`${API_PREFIX}/runs/:id`, async (request, reply) => (await findRun(request.params, reply)) ?? reply);

  app.get(`${API_PREFIX}/runs/:id/intervals`, async (request, reply) => {
    const run = await findRun(request.params, reply);
    if (!run) return reply;
    const body: IntervalsResponse = { run, intervals: await store.runs.intervals(run.id) };
    return body;
  });

  app.get(`${API_PREFIX}/series`, async (request, reply) => {
    const q = parseOr400(reply, schemas.seriesQuery, request.query, Object.keys(schemas.seriesQuery.shape));
    if (!q) return reply;
    const body: SeriesResponse = {
      fromMs: q.from,
      toMs: q.to,
      maxPoints: q.maxPoints,
      series: await store.metrics.series({
        devices: q.device,
        metrics: q.metric,
        fromMs: q.from,
        toMs: q.to,
        maxPoints: q.maxPoints,
        server: q.server,
        direction: q.direction,
        splitByServer: q.splitByServer,
      }),
    };
    return body;
  });

  app.get(`${API_PREFIX}/latest`, async (request, reply) => {
    const q = parseOr400(reply, schemas.latestQuery, request.query, Object.keys(schemas.latestQuery.shape));
    if (!q) return reply;
    const body: LatestResponse = {
      values: await store.metrics.latest({ devices: q.device, metrics: q.metric, server: q.server, direction: q.direction, beforeMs: q.to }),
    };
    return body;
  });

  return app;
}
