/**
 * Footprint: resident memory of the built collector (`node collector/dist/main.js serve`) with
 * 10,000 devices in its inventory and its schedule running, and the plugin executable's
 * start-up time to the go-plugin handshake and its memory. The devices have loopback addresses
 * on a port where nothing listens, and the schedule only fires on 1 January at 02:00: nothing
 * is contacted while the figures are taken.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { BENCH_TOKEN, DORMANT_SCHEDULE, loopbackDeviceAddress, UNUSED_PORT, writeCollectorConfig } from './collectorConfig.js';
import { launchPlugin } from '../tests/support/pluginProcess.js';
import { processMemory, type ProcessMemory } from './processMemory.js';
import { table, type SectionResult } from './report.js';
import { fixed, mean, mib, ms, percentile, sleep } from './stats.js';

export interface FootprintOptions {
  devices: number;
  pluginStarts: number;
  /** GET /api/v1/devices calls after the first */
  inventoryCalls: number;
}

export const DEFAULT_FOOTPRINT: FootprintOptions = { devices: 10_000, pluginStarts: 5, inventoryCalls: 5 };

const COLLECTOR_MAIN = fileURLToPath(new URL('../collector/dist/main.js', import.meta.url));

interface CollectorFootprint {
  startMs: number;
  afterStart: ProcessMemory;
  firstInventoryMs: number;
  inventoryBytes: number;
  afterFirstInventory: ProcessMemory;
  afterMoreInventory: ProcessMemory;
  nextRun: string | null;
  devicesReported: number;
}

async function measureCollector(o: FootprintOptions, devices: number): Promise<CollectorFootprint> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-footprint-'));
  const configPath = writeCollectorConfig(dir, {
    devices: Array.from({ length: devices }, (_, i) => ({
      id: `cpe-${String(i).padStart(5, '0')}`,
      host: loopbackDeviceAddress(i),
      port: UNUSED_PORT,
      labels: { site: `site-${i % 100}`, kind: i % 3 === 0 ? 'linux' : 'openwrt' },
    })),
    servers: [1, 2, 3, 4].map((n) => ({ host: `127.0.2.${n}`, port: UNUSED_PORT, label: `s${n}` })),
    schedule: DORMANT_SCHEDULE,
  });
  const started = performance.now();
  const child = spawn(process.execPath, [COLLECTOR_MAIN, 'serve', '--config', configPath], {
    env: { ...process.env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stderr: string[] = [];
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the collector did not listen within 60 s: ${stderr.join('\n')}`)), 60_000);
      let buffered = '';
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          stderr.push(line);
          try {
            const entry = JSON.parse(line) as { msg?: string; url?: string };
            if (entry.msg === 'collector API listening' && entry.url) {
              clearTimeout(timer);
              resolve(entry.url);
            }
          } catch {
            // not JSON: kept for the error message
          }
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the collector exited with ${code}: ${stderr.join('\n')}`));
      });
    });
    const startMs = performance.now() - started;
    await sleep(1000); // let start-up garbage be collected before the first reading
    const pid = child.pid as number;
    const afterStart = processMemory(pid);
    const headers = { authorization: `Bearer ${BENCH_TOKEN}` };
    const t0 = performance.now();
    const body = await (await fetch(`${url}/api/v1/devices`, { headers })).text();
    const firstInventoryMs = performance.now() - t0;
    const devicesReported = (JSON.parse(body) as { devices: unknown[] }).devices.length;
    const afterFirstInventory = processMemory(pid);
    for (let i = 0; i < o.inventoryCalls; i++) await (await fetch(`${url}/api/v1/devices`, { headers })).arrayBuffer();
    await sleep(500);
    const afterMoreInventory = processMemory(pid);
    // the schedule is on: health reports its next run (its server probe is refused at once: nothing listens on that port)
    const health = (await (await fetch(`${url}/api/v1/health`, { headers })).json()) as { nextRun: string | null };
    return {
      startMs,
      afterStart,
      firstInventoryMs,
      inventoryBytes: Buffer.byteLength(body),
      afterFirstInventory,
      afterMoreInventory,
      nextRun: health.nextRun,
      devicesReported,
    };
  } finally {
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

interface PluginStart {
  handshakeMs: number;
  memory: ProcessMemory;
}

async function measurePluginStarts(count: number): Promise<PluginStart[]> {
  const starts: PluginStart[] = [];
  for (let i = 0; i < count; i++) {
    const plugin = await launchPlugin();
    try {
      starts.push({ handshakeMs: plugin.handshakeMs, memory: processMemory(plugin.child.pid as number) });
    } finally {
      await plugin.stop();
    }
  }
  return starts;
}

export async function benchFootprint(o: FootprintOptions = DEFAULT_FOOTPRINT, log: (line: string) => void = () => undefined): Promise<SectionResult> {
  // the same collector with no device at all, measured just before: what the inventory costs
  const empty = await measureCollector(o, 0);
  const collector = await measureCollector(o, o.devices);
  log(`footprint: collector with ${o.devices} devices: RSS ${mib(collector.afterStart.rss)} MiB after start, ${mib(collector.afterMoreInventory.rss)} MiB after /devices`);
  let pluginMarkdown: string;
  let pluginSummary: string;
  try {
    const starts = await measurePluginStarts(o.pluginStarts);
    const handshakes = starts.map((s) => s.handshakeMs);
    const rss = starts.map((s) => s.memory.rss);
    log(`footprint: plugin handshake p50 ${ms(percentile(handshakes, 50))} ms, RSS ${mib(mean(rss))} MiB`);
    pluginMarkdown = [
      `**Plugin executable** (Node single executable application, started as Grafana starts it), ${o.pluginStarts} cold starts in a row:`,
      '',
      table(
        ['start', 'spawn to handshake line', 'RSS at handshake', 'peak RSS'],
        starts.map((s, i) => [i + 1, `${ms(s.handshakeMs)} ms`, `${mib(s.memory.rss)} MiB`, `${mib(s.memory.hwm)} MiB`]),
      ),
      '',
      `Start-up to handshake: p50 ${ms(percentile(handshakes, 50))} ms, max ${ms(Math.max(...handshakes))} ms; RSS at handshake ${mib(mean(rss))} MiB on average.`,
    ].join('\n');
    pluginSummary = `plugin: handshake p50 ${ms(percentile(handshakes, 50))} ms, RSS ${mib(mean(rss))} MiB`;
  } catch (err) {
    pluginMarkdown = `**Plugin executable**: could not be measured: ${(err as Error).message}`;
    pluginSummary = `plugin: not measured (${(err as Error).message})`;
  }
  const c = collector;
  const markdown = [
    `**Collector** (\`node collector/dist/main.js serve\`, the built bundle) with ${o.devices.toLocaleString('en-US')} devices in its YAML inventory, 4 servers, the`,
    `schedule started (next run ${c.nextRun ?? 'none'}: it does not fire during the measurement), an empty store. RSS and`,
    `peak (VmHWM) from /proc/<pid>/status.`,
    '',
    table(
      ['moment', 'RSS', 'peak RSS'],
      [
        [`no devices (baseline): API listening (${ms(empty.startMs)} ms after spawn) + 1 s`, `${mib(empty.afterStart.rss)} MiB`, `${mib(empty.afterStart.hwm)} MiB`],
        [`no devices (baseline): after ${o.inventoryCalls + 1} GET /api/v1/devices`, `${mib(empty.afterMoreInventory.rss)} MiB`, `${mib(empty.afterMoreInventory.hwm)} MiB`],
        [`${o.devices.toLocaleString('en-US')} devices: API listening (${ms(c.startMs)} ms after spawn) + 1 s`, `${mib(c.afterStart.rss)} MiB`, `${mib(c.afterStart.hwm)} MiB`],
        [`${o.devices.toLocaleString('en-US')} devices: after GET /api/v1/devices (${c.devicesReported.toLocaleString('en-US')} devices, ${fixed(c.inventoryBytes / 1024 / 1024, 1)} MiB of JSON, ${ms(c.firstInventoryMs)} ms)`, `${mib(c.afterFirstInventory.rss)} MiB`, `${mib(c.afterFirstInventory.hwm)} MiB`],
        [`${o.devices.toLocaleString('en-US')} devices: after ${o.inventoryCalls} more GET /api/v1/devices`, `${mib(c.afterMoreInventory.rss)} MiB`, `${mib(c.afterMoreInventory.hwm)} MiB`],
      ],
    ),
    '',
    `The inventory itself costs about ${fixed(((c.afterStart.rss - empty.afterStart.rss) / o.devices / 1024), 1)} KiB of RSS per device after start-up (${mib(c.afterStart.rss - empty.afterStart.rss)} MiB over the baseline).`,
    '',
    pluginMarkdown,
  ].join('\n');
  return {
    title: 'Footprint',
    markdown,
    summary: [`collector with ${o.devices} devices: RSS ${mib(c.afterStart.rss)} MiB after start, ${mib(c.afterMoreInventory.rss)} MiB after /devices; ${pluginSummary}`],
  };
}
