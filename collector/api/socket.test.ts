import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { SqliteStore } from '../store/sqlite/sqliteStore.js';
import { Telemetry } from '../telemetry.js';
import { buildApi, SERVER_TIMEOUTS } from './app.js';
import { seedRuns, TestControl } from '../../tests/support/fakeControl.js';

const TOKEN = 'socket-test-token-0123456789';
let dir: string;
let store: SqliteStore;
let app: FastifyInstance;
let base: string;
let ids: Awaited<ReturnType<typeof seedRuns>>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'api-socket-'));
  store = SqliteStore.open(join(dir, 'c.db'));
  ids = await seedRuns(store);
  app = buildApi({ store, telemetry: new Telemetry(), token: TOKEN, version: '0.0.1', control: new TestControl() });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the API over a real socket', () => {
  it('answers /healthz without a token and the API with one', async () => {
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    const denied = await fetch(`${base}/api/v1/runs`);
    expect(denied.status).toBe(401);

    const runs = await fetch(`${base}/api/v1/runs?device=a`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(runs.status).toBe(200);
    expect(runs.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await runs.json()) as { runs: { id: number }[] };
    expect(body.runs.map((r) => r.id)).toEqual([ids.a2, ids.a1]);
  });

  it('queues a run with a JSON POST', async () => {
    const res = await fetch(`${base}/api/v1/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ devices: ['b'] }),
    });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ queued: ['b'] });
  });

  it('runs the HTTP server with the timeouts set explicitly', () => {
    expect(app.server.timeout).toBe(SERVER_TIMEOUTS.connectionTimeout);
    expect(app.server.requestTimeout).toBe(SERVER_TIMEOUTS.requestTimeout);
    expect(app.server.keepAliveTimeout).toBe(SERVER_TIMEOUTS.keepAliveTimeout);
  });
});
