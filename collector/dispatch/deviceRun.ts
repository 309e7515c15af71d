/**
 * One run of one device: SSH in, copy the iperf3 RSA key if auth is on, take a free server,
 * run TCP upload, TCP download, then UDP (per enabled direction), and store everything in
 * one transaction. Failures are classified; the key file is removed and the server released
 * whatever happens.
 */
import type { Logger } from 'pino';
import type { Direction, MetricName } from '../../contract/metrics.js';
import { METRICS } from '../../contract/metrics.js';
import type { ErrorClass, TestProtocol, Trigger } from '../../contract/api.js';
import type { ClientOptions } from '../../contract/settings.js';
import { buildIperf3Argv, computeTestDeadlineMs } from '../iperf3/command.js';
import { parseIperf3Result } from '../iperf3/parse.js';
import {
  ClassifiedError,
  serverKey,
  type DeviceConnector,
  type DeviceSession,
  type DeviceTarget,
  type Iperf3AuthSecrets,
  type RunOutcome,
  type ServerAddress,
  type TestOutcome,
  type TestResultRecord,
} from '../model.js';
import type { RunStore } from '../store/store.js';
import { execWithSecretEnv } from '../ssh/secret-env.js';
import { NoServerError, RegistryStoppedError, type ServerLease, type ServerRegistry } from './serverRegistry.js';

export interface RunTelemetry {
  testFinished(protocol: TestProtocol, direction: Direction, seconds: number, ok: boolean): void;
  runFinished(status: RunOutcome['status'], errorClass: ErrorClass | null): void;
}

export interface RunDeps {
  store: { runs: Pick<RunStore, 'start' | 'finish'> };
  connector: DeviceConnector;
  registry: ServerRegistry;
  logger: Logger;
  clock: () => Date;
  sleep: (ms: number) => Promise<void>;
  busyRetry: { attempts: number; backoffMs: number };
  telemetry?: RunTelemetry;
  /** told which test each run is in, for GET /api/v1/runs */
  progress?: RunProgress;
}

/** Which test a run is in while it runs (collector/dispatch/runProgress.ts keeps it). */
export interface RunProgress {
  testStarted(runId: number, test: PlannedTest, index: number, of: number, at: Date): void;
  runEnded(runId: number): void;
}

export interface RunPlan {
  device: DeviceTarget;
  /** the servers of the device's pool, in preference order */
  servers: readonly ServerAddress[];
  options: ClientOptions;
  auth: Iperf3AuthSecrets | null;
  trigger: Trigger;
  roundId: number | null;
  /** may an unknown host key be recorded on first use (default yes; see ConnectOptions) */
  trustOnFirstUse?: boolean;
}

export interface PlannedTest {
  protocol: TestProtocol;
  direction: Direction;
}

export interface RunSummary {
  runId: number;
  device: string;
  status: RunOutcome['status'];
  errorClass: ErrorClass | null;
  message: string | null;
  server: string | null;
  tests: TestResultRecord[];
}

/** TCP for each direction first, then UDP for each direction when enabled. */
export function planTests(options: ClientOptions): PlannedTest[] {
  const tests: PlannedTest[] = options.directions.map((direction) => ({ protocol: 'tcp' as const, direction }));
  if (options.udp.enabled) tests.push(...options.directions.map((direction) => ({ protocol: 'udp' as const, direction })));
  return tests;
}

// The password reaches iperf3 through stdin and the environment, never the command line.

const ZERO_METRICS: Record<TestProtocol, MetricName[]> = {
  tcp: METRICS.filter((m) => m.group === 'tcp' && m.zeroOnFailure).map((m) => m.name),
  udp: METRICS.filter((m) => m.group === 'udp' && m.zeroOnFailure).map((m) => m.name),
};

const UDP_RETRY_CLASSES = new Set<ErrorClass>(['timeout', 'iperf3-error']);

class TestRunner {
  private lease: ServerLease | null = null;
  private readonly busyKeys = new Set<string>();

  constructor(
    private readonly deps: RunDeps,
    private readonly plan: RunPlan,
    private readonly session: DeviceSession,
    private readonly keyPath: string | undefined,
  ) {}

  /** Runs one test; a busy server is swapped for another free one, then retried after a backoff. */
  async run(test: PlannedTest): Promise<TestResultRecord> {
    let attempt = 1;
    let udpRetried = false;
    for (;;) {
      if (!this.lease) this.lease = await this.deps.registry.acquireFree(this.plan.servers, this.busyKeys);
      const record = await this.runOn(this.lease, test);
      if (record.outcome.ok) return record;
      // On a lossy link the UDP setup datagram can be lost and the test hangs or errors at the
      // start: one more try is legitimate (the failure is kept if it fails again).
      if (test.protocol === 'udp' && !udpRetried && UDP_RETRY_CLASSES.has(record.outcome.errorClass)) {
        udpRetried = true;
        this.deps.logger.info({ device: this.plan.device.id, errorClass: record.outcome.errorClass }, 'UDP test failed at the start: retrying once');
        continue;
      }
      if (record.outcome.errorClass !== 'server-busy') return record;
      this.deps.logger.warn({ device: this.plan.device.id, server: this.lease.key }, 'iperf3 server busy (another client); trying another');
      this.busyKeys.add(this.lease.key);
      this.releaseServer();
      const others = this.plan.servers.some((s) => !this.busyKeys.has(serverKey(s)));
      if (!others) {
        if (attempt >= this.deps.busyRetry.attempts) {
          return { ...record, outcome: { ...record.outcome, message: `${record.outcome.message} (every server of the pool was busy, ${attempt} attempts)` } };
        }
        attempt++;
        this.busyKeys.clear();
        await this.deps.sleep(this.deps.busyRetry.backoffMs * 2 ** (attempt - 2));
      }
    }
  }

  private async runOn(lease: ServerLease, test: PlannedTest): Promise<TestResultRecord> {
    const { options, auth } = this.plan;
    const argv = buildIperf3Argv({ server: lease.server, protocol: test.protocol, direction: test.direction, options, remoteRsaPublicKeyPath: this.keyPath });
    const timeoutMs = computeTestDeadlineMs(options);
    const startedAt = this.deps.clock();
    // the password travels on stdin into IPERF3_PASSWORD, never on a command line
    const res = auth
      ? await execWithSecretEnv(this.session, argv, { IPERF3_PASSWORD: auth.password }, { timeoutMs })
      : await this.session.exec(argv, { timeoutMs });
    const endedAt = this.deps.clock();
    const outcome: TestOutcome = res.outputTooLarge
      ? {
          ok: false,
          errorClass: 'output-too-large',
          message: 'the device printed more than the collector keeps (16 MiB) and the command was stopped; check that the device runs a real iperf3',
          raw: null,
        }
      : res.timedOut
      ? { ok: false, errorClass: 'timeout', message: `iperf3 did not finish within the ${Math.round(timeoutMs / 1000)} s deadline and was killed`, raw: res.stdout || null }
      : parseIperf3Result({
          stdout: res.stdout,
          stderr: res.stderr,
          exitCode: res.exitCode,
          protocol: test.protocol,
          direction: test.direction,
          authenticated: this.plan.options.auth !== null,
        });
    // Known defects of the device's iperf3 (e.g. 3.17-3.19 cannot authenticate): in the log until the API shows them.
    if (outcome.ok && outcome.warnings?.length) {
      this.deps.logger.warn({ device: this.plan.device.id, iperfVersion: outcome.iperfVersion, warnings: outcome.warnings }, "the device's iperf3 has known problems");
    }
    this.deps.telemetry?.testFinished(test.protocol, test.direction, (endedAt.getTime() - startedAt.getTime()) / 1000, outcome.ok);
    return { protocol: test.protocol, direction: test.direction, server: lease.key, startedAt, endedAt, outcome };
  }

  releaseServer(): void {
    this.lease?.release();
    this.lease = null;
  }
}

function classify(err: unknown): { errorClass: ErrorClass; message: string } {
  if (err instanceof ClassifiedError) return { errorClass: err.errorClass, message: err.message };
  if (err instanceof NoServerError) return { errorClass: 'server-unreachable', message: `${err.message}; add servers in the data source or the collector configuration` };
  return { errorClass: 'internal', message: err instanceof Error ? err.message : String(err) };
}

/** Runs every planned test of one device and stores the run. Never throws for device faults. */
export async function runTcpThenUdp(deps: RunDeps, plan: RunPlan): Promise<RunSummary> {
  const { device } = plan;
  const log = deps.logger.child({ device: device.id });
  const startedAt = deps.clock();
  const runId = await deps.store.runs.start({ device: device.id, trigger: plan.trigger, roundId: plan.roundId, startedAt });
  const planned = planTests(plan.options);
  const tests: TestResultRecord[] = [];
  let failure: { errorClass: ErrorClass; message: string } | null = null;
  let reached = false;
  let session: DeviceSession | null = null;
  let keyPath: string | undefined;
  let runner: TestRunner | null = null;
  let server: string | null = null;
  let stopping: RegistryStoppedError | null = null;

  try {
    session = await deps.connector.connect(device, { trustOnFirstUse: plan.trustOnFirstUse });
    reached = true;
    if (plan.auth) keyPath = await session.writeTempFile(plan.auth.rsaPublicKey);
    runner = new TestRunner(deps, plan, session, keyPath);
    for (const [i, test] of planned.entries()) {
      deps.progress?.testStarted(runId, test, i + 1, planned.length, deps.clock());
      const record = await runner.run(test);
      server = record.server;
      tests.push(record);
      if (!record.outcome.ok) {
        failure = { errorClass: record.outcome.errorClass, message: `${test.protocol} ${test.direction}: ${record.outcome.message}` };
        break;
      }
    }
  } catch (err) {
    if (err instanceof RegistryStoppedError) stopping = err;
    failure = classify(err);
  } finally {
    runner?.releaseServer();
    if (session && keyPath) {
      await session.removeFile(keyPath).catch((err: unknown) => log.warn({ err: String(err) }, 'could not remove the temporary RSA key from the device'));
    }
    try {
      session?.close();
    } catch (err) {
      log.warn({ err: String(err) }, 'closing the SSH connection failed');
    }
  }

  // Not a result of the device: the run stays running, and becomes interrupted (at the next start,
  // or at once on a shared store when this collector's session ends) so that it is tested again.
  if (stopping) throw stopping;
  const endedAt = deps.clock();
  // Only a device that never answered SSH is skipped (no zeros): there is nothing to measure.
  const status: RunOutcome['status'] = failure === null ? 'ok' : !reached && failure.errorClass === 'unreachable' ? 'skipped' : 'failed';
  const metrics: RunOutcome['metrics'] = [];
  if (status !== 'skipped') {
    metrics.push({ name: 'result', direction: null, value: status === 'ok' ? 1 : 0, failed: status !== 'ok' });
    metrics.push({ name: 'duration_s', direction: null, value: (endedAt.getTime() - startedAt.getTime()) / 1000, failed: status !== 'ok' });
    // Zeros for every planned test that produced no result, flagged so dashboards can tell them from slow links.
    for (const t of planned) {
      const done = tests.find((r) => r.protocol === t.protocol && r.direction === t.direction && r.outcome.ok);
      if (!done) for (const name of ZERO_METRICS[t.protocol]) metrics.push({ name, direction: t.direction, value: 0, failed: true });
    }
  }
  const outcome: RunOutcome = {
    status,
    errorClass: failure?.errorClass ?? null,
    message: failure?.message ?? null,
    server,
    endedAt,
    tests,
    metrics,
  };
  try {
    await deps.store.runs.finish(runId, outcome);
  } finally {
    deps.progress?.runEnded(runId);
  }
  deps.telemetry?.runFinished(status, outcome.errorClass);
  if (status === 'ok') log.info({ runId, server }, 'run ok');
  else if (status === 'skipped') log.warn({ runId, errorClass: outcome.errorClass, reason: outcome.message }, 'device unreachable: run skipped');
  else log.warn({ runId, server, errorClass: outcome.errorClass, reason: outcome.message }, 'run failed');
  return { runId, device: device.id, status, errorClass: outcome.errorClass, message: outcome.message, server, tests };
}
