/**
 * The dashboards' annotation queries as Grafana shows them: the frames the BUILT plugin answers
 * (through tests/grafana-host, against the lab collector) turned into annotation events by
 * Grafana's standard annotation support, with the annotation's own field mappings. The copy of
 * that code in @grafana/scenes (`getAnnotationsFromData`, which Scenes dashboards run) is used;
 * @grafana/data has none. Without a mapping it takes the first time field and the first
 * string field: for a run log that is the device id, not the message.
 */
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { populateGlobal } from 'vitest/environments';
import type { AnnotationSupport, DataFrame } from '@grafana/data';
import { lastValueFrom, type Observable } from 'rxjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/pluginProcess.js';
import { startProvisionedStack, type ProvisionedStack } from './labStack.js';
import { collectConsole } from './panelReplay.js';
import { dashboardFiles, interpolateTarget } from './stackFiles.js';

/** not exported by the package (its exports map has `.` only): loaded by path */
const STANDARD_ANNOTATIONS = join(REPO_ROOT, 'node_modules/@grafana/scenes/dist/esm/querying/layers/annotations/standardAnnotationsSupport.js');

interface AnnotationJson {
  name: string;
  builtIn?: number;
  target?: Record<string, unknown> & { refId: string };
  mappings?: Record<string, unknown>;
}

/**
 * The module pulls in @grafana/runtime and @grafana/ui, which touch the DOM while loading
 * (uPlot, react-aria); the code under test does not. A jsdom document is enough, installed
 * only now: the file runs in Node, where the lab, the collector and the host work.
 */
async function importWithoutDom(path: string): Promise<unknown> {
  const { JSDOM } = createRequire(import.meta.url)('jsdom') as { JSDOM: new (html: string, options: { url: string }) => { window: unknown } };
  const dom = new JSDOM('<!doctype html><html><body></body></html>', { url: 'http://localhost/' });
  // what vitest's jsdom environment does, keeping Node's own URL, fetch and timers for the rest of the file
  populateGlobal(globalThis, dom.window, { bindFunctions: true });
  for (const [k, v] of Object.entries(NODE_GLOBALS)) Object.defineProperty(globalThis, k, { value: v, configurable: true, writable: true });
  const g = globalThis as Record<string, unknown>;
  g.matchMedia ??= () => ({ matches: false, addListener() {}, removeListener() {}, addEventListener() {}, removeEventListener() {} });
  return import(path);
}

const NODE_GLOBALS = { URL, URLSearchParams, fetch, AbortController, AbortSignal, Event, EventTarget, Blob, TextEncoder, TextDecoder };

let stack: ProvisionedStack;

beforeAll(async () => {
  stack = await startProvisionedStack('anno');
}, 600_000);

afterAll(async () => {
  await stack?.close();
});

it('device-detail "Failed runs": the message shows as text, from the start to the end of each failed run', async () => {
  const file = dashboardFiles().find((f) => f.name === 'iperf3/device-detail.json')!;
  const annotation = (file.json.annotations as { list: AnnotationJson[] }).list.find((a) => a.name === 'Failed runs')!;
  const query = interpolateTarget(annotation.target!, { device: ['broken'] });
  const now = Date.now();
  const responses = await stack.host.query(stack.settings, [{ refId: query.refId, json: query, fromMs: now - 7 * 86400e3, toMs: now }]);
  const { getAnnotationsFromData } = (await importWithoutDom(STANDARD_ANNOTATIONS)) as {
    getAnnotationsFromData: (data: DataFrame[], mappings?: unknown) => Observable<Array<Record<string, unknown>>>;
  };
  const { result: events, messages } = await collectConsole(() => lastValueFrom(getAnnotationsFromData(responses[query.refId].frames, annotation.mappings)));
  expect(messages).toEqual([]);
  const runs = await stack.service.store.runs.list({ devices: ['broken'], status: ['failed', 'interrupted'], limit: 500 });
  expect(runs.length).toBeGreaterThan(0);
  expect(runs.every((r) => r.message)).toBe(true);
  expect(events.map((e) => ({ text: e.text, time: e.time, timeEnd: e.timeEnd }))).toEqual(
    runs.map((r) => ({ text: r.message, time: Date.parse(r.startedAt), timeEnd: r.endedAt === null ? undefined : Date.parse(r.endedAt) })),
  );
});

it('an annotation made in Grafana from the data source default query (no mappings of its own) shows the message too', async () => {
  // the DataSource module needs @grafana/runtime: loaded once the DOM is in place
  const { DataSource } = (await importWithoutDom(join(REPO_ROOT, 'src/datasource.ts'))) as typeof import('../../src/datasource.js');
  const { getAnnotationsFromData, standardAnnotationSupport } = (await importWithoutDom(STANDARD_ANNOTATIONS)) as {
    getAnnotationsFromData: (data: DataFrame[], mappings?: unknown) => Observable<Array<Record<string, unknown>>>;
    standardAnnotationSupport: AnnotationSupport;
  };
  const ds = new DataSource({ uid: 'iperf3-datasource', id: 1, name: 'iperf3', type: 'iperf3grafana-iperf3-datasource', jsonData: {}, meta: {} } as never);
  // as Scenes' annotations layer does: the standard support with the data source's own parts over it
  const support = { ...standardAnnotationSupport, ...ds.annotations };
  const prepared = support.prepareAnnotation!({ name: 'Failed runs', enable: true, iconColor: 'red', target: { refId: 'Anno', ...support.getDefaultQuery!() } } as never);
  const target = prepared.target as Record<string, unknown> & { refId: string };
  const now = Date.now();
  const responses = await stack.host.query(stack.settings, [{ refId: target.refId, json: target, fromMs: now - 7 * 86400e3, toMs: now }]);
  const { result: events, messages } = await collectConsole(() => lastValueFrom(getAnnotationsFromData(responses[target.refId].frames, prepared.mappings)));
  expect(messages).toEqual([]);
  const runs = await stack.service.store.runs.list({ status: ['failed', 'interrupted'], limit: 500 });
  expect(runs.length).toBeGreaterThan(0);
  expect(events.map((e) => ({ text: e.text, time: e.time, timeEnd: e.timeEnd }))).toEqual(
    runs.map((r) => ({ text: r.message, time: Date.parse(r.startedAt), timeEnd: r.endedAt === null ? undefined : Date.parse(r.endedAt) })),
  );
});
