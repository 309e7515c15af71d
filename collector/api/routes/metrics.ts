/** Metric time series and latest values, as the plugin backend queries them. */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { API_PREFIX, seriesToColumns, type LatestResponse, type SeriesColumnsResponse, type SeriesResponse } from '../../../contract/api.js';
import { latestResponseSchema, seriesColumnsResponseSchema, seriesResponseSchema } from '../../../contract/apiResponses.js';
import { ERROR_RESPONSES, type RouteDeps } from './deps.js';

export const metricRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { deps, schemas }) => {
  const { store } = deps;

  app.get(
    `${API_PREFIX}/series`,
    { schema: { summary: 'Time series per device, metric and direction (and server), at most maxPoints each', querystring: schemas.seriesQuery, response: { ...ERROR_RESPONSES, 200: z.union([seriesColumnsResponseSchema, seriesResponseSchema]) } } },
    async (request, reply): Promise<SeriesResponse | SeriesColumnsResponse> => {
      const q = request.query;
      const series = await store.metrics.series({
        devices: q.device,
        metrics: q.metric,
        fromMs: q.from,
        toMs: q.to,
        maxPoints: q.maxPoints,
        server: q.server,
        direction: q.direction,
        splitByServer: q.splitByServer,
      });
      const head = { fromMs: q.from, toMs: q.to, maxPoints: q.maxPoints };
      if (q.format === 'points') return { ...head, series };
      // format=columns: one array per column (docs/api.md). Built here from the store's typed
      // series, so written with JSON.stringify: the response schema's check of every number
      // cost as much as the SQL (docs/benchmarks.md, "Query path").
      reply.serializer(JSON.stringify);
      return { ...head, format: 'columns', series: series.map(seriesToColumns) };
    },
  );

  app.get(
    `${API_PREFIX}/latest`,
    { schema: { summary: 'The latest value per device, metric and direction, at or before `to`', querystring: schemas.latestQuery, response: {  ...ERROR_RESPONSES,200: latestResponseSchema } } },
    async (request): Promise<LatestResponse> => {
      const q = request.query;
      return { values: await store.metrics.latest({ devices: q.device, metrics: q.metric, server: q.server, direction: q.direction, afterMs: q.from, beforeMs: q.to }) };
    },
  );
};
