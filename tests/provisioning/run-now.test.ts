/**
 * Run now as Grafana's frontend does it (POST runs, then GET runs/progress until every device
 * has finished), through the BUILT plugin executable under Grafana's Go SDK host, against a
 * real collector whose devices are real SSH servers with real iperf3 in the network-namespace
 * lab: an Editor starts it and sees queued, running (which test), done (the results) and failed
 * (the error class); a Viewer is refused before anything reaches the collector.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunNowResourceResponse, RunProgress, RunProgressResponse } from '../../contract/api.js';
import { runProgressResponseSchema } from '../../contract/apiResponses.js';
import type { HostDataSource, HostUser } from '../support/grafanaHost.js';
import { startProvisionedStack, type ProvisionedStack } from './labStack.js';

const EDITOR: HostUser = { login: 'editor', role: 'Editor' };
const VIEWER: HostUser = { login: 'viewer', role: 'Viewer' };

let stack: ProvisionedStack;
let settings: HostDataSource;

beforeAll(async () => {
  stack = await startProvisionedStack('runow', { runFirst: false });
  // the provisioned data source with the lab's iperf3 server and short tests (the demo's server
  // name does not resolve here); Save & test pushes them to the collector
  const s1 = stack.lab.server('s1');
  settings = {
    ...stack.settings,
    jsonData: {
      ...(stack.settings.jsonData as object),
      servers: [{ host: s1.host, port: s1.port, label: 's1' }],
      clientOptions: { time: 2, omit: 0, connectTimeout: 2000, udp: { enabled: true, bitrate: '2M' } },
      schedule: { cron: '0 2 * * *', timezone: 'UTC' },
    },
  };
  expect((await stack.host.checkHealth(settings)).status).toBe('OK');
}, 600_000);

afterAll(async () => {
  await stack?.close();
});

const post = (devices: string[], user: HostUser) => stack.host.resource(settings, 'runs', { method: 'POST', body: { devices }, user });

describe('Run now through the built plugin and the real collector', () => {
  it('is refused to a Viewer with the reason, and nothing runs', async () => {
    const refused = await post(['fast'], VIEWER);
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({
      error: 'forbidden',
      message: 'starting runs needs the Editor or Admin role in this organization (your role is Viewer); ask an Editor or Admin',
    });
    expect(await stack.service.store.runs.list({})).toEqual([]);
  });

  it('runs as an Editor: queued, running with the test it is in, then done with its results or failed with its class', async () => {
    const started = await post(['fast', 'broken'], EDITOR);
    expect(started.status).toBe(202);
    const { queued, after } = started.body as RunNowResourceResponse;
    expect({ queued, after }).toEqual({ queued: ['fast', 'broken'], after: 0 });
    // a device already queued or running is not queued twice
    const again = await post(['fast'], EDITOR);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ message: expect.stringContaining('already queued or running: fast') });

    const seen = new Map<string, Set<string>>();
    let last: RunProgress[] = [];
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      // what the editor polls; any role may read it
      const r = await stack.host.resource(settings, 'runs/progress', { query: `device=fast&device=broken&after=${after}`, user: VIEWER });
      expect(r.status).toBe(200);
      last = runProgressResponseSchema.parse(r.body as RunProgressResponse).devices;
      for (const p of last) {
        const c = p.run?.current;
        const states = seen.get(p.device) ?? new Set<string>();
        states.add(c ? `${p.state}: ${c.protocol} ${c.direction} ${c.index}/${c.of}` : p.state);
        seen.set(p.device, states);
      }
      if (last.every((p) => p.state === 'done' || p.state === 'failed')) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const [fast, broken] = last;
    expect(fast).toMatchObject({ device: 'fast', state: 'done', run: { status: 'ok', trigger: 'manual' } });
    // 20 Mbit/s links (tbf); UDP at 2 Mbit/s
    const tcp = Object.fromEntries(fast.results.filter((v) => v.metric === 'tcp_received_bps').map((v) => [v.direction, v.value / 1e6]));
    expect(Object.keys(tcp).sort()).toEqual(['download', 'upload']);
    for (const mbit of Object.values(tcp)) {
      expect(mbit).toBeGreaterThan(18);
      expect(mbit).toBeLessThan(22);
    }
    expect(fast.results.filter((v) => v.metric === 'udp_lost_percent').map((v) => v.direction).sort()).toEqual(['download', 'upload']);
    expect(broken).toMatchObject({ device: 'broken', state: 'failed', run: { status: 'failed', errorClass: 'iperf3-missing' } });
    // the fast device was seen inside its tests, with the one it was in
    expect([...(seen.get('fast') ?? [])].some((s) => /^running: (tcp|udp) (upload|download) [1-4]\/4$/.test(s))).toBe(true);
    expect(seen.get('broken')?.has('failed')).toBe(true);
  });
});
