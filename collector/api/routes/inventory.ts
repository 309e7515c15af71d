/** The devices (with their last run) and the iperf3 servers of every pool. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { API_PREFIX } from '../../../contract/api.js';
import { devicesResponseSchema, serversResponseSchema } from '../../../contract/apiResponses.js';
import type { DevicesResponse, ServersResponse } from '../types.js';
import { ERROR_RESPONSES, type RouteDeps } from './deps.js';

export const inventoryRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { deps }) => {
  const { control, store } = deps;

  app.get(`${API_PREFIX}/devices`, { schema: { summary: 'The devices, without credentials, each with its last run', response: {  ...ERROR_RESPONSES,200: devicesResponseSchema } } }, async (): Promise<DevicesResponse> => {
    const devices = control.devices();
    const last = await store.runs.lastOf(devices.map((d) => d.id));
    return { devices: devices.map((d) => ({ ...d, lastRun: last.get(d.id) ?? null })) };
  });

  app.get(`${API_PREFIX}/servers`, { schema: { summary: 'The iperf3 servers of every pool, busy or not', response: {  ...ERROR_RESPONSES,200: serversResponseSchema } } }, async (): Promise<ServersResponse> => ({
    servers: control.servers(),
  }));
};
