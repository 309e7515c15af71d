/** Builders of run outcomes for the store and API tests. */
import type { Direction } from '../../contract/metrics.js';
import type { ErrorClass } from '../../contract/api.js';
import type { RunOutcome, TestResultRecord } from '../../collector/model.js';

export const SERVER_A = '10.0.0.1:5201';
export const SERVER_B = '10.0.0.2:5201';

export function okTcpTest(direction: Direction, startMs: number, received: number, server = SERVER_A): TestResultRecord {
  return {
    protocol: 'tcp',
    direction,
    server,
    startedAt: new Date(startMs),
    endedAt: new Date(startMs + 10_000),
    outcome: {
      ok: true,
      metrics: [
        { name: 'tcp_received_bps', value: received },
        { name: 'tcp_sent_bps', value: received + 1000 },
      ],
      intervals: [
        { start: 0, end: 1, bitsPerSecond: received - 10, omitted: true },
        { start: 1, end: 2.5, bitsPerSecond: received + 10, omitted: false },
      ],
      raw: JSON.stringify({ start: { version: 'iperf 3.12' }, end: { sum_received: { bits_per_second: received } } }),
      iperfVersion: '3.12',
    },
  };
}

export function failedTest(
  protocol: 'tcp' | 'udp',
  direction: Direction,
  startMs: number,
  errorClass: ErrorClass,
  server = SERVER_A,
): TestResultRecord {
  return {
    protocol,
    direction,
    server,
    startedAt: new Date(startMs),
    endedAt: new Date(startMs + 1000),
    outcome: { ok: false, errorClass, message: `iperf3 said ${errorClass}`, raw: '{"error":"the server is busy"}' },
  };
}

/** A successful run: TCP upload+download against `server`, result=1. */
export function okOutcome(startMs: number, upload: number, download: number, server = SERVER_A): RunOutcome {
  return {
    status: 'ok',
    errorClass: null,
    message: null,
    server,
    endedAt: new Date(startMs + 25_000),
    tests: [okTcpTest('upload', startMs + 1000, upload, server), okTcpTest('download', startMs + 12_000, download, server)],
    metrics: [
      { name: 'result', direction: null, value: 1, failed: false },
      { name: 'duration_s', direction: null, value: 25, failed: false },
    ],
  };
}

/** A failed run: the upload failed, zeros written with failed=1. */
export function failedOutcome(startMs: number, server = SERVER_A): RunOutcome {
  return {
    status: 'failed',
    errorClass: 'server-busy',
    message: 'the server is busy running a test',
    server,
    endedAt: new Date(startMs + 2000),
    tests: [failedTest('tcp', 'upload', startMs + 500, 'server-busy', server)],
    metrics: [
      { name: 'tcp_received_bps', direction: 'upload', value: 0, failed: true },
      { name: 'result', direction: null, value: 0, failed: true },
    ],
  };
}

export function skippedOutcome(startMs: number): RunOutcome {
  return {
    status: 'skipped',
    errorClass: 'unreachable',
    message: 'connect ETIMEDOUT',
    server: null,
    endedAt: new Date(startMs + 5000),
    tests: [],
    metrics: [],
  };
}
