/** The collector client against the real API, and against a faulty server for the error paths. */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CollectorAuthError, CollectorClient, CollectorRequestError, CollectorUnreachableError, INVENTORY_CACHE_MS, isCollectorError } from './collectorClient.js';
import { encodeSeriesBinary, SERIES_BINARY_TYPE, type SeriesBlock } from '../../contract/seriesBlock.js';
import type { SeriesColumns } from '../../contract/api.js';
import { closedPort, COLLECTOR_VERSION, NIGHT0, NOW, startCollector, type RunningCollector } from '../../tests/support/collectorFixture.js';

let collector: RunningCollector;
/** the URLs the real collector was asked for */
const collectorUrls: string[] = [];
const oneSeries: SeriesBlock = {
  series: [{ device: 'r1', metric: 'result', server: null, direction: null, start: 0, length: 2 }],
  times: Float64Array.of(1, 2),
  values: Float64Array.of(1, 0),
  failed: Uint8Array.of(0, 1),
};
/** Columns with plain arrays, as JSON has them (the binary form hands typed arrays on). */
const asArrays = (series: SeriesColumns[]) => series.map((s) => ({ ...s, times: Array.from(s.times), values: Array.from(s.values), failed: Array.from(s.failed) }));
let faulty: Server;
let faultyUrl: string;

beforeAll(async () => {
  collector = await startCollector({ onRequest: (url) => collectorUrls.push(url) });
  // Fault injection: a server that hangs, answers plain text, or fails.
  faulty = createServer((req, res) => {
    if (req.url?.includes('/hang')) return; // never answers
    if (req.url?.startsWith('/binary/')) {
      // GET /series?format=binary answers that are not the binary form: JSON, or cut short
      if (req.url.startsWith('/binary/json')) res.writeHead(200, { 'content-type': 'application/json' }).end('{"series":[]}');
      else res.writeHead(200, { 'content-type': SERIES_BINARY_TYPE }).end(Buffer.from(encodeSeriesBinary({ fromMs: 0, toMs: 1, maxPoints: 10 }, oneSeries)).subarray(0, -1));
      return;
    }
    if (req.url?.startsWith('/columns/') && req.url.includes('format=binary')) {
      // a collector older than the binary form
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid-request', message: 'format: use one of points, columns', fields: [{ field: 'format', message: 'use one of points, columns' }] }));
      return;
    }
    if (req.url?.startsWith('/columns/')) {
      // GET /series?format=columns answers that break the contract in one column
      const bad: Record<string, unknown> = {
        '/columns/short': { times: [1, 2], values: [1], failed: [0, 0] },
        '/columns/text': { times: [1, 2], values: [1, '2'], failed: [0, 0] },
        '/columns/flag': { times: [1], values: [1], failed: [2] },
        '/columns/long': { times: Array(10_001).fill(1), values: Array(10_001).fill(1), failed: Array(10_001).fill(0) },
      };
      const columns = bad[req.url.slice(0, req.url.indexOf('/api/'))];
      const series = [{ device: 'r1', metric: 'result', server: null, direction: null, ...(columns as object) }];
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ fromMs: 0, toMs: 1, maxPoints: 10, format: 'columns', series }));
      return;
    }
    if (req.url?.startsWith('/malformed')) {
      // a 200 that is not the collector's contract: health without servers, devices without ids
      const body = req.url.includes('/health') ? { status: 'ok', version: '0.0.9', devices: 1 } : { devices: [{ host: 'h' }] };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      return;
    }
    if (req.url?.includes('/health')) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('upstream down');
      return;
    }
    res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'internal', message: 'disk full' }));
  });
  await new Promise<void>((resolve) => faulty.listen(0, '127.0.0.1', resolve));
  faultyUrl = `http://127.0.0.1:${(faulty.address() as { port: number }).port}`;
});

afterAll(async () => {
  faulty.closeAllConnections();
  faulty.close();
  await collector.close();
});

describe('CollectorClient', () => {
  it('reads every route of the real collector API', async () => {
    const client = new CollectorClient({ baseUrl: `${collector.url}/`, token: collector.token });
    expect(client.baseUrl).toBe(collector.url);
    expect((await client.health()).version).toBe(COLLECTOR_VERSION);
    expect((await client.devices()).map((d) => d.id)).toEqual(['r1', 'r2', 'h3']);
    expect((await client.servers()).length).toBe(2);
    expect((await client.settings()).source).toBe('file');
    const runs = await client.runs({ devices: ['r1'], status: ['ok'], fromMs: NIGHT0, toMs: NOW, limit: 2 });
    expect(runs).toHaveLength(2);
    expect((await client.intervals(runs[0].id)).run.id).toBe(runs[0].id);
    const series = await client.series({ devices: ['r1'], metrics: ['result'], fromMs: NIGHT0, toMs: NOW, maxPoints: 10, splitByServer: false });
    expect(series.series[0].points.length).toBe(4);
    const columns = await client.seriesColumns({ devices: ['r1', 'r2'], metrics: ['result', 'tcp_received_bps'], fromMs: NIGHT0, toMs: NOW, maxPoints: 10 });
    const points = await client.series({ devices: ['r1', 'r2'], metrics: ['result', 'tcp_received_bps'], fromMs: NIGHT0, toMs: NOW, maxPoints: 10 });
    expect(columns.series.length).toBeGreaterThan(2);
    // read from the binary form: typed arrays over the answer's bytes
    expect(columns.series[0].times).toBeInstanceOf(Float64Array);
    expect(columns.series[0].values).toBeInstanceOf(Float64Array);
    expect(asArrays(columns.series)).toEqual(
      points.series.map(({ points: p, ...key }) => ({ ...key, times: p.map((x) => x[0]), values: p.map((x) => x[1]), failed: p.map((x) => x[2]) })),
    );
    const latest = await client.latest({ devices: ['r2'], metrics: ['tcp_received_bps'], direction: 'download' });
    expect(latest.values).toEqual([expect.objectContaining({ device: 'r2', value: 80e6, direction: 'download' })]);
    expect(client.url('/runs', { device: ['a', 'b'], limit: 3, skip: undefined })).toBe(`${collector.url}/api/v1/runs?device=a&device=b&limit=3`);
  });

  /**
   * The real collector behind a proxy that makes it an older one. Older than the binary form: the
   * collector's refusal of another format value, with `binary` left out of the list it names.
   * Older than the columns form: `format` renamed (and named back in the answer), refused as a
   * collector without the parameter refuses it, `400 format: unknown parameter; known: device, ...`.
   */
  async function olderCollector(without: 'binary' | 'columns', seen: string[]): Promise<Server> {
    const older = createServer((req, res) => {
      const url = req.url ?? '';
      seen.push(url);
      const forwarded = without === 'columns' ? url.replace('format=', 'formatx=') : url.replace('format=binary', 'format=binaryx');
      fetch(`${collector.url}${forwarded}`, { headers: { authorization: String(req.headers.authorization) } }).then(
        async (r) =>
          res
            .writeHead(r.status, { 'content-type': String(r.headers.get('content-type')) })
            .end(without === 'columns' ? (await r.text()).replaceAll('formatx', 'format').replace(', format"', '"') : (await r.text()).replaceAll(', binary', '')),
        () => res.writeHead(502).end(),
      );
    });
    await new Promise<void>((r) => older.listen(0, '127.0.0.1', r));
    return older;
  }

  it('reads series as columns (JSON) from a collector older than the binary form, and asks it in that form from then on', async () => {
    const seen: string[] = [];
    const older = await olderCollector('binary', seen);
    try {
      const client = new CollectorClient({ baseUrl: `http://127.0.0.1:${(older.address() as { port: number }).port}`, token: collector.token });
      const query = { devices: ['r1', 'r2'], metrics: ['result' as const, 'tcp_received_bps' as const], fromMs: NIGHT0, toMs: NOW, maxPoints: 10 };
      const direct = asArrays((await new CollectorClient({ baseUrl: collector.url, token: collector.token }).seriesColumns(query)).series);
      expect(direct.length).toBeGreaterThan(2);
      const first = await client.seriesColumns(query);
      expect(first.series[0].times).toBeInstanceOf(Array);
      expect(first.series).toEqual(direct);
      expect((await client.seriesColumns(query)).series).toEqual(direct);
      expect(seen.map((u) => /format=(\w+)/.exec(u)?.[1])).toEqual(['binary', 'columns', 'columns']);
    } finally {
      older.close();
    }
  });

  it('reads series as points from a collector older than the columns form, and asks it in that form from then on', async () => {
    const seen: string[] = [];
    const older = await olderCollector('columns', seen);
    try {
      const client = new CollectorClient({ baseUrl: `http://127.0.0.1:${(older.address() as { port: number }).port}`, token: collector.token });
      const query = { devices: ['r1', 'r2'], metrics: ['result' as const, 'tcp_received_bps' as const], fromMs: NIGHT0, toMs: NOW, maxPoints: 10 };
      const direct = asArrays((await new CollectorClient({ baseUrl: collector.url, token: collector.token }).seriesColumns(query)).series);
      expect((await client.seriesColumns(query)).series).toEqual(direct);
      expect((await client.seriesColumns(query)).series).toEqual(direct);
      expect(seen.map((u) => /format=(\w+)/.exec(u)?.[1])).toEqual(['binary', 'columns', undefined, undefined]);
      // any other refusal is the query's error, not a reason to fall back
      const bad = await client.seriesColumns({ ...query, fromMs: NOW, toMs: NIGHT0 }).catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(CollectorRequestError);
    } finally {
      older.close();
    }
  });

  it('raises typed errors with the collector message, never the token', async () => {
    const wrong = new CollectorClient({ baseUrl: collector.url, token: 'secret-wrong-token' });
    const auth = await wrong.devices().catch((e: unknown) => e);
    expect(auth).toBeInstanceOf(CollectorAuthError);
    expect((auth as CollectorAuthError).status).toBe(401);
    expect(String(auth)).not.toContain('secret-wrong-token');
    const client = new CollectorClient({ baseUrl: collector.url, token: collector.token });
    const notFound = await client.intervals(424242).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(CollectorRequestError);
    expect(notFound).toMatchObject({ status: 404, code: 'not-found' });
    const invalid = await client.putSettings({ servers: [] } as never).catch((e: unknown) => e);
    expect(invalid).toMatchObject({ status: 400 });
    expect((invalid as CollectorRequestError).fields[0]).toMatchObject({ field: 'servers' });
    expect(isCollectorError(invalid)).toBe(true);
    expect(isCollectorError(new Error('x'))).toBe(false);
  });

  it('reports unreachable collectors, deadlines, plain-text errors and server failures', async () => {
    const dead = await closedPort();
    const down = await new CollectorClient({ baseUrl: `http://127.0.0.1:${dead}`, token: 't' }).health().catch((e: unknown) => e);
    expect(down).toBeInstanceOf(CollectorUnreachableError);
    expect(down).toMatchObject({ timedOut: false, message: `cannot reach the collector at http://127.0.0.1:${dead}: ECONNREFUSED` });
    const slow = new CollectorClient({ baseUrl: `${faultyUrl}/hang`, token: 't', timeoutMs: 200 });
    const timedOut = await slow.devices().catch((e: unknown) => e);
    expect(timedOut).toMatchObject({ timedOut: true, message: `cannot reach the collector at ${faultyUrl}/hang: no answer within 200 ms` });
    const caller = new AbortController();
    const pending = slow.servers(caller.signal).catch((e: unknown) => e);
    caller.abort(new Error('the query was cancelled'));
    expect(await pending).toMatchObject({ timedOut: false, message: expect.stringContaining('the query was cancelled') });
    const text = await new CollectorClient({ baseUrl: faultyUrl, token: 't' }).health().catch((e: unknown) => e);
    expect(text).toMatchObject({ status: 503, code: 'http-503', message: 'the collector answered HTTP 503 to GET /api/v1/health' });
    const failing = await new CollectorClient({ baseUrl: faultyUrl, token: 't' }).intervals(1).catch((e: unknown) => e);
    expect(failing).toMatchObject({ status: 500, message: 'disk full' });
    const noFields = await new CollectorClient({ baseUrl: faultyUrl, token: 't' }).runNow(['x']).catch((e: unknown) => e);
    expect(noFields).toMatchObject({ fields: [] });
  });

  it('checks every reply against the contract and names a collector that breaks it', async () => {
    const other = new CollectorClient({ baseUrl: `${faultyUrl}/malformed`, token: 't' });
    const health = await other.health().catch((e: unknown) => e);
    expect(health).toBeInstanceOf(CollectorRequestError);
    expect(health).toMatchObject({ status: 502, code: 'malformed-reply' });
    expect((health as Error).message).toMatch(/^the collector's answer to GET \/api\/v1\/health does not match this plugin's contract \(.*servers.*\): is .* the same version\?$/);
    const devices = await other.devices().catch((e: unknown) => e);
    expect((devices as Error).message).toMatch(/devices\.0\.id/);
  });

  it('checks series columns per column: lengths, element types, the point bound', async () => {
    const query = { devices: ['r1'], metrics: ['result' as const], fromMs: 0, toMs: 1, maxPoints: 10 };
    const reply = (path: string) => new CollectorClient({ baseUrl: `${faultyUrl}/columns/${path}`, token: 't' }).seriesColumns(query).then(() => new Error('accepted'), (e: unknown) => e as Error);
    expect(await reply('short')).toMatchObject({ status: 502, code: 'malformed-reply' });
    expect((await reply('short')).message).toContain('series.0.values: times, values and failed must be equally long (2, 1, 2)');
    expect((await reply('text')).message).toContain('series.0.values: must be an array of at most 10000 numbers');
    expect((await reply('flag')).message).toContain('series.0.failed: must be an array of at most 10000 0 or 1 flags');
    expect((await reply('long')).message).toContain('series.0.times: must be an array of at most 10000 times (epoch ms)');
  });

  it('names a binary series answer it cannot read', async () => {
    const query = { devices: ['r1'], metrics: ['result' as const], fromMs: 0, toMs: 1, maxPoints: 10 };
    const reply = (path: string) => new CollectorClient({ baseUrl: `${faultyUrl}/binary/${path}`, token: 't' }).seriesColumns(query).then(() => new Error('accepted'), (e: unknown) => e as Error);
    const json = await reply('json');
    expect(json).toBeInstanceOf(CollectorRequestError);
    expect(json).toMatchObject({ status: 502, code: 'malformed-reply' });
    expect(json.message).toBe(
      `the collector's answer to GET /api/v1/series?format=binary cannot be read (not a binary series answer (it does not start with IPS1)): ` +
        `is ${faultyUrl}/binary/json the collector, and are the collector and the plugin the same version?`,
    );
    // one byte short of the header's 2 points
    expect((await reply('short')).message).toContain("cannot be read (169 bytes where the header's 2 points need 170)");
  });

  it('resolves query devices from the inventory without last runs, cached the same way, or from a fresh full inventory', async () => {
    let now = 0;
    const client = new CollectorClient({ baseUrl: collector.url, token: collector.token, now: () => now });
    const light = () => collectorUrls.filter((u) => u === '/api/v1/devices?lastRun=false').length;
    const full = () => collectorUrls.filter((u) => u === '/api/v1/devices').length;
    const [before, beforeFull] = [light(), full()];
    const entries = await client.queryDevices();
    expect(entries).toEqual((await client.devices()).map(({ lastRun: _lastRun, ...device }) => device));
    expect(entries.every((d) => !('lastRun' in d))).toBe(true);
    expect(await client.queryDevices()).toBe(entries);
    expect(light() - before).toBe(1);
    now = INVENTORY_CACHE_MS;
    expect(await client.queryDevices()).not.toBe(entries);
    expect(light() - before).toBe(2);
    // a fresh full inventory answers without another request; a Run now forgets both
    const inventory = await client.queryInventory();
    expect(await client.queryDevices()).toBe(inventory);
    expect([light() - before, full() - beforeFull]).toEqual([2, 2]);
    await client.runNow(['nobody']).catch(() => undefined);
    await client.queryDevices();
    expect(light() - before).toBe(3);
    // a failed request is not kept
    const failing = new CollectorClient({ baseUrl: faultyUrl, token: 't', now: () => 0 });
    await expect(failing.queryDevices()).rejects.toMatchObject({ status: 500 });
    await expect(failing.queryDevices()).rejects.toMatchObject({ status: 500 });
    // 0 turns the cache off
    const off = new CollectorClient({ baseUrl: collector.url, token: collector.token, inventoryCacheMs: 0 });
    await off.queryDevices();
    await off.queryDevices();
    expect(light() - before).toBe(5);
  });

  it('reads the devices of a collector older than lastRun=false, which answers them with their last runs', async () => {
    // the real collector behind a proxy that drops the parameter, as an older collector ignores it
    const older = createServer((req, res) => {
      fetch(`${collector.url}${(req.url ?? '').replace('?lastRun=false', '')}`, { headers: { authorization: String(req.headers.authorization) } }).then(
        async (r) => res.writeHead(r.status, { 'content-type': 'application/json' }).end(await r.text()),
        () => res.writeHead(502).end(),
      );
    });
    await new Promise<void>((r) => older.listen(0, '127.0.0.1', r));
    try {
      const client = new CollectorClient({ baseUrl: `http://127.0.0.1:${(older.address() as { port: number }).port}`, token: collector.token });
      const direct = new CollectorClient({ baseUrl: collector.url, token: collector.token });
      expect((await direct.devices()).some((d) => d.lastRun !== null)).toBe(true);
      expect(await client.deviceEntries()).toEqual(await direct.deviceEntries());
    } finally {
      older.close();
    }
  });

  it('shares one inventory request between the queries of a few seconds, and forgets it after a Run now', async () => {
    let now = 0;
    const requests: string[] = [];
    const client = new CollectorClient({ baseUrl: collector.url, token: collector.token, now: () => now, observe: (method, path) => requests.push(`${method} ${path}`) });
    const [a, b] = await Promise.all([client.queryInventory(), client.queryInventory()]);
    expect(a.map((d) => d.id)).toEqual(['r1', 'r2', 'h3']);
    expect(b).toBe(a);
    now = INVENTORY_CACHE_MS - 1;
    expect(await client.queryInventory()).toBe(a);
    expect(requests).toEqual(['GET /devices']);
    now = INVENTORY_CACHE_MS;
    expect(await client.queryInventory()).not.toBe(a);
    expect(requests).toEqual(['GET /devices', 'GET /devices']);
    await client.runNow(['nobody']).catch(() => undefined);
    await client.queryInventory();
    expect(requests.filter((r) => r === 'GET /devices')).toHaveLength(3);
    // the query editor's list always asks
    await client.devices();
    expect(requests.filter((r) => r === 'GET /devices')).toHaveLength(4);
    // a failed request is not kept; 0 turns the cache off
    const failing = new CollectorClient({ baseUrl: faultyUrl, token: 't', now: () => 0 });
    await expect(failing.queryInventory()).rejects.toMatchObject({ status: 500 });
    await expect(failing.queryInventory()).rejects.toMatchObject({ status: 500 });
    const uncached: string[] = [];
    const off = new CollectorClient({ baseUrl: collector.url, token: collector.token, inventoryCacheMs: 0, observe: (m, p) => uncached.push(p) });
    await off.queryInventory();
    await off.queryInventory();
    expect(uncached).toEqual(['/devices', '/devices']);
  });
});
