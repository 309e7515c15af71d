/**
 * The provisioned stack for the lab tests: a real collector filled by real iperf3 runs in a
 * network-namespace lab (a fast device, 20 Mbit/s; a slow one, 5 Mbit/s, below the alert
 * threshold; a broken one without iperf3, whose runs fail), and the BUILT plugin executable
 * launched by tests/grafana-host with the provisioned data source's settings.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { expect } from 'vitest';
import { loadConfigFile } from '../../collector/config/load.js';
import { startService, type Service } from '../../collector/service.js';
import { ensurePluginBuilt } from '../support/pluginProcess.js';
import { GrafanaHost, type HostDataSource } from '../support/grafanaHost.js';
import { createLab, type Lab } from '../lab/lab.js';
import { datasourcesFileSchema } from './grafanaSchemas.js';
import { expandEnvDeep, provisioningFiles, readYaml } from './stackFiles.js';
import { bindApiToken, parseBoundApiToken } from '../../contract/settings.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const TOKEN = 'provisioning-lab-token-0123456789';
export const DEVICES = ['fast', 'slow', 'broken'];

export interface ProvisionedStack {
  lab: Lab;
  service: Service;
  host: GrafanaHost;
  settings: HostDataSource;
  close(): Promise<void>;
}

/** The file's token, bound (as the file writes it) to the origin this copy of the stack answers on, as an operator writes it for their URL. */
function repointed(secure: Record<string, string>, collectorUrl: string): Record<string, string> {
  const { origin, token } = parseBoundApiToken(secure.apiToken ?? '');
  expect(origin).toBe('http://collector:8686');
  return { ...secure, apiToken: bindApiToken(collectorUrl, token) };
}

/** The provisioned data source as Grafana hands it to the plugin: env expanded, collector URL pointed at the lab. */
export function provisionedSettings(collectorUrl: string): HostDataSource {
  const file = datasourcesFileSchema.parse(readYaml(provisioningFiles('datasources')[0]));
  const ds = file.datasources[0];
  const env = { IPERF3_API_TOKEN: TOKEN };
  const jsonData = expandEnvDeep(ds.jsonData ?? {}, env);
  // the only change: the compose service name does not resolve here
  expect(jsonData.collectorUrl).toBe('http://collector:8686');
  return { uid: ds.uid, id: 1, lastUpdatedMS: Date.now(), jsonData: { ...jsonData, collectorUrl: collectorUrl }, secure: repointed(expandEnvDeep(ds.secureJsonData ?? {}, env), collectorUrl) };
}

/** Grafana's relative time (`now-7d`) in epoch ms. */
export function relativeTime(expr: string, now: number): number {
  if (expr === 'now') return now;
  const m = /^now-(\d+)([smhdw])$/.exec(expr);
  if (!m) throw new Error(`unsupported time ${expr}`);
  const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[m[2] as 's'];
  return now - Number(m[1]) * unit;
}

/**
 * `name`: the lab's name (a-z0-9, at most 5 characters), distinct per test file. `omit`: iperf3's
 * --omit seconds (0 by default; with more, iperf3 reports the omitted intervals too).
 * `runFirst: false`: the store starts empty (every device is run once by default).
 */
export async function startProvisionedStack(name: string, options: { omit?: number; runFirst?: boolean } = {}): Promise<ProvisionedStack> {
  const executable = ensurePluginBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'iperf3-provisioning-'));
  const lab = await createLab({
    name,
    devices: [
      { id: 'fast', ssh: 'openssh', rateMbit: 20 },
      { id: 'slow', ssh: 'dropbear', rateMbit: 5 },
      { id: 'broken', ssh: 'openssh', iperf3: false },
    ],
    servers: [{ id: 's1' }],
  });
  writeFileSync(join(dir, 'token'), TOKEN);
  writeFileSync(join(dir, 'id_ed25519'), lab.clientKey.privateKey);
  const config = {
    listen: '127.0.0.1:0',
    database: './iperf3.db',
    apiTokenFile: 'token',
    schedule: { cron: '0 2 * * *', timezone: 'UTC' },
    servers: [{ host: lab.server('s1').host, port: lab.server('s1').port, label: 's1' }],
    clientOptions: { time: 2, omit: options.omit ?? 0, connectTimeout: 2000, udp: { enabled: true, bitrate: '2M' } },
    busyRetry: { attempts: 2, backoffMs: 500 },
    ssh: { connectTimeoutMs: 3000 },
    devices: DEVICES.map((id) => ({
      id,
      host: lab.device(id).host,
      username: lab.device(id).username,
      privateKeyFile: 'id_ed25519',
      labels: { site: 'lab' },
    })),
  };
  writeFileSync(join(dir, 'collector.yaml'), stringify(config));
  const service = await startService(loadConfigFile(join(dir, 'collector.yaml')), logger, { schedule: false });
  if (options.runFirst !== false) {
    const results = await service.collector.runDevices(DEVICES);
    expect(results.map((r) => `${r.device}:${r.status}`).sort()).toEqual(['broken:failed', 'fast:ok', 'slow:ok']);
  }
  const host = GrafanaHost.start({ plugin: executable, grafanaVersion: '13.2.2' });
  const settings = provisionedSettings(service.url);
  return {
    lab,
    service,
    host,
    settings,
    async close() {
      await host.close();
      await service.close();
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
