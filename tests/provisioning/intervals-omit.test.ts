/**
 * NOT COMMITTED: shows the backend defect. The intervals panel with iperf3 --omit 2: the backend
 * puts iperf3's omitted intervals into the series, so each series repeats timestamps.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startProvisionedStack, type ProvisionedStack } from './labStack.js';
import { replayPanel, type PanelJson } from './panelReplay.js';
import { dashboardFiles, interpolateTarget } from './stackFiles.js';

let stack: ProvisionedStack;
beforeAll(async () => {
  stack = await startProvisionedStack('omit', { omit: 2 });
}, 600_000);
afterAll(async () => {
  await stack?.close();
});

it('intervals panel with --omit 2: every series strictly increasing in time', async () => {
  const file = dashboardFiles().find((f) => f.name === 'iperf3/device-detail.json')!;
  const panel = (file.json.panels as PanelJson[]).find((p) => p.title === 'Within-test throughput of the latest run')!;
  const queries = Object.fromEntries(panel.targets!.map((t) => [t.refId, interpolateTarget(t, { device: ['fast'] })]));
  const now = Date.now();
  const r = await stack.host.query(stack.settings, Object.values(queries).map((q) => ({ refId: String(q.refId), json: q, fromMs: now - 86400e3, toMs: now })));
  const replay = await replayPanel(panel, Object.values(r).flatMap((x) => x.frames), { queries, devices: ['fast'] });
  expect(replay.problems).toEqual([]);
});
