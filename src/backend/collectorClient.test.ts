/** The collector client against the real API, and against a faulty server for the error paths. */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CollectorAuthError, CollectorClient, CollectorRequestError, CollectorUnreachableError, isCollectorError } from './collectorClient.js';
import { closedPort, COLLECTOR_VERSION, NIGHT0, NOW, startCollector, type RunningCollector } from '../../tests/support/collectorFixture.js';

let collector: RunningCollector;
let faulty: Server;
let faultyUrl: string;

beforeAll(async () => {
  collector = await startCollector();
  // Fault injection: a server that hangs, answers plain text, or fails.
  faulty = createServer((req, res) => {
    if (req.url?.includes('/hang')) return; // never answers
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
    const latest = await client.latest({ devices: ['r2'], metrics: ['tcp_received_bps'], direction: 'download' });
    expect(latest.values).toEqual([expect.objectContaining({ device: 'r2', value: 80e6, direction: 'download' })]);
    expect(client.url('/runs', { device: ['a', 'b'], limit: 3, skip: undefined })).toBe(`${collector.url}/api/v1/runs?device=a&device=b&limit=3`);
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
});
