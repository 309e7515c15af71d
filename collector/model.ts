/**
 * Contracts between the collector's parts: the iperf3 command builder and parser, the SSH
 * runner, the store and the dispatcher. Each part implements its side in its own folder.
 */
import type { Direction, MetricName } from '../contract/metrics.js';
import type { ErrorClass, IntervalPoint, RunStatus, TestProtocol, Trigger } from '../contract/api.js';
import type { ClientOptions } from '../contract/settings.js';

export interface ServerAddress {
  host: string;
  port: number;
}

/** `host:port`, with IPv6 hosts in brackets: `[2001:db8::1]:5201` */
export function serverKey(s: ServerAddress): string {
  return s.host.includes(':') ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`;
}

/** One iperf3 invocation on a device. */
export interface Iperf3TestSpec {
  server: ServerAddress;
  protocol: TestProtocol;
  direction: Direction;
  options: ClientOptions;
  /** path of the RSA public key already copied to the device, when auth is on */
  remoteRsaPublicKeyPath?: string;
}

export interface MetricValue {
  name: MetricName;
  value: number;
  /** where the parser took the value from: a JSON path of iperf3's output, or a formula */
  source?: string;
}

/** What the parser makes of one iperf3 run. */
export type TestOutcome =
  | {
      ok: true;
      metrics: MetricValue[];
      intervals: Omit<IntervalPoint, 'protocol' | 'direction' | 'timeMs'>[];
      raw: string;
      iperfVersion: string | null;
      /** about the device's iperf3 version or output, for the operator (collector/iperf3/versions.ts) */
      warnings?: string[];
    }
  | {
      ok: false;
      errorClass: ErrorClass;
      message: string;
      raw: string | null;
      /** `start.version` when iperf3 printed JSON, e.g. `iperf 3.9` */
      iperfVersion?: string;
    };

/** An error with a class the store records. */
export class ClassifiedError extends Error {
  constructor(
    readonly errorClass: ErrorClass,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ClassifiedError';
  }
}

/** A device as the runner needs it, secrets already read from their files. */
/** iperf3 client authentication (--username, password through the environment, --rsa-public-key-path). */
export interface Iperf3AuthSecrets {
  username: string;
  password: string;
  rsaPublicKey: string;
}

export interface DeviceTarget {
  id: string;
  host: string;
  port: number;
  username: string;
  privateKey?: Buffer;
  passphrase?: string;
  password?: string;
  /** pinned `SHA256:<base64>` fingerprint; when absent, trust on first use */
  hostKey?: string;
}

/** SSH host keys recorded on first use, per device. */
export interface HostKeyStore {
  get(deviceId: string): Promise<string | undefined>;
  record(deviceId: string, fingerprint: string): Promise<void>;
  /** Forgets a device's key (after an operator re-keyed it); true when one was recorded. */
  forget(deviceId: string): Promise<boolean>;
}

export interface ExecOptions {
  /** written to the command's stdin, then stdin is closed (how the iperf3 password travels) */
  stdin?: string;
  /** hard deadline; on expiry the remote process is killed and `timedOut` is set */
  timeoutMs: number;
  /** most bytes kept of stdout plus stderr; beyond it the remote process is killed and `outputTooLarge` is set (default 16 MiB) */
  maxOutputBytes?: number;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** null when the process was killed by a signal or the deadline */
  exitCode: number | null;
  timedOut: boolean;
  /** the command printed more than `maxOutputBytes` and was killed; stdout and stderr hold what was kept */
  outputTooLarge?: boolean;
}

/** One SSH connection to a device. Commands are argument vectors, quoted by the session. */
export interface DeviceSession {
  exec(argv: string[], options: ExecOptions): Promise<ExecResult>;
  /** writes `content` to a fresh temporary file on the device (mode 600) and returns its path */
  writeTempFile(content: string): Promise<string>;
  removeFile(path: string): Promise<void>;
  close(): void;
}

export interface ConnectOptions {
  /**
   * May an unknown host key be trusted on first use? Yes by default; the runner says no when a
   * password would be sent over the connection and the configuration did not opt into it.
   */
  trustOnFirstUse?: boolean;
}

export interface DeviceConnector {
  /** throws ClassifiedError('unreachable' | 'ssh-auth' | 'host-key-mismatch') */
  connect(target: DeviceTarget, options?: ConnectOptions): Promise<DeviceSession>;
}

/** One finished test as the store records it. */
export interface TestResultRecord {
  protocol: TestProtocol;
  direction: Direction;
  server: string;
  startedAt: Date;
  endedAt: Date;
  outcome: TestOutcome;
}

/** Everything a run wrote, stored in one transaction by `Store.finishRun`. */
export interface RunOutcome {
  status: Exclude<RunStatus, 'running'>;
  errorClass: ErrorClass | null;
  message: string | null;
  server: string | null;
  endedAt: Date;
  tests: TestResultRecord[];
  /** extra metrics: `result`, `duration_s`, zeros for failed tests (failed = true) */
  metrics: { name: MetricName; direction: Direction | null; value: number; failed: boolean }[];
}

export interface RunStart {
  device: string;
  trigger: Trigger;
  roundId: number | null;
  startedAt: Date;
}
