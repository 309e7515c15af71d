/** Liveness (no token), Prometheus metrics and the collector's health with a probe of each server. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import pLimit, { type LimitFunction } from 'p-limit';
import { healthResponseSchema } from '../../../contract/apiResponses.js';
import { API_PREFIX, type HealthResponse, type ServerHealth, type ServerInfo } from '../../../contract/api.js';
import type { ServerCheck } from '../types.js';
import { ERROR_RESPONSES, type RouteDeps } from './deps.js';

/** Most reachability probes in flight at once (the settings allow hundreds of servers). */
export const PROBE_CONCURRENCY = 16;

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

export const healthRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { deps, limits, startedAt }) => {
  const { control } = deps;

  // One probe round at a time: calls that arrive while a round runs share its probes (each
  // host:port once, however many callers and pools), so N dashboards or Save & test clicks at
  // once open one connection per server, not N. A call after the round ends probes afresh.
  let round: { checks: Map<string, Promise<ServerCheck>>; limit: LimitFunction } | undefined;
  const probeAll = async (list: ServerInfo[]): Promise<ServerHealth[]> => {
    const owner = round === undefined;
    const { checks, limit } = (round ??= { checks: new Map(), limit: pLimit(PROBE_CONCURRENCY) });
    const probe = (s: ServerInfo): Promise<ServerCheck> => {
      let check = checks.get(s.key);
      if (!check) {
        check = limit(() => withTimeout(control.checkServer(s.host, s.port, limits.healthCheckTimeoutMs), limits.healthCheckTimeoutMs));
        checks.set(s.key, check);
      }
      return check;
    };
    try {
      return await Promise.all(list.map(async (s): Promise<ServerHealth> => ({ ...s, ...(await probe(s)) })));
    } finally {
      if (owner) round = undefined;
    }
  };

  // Liveness for container health checks: no token, no work.
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const text = await deps.telemetry.metrics();
    return reply.type(deps.telemetry.contentType).send(text);
  });

  app.get(`${API_PREFIX}/health`, { schema: { summary: 'Version, schedule state and a reachability probe of every iperf3 server', response: {  ...ERROR_RESPONSES,200: healthResponseSchema } } }, async (): Promise<HealthResponse> => {
    const status = await control.status();
    let devices = 0;
    let enabledDevices = 0;
    for (const d of control.devices()) {
      devices++;
      if (d.enabled) enabledDevices++;
    }
    const servers = await probeAll(control.servers());
    return {
      status: 'ok',
      version: deps.version,
      startedAt,
      devices,
      enabledDevices,
      servers,
      nextRun: status.nextRun?.toISOString() ?? null,
      lastScheduledRun: status.lastScheduledRun?.toISOString() ?? null,
      running: status.running,
      queueLength: status.queueLength,
      settingsSource: status.settingsSource,
    };
  });
};
