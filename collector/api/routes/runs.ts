/** Runs: the log, one run, its per-second intervals, and "run now". */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { API_PREFIX, type IntervalsResponse, type RunNowResponse, type RunRecord, type RunsResponse } from '../../../contract/api.js';
import { intervalsResponseSchema, runNowResponseSchema, runRecordSchema, runsResponseSchema } from '../../../contract/apiResponses.js';
import { sendError } from '../errorHandler.js';
import { ERROR_RESPONSES, type RouteDeps } from './deps.js';

export const runRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { deps, schemas }) => {
  const { control, store } = deps;
  /** A running run of this collector says which test it is in. */
  const withCurrent = (run: RunRecord): RunRecord => {
    const current = run.status === 'running' ? control.currentTest?.(run.id) : undefined;
    return current ? { ...run, current } : run;
  };

  app.post(
    `${API_PREFIX}/runs`,
    { schema: { summary: 'Queue runs of these devices ahead of the schedule (202); 409 when one is queued or running', body: schemas.runNowBody, response: {  ...ERROR_RESPONSES,202: runNowResponseSchema } } },
    async (request, reply) => {
      const result: RunNowResponse = control.runNow([...new Set(request.body.devices)]);
      return reply.code(202).send(result);
    },
  );

  app.get(`${API_PREFIX}/runs`, { schema: { summary: 'Runs, newest first, with their tests', querystring: schemas.runsQuery, response: {  ...ERROR_RESPONSES,200: runsResponseSchema } } }, async (request): Promise<RunsResponse> => {
    const q = request.query;
    const runs = await store.runs.list({ devices: q.device, status: q.status, fromMs: q.from, toMs: q.to, limit: q.limit });
    return { runs: runs.map(withCurrent) };
  });

  const notFound = (id: number) => ({ error: 'not-found', message: `no run with id ${id}; GET /api/v1/runs lists the runs` });

  app.get(`${API_PREFIX}/runs/:id`, { schema: { summary: 'One run with its tests', params: schemas.runId, response: {  ...ERROR_RESPONSES,200: runRecordSchema } } }, async (request, reply): Promise<RunRecord> => {
    const run = await store.runs.get(request.params.id);
    return run ? withCurrent(run) : sendError(reply, 404, notFound(request.params.id));
  });

  app.get(
    `${API_PREFIX}/runs/:id/intervals`,
    { schema: { summary: "Per-second throughput of a run's tests", params: schemas.runId, response: {  ...ERROR_RESPONSES,200: intervalsResponseSchema } } },
    async (request, reply): Promise<IntervalsResponse> => {
      const run = await store.runs.get(request.params.id);
      if (!run) return sendError(reply, 404, notFound(request.params.id));
      return { run, intervals: await store.runs.intervals(run.id) };
    },
  );
};
