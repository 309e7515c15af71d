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
  /** inventory sizes, each measured in its own collector */
  devices: number[];
  pluginStarts: number;
  /** GET /api/v1/devices calls after the first */
  inventoryCalls: number;
}

export const DEFAULT_FOOTPRINT: FootprintOptions = { devices: [10_000, 100_000], pluginStarts: 5, inventoryCalls: 5 };

/**
 * The figures of the previous report (issue 16, measured before the inventory moved into the
 * store and before the memory work), and the target, per inventory size: RSS in MiB.
 */
const PREVIOUS: Record<number, { afterStart: number; afterDevices: number; target: number; below?: boolean }> = {
  10_000: { afterStart: 231, afterDevices: 249, target: 150 },
  100_000: { afterStart: 1239, afterDevices: 1379, target: 600, below: true },
};

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
  const sized: { devices: number; c: CollectorFootprint }[] = [];
  for (const devices of o.devices) {
    const c = await measureCollector(o, devices);
    log(`footprint: collector with ${devices} devices: RSS ${mib(c.afterStart.rss)} MiB after start, ${mib(c.afterMoreInventory.rss)} MiB after /devices`);
    sized.push({ devices, c });
  }
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
  const n = (x: number) => x.toLocaleString('en-US');
  const verdict = (devices: number, rss: number): string => {
    const p = PREVIOUS[devices];
    if (!p) return '';
    const met = p.below ? rss / 1024 / 1024 < p.target : rss / 1024 / 1024 <= p.target;
    return `${p.below ? 'under ' : ''}${n(p.target)} MiB: ${met ? 'met' : 'missed'}`;
  };
  const previous = (devices: number, key: 'afterStart' | 'afterDevices'): string => (PREVIOUS[devices] ? `${n(PREVIOUS[devices][key])} MiB` : '-');
  const markdown = [
    `**Collector** (\`node collector/dist/main.js serve\`, the built bundle) with ${o.devices.map(n).join(' and ')} devices in its YAML inventory`,
    `(one key file for all, as most fleets), 4 servers, the schedule started (it does not fire during the measurement), an`,
    `empty store; each size in its own process. RSS and peak (VmHWM) from /proc/<pid>/status. "Previous" is the previous`,
    `report's figure (issue 16).`,
    '',
    table(
      ['devices', 'moment', 'RSS', 'peak RSS', 'previous', 'target'],
      [
        ['0 (baseline)', `API listening (${ms(empty.startMs)} ms after spawn) + 1 s`, `${mib(empty.afterStart.rss)} MiB`, `${mib(empty.afterStart.hwm)} MiB`, '-', '-'],
        ['0 (baseline)', `after ${o.inventoryCalls + 1} GET /api/v1/devices`, `${mib(empty.afterMoreInventory.rss)} MiB`, `${mib(empty.afterMoreInventory.hwm)} MiB`, '-', '-'],
        ...sized.flatMap(({ devices, c }) => [
          [n(devices), `API listening (${ms(c.startMs)} ms after spawn) + 1 s`, `${mib(c.afterStart.rss)} MiB`, `${mib(c.afterStart.hwm)} MiB`, previous(devices, 'afterStart'), verdict(devices, c.afterStart.rss)],
          [n(devices), `after the first GET /api/v1/devices (${n(c.devicesReported)} devices, ${fixed(c.inventoryBytes / 1024 / 1024, 1)} MiB of JSON, ${ms(c.firstInventoryMs)} ms)`, `${mib(c.afterFirstInventory.rss)} MiB`, `${mib(c.afterFirstInventory.hwm)} MiB`, '-', '-'],
          [n(devices), `after ${o.inventoryCalls} more GET /api/v1/devices`, `${mib(c.afterMoreInventory.rss)} MiB`, `${mib(c.afterMoreInventory.hwm)} MiB`, previous(devices, 'afterDevices'), verdict(devices, c.afterMoreInventory.rss)],
        ]),
      ],
    ),
    '',
    ...sized.map(({ devices, c }) => `- ${n(devices)} devices: about ${fixed((c.afterStart.rss - empty.afterStart.rss) / devices / 1024, 2)} KiB of RSS per device after start-up (${mib(c.afterStart.rss - empty.afterStart.rss)} MiB over the baseline).`),
    '',
    HEAP_FINDINGS,
    '',
    pluginMarkdown,
  ].join('\n');
  return {
    title: 'Footprint',
    markdown,
    summary: [
      ...sized.map(({ devices, c }) => `collector with ${n(devices)} devices: RSS ${mib(c.afterStart.rss)} MiB after start, ${mib(c.afterMoreInventory.rss)} MiB after /devices (previous ${previous(devices, 'afterStart')} / ${previous(devices, 'afterDevices')}; target ${verdict(devices, c.afterMoreInventory.rss)})`),
      pluginSummary,
    ],
  };
}

/** What the heap snapshots showed (bench notes; see docs/benchmarks.md), kept beside the figures they explain. */
const HEAP_FINDINGS = `**What holds the memory** (heap snapshots with \`node --heapsnapshot-signal\`, V8 heap statistics before and after a
forced full GC, and the sampling heap profiler counting collected objects; taken by hand on 5 December 2026, not by this
run; the same inventory as above):

| | before (main at 6a6ef0f) | after |
| --- | --- | --- |
| 10,000 devices: RSS 1 s after start | 239 MiB (= its peak) | 133-137 MiB |
| 10,000 devices: V8 heap used then / live after a full GC | 139.6 / 30.0 MiB | 39.4 / 28.9 MiB |
| 100,000 devices: RSS 1 s after start (peak) | 955 MiB (1,222 MiB), start 25 s | 243-287 MiB (270-290 MiB), start 2-6 s |
| 100,000 devices: V8 heap used then / live after a full GC | 488 / 117 MiB | 164 / 108 MiB |
| no device: V8 heap live after a full GC | 19.6 MiB | 19.6 MiB |

- **The parsed YAML, as garbage.** Live data was never the problem: about 1 KiB per device. Loading 10,000 devices
  allocated 1,134 MiB, 1,048 MiB of it inside the \`yaml\` library's \`parseDocument\` (a generator per token, a
  syntax tree and a document for the whole file: about 100 KiB of garbage per device entry) and 37 MiB in zod. V8
  grew its old space to hold it while the file was parsed and had not given it back when the figures were taken:
  that was the RSS. The configuration is now read with js-yaml (core schema: the same YAML 1.2 values), and
  \`yaml\` only words the errors of a file js-yaml refuses: loading 10,000 devices now allocates 114 MiB in all (js-yaml
  38 MiB, zod 37 MiB, writing them to the store 13 MiB) instead of 1,134.
- **Objects kept twice.** Each device is its validated configuration, a target (id, host, port, user, host key, key)
  that shares its strings, a \`{config, target}\` pair the catalog keeps as the file's devices and a \`{config, target,
  managedBy}\` entry in the inventory: at 100,000 devices 5.3 + 6.1 + 3.8 + 3.8 MiB, labels 5.3 MiB. Hidden classes
  and out-of-object property arrays of these objects are another 29 MiB (114,509 maps, 303,053 property arrays):
  the validated objects do not all share one shape.
- **A Buffer per device for one key file.** Before, every device read its key file again and held its own Buffer
  (10,080 Buffers at 10,000 devices). Now each secret file is read once per load and each distinct key is one
  Buffer shared by every device that uses it (file devices and API devices alike).
- **Strings.** 36.5 MiB at 100,000 devices: one string per device and field (\`cpe-…\` 3.1, \`id_ed25519\` 3.1,
  \`root\` 2.3, \`site-…\` 2.3, host 2.2 MiB), and the YAML text itself (14.7 MiB), kept alive by the 31,775 host
  names of 13 characters or more, which V8 makes slices of it.
- **Not found:** no closure, mutex, pino child logger or index per device (22,632 closures at 10,000 devices,
  22,807 at 100,000); zod results are the configuration objects above. A 16 MiB ArrayBuffer is there with no device.
- **\`GET /devices\`** built three lists of every device (summaries, summaries with their last run, zod's encoded
  copy) and then one string of the whole answer. It is now streamed page by page: 500 devices per store read of
  their last runs, each page sent before the next is read, no list of every device and no string of the whole
  answer (which, at 15 MiB, V8 keeps in its large-object space until a full GC: five calls had added about 250 MiB
  at 100,000 devices). Each device's JSON without its last run is checked against the schema once and kept while
  the device is unchanged (about 150 bytes per device): zod had been 150 of the 345 MiB a call allocated at 100,000
  devices; a repeated call now allocates about 85 MiB, in page-sized pieces. The first page is written before the
  answer starts, so an invalid device or a store error there is still a 500; a failure on a later page cuts the
  connection (logged), so a client never gets a complete-looking answer that is not.

**What would close the rest.** Interning the strings and rebuilding every device with one shape (tried: a JSON round
trip of the devices cut the live heap at 100,000 devices by 13 MiB but raised the start-up peak from about 285 to
342 MiB, so it is not kept); keeping only what the scheduler needs (id, group, enabled, pool) in memory and reading
targets from the store when a device is dispatched (the live heap is about 1 KiB per device, so this would matter
from about 100,000 devices on). At 10,000 devices the figure after \`GET /devices\` is within a few MiB of the
150 MiB target from run to run (144-149 MiB in five runs of this version, 152-154 MiB before the answer was
streamed): two thirds of it is the collector with no device at all (about 100 MiB: Node.js, Fastify, zod,
SQLite), which this work did not touch; a smaller baseline is what would give it a margin.`;
