import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance, InjectOptions } from 'fastify';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ApiErrorBody, RunRecord } from '../../contract/api.js';
import { settingsSchema, type SettingsInput } from '../../contract/settings.js';
import { decodeSeriesBinary, SERIES_BINARY_TYPE } from '../../contract/seriesBlock.js';
import { SqliteStore } from '../store/sqlite/sqliteStore.js';
import { SERVER_A, SERVER_B } from '../../tests/support/storeFixtures.js';
import { Telemetry } from '../telemetry.js';
import { probeServer } from '../dispatch/serverProbe.js';
import { buildApi } from './app.js';
import { DEVICES_PAGE, devicesJson } from './routes/inventory.js';
import { deviceEntriesResponseSchema, devicesResponseSchema } from '../../contract/apiResponses.js';
import { SettingsRejectedError } from '../errors.js';
import type { ApiDeps } from './types.js';
import { D0, DAY, FILE_SETTINGS, seedRuns, TestControl } from '../../tests/support/fakeControl.js';

const TOKEN = 's3cret-token-0123456789abcdef';

let dir: string;
let store: SqliteStore;
let control: TestControl;
let telemetry: Telemetry;
let app: FastifyInstance;
let ids: { a1: number; a2: number; b1: number };

function build(extra: Partial<ApiDeps> = {}): FastifyInstance {
  return buildApi({
    store,
    telemetry,
    token: TOKEN,
    version: '1.2.3',
    control,
    startedAt: new Date('2025-03-01T00:00:00.000Z'),
    ...extra,
  });
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'api-'));
  store = SqliteStore.open(join(dir, 'c.db'), { clock: () => new Date('2025-03-01T12:00:00.000Z') });
  ids = await seedRuns(store);
  control = new TestControl();
  telemetry = new Telemetry();
  app = build();
});
afterEach(async () => {
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function call(opts: InjectOptions & { token?: string | null }) {
  const { token, ...rest } = opts;
  const headers = token === null ? {} : { authorization: `Bearer ${token ?? TOKEN}` };
  const res = await app.inject({ ...rest, headers: { ...headers, ...rest.headers } });
  return { status: res.statusCode, headers: res.headers, body: res.body, rawPayload: res.rawPayload, json: () => res.json() };
}

const get = (url: string) => call({ method: 'GET', url });

/** GET that must fail with 400; returns the field errors. */
async function fields(url: string): Promise<ApiErrorBody['fields']> {
  const res = await get(url);
  expect(res.status, res.body).toBe(400);
  const body = res.json() as ApiErrorBody;
  expect(body.error).toBe('invalid-request');
  expect(body.message).toBe(body.fields!.map((f) => `${f.field}: ${f.message}`).join('; '));
  return body.fields;
}

describe('authentication', () => {
  it('serves /healthz without a token', async () => {
    const res = await call({ method: 'GET', url: '/healthz', token: null });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('serves the OpenAPI document of its routes to token holders only', async () => {
    expect((await call({ method: 'GET', url: '/api/v1/openapi.json', token: null })).status).toBe(401);
    const res = await get('/api/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.json() as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toContain('/api/v1/series');
    expect(Object.keys(doc.paths)).not.toContain('/healthz');
  });

  it('answers 401 without an Authorization header, naming the header to send', async () => {
    const res = await call({ method: 'GET', url: '/api/v1/servers', token: null });
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="iperf3-collector"');
    expect(res.json()).toEqual({
      error: 'unauthorized',
      message: 'missing Authorization header; send "Authorization: Bearer <token>" with the collector API token',
    });
  });

  it('answers 401 for another scheme and for a wrong token, never echoing either token', async () => {
    const basic = await call({ method: 'GET', url: '/api/v1/servers', token: null, headers: { authorization: `Basic ${TOKEN}` } });
    expect(basic.status).toBe(401);
    expect(basic.json().message).toBe('the Authorization header must be "Bearer <token>"');
    expect(basic.body).not.toContain(TOKEN);

    for (const wrong of ['guess-0123', `${TOKEN}x`, TOKEN.slice(0, -1)]) {
      const res = await call({ method: 'GET', url: '/api/v1/servers', token: wrong });
      expect(res.status).toBe(401);
      expect(res.json()).toEqual({ error: 'unauthorized', message: 'wrong API token; use the token the collector was configured with' });
      expect(res.body).not.toContain(wrong);
    }
  });

  it('accepts the right token with any case of "Bearer"', async () => {
    const res = await call({ method: 'GET', url: '/api/v1/servers', token: null, headers: { authorization: `bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
  });

  it('protects /metrics and unknown routes too', async () => {
    expect((await call({ method: 'GET', url: '/metrics', token: null })).status).toBe(401);
    expect((await call({ method: 'GET', url: '/api/v1/nothing', token: null })).status).toBe(401);
    const res = await get('/api/v1/nothing?x=1');
    expect(res.status).toBe(404);
    expect(res.json()).toEqual({ error: 'not-found', message: 'no route GET /api/v1/nothing; docs/api.md lists the routes' });
  });

  it('refuses to start with an empty token', () => {
    expect(() => build({ token: '  ' })).toThrow('the API token is empty');
  });
});

describe('GET /metrics', () => {
  it('serves the Prometheus text format', async () => {
    telemetry.setQueueLength(7);
    const res = await get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(telemetry.contentType);
    expect(res.body).toContain('iperf3_collector_queue_length 7');
  });
});

describe('GET /api/v1/health', () => {
  it('reports status, counts and every server checked concurrently, with failures and timeouts', async () => {
    app = build({ limits: { healthCheckTimeoutMs: 50 } });
    control.serverList = [
      ...control.serverList,
      { host: '10.0.0.3', port: 5201, key: '10.0.0.3:5201', pool: 'edge', busy: false, busySeconds: 0 },
      { host: '10.0.0.4', port: 5202, key: '10.0.0.4:5202', pool: 'edge', busy: false, busySeconds: 0 },
      { host: '10.0.0.5', port: 5201, key: '10.0.0.5:5201', pool: 'edge', busy: false, busySeconds: 0 },
    ];
    control.checks.set('10.0.0.2', { reachable: false, error: 'ECONNREFUSED' });
    control.checks.set('10.0.0.3', 'never');
    control.checks.set('10.0.0.4', new Error('resolver exploded'));
    control.checks.set('10.0.0.5', 'not an Error');
    const res = await get('/api/v1/health');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      status: 'ok',
      version: '1.2.3',
      startedAt: '2025-03-01T00:00:00.000Z',
      devices: 3,
      enabledDevices: 2,
      servers: [
        { host: '10.0.0.1', port: 5201, key: SERVER_A, pool: null, busy: true, busySeconds: 12.5, reachable: true },
        { host: '10.0.0.2', port: 5201, label: 'second', key: SERVER_B, pool: null, busy: false, busySeconds: 0, reachable: false, error: 'ECONNREFUSED' },
        { host: '10.0.0.3', port: 5201, key: '10.0.0.3:5201', pool: 'edge', busy: false, busySeconds: 0, reachable: false, error: 'no answer within 50 ms' },
        { host: '10.0.0.4', port: 5202, key: '10.0.0.4:5202', pool: 'edge', busy: false, busySeconds: 0, reachable: false, error: 'resolver exploded' },
        { host: '10.0.0.5', port: 5201, key: '10.0.0.5:5201', pool: 'edge', busy: false, busySeconds: 0, reachable: false, error: 'not an Error' },
      ],
      nextRun: '2025-03-02T02:00:00.000Z',
      lastScheduledRun: '2025-03-01T02:00:00.000Z',
      running: true,
      queueLength: 3,
      settingsSource: 'file',
    });
    expect(control.checkCalls).toContainEqual(['10.0.0.4', 5202, 50]);
  });

  it('probes each host:port once, at most 16 at a time, however many servers and pools there are', async () => {
    const servers = Array.from({ length: 200 }, (_, i) => ({ host: `10.1.${i >> 8}.${i & 255}`, port: 5201, key: `10.1.${i >> 8}.${i & 255}:5201`, busy: false, busySeconds: 0 }));
    control.serverList = [...servers.map((s) => ({ ...s, pool: null })), ...servers.map((s) => ({ ...s, pool: 'copy' }))];
    let inFlight = 0;
    let most = 0;
    const probed: string[] = [];
    control.checkServer = async (host, port) => {
      probed.push(`${host}:${port}`);
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, 2));
      inFlight--;
      return { reachable: true };
    };
    const res = await get('/api/v1/health');
    expect(res.status).toBe(200);
    expect(res.json().servers).toHaveLength(400);
    expect(probed.sort()).toEqual(servers.map((s) => s.key).sort());
    expect(most).toBe(16);
  });

  it('shares one probe round among calls that arrive while it runs (one TCP connection per server), and probes afresh after it', async () => {
    // the client ports of the connections the server accepted, in order
    const accepted: number[] = [];
    const listener = createServer((socket) => {
      accepted.push(socket.remotePort!);
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    const { port } = listener.address() as AddressInfo;
    // the probes' connections the server has accepted: one more connection of our own, once the
    // server has accepted it, comes after every earlier one
    let sentinels = 0;
    const probesAccepted = async (): Promise<number> => {
      const own = await new Promise<number>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => resolve(socket.localPort!));
      });
      sentinels++;
      while (!accepted.includes(own)) await new Promise((r) => setTimeout(r, 5));
      return accepted.length - sentinels;
    };
    try {
      const key = `127.0.0.1:${port}`;
      control.serverList = [null, 'copy'].map((pool) => ({ host: '127.0.0.1', port, key, pool, busy: false, busySeconds: 0 }));
      // the real probe, held until every caller has joined the round
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      control.checkServer = async (host, p, ms) => {
        await held;
        return probeServer(host, p, ms);
      };
      let joined = 0;
      const devices = control.devices.bind(control);
      control.devices = () => (joined++, devices());
      const calls = Array.from({ length: 5 }, () => get('/api/v1/health'));
      while (joined < 5) await new Promise((r) => setImmediate(r));
      release();
      const answers = await Promise.all(calls);
      for (const res of answers) {
        expect(res.status).toBe(200);
        expect(res.json().servers).toEqual(control.serverList.map((s) => ({ ...s, reachable: true })));
      }
      expect(await probesAccepted()).toBe(1);
      expect((await get('/api/v1/health')).json().servers[0].reachable).toBe(true);
      expect(await probesAccepted()).toBe(2);
    } finally {
      await new Promise((resolve) => listener.close(resolve));
    }
  });

  it('gives null times when the schedule is off and has never run', async () => {
    control.statusValue = { running: false, queueLength: 0, nextRun: null, lastScheduledRun: null, settingsSource: 'api' };
    control.serverList = [];
    const body = (await get('/api/v1/health')).json();
    expect(body).toMatchObject({ nextRun: null, lastScheduledRun: null, running: false, queueLength: 0, settingsSource: 'api', servers: [] });
  });

  it('defaults startedAt to the time the API was built', async () => {
    const before = Date.now();
    app = build({ startedAt: undefined });
    const startedAt = Date.parse((await get('/api/v1/health')).json().startedAt);
    expect(startedAt).toBeGreaterThanOrEqual(before);
    expect(startedAt).toBeLessThanOrEqual(Date.now());
  });
});

async function collect(pieces: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const piece of pieces) out.push(piece);
  return out;
}

describe('GET /api/v1/devices and /api/v1/servers', () => {
  it('lists devices without credentials, each with its newest run', async () => {
    const res = await get('/api/v1/devices');
    expect(res.status).toBe(200);
    const { devices } = res.json() as { devices: (Record<string, unknown> & { lastRun: RunRecord | null })[] };
    expect(devices.map((d) => [d.id, d.lastRun?.id ?? null])).toEqual([
      ['a', ids.a2],
      ['b', ids.b1],
      ['c', null],
    ]);
    expect(devices[0]).toEqual({
      id: 'a',
      host: '192.0.2.1',
      port: 22,
      labels: { site: 'rome' },
      pool: null,
      enabled: true,
      lastRun: await store.runs.get(ids.a2),
    });
  });

  it('lists the devices without their last runs, and without reading runs, with lastRun=false', async () => {
    const full = (await get('/api/v1/devices')).json() as { devices: (Record<string, unknown> & { lastRun: RunRecord | null })[] };
    const res = await get('/api/v1/devices?lastRun=false');
    expect(res.status).toBe(200);
    const light = res.json() as { devices: Record<string, unknown>[] };
    expect(light).toEqual({ devices: full.devices.map(({ lastRun: _lastRun, ...device }) => device) });
    expect(light.devices.every((d) => !('lastRun' in d))).toBe(true);
    expect(deviceEntriesResponseSchema.parse(light)).toEqual(light);
    expect((await get('/api/v1/devices?lastRun=true')).json()).toEqual(full);
    expect(await fields('/api/v1/devices?lastRun=maybe')).toEqual([{ field: 'lastRun', message: 'use true or false' }]);
    // no store read: a page of devices whose last runs would fail to load
    const devices = ['a', 'b', 'c'].map((id) => ({ id, host: '192.0.2.9', port: 22, labels: { site: id }, pool: null, enabled: true, managedBy: 'api' as const }));
    const pieces = await collect(devicesJson(devices, null, 2));
    expect(JSON.parse(pieces.join(''))).toEqual({ devices });
    expect(pieces).toHaveLength(2);
  });

  it('builds the answer page by page: one store read of last runs per page, every device once, in order', async () => {
    const devices = ['a', 'b', 'c', 'd', 'e'].map((id) => ({ id, host: '192.0.2.9', port: 22, labels: {}, pool: null, enabled: id !== 'd', managedBy: 'file' as const }));
    const pages: string[][] = [];
    const pieces = await collect(devicesJson(devices, (page) => (pages.push(page), store.runs.lastOf(page)), 2));
    expect(pages).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    // one piece per page, the first with the first page, each sent before the next page is read
    expect(pieces.map((p) => [...p.matchAll(/"id":"(\w)","host"/g)].map((m) => m[1]))).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    const body = JSON.parse(pieces.join('')) as { devices: { id: string; lastRun: RunRecord | null }[] };
    expect(devicesResponseSchema.parse(body)).toEqual(body);
    expect(body.devices.map((d) => [d.id, d.lastRun?.id ?? null])).toEqual([
      ['a', ids.a2],
      ['b', ids.b1],
      ['c', null],
      ['d', null],
      ['e', null],
    ]);
    expect(await collect(devicesJson([], (page) => store.runs.lastOf(page)))).toEqual(['{"devices":[]}']);
  });

  it('a device listed again answers its current last run; a changed device (a new summary) its new values', async () => {
    const a = { id: 'a', host: '192.0.2.9', port: 22, labels: { site: 'rome' }, pool: null, enabled: true, managedBy: 'file' as const };
    const devices = async (list: (typeof a)[], lastOf = (page: string[]) => store.runs.lastOf(page)) =>
      (JSON.parse((await collect(devicesJson(list, lastOf))).join('')) as { devices: (typeof a & { lastRun: RunRecord | null })[] }).devices;
    expect((await devices([a]))[0]).toEqual({ ...a, lastRun: await store.runs.get(ids.a2) });
    expect((await devices([a], async () => new Map()))[0]).toEqual({ ...a, lastRun: null });
    const moved = { ...a, host: '192.0.2.10', labels: { site: 'oslo' }, enabled: false };
    expect((await devices([moved]))[0]).toEqual({ ...moved, lastRun: await store.runs.get(ids.a2) });
  });

  it('sends the answer while later pages are read; a store failure after the first page cuts the connection (logged)', async () => {
    control.deviceList = Array.from({ length: DEVICES_PAGE + 1 }, (_, i) => ({ id: `d${String(i).padStart(4, '0')}`, host: '192.0.2.9', port: 22, labels: {}, pool: null, enabled: true }));
    const whole = await get('/api/v1/devices');
    expect(whole.status).toBe(200);
    expect(whole.headers['content-type']).toBe('application/json; charset=utf-8');
    expect((JSON.parse(whole.body) as { devices: unknown[] }).devices).toHaveLength(DEVICES_PAGE + 1);

    const lines: string[] = [];
    app = build({ logger: pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _enc, cb) => (lines.push(chunk.toString()), cb()) })) });
    const lastOf = store.runs.lastOf.bind(store.runs);
    let reads = 0;
    store.runs.lastOf = (devices) => (++reads === 2 ? Promise.reject(new Error('disk I/O error')) : lastOf(devices));
    // the answer had started: the connection is cut, the client never gets a complete answer
    await expect(get('/api/v1/devices')).rejects.toThrow(/destroyed before completion/);
    expect(reads).toBe(2);
    expect(lines.join('')).toContain('disk I/O error');
  });

  it('lists the servers', async () => {
    const res = await get('/api/v1/servers');
    expect(res.json()).toEqual({ servers: control.serverList });
  });
});

describe('settings', () => {
  const input: SettingsInput = { servers: [{ host: '192.0.2.50', port: 5202 }], schedule: { cron: '15 1 * * *', timezone: 'Europe/Rome' } };

  it('GET gives the effective settings and their source', async () => {
    expect((await get('/api/v1/settings')).json()).toEqual({ settings: FILE_SETTINGS, source: 'file', updatedAt: null });
  });

  it('GET and PUT mask an iperf3 password', async () => {
    const withAuth = settingsSchema.parse({ ...input, clientOptions: { auth: { username: 'u', password: 'hunter2' } } });
    control.current = { settings: withAuth, source: 'api', updatedAt: 'x' };
    const got = await get('/api/v1/settings');
    expect(got.body).not.toContain('hunter2');
    expect(got.json().settings.clientOptions.auth).toEqual({ username: 'u', password: '********', pkcs1Padding: false });

    const put = await call({ method: 'PUT', url: '/api/v1/settings', payload: withAuth });
    expect(put.status).toBe(200);
    expect(put.body).not.toContain('hunter2');
    // the collector itself keeps the real password to run the tests
    expect((await store.settings.get())!.settings.clientOptions.auth!.password).toBe('hunter2');
    // auth without a password is returned as it is
    const noPassword = settingsSchema.parse({ ...input, clientOptions: { auth: { username: 'u', rsaPublicKey: 'PEM' } } });
    const put2 = await call({ method: 'PUT', url: '/api/v1/settings', payload: noPassword });
    expect(put2.json().settings.clientOptions.auth).toEqual({ username: 'u', rsaPublicKey: 'PEM', pkcs1Padding: false });
  });

  it('PUT validates, stores, applies and answers with the settings and the time of the save', async () => {
    const res = await call({ method: 'PUT', url: '/api/v1/settings', payload: input });
    expect(res.status).toBe(200);
    const expected = settingsSchema.parse(input);
    expect(res.json()).toEqual({ settings: expected, source: 'api', updatedAt: '2025-03-01T12:00:00.000Z' });
    expect(await store.settings.get()).toEqual({ settings: expected, updatedAt: '2025-03-01T12:00:00.000Z' });
    expect(control.current).toEqual({ settings: expected, source: 'api', updatedAt: '2025-03-01T12:00:00.000Z' });
    expect((await get('/api/v1/settings')).json().source).toBe('api');
  });

  it('PUT answers 400 naming every bad field, and stores and applies nothing', async () => {
    const res = await call({
      method: 'PUT',
      url: '/api/v1/settings',
      payload: { servers: [{ host: 'not a host!' }], clientOptions: { time: 0 }, schedule: { cron: 'every night' } },
    });
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({
      error: 'invalid-request',
      message: expect.stringContaining('servers.0.host: must be an IPv4 address, an IPv6 address or a DNS name'),
      fields: [
        { field: 'servers.0.host', message: 'must be an IPv4 address, an IPv6 address or a DNS name' },
        { field: 'clientOptions.time', message: 'must be at least 1 s' },
        { field: 'schedule.cron', message: 'not a valid cron expression: use five fields (minute hour day-of-month month day-of-week), e.g. "0 2 * * *" (02:00 every night)' },
      ],
    });
    expect(await store.settings.get()).toBeNull();
    expect(control.current.source).toBe('file');
  });

  it('PUT keeps the previous settings stored when the collector rejects the new ones', async () => {
    await call({ method: 'PUT', url: '/api/v1/settings', payload: input });
    const before = await store.settings.get();
    control.applyError = new SettingsRejectedError([{ field: 'pools', message: 'device b uses pool "edge", which is missing' }]);
    const res = await call({ method: 'PUT', url: '/api/v1/settings', payload: { servers: [{ host: '192.0.2.99' }] } });
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({
      error: 'settings-rejected',
      message: 'settings rejected: pools: device b uses pool "edge", which is missing',
      fields: [{ field: 'pools', message: 'device b uses pool "edge", which is missing' }],
    });
    expect(await store.settings.get()).toEqual(before);
  });

  it('PUT answers 500 without details when applying fails unexpectedly, and logs the error without the token', async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          lines.push(chunk.toString());
          cb();
        },
      }),
    );
    app = build({ logger });
    control.applyError = new Error('scheduler state corrupt');
    const res = await call({ method: 'PUT', url: '/api/v1/settings', payload: input });
    expect(res.status).toBe(500);
    expect(res.json()).toEqual({ error: 'internal', message: 'internal error; the collector log has the details' });
    expect(await store.settings.get()).toBeNull();
    const log = lines.join('');
    expect(log).toContain('scheduler state corrupt');
    expect(log).not.toContain(TOKEN);
  });

  it('never sends an answer that breaks its published schema: a 500 instead of a half-valid reply', async () => {
    control.deviceList = [{ id: 'a', host: '192.0.2.1', port: 22, labels: { site: 7 as unknown as string }, pool: null, enabled: true }];
    const res = await get('/api/v1/devices');
    expect(res.status).toBe(500);
    expect(res.json()).toEqual({ error: 'internal', message: 'internal error; the collector log has the details' });
  });

  it('keeps a token or password put in the query string out of the access log', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk: Buffer, _enc, cb) => (lines.push(chunk.toString()), cb()) }));
    app = build({ logger });
    await call({ method: 'GET', url: `/api/v1/devices?token=${TOKEN}&x=1&Password=hunter2&api_key=k3y`, token: null });
    await call({ method: 'GET', url: `/api/v1/runs?device=a&access_token=${TOKEN}` });
    await call({ method: 'GET', url: '/api/v1/servers?%E0%A4%A=1&token&x' });
    const log = lines.join('');
    expect(log).toContain('"url":"/api/v1/devices?token=[redacted]&x=1&Password=[redacted]&api_key=[redacted]"');
    expect(log).toContain('"url":"/api/v1/runs?device=a&access_token=[redacted]"');
    expect(log).toContain('"url":"/api/v1/servers?%E0%A4%A=1&token=[redacted]&x"');
    expect(log).not.toContain(TOKEN);
    expect(log).not.toContain('hunter2');
    expect(log).not.toContain('k3y');
  });

  it('PUT answers 400 for malformed JSON, 415 for another content type and 413 for a huge body', async () => {
    const bad = await call({ method: 'PUT', url: '/api/v1/settings', payload: '{"servers": [', headers: { 'content-type': 'application/json' } });
    expect(bad.status).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'bad-request', message: expect.stringContaining('JSON') });

    const text = await call({ method: 'PUT', url: '/api/v1/settings', payload: 'servers: []', headers: { 'content-type': 'text/yaml' } });
    expect(text.status).toBe(415);
    expect(text.json()).toEqual({
      error: 'unsupported-media-type',
      message: 'Unsupported Media Type; send the body as JSON with "Content-Type: application/json"',
    });

    app = build({ limits: { bodyLimit: 64 } });
    const huge = await call({ method: 'PUT', url: '/api/v1/settings', payload: { servers: Array(20).fill({ host: '192.0.2.1' }) } });
    expect(huge.status).toBe(413);
    expect(huge.json()).toEqual({
      error: 'payload-too-large',
      message: 'Request body is too large; the body is larger than the collector accepts',
    });
    expect(await store.settings.get()).toBeNull();
  });
});

describe('POST /api/v1/runs', () => {
  const post = (payload: unknown) => call({ method: 'POST', url: '/api/v1/runs', payload: payload as object });

  it('queues the devices once each and answers 202', async () => {
    const res = await post({ devices: ['a', 'b', 'a'] });
    expect(res.status).toBe(202);
    expect(res.json()).toEqual({ queued: ['a', 'b'] });
    expect(control.queued).toEqual([['a', 'b']]);
  });

  it('answers 404 for an unknown device and 409 for a running one, queuing nothing', async () => {
    const unknown = await post({ devices: ['a', 'zz'] });
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toEqual({ error: 'unknown-device', message: 'unknown device: zz; GET /api/v1/devices lists the inventory' });
    const several = await post({ devices: ['zz', 'a', 'yy'] });
    expect(several.json().message).toBe('unknown devices: zz, yy; GET /api/v1/devices lists the inventory');
    control.running.add('b');
    const busy = await post({ devices: ['a', 'b'] });
    expect(busy.status).toBe(409);
    expect(busy.json()).toEqual({ error: 'already-running', message: 'already queued or running: b; wait for the current run to finish' });
    expect(control.queued).toEqual([]);
  });

  it('names the field of every malformed request', async () => {
    app = build({ limits: { maxDevices: 2 } });
    const cases: [unknown, { field: string; message: string }[]][] = [
      [{}, [{ field: 'devices', message: 'required: a list of device ids, e.g. ["r1"]' }]],
      [{ devices: 'a' }, [{ field: 'devices', message: 'required: a list of device ids, e.g. ["r1"]' }]],
      [{ devices: [] }, [{ field: 'devices', message: 'name at least one device' }]],
      [{ devices: ['a', ' '] }, [{ field: 'devices.1', message: 'a device id cannot be empty' }]],
      [{ devices: ['a', 'b', 'c'] }, [{ field: 'devices', message: 'at most 2 devices per request; split the request' }]],
      [{ devices: ['a'], now: true }, [{ field: 'now', message: 'unknown field; known: devices' }]],
      [['a'], [{ field: '(root)', message: 'send a JSON object such as {"devices": ["r1"]}' }]],
    ];
    for (const [payload, expected] of cases) {
      const res = await post(payload);
      expect(res.status, JSON.stringify(payload)).toBe(400);
      expect(res.json().fields).toEqual(expected);
    }
    expect(control.queued).toEqual([]);
  });
});

describe('GET /api/v1/runs', () => {
  const runIds = async (url: string) => ((await get(url)).json().runs as RunRecord[]).map((r) => r.id);

  it('lists runs newest first with their tests', async () => {
    const res = await get('/api/v1/runs');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ runs: await store.runs.list() });
    expect(res.json().runs.map((r: RunRecord) => r.id)).toEqual([ids.a2, ids.b1, ids.a1]);
  });

  it('filters by devices (repeated or comma-separated), status, time (ms or ISO) and limit', async () => {
    expect(await runIds('/api/v1/runs?device=a')).toEqual([ids.a2, ids.a1]);
    expect(await runIds('/api/v1/runs?device=a&device=b')).toEqual([ids.a2, ids.b1, ids.a1]);
    expect(await runIds('/api/v1/runs?device=b,%20a&status=ok')).toEqual([ids.b1, ids.a1]);
    expect(await runIds('/api/v1/runs?status=failed,skipped')).toEqual([ids.a2]);
    expect(await runIds(`/api/v1/runs?from=${D0 + 1}`)).toEqual([ids.a2, ids.b1]);
    expect(await runIds('/api/v1/runs?from=2025-02-01T02:00:00.500Z&to=2025-02-01T03:00:00Z')).toEqual([ids.b1]);
    expect(await runIds('/api/v1/runs?limit=1')).toEqual([ids.a2]);
  });

  it('names the bad parameter and the fix', async () => {
    expect(await fields('/api/v1/runs?status=done')).toEqual([
      { field: 'status.0', message: '"done" is not a run status; use one of running, ok, failed, skipped, interrupted' },
    ]);
    expect(await fields('/api/v1/runs?from=yesterday')).toEqual([
      { field: 'from', message: '"yesterday" is not a time; use epoch milliseconds (e.g. 1735689600000) or an ISO-8601 time (e.g. 2025-01-01T00:00:00Z)' },
    ]);
    expect(await fields('/api/v1/runs?to=2025-13-45')).toEqual([{ field: 'to', message: expect.stringContaining('"2025-13-45" is not a time') }]);
    expect(await fields('/api/v1/runs?from=99999999999999999999')).toEqual([{ field: 'from', message: expect.stringContaining('is not a time') }]);
    expect(await fields(`/api/v1/runs?from=${D0 + 1}&to=${D0}`)).toEqual([{ field: 'from', message: 'must not be after "to"' }]);
    expect(await fields('/api/v1/runs?from=1&from=2')).toEqual([{ field: 'from', message: 'give this parameter once' }]);
    expect(await fields('/api/v1/runs?limit=0')).toEqual([{ field: 'limit', message: 'must be from 1 to 1000' }]);
    expect(await fields('/api/v1/runs?limit=1001')).toEqual([{ field: 'limit', message: 'must be from 1 to 1000' }]);
    expect(await fields('/api/v1/runs?limit=ten')).toEqual([{ field: 'limit', message: 'must be a whole number from 1 to 1000' }]);
    expect(await fields('/api/v1/runs?device=,')).toEqual([{ field: 'device', message: 'name at least one device' }]);
    expect(await fields(`/api/v1/runs?device=${'x'.repeat(201)}`)).toEqual([
      { field: 'device.0', message: 'a device id has at most 200 characters' },
    ]);
    expect(await fields('/api/v1/runs?devices=a&sort=asc')).toEqual([
      { field: 'devices', message: 'unknown parameter; known: device, status, from, to, limit' },
      { field: 'sort', message: 'unknown parameter; known: device, status, from, to, limit' },
    ]);
  });

  it('says which test a running run of this collector is in, in the list and for one run', async () => {
    const running = await store.runs.start({ device: 'b', trigger: 'manual', roundId: null, startedAt: new Date(D0 + 3600_000) });
    const current = { protocol: 'udp' as const, direction: 'download' as const, index: 4, of: 4, startedAt: '2025-02-01T03:00:30.000Z' };
    control.currentTest = (runId: number) => (runId === running || runId === ids.a1 ? current : undefined);
    const runs = (await get('/api/v1/runs?device=b')).json().runs as RunRecord[];
    expect(runs.map((r) => [r.id, r.status, r.current])).toEqual([
      [running, 'running', current],
      [ids.b1, 'ok', undefined],
    ]);
    expect((await get(`/api/v1/runs/${running}`)).json()).toMatchObject({ status: 'running', current });
    // a finished run never carries one, whatever the control says
    expect((await get(`/api/v1/runs/${ids.a1}`)).json().current).toBeUndefined();
  });

  it('limits the number of devices per request', async () => {
    app = build({ limits: { maxDevices: 2 } });
    expect(await fields('/api/v1/runs?device=a,b,c')).toEqual([{ field: 'device', message: 'at most 2 devices per request; split the request' }]);
  });
});

describe('GET /api/v1/runs/:id and /intervals', () => {
  it('gives one run with its tests', async () => {
    const res = await get(`/api/v1/runs/${ids.a1}`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual(await store.runs.get(ids.a1));
    expect(res.json().tests).toHaveLength(2);
  });

  it('gives the per-second data of a run with the run', async () => {
    const res = await get(`/api/v1/runs/${ids.a1}/intervals`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ run: await store.runs.get(ids.a1), intervals: await store.runs.intervals(ids.a1) });
    expect(res.json().intervals[0]).toEqual({
      protocol: 'tcp',
      direction: 'upload',
      start: 0,
      end: 1,
      timeMs: D0 + 2000,
      bitsPerSecond: 90,
      omitted: true,
    });
  });

  it('answers 404 for an unknown run and 400 for an id that is not a number', async () => {
    for (const suffix of ['', '/intervals']) {
      const missing = await get(`/api/v1/runs/999${suffix}`);
      expect(missing.status).toBe(404);
      expect(missing.json()).toEqual({ error: 'not-found', message: 'no run with id 999; GET /api/v1/runs lists the runs' });
      expect(await fields(`/api/v1/runs/abc${suffix}`)).toEqual([{ field: 'id', message: 'a run id is a positive whole number' }]);
    }
  });
});

describe('GET /api/v1/series', () => {
  const range = `from=${D0}&to=${D0 + 2 * DAY}`;

  it('gives the series of the devices and metrics asked for', async () => {
    const res = await get(`/api/v1/series?device=a&metric=tcp_received_bps&${range}`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      fromMs: D0,
      toMs: D0 + 2 * DAY,
      maxPoints: 1000,
      series: [
        { device: 'a', metric: 'tcp_received_bps', server: null, direction: 'download', points: [[D0, 200, 0]] },
        { device: 'a', metric: 'tcp_received_bps', server: null, direction: 'upload', points: [[D0, 100, 0], [D0 + DAY, 0, 1]] },
      ],
    });
  });

  it('answers the same series as columns with format=columns', async () => {
    const res = await get(`/api/v1/series?device=a&metric=tcp_received_bps&format=columns&${range}`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      fromMs: D0,
      toMs: D0 + 2 * DAY,
      maxPoints: 1000,
      format: 'columns',
      series: [
        { device: 'a', metric: 'tcp_received_bps', server: null, direction: 'download', times: [D0], values: [200], failed: [0] },
        { device: 'a', metric: 'tcp_received_bps', server: null, direction: 'upload', times: [D0, D0 + DAY], values: [100, 0], failed: [0, 1] },
      ],
    });
    expect((await get(`/api/v1/series?device=nobody&metric=result&format=columns&${range}`)).json()).toMatchObject({ format: 'columns', series: [] });
    expect(await fields(`/api/v1/series?device=a&metric=result&format=arrow&${range}`)).toEqual([{ field: 'format', message: 'use one of points, columns, binary' }]);
  });

  it('answers the same series as little-endian bytes with format=binary', async () => {
    const res = await get(`/api/v1/series?device=a&metric=tcp_received_bps&format=binary&${range}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(SERIES_BINARY_TYPE);
    const body = res.rawPayload;
    expect(body.subarray(0, 4).toString('latin1')).toBe('IPS1');
    const decoded = decodeSeriesBinary(new Uint8Array(body).buffer);
    const plain = { ...decoded, series: decoded.series.map((s) => ({ ...s, times: Array.from(s.times), values: Array.from(s.values), failed: Array.from(s.failed) })) };
    expect(plain).toEqual((await get(`/api/v1/series?device=a&metric=tcp_received_bps&format=columns&${range}`)).json());
    expect(plain.series.map((s) => [s.direction, s.times, s.values, s.failed])).toEqual([
      ['download', [D0], [200], [0]],
      ['upload', [D0, D0 + DAY], [100, 0], [0, 1]],
    ]);
    const none = (await get(`/api/v1/series?device=nobody&metric=result&format=binary&${range}`)).rawPayload;
    expect(decodeSeriesBinary(new Uint8Array(none).buffer)).toEqual({ fromMs: D0, toMs: D0 + 2 * DAY, maxPoints: 1000, format: 'columns', series: [] });
  });

  it('passes all, several metrics, server, direction, splitByServer and maxPoints through', async () => {
    const all = (await get(`/api/v1/series?device=all&metric=result,tcp_received_bps&direction=upload&${range}`)).json();
    expect(all.series.map((s: { device: string; metric: string; direction: string | null }) => [s.device, s.metric, s.direction])).toEqual([
      ['a', 'result', null],
      ['a', 'tcp_received_bps', 'upload'],
      ['b', 'result', null],
      ['b', 'tcp_received_bps', 'upload'],
    ]);
    const split = (await get(`/api/v1/series?device=a&device=b&metric=result&splitByServer=true&${range}`)).json();
    expect(split.series.map((s: { device: string; server: string }) => [s.device, s.server])).toEqual([
      ['a', SERVER_A],
      ['b', SERVER_B],
    ]);
    const onB = (await get(`/api/v1/series?device=a,b&metric=result&server=${encodeURIComponent(SERVER_B)}&${range}`)).json();
    expect(onB.series).toEqual([{ device: 'b', metric: 'result', server: null, direction: null, points: [[D0 + 1000, 1, 0]] }]);
    const reduced = (await get(`/api/v1/series?device=a&metric=result&maxPoints=1&from=${D0}&to=${D0 + DAY}`)).json();
    expect(reduced).toMatchObject({ maxPoints: 1, series: [{ points: [[D0, 0.5, 1]] }] });
    const iso = (await get('/api/v1/series?device=a&metric=result&from=2025-02-01T00:00:00Z&to=2025-02-01T12:00:00Z&splitByServer=false')).json();
    expect(iso).toMatchObject({ fromMs: Date.parse('2025-02-01T00:00:00Z'), series: [{ server: null, points: [[D0, 1, 0]] }] });
  });

  it('answers 503 busy, with the fix, when more series queries arrive than the store reads at once and queues', async () => {
    await app.close();
    await store.close();
    store = SqliteStore.open(join(dir, 'c.db'), { readers: 1, maxQueuedReads: 0 });
    app = build();
    const answers = await Promise.all([1, 2].map(() => get(`/api/v1/series?device=a&metric=tcp_received_bps&${range}`)));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 503]);
    expect(answers.find((a) => a.status === 503)?.json()).toEqual({
      error: 'busy',
      message: 'the collector is busy: 1 metric queries are running and 0 are waiting; retry in a few seconds, or ask for fewer devices or a shorter range',
    });
  });

  it('names the bad parameter and the fix', async () => {
    expect(await fields('/api/v1/series')).toEqual([
      { field: 'device', message: 'required: one or more device ids' },
      { field: 'metric', message: expect.stringMatching(/^required: one or more metrics \(tcp_received_bps, .*duration_s\)$/) },
      { field: 'from', message: expect.stringMatching(/^required: the start of the range; use epoch milliseconds/) },
      { field: 'to', message: expect.stringMatching(/^required: the end of the range; use epoch milliseconds/) },
    ]);
    expect(await fields(`/api/v1/series?device=a&metric=bps&${range}`)).toEqual([
      { field: 'metric.0', message: expect.stringMatching(/^"bps" is not a metric; use one of tcp_received_bps, tcp_sent_bps, /) },
    ]);
    expect(await fields(`/api/v1/series?device=a&metric=,&${range}`)).toEqual([
      { field: 'metric', message: expect.stringMatching(/^name at least one metric \(tcp_received_bps/) },
    ]);
    expect(await fields(`/api/v1/series?device=a&metric=result&direction=up&${range}`)).toEqual([
      { field: 'direction', message: 'use one of upload, download' },
    ]);
    expect(await fields(`/api/v1/series?device=a&metric=result&server=&${range}`)).toEqual([
      { field: 'server', message: 'give the server as host:port, e.g. 10.0.0.1:5201' },
    ]);
    expect(await fields(`/api/v1/series?device=a&metric=result&maxPoints=10001&${range}`)).toEqual([
      { field: 'maxPoints', message: 'must be from 1 to 10000' },
    ]);
    expect(await fields(`/api/v1/series?device=a&metric=result&splitByServer=maybe&${range}`)).toEqual([
      { field: 'splitByServer', message: 'use true or false' },
    ]);
    expect(await fields(`/api/v1/series?device=a&metric=result&from=${D0 + 1}&to=${D0}`)).toEqual([
      { field: 'from', message: 'must not be after "to"' },
    ]);
    expect(await fields(`/api/v1/series?device=a&metric=result&from=0&to=${D0}`)).toEqual([
      { field: 'from', message: 'the range from..to may span at most 1830 days; narrow it' },
    ]);
    expect(await fields(`/api/v1/series?device=a&metric=result&step=1m&${range}`)).toEqual([
      { field: 'step', message: 'unknown parameter; known: device, metric, from, to, maxPoints, server, direction, splitByServer, format' },
    ]);
  });

  it('honours the configured limits', async () => {
    app = build({ limits: { maxDevices: 2, maxPoints: 50, maxRangeMs: 3 * DAY } });
    expect(await fields(`/api/v1/series?device=a,b,c&metric=result&${range}`)).toEqual([
      { field: 'device', message: 'at most 2 devices per request; split the request' },
    ]);
    expect(await fields(`/api/v1/series?device=a&metric=result&maxPoints=51&${range}`)).toEqual([
      { field: 'maxPoints', message: 'must be from 1 to 50' },
    ]);
    expect(await fields(`/api/v1/series?device=a&metric=result&from=${D0}&to=${D0 + 4 * DAY}`)).toEqual([
      { field: 'from', message: 'the range from..to may span at most 3 days; narrow it' },
    ]);
  });
});

describe('GET /api/v1/latest', () => {
  it('gives the newest value per device, metric and direction', async () => {
    const res = await get('/api/v1/latest?device=a,b&metric=result');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      values: [
        { device: 'a', metric: 'result', server: SERVER_A, direction: null, timeMs: D0 + DAY, value: 0, failed: 1 },
        { device: 'b', metric: 'result', server: SERVER_B, direction: null, timeMs: D0 + 1000, value: 1, failed: 0 },
      ],
    });
  });

  it('looks back from "to" and filters by server and direction', async () => {
    const before = (await get(`/api/v1/latest?device=all&metric=tcp_received_bps&direction=upload&server=${SERVER_A}&to=${D0 + 1}`)).json();
    expect(before.values).toEqual([
      { device: 'a', metric: 'tcp_received_bps', server: SERVER_A, direction: 'upload', timeMs: D0, value: 100, failed: 0 },
    ]);
    // nothing measured inside from..to: no value, however recent the one before
    expect((await get(`/api/v1/latest?device=all&metric=tcp_received_bps&from=${D0 + 1}&to=${D0 + 2}`)).json().values).toEqual([]);
    expect((await fields(`/api/v1/latest?device=a&metric=result&from=${D0 + 2}&to=${D0 + 1}`))).toEqual([{ field: 'from', message: 'must not be after "to"' }]);
  });

  it('names the bad parameter', async () => {
    expect(await fields('/api/v1/latest?metric=result')).toEqual([{ field: 'device', message: 'required: one or more device ids' }]);
    expect(await fields('/api/v1/latest?device=a&metric=result&to=soon&maxPoints=3')).toEqual([
      { field: 'to', message: expect.stringContaining('"soon" is not a time') },
      { field: 'maxPoints', message: 'unknown parameter; known: device, metric, server, direction, from, to' },
    ]);
  });
});
