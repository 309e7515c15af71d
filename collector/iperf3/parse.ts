/**
 * Turns what one `iperf3 -c ... -J` run printed into a TestOutcome: metrics and per-second
 * intervals on success, an error class and a short message for a network engineer otherwise.
 * Built on real iperf3 output (fixtures/README.md); see shared iperf3 facts for the rules.
 */
import { parseTree, type Node as JsonNode, type ParseError } from 'jsonc-parser';
import { z } from 'zod';
import type { ErrorClass, TestProtocol } from '../../contract/api.js';
import type { Direction } from '../../contract/metrics.js';
import type { MetricValue, TestOutcome } from '../model.js';
import { authBroken317To319, parseIperf3Version, versionWarnings, type Iperf3Version } from './versions.js';

export interface Iperf3RunOutput {
  stdout: string;
  stderr: string;
  /** null when the process was killed by a signal or the deadline */
  exitCode: number | null;
  protocol: TestProtocol;
  direction: Direction;
  /** the command carried --username (auth on): lets a server that hangs up at once be read as a rejection */
  authenticated?: boolean;
}

/** Longest piece of iperf3's own output quoted in a message. */
const QUOTE_LIMIT = 200;

const finite = z.number().finite();

/** The parts of iperf3's JSON we read; everything else passes through untouched. */
const documentSchema = z.looseObject({
  start: z
    .looseObject({
      version: z.string().optional(),
      connected: z.array(z.unknown()).optional(),
      test_start: z
        .looseObject({ protocol: z.string().optional(), reverse: z.number().optional(), blksize: finite.optional() })
        .optional(),
    })
    .optional(),
  intervals: z
    .array(
      z.looseObject({
        sum: z.looseObject({
          start: finite,
          end: finite,
          bits_per_second: finite,
          omitted: z.boolean().optional(),
        }),
      }),
    )
    .optional(),
  end: z.looseObject({}).optional(),
  error: z.string().optional(),
});
type Iperf3Document = z.infer<typeof documentSchema>;

const tcpEndSchema = z.looseObject({
  sum_sent: z.looseObject({ bits_per_second: finite, retransmits: finite.optional() }),
  sum_received: z.looseObject({ bits_per_second: finite, bytes: finite }),
});

const udpSumSchema = z.looseObject({
  bits_per_second: finite,
  seconds: finite,
  jitter_ms: finite,
  lost_packets: finite,
  packets: finite,
  lost_percent: finite,
});
// 3.11+ carries the receiver's view in sum_received; older versions only have sum.
const udpEndSchema = z.looseObject({ sum_received: udpSumSchema.optional(), sum: udpSumSchema.optional() });

type Failure = Extract<TestOutcome, { ok: false }>;

function failure(errorClass: ErrorClass, message: string, raw: string | null): Failure {
  return { ok: false, errorClass, message, raw };
}

/** The first non-empty lines of a text, on one line, cut to QUOTE_LIMIT characters. */
function quoteStart(text: string, lines = 1): string {
  const start = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .slice(0, lines)
    .join(' | ');
  return start.length > QUOTE_LIMIT ? `${start.slice(0, QUOTE_LIMIT)}...` : start;
}

function describeExit(exitCode: number | null): string {
  return exitCode === null ? 'killed by a signal' : `exit code ${exitCode}`;
}

/** Plain-text output: a missing binary, a parameter error (iperf3 prints usage, not JSON), or junk. */
function classifyPlainText(input: Iperf3RunOutput): Failure {
  const { stdout, stderr, exitCode } = input;
  const raw = stdout === '' ? null : stdout;
  if (exitCode === 127 || /not found/i.test(stderr)) {
    const said = stderr.trim() === '' ? ` (${describeExit(exitCode)})` : `: ${quoteStart(stderr)}`;
    return failure('iperf3-missing', `iperf3 is not installed on the device or not in PATH${said}`, raw);
  }
  const text = `${stderr}\n${stdout}`;
  // glibc's getopt: unrecognized option '--username'; musl's (OpenWrt): unrecognized option: username
  if (/unrecognized option(?:: |\s*'--)(username|rsa-public-key-path)\b/.test(text)) {
    return failure(
      'iperf3-auth',
      "the device's iperf3 has no authentication support (built without OpenSSL; on OpenWrt install iperf3-ssl)",
      raw,
    );
  }
  if (/unrecognized option(?:: |\s*'--)use-pkcs1-padding\b/.test(text)) {
    return failure(
      'iperf3-auth',
      "the device's iperf3 is older than 3.17 and does not know --use-pkcs1-padding (it pads with PKCS#1 already): turn off auth.pkcs1Padding",
      raw,
    );
  }
  // From 3.20 --use-pkcs1-padding is a server option; it is the only server option we pass.
  if (/option you are trying to set is server only/.test(text)) {
    return failure(
      'iperf3-auth',
      "the device's iperf3 is 3.20 or later, where --use-pkcs1-padding is a server option only: turn off auth.pkcs1Padding (the client cannot pad with PKCS#1 any more; its server must be 3.17 or later)",
      raw,
    );
  }
  // 3.7 says "a path to a valid public rsa client to be used", later versions "a valid RSA public key".
  if (/valid RSA public key|valid public rsa client/i.test(text)) {
    return failure('iperf3-auth', `iperf3 could not use the auth settings (username, password, RSA public key): ${quoteStart(stderr, 2)}`, raw);
  }
  const output = stderr.trim() === '' ? stdout : stderr;
  if (output.trim() === '') {
    return failure('parse-error', `iperf3 printed nothing (${describeExit(exitCode)})`, null);
  }
  return failure('parse-error', `iperf3 printed no JSON (${describeExit(exitCode)}): ${quoteStart(output)}`, raw);
}

/** Errors from the control connection that mean "could not reach the server", not a failure mid-test. */
const CONNECT_ERROR = /unable to connect to server|connection refused|no route to host|network is unreachable/i;
const CONTROL_ERROR = /unable to send control message|unable to receive control message|control socket has closed/i;

/** iperf3 3.9 leaves the `error` key out of its JSON and prints the error on stderr instead. */
const STDERR_ERROR = /^iperf3: error - (.+)$/m;

/** iperf3 reported an error, in its JSON `error` key or (3.9) on stderr: partial results or not, it is a failure. */
function classifyReportedError(error: string, doc: Iperf3Document, input: Iperf3RunOutput, version: Iperf3Version | null): Failure {
  const raw = input.stdout;
  const said = `iperf3 said "${error}"`;
  if (/server is busy/i.test(error)) {
    return failure('server-busy', `the iperf3 server is busy with another test: ${said}`, raw);
  }
  // A control-message error before any stream connected happened while connecting.
  const connected = (doc.start?.connected ?? []).length > 0;
  if (CONNECT_ERROR.test(error)) {
    return failure('server-unreachable', `cannot reach the iperf3 server: ${said}`, raw);
  }
  // 3.17 to 3.19 cannot encrypt the credentials with current OpenSSL: the server then rejects them.
  if (/output buffer too small/.test(input.stderr) && version !== null) {
    return failure('iperf3-auth', `${authBroken317To319(version.text)}; ${said}`, raw);
  }
  if (/authoriz|authenticat|credential|\brsa\b/i.test(error)) {
    return failure(
      'iperf3-auth',
      `the iperf3 server rejected the credentials (check auth.username and the password; ${PADDING_HINT}): ${said}`,
      raw,
    );
  }
  // A 3.21 server that rejects the credentials just hangs up: before any stream connected, a 3.12
  // client says "control socket has closed unexpectedly", a 3.21 client "unable to read from
  // stream socket". (3.9's "Bad file descriptor" is a control connection that never opened.)
  if (input.authenticated === true && !connected && /control socket has closed|stream socket/.test(error)) {
    return failure(
      'iperf3-auth',
      `the iperf3 server hung up before the test started, as a 3.21 server does when it rejects the credentials (check auth.username and the password; ${PADDING_HINT}): ${said}`,
      raw,
    );
  }
  // 3.9 reports a busy server as a reset control connection: the server accepted, then hung up.
  if (!connected && /unable to send control message: connection reset by peer/i.test(error)) {
    return failure('server-busy', `the iperf3 server hung up at once, as a busy server does for iperf3 3.9 clients: ${said}`, raw);
  }
  if (CONTROL_ERROR.test(error) && !connected) {
    return failure('server-unreachable', `cannot reach the iperf3 server: ${said}`, raw);
  }
  if (!connected && /stream socket/.test(error)) {
    return failure('iperf3-error', `iperf3 failed before the test started: ${said}`, raw);
  }
  return failure('iperf3-error', `iperf3 failed: ${said}`, raw);
}

/** Since 3.17 iperf3 encrypts with OAEP; older peers use PKCS#1 v1.5 and do not understand it. */
const PADDING_HINT =
  'iperf3 3.17 and later pad differently from older versions: run client and server both older or both 3.17 or later, or start a 3.17+ server with --use-pkcs1-padding for older clients';

/** Zod issues as "end.sum_received.bits_per_second" style paths. */
function missingFields(error: z.ZodError, prefix: string): string {
  const names = error.issues.map((issue) => [prefix, ...issue.path.map(String)].filter((part) => part !== '').join('.'));
  return [...new Set(names)].join(', ');
}

function tcpMetrics(end: unknown, raw: string, firstOfTwo: boolean): MetricValue[] | Failure {
  const parsed = tcpEndSchema.safeParse(end);
  if (!parsed.success) {
    return failure('parse-error', `iperf3 JSON has no usable TCP end sums (${missingFields(parsed.error, 'end')})`, raw);
  }
  const { sum_sent: sent, sum_received: received } = parsed.data;
  const of = firstOfTwo ? ' (the first of two: --bidir before 3.11)' : '';
  const metrics: MetricValue[] = [
    { name: 'tcp_received_bps', value: received.bits_per_second, source: `end.sum_received.bits_per_second${of}` },
    { name: 'tcp_sent_bps', value: sent.bits_per_second, source: `end.sum_sent.bits_per_second${of}` },
    { name: 'tcp_bytes', value: received.bytes, source: `end.sum_received.bytes${of}` },
  ];
  if (sent.retransmits !== undefined) {
    metrics.push({ name: 'tcp_retransmits', value: sent.retransmits, source: `end.sum_sent.retransmits${of}` });
  }
  return metrics;
}

/** The receiver's rate before 3.11: datagrams that arrived x datagram size / the receiver's time. */
const DERIVED_UDP_BPS = '(end.sum.packets - end.sum.lost_packets) x start.test_start.blksize x 8 / end.sum.seconds';

function udpMetrics(doc: Iperf3Document, raw: string, warnings: string[]): MetricValue[] | Failure {
  const parsed = udpEndSchema.safeParse(doc.end);
  if (!parsed.success) {
    return failure('parse-error', `iperf3 JSON has no usable UDP end sums (${missingFields(parsed.error, 'end')})`, raw);
  }
  const { sum_received: received, sum } = parsed.data;
  const picked = received ?? sum;
  if (picked === undefined) return failure('parse-error', 'iperf3 JSON has neither end.sum_received nor end.sum', raw);
  const from = received === undefined ? 'end.sum' : 'end.sum_received';
  const metrics: MetricValue[] = [];
  if (received !== undefined) {
    metrics.push({ name: 'udp_bps', value: received.bits_per_second, source: 'end.sum_received.bits_per_second' });
  } else {
    // Before 3.11 end.sum.bits_per_second is the sender's rate, not what arrived.
    const blksize = doc.start?.test_start?.blksize;
    if (blksize === undefined) {
      warnings.push('udp_bps left out: iperf3 older than 3.11 gives only the sender\'s UDP rate, and start.test_start.blksize, needed to derive the received rate, is missing');
    } else {
      const value = picked.seconds > 0 ? ((picked.packets - picked.lost_packets) * blksize * 8) / picked.seconds : 0;
      metrics.push({ name: 'udp_bps', value, source: DERIVED_UDP_BPS });
    }
  }
  metrics.push(
    { name: 'udp_jitter_ms', value: picked.jitter_ms, source: `${from}.jitter_ms` },
    { name: 'udp_lost_packets', value: picked.lost_packets, source: `${from}.lost_packets` },
    { name: 'udp_packets', value: picked.packets, source: `${from}.packets` },
    { name: 'udp_lost_percent', value: picked.lost_percent, source: `${from}.lost_percent` },
  );
  return metrics;
}

/** The test iperf3 says it ran must be the one we asked for, or the metrics would be mislabelled. */
function checkTestMatches(doc: Iperf3Document, input: Iperf3RunOutput, raw: string): Failure | null {
  const testStart = doc.start?.test_start;
  const protocol = testStart?.protocol?.toLowerCase();
  if (protocol !== undefined && protocol !== input.protocol) {
    return failure('parse-error', `asked iperf3 for a ${input.protocol.toUpperCase()} test but it ran ${protocol.toUpperCase()}`, raw);
  }
  const reverse = testStart?.reverse;
  if (reverse !== undefined && (reverse !== 0) !== (input.direction === 'download')) {
    return failure('parse-error', `asked iperf3 for ${input.direction === 'upload' ? 'an upload' : 'a download'} test but its reverse (-R) flag is ${reverse}`, raw);
  }
  return null;
}

/** A JSON value where, of repeated keys, the FIRST one counts (JSON.parse keeps the last). */
function valueKeepingFirstKeys(node: JsonNode): unknown {
  // parseTree gives every object, array and property its children (empty ones too).
  const children = node.children as JsonNode[];
  if (node.type === 'array') return children.map(valueKeepingFirstKeys);
  if (node.type !== 'object') return node.value;
  const object: Record<string, unknown> = {};
  for (const property of children) {
    const [key, value] = property.children as [JsonNode, JsonNode];
    if (!Object.hasOwn(object, key.value as string)) object[key.value as string] = valueKeepingFirstKeys(value);
  }
  return object;
}

/**
 * iperf3 before 3.11 writes both directions of a --bidir test under the same keys
 * (`sum_sent`, `sum_received` twice in `end`, `sum` twice in each interval): the forward
 * direction first, then the reverse. JSON.parse keeps the last, i.e. the reverse direction;
 * we keep the first, the forward direction, as 3.11+ does (which names the reverse `*_bidir_reverse`).
 */
function parseKeepingForwardDirection(raw: string): { json: unknown; duplicates: boolean } {
  const json: unknown = JSON.parse(raw);
  // 3.21 also repeats `error` ("SERVER ERROR - ..." first, then a shorter one): the first says more.
  const repeated = (key: string) => (raw.match(new RegExp(`"${key}"\\s*:`, 'g')) ?? []).length > 1;
  if (!repeated('sum_sent') && !repeated('error')) return { json, duplicates: false };
  const errors: ParseError[] = [];
  const tree = parseTree(raw, errors, { allowTrailingComma: false, disallowComments: true });
  // JSON.parse accepted the text, so the tree is complete.
  return { json: valueKeepingFirstKeys(tree as JsonNode), duplicates: repeated('sum_sent') };
}

export function parseIperf3Result(input: Iperf3RunOutput): TestOutcome {
  const raw = input.stdout;
  if (!raw.trimStart().startsWith('{')) return classifyPlainText(input);

  let json: unknown;
  let duplicates: boolean;
  try {
    ({ json, duplicates } = parseKeepingForwardDirection(raw));
  } catch (error) {
    const reason = (error as Error).message;
    return failure('parse-error', `iperf3 output is not valid JSON (${describeExit(input.exitCode)}; ${reason}): ${quoteStart(raw)}`, raw);
  }
  const parsed = documentSchema.safeParse(json);
  if (!parsed.success) {
    return failure('parse-error', `iperf3 JSON has an unexpected shape (${missingFields(parsed.error, '')})`, raw);
  }
  const outcome = outcomeOfDocument(parsed.data, input, duplicates);
  // A failed test still tells which iperf3 the device runs: the operator needs it most then.
  const iperfVersion = parsed.data.start?.version;
  return outcome.ok || iperfVersion === undefined ? outcome : { ...outcome, iperfVersion };
}

function outcomeOfDocument(doc: Iperf3Document, input: Iperf3RunOutput, duplicates: boolean): TestOutcome {
  const raw = input.stdout;
  const version = parseIperf3Version(doc.start?.version);
  const stderrError = STDERR_ERROR.exec(input.stderr)?.[1].trim();
  const error = doc.error ?? stderrError;
  if (error !== undefined) return classifyReportedError(error, doc, input, version);

  const mismatch = checkTestMatches(doc, input, raw);
  if (mismatch) return mismatch;

  const warnings = versionWarnings(version);
  const metrics = input.protocol === 'tcp' ? tcpMetrics(doc.end, raw, duplicates) : udpMetrics(doc, raw, warnings);
  if (!Array.isArray(metrics)) return metrics;

  return {
    ok: true,
    metrics,
    intervals: (doc.intervals ?? []).map(({ sum }) => ({
      start: sum.start,
      end: sum.end,
      bitsPerSecond: sum.bits_per_second,
      omitted: sum.omitted ?? false,
    })),
    raw,
    iperfVersion: doc.start?.version ?? null,
    warnings,
  };
}
