import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { TestOutcome } from '../model.js';
import { parseIperf3Result, type Iperf3RunOutput } from './parse.js';

const FIXTURES = new URL('./fixtures/', import.meta.url);

/** Exit codes recorded by fixtures/capture.sh, one `name exit=N` line per case. */
const EXIT_CODES = new Map(
  [...readFileSync(new URL('exit-codes.txt', FIXTURES), 'utf8').matchAll(/^(\S+) exit=(\d+)$/gm)].map((m) => [m[1], Number(m[2])]),
);

function fixtureFile(file: string): string {
  const url = new URL(file, FIXTURES);
  return existsSync(url) ? readFileSync(url, 'utf8') : '';
}

/** A captured run exactly as the device printed it: stdout, stderr and exit code. */
function captured(name: string): Pick<Iperf3RunOutput, 'stdout' | 'stderr' | 'exitCode'> {
  const stdout = fixtureFile(`${name}.json`) || fixtureFile(`${name}.stdout.txt`);
  const exitCode = EXIT_CODES.get(name) ?? (name.startsWith('handmade-') ? 0 : undefined);
  if (exitCode === undefined) throw new Error(`no exit code recorded for fixture ${name}`);
  return { stdout, stderr: fixtureFile(`${name}.stderr.txt`), exitCode };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function json(name: string): any {
  return JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8'));
}

function parse(name: string, protocol: 'tcp' | 'udp' = 'tcp', direction: 'upload' | 'download' = 'upload'): TestOutcome {
  return parseIperf3Result({ ...captured(name), protocol, direction });
}

function ok(outcome: TestOutcome): Extract<TestOutcome, { ok: true }> {
  if (!outcome.ok) throw new Error(`expected success, got ${outcome.errorClass}: ${outcome.message}`);
  return outcome;
}

function failed(outcome: TestOutcome): Extract<TestOutcome, { ok: false }> {
  if (outcome.ok) throw new Error('expected a failure, got success');
  return outcome;
}

function metricMap(outcome: TestOutcome): Record<string, number> {
  return Object.fromEntries(ok(outcome).metrics.map((m) => [m.name, m.value]));
}

describe('parseIperf3Result on real TCP runs', () => {
  it.each([
    ['tcp-upload', 'upload'],
    ['tcp-download', 'download'],
    ['tcp-parallel-2', 'upload'],
    ['tcp-upload-ipv6', 'upload'],
    ['tcp-upload-auth', 'upload'],
  ] as const)('%s: rates and bytes from end.sum_received / end.sum_sent', (name, direction) => {
    const doc = json(name);
    const outcome = ok(parse(name, 'tcp', direction));
    const metrics = metricMap(outcome);
    expect(metrics.tcp_received_bps).toBe(doc.end.sum_received.bits_per_second);
    expect(metrics.tcp_sent_bps).toBe(doc.end.sum_sent.bits_per_second);
    expect(metrics.tcp_bytes).toBe(doc.end.sum_received.bytes);
    expect(metrics.tcp_received_bps).toBeGreaterThan(0);
    expect(outcome.raw).toBe(captured(name).stdout);
    expect(outcome.iperfVersion).toBe('iperf 3.12');
  });

  it('reports retransmits when the sender does, and the real upload fixture has them', () => {
    const doc = json('tcp-upload');
    expect(doc.end.sum_sent.retransmits).toEqual(expect.any(Number));
    expect(metricMap(parse('tcp-upload')).tcp_retransmits).toBe(doc.end.sum_sent.retransmits);
  });

  it('leaves out tcp_retransmits when sum_sent has none (hand-made: keys deleted)', () => {
    const outcome = ok(parse('handmade-tcp-upload-no-retransmits'));
    expect(outcome.metrics.map((m) => m.name)).toEqual(['tcp_received_bps', 'tcp_sent_bps', 'tcp_bytes']);
    expect(metricMap(outcome).tcp_received_bps).toBe(json('tcp-upload').end.sum_received.bits_per_second);
  });

  it('takes the forward direction of a --bidir run and ignores *_bidir_reverse', () => {
    const doc = json('tcp-bidir');
    expect(doc.end.sum_received_bidir_reverse.bits_per_second).not.toBe(doc.end.sum_received.bits_per_second);
    const outcome = ok(parse('tcp-bidir'));
    expect(metricMap(outcome).tcp_received_bps).toBe(doc.end.sum_received.bits_per_second);
    expect(metricMap(outcome).tcp_sent_bps).toBe(doc.end.sum_sent.bits_per_second);
    expect(outcome.intervals.map((i) => i.bitsPerSecond)).toEqual(doc.intervals.map((i: { sum: { bits_per_second: number } }) => i.sum.bits_per_second));
  });

  it('returns every interval sum with its omitted flag', () => {
    const doc = json('tcp-upload-omit');
    const outcome = ok(parse('tcp-upload-omit'));
    expect(outcome.intervals).toEqual(
      doc.intervals.map(({ sum }: { sum: Record<string, number | boolean> }) => ({
        start: sum.start,
        end: sum.end,
        bitsPerSecond: sum.bits_per_second,
        omitted: sum.omitted,
      })),
    );
    expect(outcome.intervals[0].omitted).toBe(true);
    expect(outcome.intervals.at(-1)?.omitted).toBe(false);
  });
});

describe('parseIperf3Result on real UDP runs', () => {
  it.each([
    ['udp-upload', 'upload'],
    ['udp-download', 'download'],
  ] as const)('%s: receiver view from end.sum_received', (name, direction) => {
    const received = json(name).end.sum_received;
    expect(received.bits_per_second).not.toBe(json(name).end.sum.bits_per_second);
    expect(metricMap(parse(name, 'udp', direction))).toEqual({
      udp_bps: received.bits_per_second,
      udp_jitter_ms: received.jitter_ms,
      udp_lost_packets: received.lost_packets,
      udp_packets: received.packets,
      udp_lost_percent: received.lost_percent,
    });
  });

  it('falls back to end.sum before 3.11, deriving the received rate (hand-made: sum_received and sum_sent deleted)', () => {
    const sum = json('handmade-udp-upload-3.1').end.sum;
    const outcome = ok(parse('handmade-udp-upload-3.1', 'udp'));
    // end.sum.bits_per_second is the sender's rate; what arrived is what 3.12 put in sum_received.
    const received = json('udp-upload').end.sum_received.bits_per_second;
    expect(Math.abs(metricMap(outcome).udp_bps - received) / received).toBeLessThan(0.001);
    expect(metricMap(outcome).udp_bps).not.toBe(sum.bits_per_second);
    expect(metricMap(outcome)).toEqual({
      udp_bps: metricMap(outcome).udp_bps,
      udp_jitter_ms: sum.jitter_ms,
      udp_lost_packets: sum.lost_packets,
      udp_packets: sum.packets,
      udp_lost_percent: sum.lost_percent,
    });
    expect(outcome.intervals).toHaveLength(1);
  });
});

describe('parseIperf3Result on real failures', () => {
  it.each([
    ['error-server-busy', 'server-busy', 'the iperf3 server is busy with another test: iperf3 said "the server is busy running a test. try again later"'],
    ['error-connection-refused', 'server-unreachable', 'cannot reach the iperf3 server: iperf3 said "unable to connect to server: Connection refused"'],
    ['error-no-route', 'server-unreachable', 'cannot reach the iperf3 server: iperf3 said "unable to connect to server: Network is unreachable"'],
    ['error-host-unreachable', 'server-unreachable', 'cannot reach the iperf3 server: iperf3 said "unable to connect to server: No route to host"'],
    ['error-connect-timeout', 'server-unreachable', 'cannot reach the iperf3 server: iperf3 said "unable to connect to server: Connection timed out"'],
    ['error-auth-failed', 'iperf3-auth', 'the iperf3 server rejected the credentials (check auth.username and the password; iperf3 3.17 and later pad differently from older versions: run client and server both older or both 3.17 or later, or start a 3.17+ server with --use-pkcs1-padding for older clients): iperf3 said "test authorization failed"'],
    ['error-client-interrupted', 'iperf3-error', 'iperf3 failed: iperf3 said "interrupt - the client has terminated"'],
    ['error-server-terminated', 'iperf3-error', 'iperf3 failed: iperf3 said "the server has terminated"'],
    ['error-server-killed', 'iperf3-error', 'iperf3 failed: iperf3 said "unable to write to stream socket: Connection reset by peer"'],
  ] as const)('%s -> %s, judged by the error key whatever the exit code', (name, errorClass, message) => {
    const run = captured(name);
    const outcome = failed(parse(name));
    // The version is kept on failures too: start.version is there even when the test failed.
    expect(outcome).toEqual({ ok: false, errorClass, message, raw: run.stdout, iperfVersion: 'iperf 3.12' });
  });

  it('exit codes do not tell failures apart: iperf3 3.12 exits 0 on most JSON errors', () => {
    expect(EXIT_CODES.get('error-server-busy')).toBe(0);
    expect(EXIT_CODES.get('error-client-interrupted')).toBe(1);
  });

  it('treats a document with partial results and an error as a failure', () => {
    const doc = json('error-client-interrupted');
    expect(doc.end.sum_sent.bits_per_second).toBeGreaterThan(0);
    expect(failed(parse('error-client-interrupted')).errorClass).toBe('iperf3-error');
  });

  it('recognises the missing binary from the shell (exit 127, "not found")', () => {
    expect(failed(parse('error-iperf3-missing'))).toEqual({
      ok: false,
      errorClass: 'iperf3-missing',
      message: 'iperf3 is not installed on the device or not in PATH: /bin/sh: 1: iperf3: not found',
      raw: null,
    });
    const silent = parseIperf3Result({ stdout: '', stderr: '', exitCode: 127, protocol: 'tcp', direction: 'upload' });
    expect(failed(silent).message).toBe('iperf3 is not installed on the device or not in PATH (exit code 127)');
    const bash = parseIperf3Result({ stdout: '', stderr: 'bash: iperf3: command not found\n', exitCode: 1, protocol: 'tcp', direction: 'upload' });
    expect(failed(bash).errorClass).toBe('iperf3-missing');
  });

  it('quotes the first line of a plain-text parameter error', () => {
    expect(failed(parse('error-parameter'))).toEqual({
      ok: false,
      errorClass: 'parse-error',
      message: "iperf3 printed no JSON (exit code 1): iperf3: unrecognized option '--bogus-option'",
      raw: null,
    });
  });

  it('classes an unusable RSA public key as an auth problem, quoting what iperf3 said', () => {
    const run = captured('error-auth-bad-public-key');
    expect(failed(parse('error-auth-bad-public-key'))).toEqual({
      ok: false,
      errorClass: 'iperf3-auth',
      message:
        'iperf3 could not use the auth settings (username, password, RSA public key): iperf3: error:80000002:system library::No such file or directory | iperf3: parameter error - you must specify a username, password, and path to a valid RSA public key',
      raw: run.stdout,
    });
  });

  it('tells the operator to drop --use-pkcs1-padding when the device iperf3 predates 3.17', () => {
    const outcome = failed(parse('error-unknown-option-pkcs1'));
    expect(outcome.errorClass).toBe('iperf3-auth');
    expect(outcome.message).toMatch(/older than 3\.17 .*turn off auth\.pkcs1Padding/);
  });

  it('tells the operator to install iperf3-ssl when the device iperf3 has no auth support', () => {
    // What a build without OpenSSL prints: its option table has no --username.
    const stderr = fixtureFile('error-parameter.stderr.txt').replace("'--bogus-option'", "'--username'");
    const outcome = failed(parseIperf3Result({ stdout: '', stderr, exitCode: 1, protocol: 'tcp', direction: 'upload' }));
    expect(outcome.errorClass).toBe('iperf3-auth');
    expect(outcome.message).toMatch(/install iperf3-ssl/);
  });
});

describe('parseIperf3Result on broken or unexpected output', () => {
  const base = { stderr: '', exitCode: 0, protocol: 'tcp', direction: 'upload' } as const;

  it('reports empty output with how the process ended', () => {
    expect(failed(parseIperf3Result({ ...base, stdout: '', exitCode: null }))).toEqual({
      ok: false,
      errorClass: 'parse-error',
      message: 'iperf3 printed nothing (killed by a signal)',
      raw: null,
    });
  });

  it('quotes the start of non-JSON stdout, cut to 200 characters', () => {
    const outcome = failed(parseIperf3Result({ ...base, stdout: `Connecting to host ${'x'.repeat(300)}\nmore` }));
    expect(outcome.message).toBe(`iperf3 printed no JSON (exit code 0): Connecting to host ${'x'.repeat(200 - 19)}...`);
    expect(outcome.raw).toMatch(/^Connecting/);
  });

  it('reports truncated JSON (a run cut off mid-output) as not valid JSON', () => {
    const stdout = captured('tcp-upload').stdout.slice(0, 500);
    const outcome = failed(parseIperf3Result({ ...base, stdout, exitCode: null }));
    expect(outcome.errorClass).toBe('parse-error');
    expect(outcome.message).toMatch(/^iperf3 output is not valid JSON \(killed by a signal; .+\): \{$/);
    expect(outcome.raw).toBe(stdout);
  });

  it('names the fields of a document with the wrong shape', () => {
    const doc = json('tcp-upload');
    doc.intervals[0].sum.bits_per_second = 'fast';
    doc.error = 42;
    const outcome = failed(parseIperf3Result({ ...base, stdout: JSON.stringify(doc) }));
    expect(outcome.message).toBe('iperf3 JSON has an unexpected shape (intervals.0.sum.bits_per_second, error)');
  });

  it('names the missing TCP end sums', () => {
    const doc = json('tcp-upload');
    delete doc.end.sum_received;
    expect(failed(parseIperf3Result({ ...base, stdout: JSON.stringify(doc) })).message).toBe(
      'iperf3 JSON has no usable TCP end sums (end.sum_received)',
    );
    delete doc.end;
    expect(failed(parseIperf3Result({ ...base, stdout: JSON.stringify(doc) })).message).toBe(
      'iperf3 JSON has no usable TCP end sums (end)',
    );
  });

  it('names malformed UDP sums and reports when neither UDP sum exists', () => {
    const doc = json('udp-upload');
    delete doc.end.sum_received.jitter_ms;
    const udp = { ...base, protocol: 'udp' } as const;
    expect(failed(parseIperf3Result({ ...udp, stdout: JSON.stringify(doc) })).message).toBe(
      'iperf3 JSON has no usable UDP end sums (end.sum_received.jitter_ms)',
    );
    const neither = json('udp-upload');
    delete neither.end.sum_received;
    delete neither.end.sum;
    expect(failed(parseIperf3Result({ ...udp, stdout: JSON.stringify(neither) })).message).toBe(
      'iperf3 JSON has neither end.sum_received nor end.sum',
    );
  });

  it('refuses a document of another protocol or direction than asked for', () => {
    expect(failed(parse('udp-upload', 'tcp')).message).toBe('asked iperf3 for a TCP test but it ran UDP');
    expect(failed(parse('tcp-download', 'tcp', 'upload')).message).toBe(
      'asked iperf3 for an upload test but its reverse (-R) flag is 1',
    );
    expect(failed(parse('tcp-upload', 'tcp', 'download')).message).toBe(
      'asked iperf3 for a download test but its reverse (-R) flag is 0',
    );
  });

  it('accepts a minimal document without start or intervals', () => {
    const doc = json('tcp-upload');
    const outcome = ok(parseIperf3Result({ ...base, stdout: JSON.stringify({ end: doc.end }) }));
    expect(outcome.iperfVersion).toBeNull();
    expect(outcome.intervals).toEqual([]);
    const noOmitted = json('tcp-upload');
    delete noOmitted.intervals[0].sum.omitted;
    expect(ok(parseIperf3Result({ ...base, stdout: JSON.stringify(noOmitted) })).intervals[0].omitted).toBe(false);
  });

  it('classes control-connection errors by whether streams were connected', () => {
    const before = { start: { connected: [] }, intervals: [], end: {}, error: 'unable to send control message: Bad file descriptor' };
    expect(failed(parseIperf3Result({ ...base, stdout: JSON.stringify(before) })).errorClass).toBe('server-unreachable');
    const during = { ...before, start: { connected: [{ socket: 5 }] }, error: 'control socket has closed unexpectedly' };
    expect(failed(parseIperf3Result({ ...base, stdout: JSON.stringify(during) })).errorClass).toBe('iperf3-error');
    const noStart = { error: 'unable to receive control message: Connection reset by peer' };
    expect(failed(parseIperf3Result({ ...base, stdout: JSON.stringify(noStart) })).errorClass).toBe('server-unreachable');
  });
});
