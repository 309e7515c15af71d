/** Metric time series and latest values, as the plugin backend queries them. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { API_PREFIX, type LatestResponse, type SeriesResponse } from '../../../contract/api.js';
import { latestResponseSchema, seriesResponseSchema } from '../../../contract/apiResponses.js';
import { ERROR_RESPONSES, type RouteDeps } from './deps.js';

export const metricRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { deps, schemas }) => {
  const { store } = deps;

  app.get(
    `${API_PREFIX}/series`,
    { schema: { summary: 'Time series per device, metric and direction (and server), at most maxPoints each', querystring: schemas.seriesQuery, response: {  ...ERROR_RESPONSES,200: seriesResponseSchema } } },
    async (request): Promise<SeriesResponse> => {
      const q = request.query;
      return {
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
