/**
 * The TypeScript side of tests/grafana-host when the plugin does not come up: a call fails
 * with go-plugin's reason instead of hanging.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GrafanaHost } from './grafanaHost.js';

const dir = mkdtempSync(join(tmpdir(), 'grafana-host-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('GrafanaHost', () => {
  it('rejects calls with the reason when the plugin exits before the handshake', async () => {
    const exe = join(dir, 'gpx_broken');
    writeFileSync(exe, '#!/bin/sh\necho "not a plugin" >&2\nexit 3\n');
    chmodSync(exe, 0o755);
    writeFileSync(join(dir, 'plugin.json'), JSON.stringify({ id: 'broken-datasource', info: { version: '0.0.1' } }));
    const host = GrafanaHost.start({ plugin: exe });
    await expect(host.checkHealth({})).rejects.toThrow(/grafana-host exited \(1\).*go-plugin could not start .*Failed to read any lines from plugin's stdout/s);
    expect(await host.close()).toBe(1);
  });

  it('rejects calls when plugin.json is not next to the executable', async () => {
    const host = GrafanaHost.start({ plugin: join(tmpdir(), 'no-such-plugin', 'gpx_none') });
    await expect(host.metrics({})).rejects.toThrow(/plugin\.json next to the executable/);
    expect(await host.close()).toBe(1);
  });
});
