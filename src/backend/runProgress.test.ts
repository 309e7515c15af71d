/**
 * Run now and its progress through the plugin's resources, in-process, against the real
 * collector API over a SQLite store: the runs the collector would write are written to the
 * store here, step by step, so that every state is seen (the real collector runs them in
 * tests/e2e/runNow.test.ts).
 */
import pino from 'pino';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_RUN_NOW_DEVICES, type RunNowResourceResponse, type RunProgressResponse } from '../../contract/api.js';
import { runProgressResponseSchema } from '../../contract/apiResponses.js';
import { startCollector, type RunningCollector } from '../../tests/support/collectorFixture.js';
import { PluginClient, type DataSourceSettingsInput } from '../../tests/support/pluginClient.js';
import { failedOutcome, okOutcome, skippedOutcome } from '../../tests/support/storeFixtures.js';
import { createPluginLogger } from './logger.js';
import { PluginServer } from './pluginServer.js';

let collector: RunningCollector;
let server: PluginServer;
let client: PluginClient;
let settings: DataSourceSettingsInput;

beforeAll(async () => {
  collector = await startCollector();
  const sink = new Writable({ write: (_c, _e, done) => done() });
  server = new PluginServer({ logger: createPluginLogger({ destination: sink as unknown as pino.DestinationStream, level: 'silent' }) });
  client = new PluginClient(`127.0.0.1:${await server.listen()}`);
  settings = { uid: 'ds-run-now', jsonData: { collectorUrl: collector.url, servers: [{ host: '10.0.0.1' }] }, secure: { apiToken: collector.token } };
});

afterAll(async () => {
  client.close();
  await server.stop();
  await collector.close();
});

async function progress(query: string, user: { login: string; role: string } | null = { login: 'v', role: 'Viewer' }) {
  const r = await client.callResource(settings, 'runs/progress', { query, user });
  return { code: r.code, json: r.json as RunProgressResponse & { message?: string } };
}

describe('Run now, followed through runs/progress', () => {
  it('answers the run id to follow from, then queued, running (which test), done (results) and failed (error class)', async () => {
    // r2's only run was stored after r1's newest, though it started earlier: ids, not times, say what is new
    const newestBefore = Math.max(...(await collector.store.runs.list()).map((r) => r.id));
    const post = await client.callResource(settings, 'runs', { method: 'POST', body: { devices: ['r1', 'r2', 'h3', 'r1'] }, user: { login: 'e', role: 'Editor' } });
    expect(post.code).toBe(202);
    const { queued, after } = post.json as RunNowResourceResponse;
    expect({ queued, after }).toEqual({ queued: ['r1', 'r2', 'h3'], after: newestBefore });
    expect(collector.control.queued.at(-1)).toEqual(['r1', 'r2', 'h3']);
    const query = `device=r1&device=r2,h3&after=${after}`;

    let p = await progress(query);
    expect(p.code).toBe(200);
    expect(runProgressResponseSchema.parse(p.json)).toEqual({
      devices: ['r1', 'r2', 'h3'].map((device) => ({ device, state: 'queued', run: null, results: [] })),
    });

    const t0 = Date.now();
    const r1 = await collector.store.runs.start({ device: 'r1', trigger: 'manual', roundId: null, startedAt: new Date(t0) });
    const current = { protocol: 'tcp' as const, direction: 'download' as const, index: 2, of: 4, startedAt: new Date(t0 + 11_000).toISOString() };
    collector.control.currentTests.set(r1, current);
    const r2 = await collector.store.runs.start({ device: 'r2', trigger: 'manual', roundId: null, startedAt: new Date(t0) });
    p = await progress(query);
    expect(p.json.devices.map((d) => [d.device, d.state, d.run?.id ?? null, d.run?.current ?? null])).toEqual([
      ['r1', 'running', r1, current],
      ['r2', 'running', r2, null],
      ['h3', 'queued', null, null],
    ]);

    await collector.store.runs.finish(r1, okOutcome(t0, 94e6, 93e6));
    collector.control.currentTests.delete(r1);
    await collector.store.runs.finish(r2, failedOutcome(t0));
    const h3 = await collector.store.runs.start({ device: 'h3', trigger: 'manual', roundId: null, startedAt: new Date(t0) });
    await collector.store.runs.finish(h3, skippedOutcome(t0));
    p = await progress(query);
    const [done, failed, skipped] = runProgressResponseSchema.parse(p.json).devices;
    expect(done).toMatchObject({ device: 'r1', state: 'done', run: { id: r1, status: 'ok' } });
    expect(done.results.map((v) => [v.metric, v.direction, v.value])).toEqual([
      ['tcp_received_bps', 'download', 93e6],
      ['tcp_received_bps', 'upload', 94e6],
    ]);
    expect(failed).toMatchObject({ device: 'r2', state: 'failed', run: { status: 'failed', errorClass: 'server-busy' }, results: [] });
    expect(skipped).toMatchObject({ device: 'h3', state: 'failed', run: { status: 'skipped', errorClass: 'unreachable', message: 'connect ETIMEDOUT' } });

    // a later scheduled run of r1 does not replace the one this Run now started
    const later = await collector.store.runs.start({ device: 'r1', trigger: 'schedule', roundId: null, startedAt: new Date(t0 + 60_000) });
    expect((await progress(query)).json.devices[0].run?.id).toBe(r1);
    await collector.store.runs.finish(later, okOutcome(t0 + 60_000, 1, 1));
  });

  it('is readable by every role, and names the bad parameter', async () => {
    expect((await progress('device=r1&after=0', null)).code).toBe(200);
    expect(await progress('after=0')).toMatchObject({ code: 400, json: { message: `device: name from 1 to ${MAX_RUN_NOW_DEVICES} devices, e.g. device=r1&device=r2` } });
    expect(await progress('device=r1')).toMatchObject({ code: 400, json: { message: expect.stringMatching(/^after: must be the "after" run id/) } });
    expect(await progress('device=r1&after=-1')).toMatchObject({ code: 400, json: { message: expect.stringMatching(/^after: must be the "after" run id/) } });
    expect(await progress('device=r1&after=1.5')).toMatchObject({ code: 400 });
    const many = Array.from({ length: MAX_RUN_NOW_DEVICES + 1 }, (_, i) => `device=d${i}`).join('&');
    expect(await progress(`${many}&after=0`)).toMatchObject({ code: 400, json: { message: expect.stringMatching(/^device: name from 1 to/) } });
  });

  it(`refuses a Run now of more than ${MAX_RUN_NOW_DEVICES} devices before reaching the collector`, async () => {
    const before = collector.control.queued.length;
    const devices = Array.from({ length: MAX_RUN_NOW_DEVICES + 1 }, (_, i) => `d${i}`);
    const r = await client.callResource(settings, 'runs', { method: 'POST', body: { devices } });
    expect(r).toMatchObject({ code: 400, json: { error: 'invalid-body', message: expect.stringContaining(`devices: at most ${MAX_RUN_NOW_DEVICES} devices per Run now`) } });
    expect(collector.control.queued.length).toBe(before);
  });
});
