/**
 * The inventory: devices (with their last run), adding, changing and removing devices managed by
 * the API, their configuration for `devices export`, and the iperf3 servers of every pool.
 */
import { Readable } from 'node:stream';
import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { API_PREFIX, type RunRecord } from '../../../contract/api.js';
import {
  deviceRecordSchema,
  deviceInfoSchema,
  deviceRecordsResponseSchema,
  runRecordSchema,
  deviceRemovedResponseSchema,
  devicesResponseSchema,
  deviceEntriesResponseSchema,
  serversResponseSchema,
  type DeviceRemovedResponse,
} from '../../../contract/apiResponses.js';
import type { DeviceRecord } from '../../../contract/devices.js';
import type { DeviceSummary, DevicesResponse, ServersResponse } from '../types.js';
import { ERROR_RESPONSES, type RouteDeps } from './deps.js';

/** Devices per store read of their last runs while GET /devices writes its answer. */
export const DEVICES_PAGE = 500;

/**
 * Each device's JSON without its last run, checked against the published schema once, by the
 * summary object the inventory keeps while the device is unchanged.
 */
const summaryJson = new WeakMap<DeviceSummary, string>();

function deviceHead(d: DeviceSummary): string {
  let head = summaryJson.get(d);
  if (head === undefined) {
    const json = JSON.stringify(deviceInfoSchema.encode({ ...d, lastRun: null }));
    // every key of the schema but lastRun, which comes last: `{...,"lastRun":null}` without `null}`
    head = json.slice(0, -'null}'.length);
    summaryJson.set(d, head);
  }
  return head;
}

function deviceJson(d: DeviceSummary, lastRun: RunRecord | null): string {
  return `${deviceHead(d)}${lastRun === null ? 'null' : JSON.stringify(runRecordSchema.encode(lastRun))}}`;
}

/** A device's JSON without the lastRun key (GET /devices?lastRun=false). */
function deviceEntryJson(d: DeviceSummary): string {
  return `${deviceHead(d).slice(0, -',"lastRun":'.length)}}`;
}

/**
 * The JSON of GET /devices in pieces, one page of devices each: the last runs of a page are read
 * from the store, each device is checked against its published schema and written out, and the
 * piece is sent before the next page is read. With 100,000 devices no list of every device, and
 * no string of the whole answer, is ever held. The first piece holds the first page.
 */
export async function* devicesJson(
  devices: Iterable<DeviceSummary>,
  lastOf: ((ids: string[]) => Promise<Map<string, RunRecord>>) | null,
  pageSize = DEVICES_PAGE,
): AsyncGenerator<string> {
  let out = '{"devices":[';
  let comma = '';
  let page: DeviceSummary[] = [];
  const render = async () => {
    if (lastOf === null) {
      // without last runs: no store read
      for (const d of page) {
        out += comma + deviceEntryJson(d);
        comma = ',';
      }
      page = [];
      return;
    }
    const last = await lastOf(page.map((d) => d.id));
    for (const d of page) {
      out += comma + deviceJson(d, last.get(d.id) ?? null);
      comma = ',';
    }
    page = [];
  };
  for (const d of devices) {
    page.push(d);
    if (page.length === pageSize) {
      await render();
      yield out;
      out = '';
    }
  }
  if (page.length > 0) await render();
  yield `${out}]}`;
}

export const inventoryRoutes: FastifyPluginAsyncZod<RouteDeps> = async (app, { deps, schemas }) => {
  const { control, store } = deps;

  app.get(
    `${API_PREFIX}/devices`,
    {
      schema: {
        summary: 'The devices, without credentials, each with its last run (lastRun=false: without)',
        querystring: schemas.devicesQuery,
        response: { ...ERROR_RESPONSES, 200: z.union([devicesResponseSchema, deviceEntriesResponseSchema]) },
      },
    },
    async (request, reply) => {
    const pieces = devicesJson(control.devices(), request.query.lastRun ? (ids) => store.runs.lastOf(ids) : null);
    // the first page is written before the answer starts: an invalid device or a store error there is a 500;
    // a later failure cuts the answer short (invalid JSON, logged), never a half-valid answer
    const first = await pieces.next();
    const body = Readable.from(
      (async function* () {
        yield first.value as string;
        yield* pieces;
      })(),
      { objectMode: false },
    );
    return reply.type('application/json; charset=utf-8').send(body as unknown as DevicesResponse);
    },
  );

  app.get(
    `${API_PREFIX}/devices/export`,
    { schema: { summary: 'Every device with its configuration (credential file names, never secrets), as `collector devices export` writes it', response: { ...ERROR_RESPONSES, 200: deviceRecordsResponseSchema } } },
    async (): Promise<{ devices: DeviceRecord[] }> => ({ devices: control.deviceRecords() }),
  );

  app.post(
    `${API_PREFIX}/devices`,
    {
      schema: {
        summary: 'Add a device managed by the API (201); it joins the next round and can be run at once, without a restart',
        body: schemas.deviceBody,
        response: { ...ERROR_RESPONSES, 201: deviceRecordSchema },
      },
    },
    async (request, reply) => reply.code(201).send(await control.addDevice(request.body)),
  );

  app.patch(
    `${API_PREFIX}/devices/:id`,
    {
      schema: {
        summary: 'Change a device managed by the API (enable or disable, labels, pool, SSH target, host key reset); 409 for a device of the configuration file',
        params: schemas.deviceId,
        body: schemas.devicePatchBody,
        response: { ...ERROR_RESPONSES, 200: deviceRecordSchema },
      },
    },
    async (request): Promise<DeviceRecord> => control.updateDevice(request.params.id, request.body),
  );

  app.delete(
    `${API_PREFIX}/devices/:id`,
    {
      schema: {
        summary: 'Remove a device managed by the API; its runs stay queryable unless history=delete; a running test finishes',
        params: schemas.deviceId,
        querystring: schemas.deviceDeleteQuery,
        response: { ...ERROR_RESPONSES, 200: deviceRemovedResponseSchema },
      },
    },
    async (request): Promise<DeviceRemovedResponse> => {
      const deleteHistory = request.query.history === 'delete';
      await control.removeDevice(request.params.id, deleteHistory);
      return { removed: request.params.id, history: deleteHistory ? 'deleted' : 'kept' };
    },
  );

  app.get(`${API_PREFIX}/servers`, { schema: { summary: 'The iperf3 servers of every pool, busy or not', response: {  ...ERROR_RESPONSES,200: serversResponseSchema } } }, async (): Promise<ServersResponse> => ({
    servers: control.servers(),
  }));
};
