/** Metric time series and latest values, as the plugin backend queries them. */
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { API_PREFIX, type LatestResponse, type SeriesResponse } from '../../../contract/api.js';
import { blockToColumnsJson, blockToSeries, encodeSeriesBinary, SERIES_BINARY_TYPE } from '../../../contract/seriesBlock.js';
import { latestResponseSchema, seriesBinarySchema, seriesColumnsResponseSchema, seriesResponseSchema } from '../../../contract/apiResponses.js';
import { ERROR_RESPONSES, type RouteDeps } from './deps.js';

export const metricRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { deps, schemas }) => {
  const { store } = deps;

  app.get(
    `${API_PREFIX}/series`,
    {
      schema: {
        summary: 'Time series per device, metric and direction (and server), at most maxPoints each',
        querystring: schemas.seriesQuery,
        response: {
          ...ERROR_RESPONSES,
          200: {
            description: 'The series: JSON for format=points and format=columns, bytes for format=binary (docs/api.md, "Binary series")',
            content: {
              'application/json': { schema: z.union([seriesColumnsResponseSchema, seriesResponseSchema]) },
              [SERIES_BINARY_TYPE]: { schema: seriesBinarySchema },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const block = await store.metrics.seriesBlock({
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
      // columns and binary are written straight from the store's typed columns: no object per
      // point, and no check of every number by the response schema (which cost as much as the
      // SQL, docs/benchmarks.md "Query path"); points keep the schema-checked path.
      if (q.format === 'binary') {
        // described as an OpenAPI binary string; Fastify sends a Buffer as it is, unserialized
        const bytes = encodeSeriesBinary(head, block);
        return reply.type(SERIES_BINARY_TYPE).send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) as unknown as string);
      }
      if (q.format === 'columns') return reply.type('application/json; charset=utf-8').send(blockToColumnsJson(head, block));
      const answer: SeriesResponse = { ...head, series: blockToSeries(block) };
      return answer;
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
