/**
 * The latest measurement of every device as Prometheus gauges on the collector's /metrics, with
 * iperf3_exporter's names where one maps (iperf3_up, iperf3_sent_bps, iperf3_received_bps,
 * iperf3_received_bytes, iperf3_retransmits) and ours for what it has no name for (UDP, run
 * duration, last success). Read from the store at scrape time: nothing is kept between scrapes,
 * so a device's old server, or a device gone quiet for longer than the window, leaves no series.
 *
 * Cardinality: one series per device, metric and direction (per-run metrics: per device); the
 * `server` label carries the server of that latest value and is not a dimension of its own.
 */
import { Gauge, type Registry } from 'prom-client';
import pLimit from 'p-limit';
import type { MetricName } from '../contract/metrics.js';
import type { LatestValue, RunRecord } from '../contract/api.js';
import type { Store } from './store/store.js';

/** Devices with no stored value for this long drop out of /metrics (8 days: weekly schedules and a missed week's margin). */
export const LATEST_WINDOW_MS = 8 * 86_400_000;
/** Most devices exported per scrape, newest measurements first; the rest are counted as dropped. */
export const MAX_EXPORTED_DEVICES = 5000;
/** Devices whose last run failed get one look further back for their last success; this many at once. */
const LOOK_BACKS_IN_FLIGHT = 4;

interface Mapping {
  /** Prometheus name */
  name: string;
  stored: MetricName;
  help: string;
  /** from the stored unit to the Prometheus base unit */
  scale: number;
}

/** Per-direction metrics: labels device, direction, server. */
const PER_DIRECTION: Mapping[] = [
  { name: 'iperf3_sent_bps', stored: 'tcp_sent_bps', scale: 1, help: 'TCP bits per second sent by the sender (end.sum_sent), latest test per device and direction; 0 when it failed' },
  { name: 'iperf3_received_bps', stored: 'tcp_received_bps', scale: 1, help: 'TCP bits per second received (end.sum_received): what crossed the link; 0 when the test failed' },
  { name: 'iperf3_received_bytes', stored: 'tcp_bytes', scale: 1, help: 'TCP bytes received in the latest test (end.sum_received.bytes)' },
  { name: 'iperf3_retransmits', stored: 'tcp_retransmits', scale: 1, help: 'TCP retransmits of the sender in the latest test (absent when the sender does not report them)' },
  { name: 'iperf3_udp_received_bps', stored: 'udp_bps', scale: 1, help: 'UDP bits per second received in the latest test; 0 when it failed' },
  { name: 'iperf3_udp_jitter_seconds', stored: 'udp_jitter_ms', scale: 1 / 1000, help: 'UDP jitter seen by the receiver in the latest test, in seconds' },
  { name: 'iperf3_udp_lost_packets', stored: 'udp_lost_packets', scale: 1, help: 'UDP packets lost in the latest test, as seen by the receiver' },
  { name: 'iperf3_udp_packets', stored: 'udp_packets', scale: 1, help: 'UDP packets of the latest test, as seen by the receiver' },
  { name: 'iperf3_udp_lost_ratio', stored: 'udp_lost_percent', scale: 1 / 100, help: 'UDP loss of the latest test as a ratio (0 to 1)' },
];

/** Per-run metrics: labels device, server. */
const PER_RUN: Mapping[] = [
  { name: 'iperf3_run_duration_seconds', stored: 'duration_s', scale: 1, help: 'Wall time of the latest run of the device that reached it, SSH connect to last test end' },
];

/**
 * The stored metrics /metrics reads: those it exports, and `result`, which every run that
 * reached its device writes, so that a device whose tests all failed is found too.
 */
export const EXPORTED_STORED_METRICS: MetricName[] = [...PER_DIRECTION.map((m) => m.stored), ...PER_RUN.map((m) => m.stored), 'result'];

/** A device's latest finished run and its last success, as one scrape read them. */
interface RunState {
  /** undefined only if the runs behind the device's values were deleted between two reads */
  latestFinished: RunRecord | undefined;
  /** end (ms) of the last run in which every test succeeded; null when none is stored */
  lastSuccessMs: number | null;
}

/** One scrape's reading of the store. */
interface Snapshot {
  values: LatestValue[];
  runs: Map<string, RunState>;
  dropped: number;
}

const FINISHED: RunRecord['status'][] = ['ok', 'failed', 'skipped', 'interrupted'];
/** every finished run has an end */
const endOf = (run: RunRecord): number => Date.parse(String(run.endedAt));
/** a label value for a server that may be missing (a skipped run took none) */
const serverLabel = (server: string | null): string => server ?? '';

export class LatestGauges {
  /** every gauge this scrape replaces */
  private readonly gauges: Gauge<string>[] = [];
  /** stored metric -> how a latest value of it is set */
  private readonly setters = new Map<MetricName, (v: LatestValue) => void>();
  private readonly up: Gauge<'device' | 'server'>;
  private readonly lastSuccessAge: Gauge<'device'>;
  private readonly lastRunTime: Gauge<'device'>;
  private readonly exportedDevices: Gauge;
  private readonly droppedDevices: Gauge;
  private inFlight: Promise<void> | null = null;

  constructor(
    private readonly store: Store,
    registry: Registry,
    private readonly clock: () => Date = () => new Date(),
  ) {
    const registers = [registry];
    const gauge = <L extends string>(name: string, help: string, labelNames: L[]): Gauge<L> => {
      const g = new Gauge<L>({ name, help, labelNames, registers });
      this.gauges.push(g as Gauge<string>);
      return g;
    };
    for (const m of PER_DIRECTION) {
      const g = gauge(m.name, m.help, ['device', 'direction', 'server']);
      // per-direction metrics are always stored with a direction and a server
      this.setters.set(m.stored, (v) => g.set({ device: v.device, direction: String(v.direction), server: serverLabel(v.server) }, v.value * m.scale));
    }
    for (const m of PER_RUN) {
      const g = gauge(m.name, m.help, ['device', 'server']);
      this.setters.set(m.stored, (v) => g.set({ device: v.device, server: serverLabel(v.server) }, v.value * m.scale));
    }
    this.up = gauge(
      'iperf3_up',
      'Was the latest finished run of the device successful (1 when every test succeeded; 0 when one failed, or the device was unreachable or the run interrupted)',
      ['device', 'server'],
    );
    this.lastSuccessAge = gauge(
      'iperf3_last_success_age_seconds',
      "Seconds since the end of the device's last run in which every test succeeded (+Inf when none is stored)",
      ['device'],
    );
    this.lastRunTime = gauge('iperf3_last_run_timestamp_seconds', 'Start of the latest finished run of the device (Unix time)', ['device']);
    this.exportedDevices = new Gauge({
      name: 'iperf3_collector_exported_devices',
      help: `Devices whose latest measurement the last scrape exported (stored values younger than ${LATEST_WINDOW_MS / 86_400_000} days)`,
      registers,
    });
    this.droppedDevices = new Gauge({
      name: 'iperf3_collector_exported_devices_dropped',
      help: `Devices the last scrape left out because more than ${MAX_EXPORTED_DEVICES} had recent measurements`,
      registers,
    });
  }

  /** Reads the store and replaces every series; concurrent scrapes share one reading. */
  refresh(): Promise<void> {
    this.inFlight ??= this.read()
      .then((snapshot) => this.apply(snapshot))
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }

  private async read(): Promise<Snapshot> {
    const now = this.clock().getTime();
    const all = await this.store.metrics.latest({ devices: 'all', metrics: EXPORTED_STORED_METRICS, afterMs: now - LATEST_WINDOW_MS });
    // the devices with the newest measurements win when there are too many
    const newest = new Map<string, number>();
    for (const v of all) newest.set(v.device, Math.max(newest.get(v.device) ?? 0, v.timeMs));
    // a stable sort: equal times keep the device order `latest` answers in
    const kept = [...newest.entries()].sort((a, b) => b[1] - a[1]).slice(0, MAX_EXPORTED_DEVICES);
    const keep = new Set(kept.map(([device]) => device));
    const values = all.filter((v) => keep.has(v.device));

    // iperf3_up follows the latest finished run, skipped ones (device unreachable, no values stored) included
    const devices = [...keep].sort();
    const lastRuns = await this.store.runs.lastOf(devices);
    const runs = new Map<string, RunState>();
    const newestRun = async (device: string, status: RunRecord['status'][]): Promise<RunRecord | undefined> =>
      (await this.store.runs.list({ devices: [device], status, limit: 1 }))[0];
    await pLimit(LOOK_BACKS_IN_FLIGHT).map(devices, async (device) => {
      let latest = lastRuns.get(device);
      if (latest?.status === 'running') latest = await newestRun(device, FINISHED);
      const lastOk = latest?.status === 'ok' ? latest : await newestRun(device, ['ok']);
      runs.set(device, { latestFinished: latest, lastSuccessMs: lastOk ? endOf(lastOk) : null });
    });
    return { values, runs, dropped: newest.size - keep.size };
  }

  /** Synchronous, so that no scrape sees a half-replaced set of series. */
  private apply(snapshot: Snapshot): void {
    const now = this.clock().getTime();
    for (const g of this.gauges) g.reset();
    for (const v of snapshot.values) this.setters.get(v.metric)?.(v);
    for (const [device, { latestFinished, lastSuccessMs }] of snapshot.runs) {
      if (latestFinished) {
        this.up.set({ device, server: serverLabel(latestFinished.server) }, latestFinished.status === 'ok' ? 1 : 0);
        this.lastRunTime.set({ device }, Date.parse(latestFinished.startedAt) / 1000);
      }
      this.lastSuccessAge.set({ device }, lastSuccessMs === null ? Number.POSITIVE_INFINITY : Math.max(0, (now - lastSuccessMs) / 1000));
    }
    this.exportedDevices.set(snapshot.runs.size);
    this.droppedDevices.set(snapshot.dropped);
  }
}
