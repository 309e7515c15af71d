/**
 * The collector's own Prometheus metrics (GET /metrics), on a registry of its own so that
 * tests and several collectors in one process never share counters.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Direction } from '../contract/metrics.js';
import type { ErrorClass, RunStatus, TestProtocol } from '../contract/api.js';
import { LatestGauges } from './latestGauges.js';
import type { Store } from './store/store.js';

const PREFIX = 'iperf3_collector_';

export class Telemetry {
  readonly registry = new Registry();
  private readonly runs: Counter<'status' | 'error_class'>;
  private readonly testDuration: Histogram<'protocol' | 'direction' | 'result'>;
  private readonly queueLength: Gauge;
  private readonly busySeconds: Counter<'server'>;
  private readonly busy: Gauge<'server'>;
  private readonly latest: LatestGauges | null;

  /** With a store, /metrics also carries each device's latest measurement (collector/latestGauges.ts). */
  constructor(options: { store?: Store; clock?: () => Date } = {}) {
    const registers = [this.registry];
    // unprefixed, as every Node.js dashboard expects (process_*, nodejs_*)
    collectDefaultMetrics({ register: this.registry });
    this.runs = new Counter({
      name: `${PREFIX}runs_total`,
      help: 'Finished runs by status and error class (error_class="" for runs without error)',
      labelNames: ['status', 'error_class'],
      registers,
    });
    this.testDuration = new Histogram({
      name: `${PREFIX}test_duration_seconds`,
      help: 'Wall time of one iperf3 test on a device, SSH exec to exit',
      labelNames: ['protocol', 'direction', 'result'],
      // tests last `time` seconds (default 10) plus connection set-up; failures are often fast
      buckets: [0.5, 1, 2, 5, 10, 12, 15, 20, 30, 60, 120, 300, 900, 1800],
      registers,
    });
    this.queueLength = new Gauge({
      name: `${PREFIX}queue_length`,
      help: 'Devices waiting for a free iperf3 server',
      registers,
    });
    this.busySeconds = new Counter({
      name: `${PREFIX}server_busy_seconds_total`,
      help: 'Seconds each iperf3 server spent running tests from this collector',
      labelNames: ['server'],
      registers,
    });
    this.busy = new Gauge({
      name: `${PREFIX}server_busy`,
      help: '1 while this collector runs a test against the server, else 0',
      labelNames: ['server'],
      registers,
    });
    this.latest = options.store ? new LatestGauges(options.store, this.registry, options.clock) : null;
  }

  runFinished(status: Exclude<RunStatus, 'running'>, errorClass: ErrorClass | null): void {
    this.runs.inc({ status, error_class: errorClass ?? '' });
  }

  testFinished(protocol: TestProtocol, direction: Direction, seconds: number, ok: boolean): void {
    this.testDuration.observe({ protocol, direction, result: ok ? 'ok' : 'failed' }, seconds);
  }

  setQueueLength(n: number): void {
    this.queueLength.set(n);
  }

  addServerBusySeconds(serverKey: string, seconds: number): void {
    this.busySeconds.inc({ server: serverKey }, seconds);
  }

  setServerBusy(serverKey: string, busy: boolean): void {
    this.busy.set({ server: serverKey }, busy ? 1 : 0);
  }

  /** Prometheus text exposition of every metric, the latest measurements read from the store now. */
  async metrics(): Promise<string> {
    await this.latest?.refresh();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
