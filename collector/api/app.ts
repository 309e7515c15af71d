/**
 * The collector's HTTP API (docs/api.md): one Fastify plugin per resource under routes/, each
 * route validated by the contract's zod schemas through a zod type provider, the same schemas
 * that generate the OpenAPI document (GET /api/v1/openapi.json, docs/openapi.json).
 */
import swagger from '@fastify/swagger';
import Fastify from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { API_PREFIX } from '../../contract/api.js';
import { bearerTokenHook } from './auth.js';
import { installErrorHandling } from './errorHandler.js';
import { serializeRequest } from './requestLog.js';
import { apiSchemas, DEFAULT_API_LIMITS, type ApiLimits } from '../../contract/apiParams.js';
import type { RouteDeps } from './routes/deps.js';
import { healthRoutes } from './routes/health.js';
import { inventoryRoutes } from './routes/inventory.js';
import { metricRoutes } from './routes/metrics.js';
import { runRoutes } from './routes/runs.js';
import { settingsRoutes } from './routes/settings.js';
import type { ApiDeps } from './types.js';

/** Server timeouts, set explicitly rather than left to Node's defaults. */
export const SERVER_TIMEOUTS = {
  /** idle socket timeout */
  connectionTimeout: 30_000,
  /** whole request (headers and body) */
  requestTimeout: 30_000,
  /** idle keep-alive connection; Grafana reuses connections */
  keepAliveTimeout: 5_000,
} as const;

export const OPENAPI_PATH = `${API_PREFIX}/openapi.json`;

export function buildApi(deps: ApiDeps) {
  const limits: ApiLimits = { ...DEFAULT_API_LIMITS, ...deps.limits };
  const authenticate = bearerTokenHook(deps.token);
  const app = Fastify({
    ...SERVER_TIMEOUTS,
    bodyLimit: limits.bodyLimit,
    ...(deps.logger ? { loggerInstance: deps.logger.child({}, { serializers: { req: serializeRequest } }) } : { logger: false }),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app);

  // Every route but the liveness probe needs the token, unknown routes included.
  app.addHook('onRequest', async (request, reply) => (request.routeOptions.url === '/healthz' ? undefined : authenticate(request, reply)));

  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'iperf3 collector API', version: deps.version, description: 'docs/api.md describes every route with examples.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  app.get(OPENAPI_PATH, { schema: { hide: true } }, async () => app.swagger());

  const options: RouteDeps = { deps, limits, schemas: apiSchemas(limits), startedAt: (deps.startedAt ?? new Date()).toISOString() };
  void app.register(healthRoutes, options);
  void app.register(inventoryRoutes, options);
  void app.register(settingsRoutes, options);
  void app.register(runRoutes, options);
  void app.register(metricRoutes, options);
  return app;
}

export type CollectorApi = ReturnType<typeof buildApi>;
