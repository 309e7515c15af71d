/**
 * The parser over real runs of iperf3 3.7 to 3.21, glibc and musl (fixtures/versions/, captured
 * by fixtures/versions/capture.sh in the lab): every cell of version x case must parse to the
 * right error class or to the right numbers.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ErrorClass } from '../../contract/api.js';
import type { TestOutcome } from '../model.js';
import { parseIperf3Result } from './parse.js';
import { isAtLeast, parseIperf3Version, versionWarnings } from './versions.js';

const DIR = new URL('./fixtures/versions/', import.meta.url);

export const VARIANTS = [
  '3.7-glibc',
  '3.9-glibc',
  '3.12-glibc',
  '3.17.1-glibc',
  '3.21-glibc',
  '3.7-musl-nossl',
  '3.17.1-musl-nossl',
  '3.21-musl-nossl',
] as const;
type Variant = (typeof VARIANTS)[number];

export const CASES = [
  'tcp-upload',
  'tcp-download',
  'tcp-parallel-4',
  'tcp-bidir',
  'udp-upload-loss',
  'udp-download-loss',
  'tcp-upload-auth',
  'tcp-upload-auth-pkcs1',
  'error-auth-failed',
  'error-auth-bad-public-key',
  'error-server-busy',
  'error-connection-refused',
  'error-host-unreachable',
  'error-unknown-option',
] as const;
type Case = (typeof CASES)[number];

function file(folder: string, name: string): string {
  const url = new URL(`${folder}/${name}`, DIR);
  return existsSync(url) ? readFileSync(url, 'utf8') : '';
}

export function capturedRun(folder: string, name: string) {
  const exit = new RegExp(`^${name.replace(/\./g, '\\.')} exit=(\\d+)$`, 'm').exec(file(folder, 'exit-codes.txt'));
  if (!exit) throw new Error(`no exit code recorded for ${folder}/${name}`);
  return {
    stdout: file(folder, `${name}.json`) || file(folder, `${name}.stdout.txt`),
    stderr: file(folder, `${name}.stderr.txt`),
    exitCode: Number(exit[1]),
  };
}

function protocolOf(name: string): 'tcp' | 'udp' {
  return name.startsWith('udp') ? 'udp' : 'tcp';
}
function directionOf(name: string): 'upload' | 'download' {
  return name.includes('download') ? 'download' : 'upload';
}

export function parseCaptured(folder: string, name: string): TestOutcome {
  // The collector tells the parser whether the command carried --username.
  return parseIperf3Result({ ...capturedRun(folder, name), protocol: protocolOf(name), direction: directionOf(name), authenticated: name.includes('auth') });
}

type Expected = 'ok' | [ErrorClass, RegExp];

const SUCCESS: Case[] = ['tcp-upload', 'tcp-download', 'tcp-parallel-4', 'tcp-bidir', 'udp-upload-loss', 'udp-download-loss'];
const NO_SSL: Expected = ['iperf3-auth', /^the device's iperf3 has no authentication support .*install iperf3-ssl/];
// 3.7 prefixes its JSON errors with "error - ".
const BUSY: Expected = ['server-busy', /^the iperf3 server is busy with another test: iperf3 said "(error - )?the server is busy running a test\. try again later"$/];
const BUSY_3_9: Expected = ['server-busy', /^the iperf3 server hung up at once, as a busy server does for iperf3 3\.9 clients: iperf3 said "unable to send control message: Connection reset by peer"$/];
const HUNG_UP: Expected = ['iperf3-auth', /^the iperf3 server hung up before the test started, as a 3\.21 server does when it rejects the credentials .*3\.17 and later pad differently/];
const UNKNOWN: Expected = ['parse-error', /^iperf3 printed no JSON \(exit code 1\): iperf3: unrecognized option(: |\s*')(--)?bogus-option'?$/];
const REJECTED: Expected = ['iperf3-auth', /^the iperf3 server rejected the credentials .*iperf3 said "(error - )?test authorization failed"$/];
const BAD_KEY: Expected = ['iperf3-auth', /^iperf3 could not use the auth settings \(username, password, RSA public key\): /];
const OLD_PKCS1: Expected = ['iperf3-auth', /older than 3\.17 .*turn off auth\.pkcs1Padding/];
const BROKEN_3_17: Expected = ['iperf3-auth', /^iperf 3\.17\.1: authentication fails with current OpenSSL \("output buffer too small", fixed in iperf3 3\.20\).*iperf3 said "test authorization failed"$/];

function expected(variant: Variant, name: Case): Expected {
  const version = variant.split('-')[0];
  const musl = variant.includes('musl');
  if (SUCCESS.includes(name)) return 'ok';
  if (name === 'error-server-busy') return version === '3.9' ? BUSY_3_9 : BUSY;
  if (name === 'error-unknown-option') return UNKNOWN;
  if (name === 'error-connection-refused' || name === 'error-host-unreachable') {
    // 3.9 says "unable to send control message: Bad file descriptor" for both, on stderr only.
    // musl's strerror says "Host is unreachable" where glibc's says "No route to host".
    const unreachable = musl ? /Host is unreachable/ : /No route to host/;
    const said = version === '3.9' ? /unable to send control message: Bad file descriptor/ : name === 'error-connection-refused' ? /Connection refused/ : unreachable;
    return ['server-unreachable', new RegExp(`^cannot reach the iperf3 server: iperf3 said ".*${said.source}"$`)];
  }
  // Authentication: musl builds have no OpenSSL, so --username is an unknown option.
  if (musl) return NO_SSL;
  if (version === '3.17.1') return name === 'error-auth-bad-public-key' ? BAD_KEY : BROKEN_3_17;
  switch (name) {
    case 'tcp-upload-auth':
      return 'ok';
    case 'tcp-upload-auth-pkcs1':
      return version === '3.21' ? ['iperf3-auth', /3\.20 or later, where --use-pkcs1-padding is a server option only: turn off auth\.pkcs1Padding/] : OLD_PKCS1;
    case 'error-auth-bad-public-key':
      return BAD_KEY;
    default: // error-auth-failed
      // A 3.21 server rejects by hanging up: "SERVER ERROR - unable to read from stream socket".
      return version === '3.21' ? HUNG_UP : REJECTED;
  }
}

describe('the fixture matrix', () => {
  it('has every variant and every case, each with its provenance README', () => {
    const folders = readdirSync(DIR, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    expect(folders.sort()).toEqual([...VARIANTS, 'cross', 'shells'].sort());
    for (const variant of VARIANTS) {
      const readme = file(variant, 'README.md');
      expect(readme).toMatch(/Captured by .* on \d{4}-\d{2}-\d{2} \(UTC\)/);
      expect(readme).toMatch(variant.includes('musl') ? /musl/ : /GLIBC/);
      for (const name of CASES) {
        expect(readme).toContain(`| \`${name}\` |`);
        expect(capturedRun(variant, name).stdout + capturedRun(variant, name).stderr).not.toBe('');
      }
    }
  });

  it('every client says the version its folder is named after', () => {
    for (const variant of VARIANTS) {
      const outcome = parseCaptured(variant, 'tcp-upload');
      expect(outcome.ok && outcome.iperfVersion).toBe(`iperf ${variant.split('-')[0]}`);
    }
  });
});

describe.each(VARIANTS)('iperf3 %s', (variant) => {
  it.each(CASES)('%s', (name) => {
    const outcome = parseCaptured(variant, name);
    const want = expected(variant, name);
    if (want === 'ok') {
      if (!outcome.ok) throw new Error(`expected success, got ${outcome.errorClass}: ${outcome.message}`);
      return;
    }
    if (outcome.ok) throw new Error(`expected ${want[0]}, got success`);
    expect(outcome.errorClass).toBe(want[0]);
    expect(outcome.message).toMatch(want[1]);
  });
});

function metrics(outcome: TestOutcome): Record<string, number> {
  if (!outcome.ok) throw new Error(`expected success, got ${outcome.errorClass}: ${outcome.message}`);
  return Object.fromEntries(outcome.metrics.map((m) => [m.name, m.value]));
}
function sources(outcome: TestOutcome): Record<string, string | undefined> {
  if (!outcome.ok) throw new Error('expected success');
  return Object.fromEntries(outcome.metrics.map((m) => [m.name, m.source]));
}

// The client's link is shaped to 50 Mbit/s both ways (tc tbf): the ground truth for TCP.
const SHAPED_BPS = 50e6;

describe.each(VARIANTS)('numbers of iperf3 %s', (variant) => {
  const version = parseIperf3Version(`iperf ${variant.split('-')[0]}`)!;
  const hasReceivedUdp = isAtLeast(version, 3, 11);

  it.each(['tcp-upload', 'tcp-download', 'tcp-parallel-4'])('%s: TCP rates from end.sum_received/sum_sent, within the 50 Mbit/s shaping', (name) => {
    const doc = JSON.parse(capturedRun(variant, name).stdout);
    const outcome = parseCaptured(variant, name);
    expect(metrics(outcome)).toMatchObject({
      tcp_received_bps: doc.end.sum_received.bits_per_second,
      tcp_sent_bps: doc.end.sum_sent.bits_per_second,
      tcp_bytes: doc.end.sum_received.bytes,
    });
    expect(metrics(outcome).tcp_received_bps).toBeGreaterThan(0.7 * SHAPED_BPS);
    expect(metrics(outcome).tcp_received_bps).toBeLessThan(1.02 * SHAPED_BPS);
    expect(sources(outcome).tcp_received_bps).toBe('end.sum_received.bits_per_second');
  });

  it('tcp-bidir: the forward direction (client to server), the sums whose sender flag is true', () => {
    const raw = capturedRun(variant, 'tcp-bidir').stdout;
    // Every "sum_sent"/"sum_received" object in the text, in order (they hold no nested objects).
    const all = (key: string) => [...raw.matchAll(new RegExp(`"${key}":\\s*(\\{[^}]*\\})`, 'g'))].map((m) => JSON.parse(m[1]));
    const [sent, received] = [all('sum_sent'), all('sum_received')];
    const forwardSent = sent.find((s) => s.sender === true);
    const forwardReceived = received.find((s) => s.sender === true);
    expect(forwardSent).toBeDefined();
    if (!hasReceivedUdp) {
      // Before 3.11 the keys repeat, and JSON.parse keeps the reverse direction (the last one).
      expect(sent).toHaveLength(2);
      expect(JSON.parse(raw).end.sum_sent.sender).toBe(false);
    }
    const outcome = parseCaptured(variant, 'tcp-bidir');
    expect(metrics(outcome).tcp_sent_bps).toBe(forwardSent.bits_per_second);
    expect(metrics(outcome).tcp_received_bps).toBe(forwardReceived.bits_per_second);
    expect(metrics(outcome).tcp_bytes).toBe(forwardReceived.bytes);
    expect(sources(outcome).tcp_sent_bps).toMatch(hasReceivedUdp ? /^end\.sum_sent\.bits_per_second$/ : /the first of two/);
    // Per-second sums: before 3.11 each interval has `sum` twice too; the forward one has sender true.
    const intervalSums = all('sum').filter((sum) => sum.sender === true);
    expect(intervalSums).toHaveLength(JSON.parse(raw).intervals.length);
    expect(outcome.ok && outcome.intervals.map((i) => i.bitsPerSecond)).toEqual(intervalSums.map((sum) => sum.bits_per_second));
  });

  it.each(['udp-upload-loss', 'udp-download-loss'])('%s: the received rate, and the injected 5 percent loss', (name) => {
    const doc = JSON.parse(capturedRun(variant, name).stdout);
    const outcome = parseCaptured(variant, name);
    const m = metrics(outcome);
    const sum = hasReceivedUdp ? doc.end.sum_received : doc.end.sum;
    expect(m).toMatchObject({
      udp_jitter_ms: sum.jitter_ms,
      udp_lost_packets: sum.lost_packets,
      udp_packets: sum.packets,
      udp_lost_percent: sum.lost_percent,
    });
    // nftables drops 5 % at random: 2.5-8 % of ~2,600 datagrams.
    expect(m.udp_lost_percent).toBeGreaterThan(2.5);
    expect(m.udp_lost_percent).toBeLessThan(8);
    // What arrived: 10 Mbit/s offered minus the loss, never the sender's 10 Mbit/s.
    const expectedBps = 10e6 * (1 - m.udp_lost_percent / 100);
    expect(Math.abs(m.udp_bps - expectedBps) / expectedBps).toBeLessThan(0.02);
    if (hasReceivedUdp) {
      expect(m.udp_bps).toBe(doc.end.sum_received.bits_per_second);
      expect(sources(outcome).udp_bps).toBe('end.sum_received.bits_per_second');
    } else {
      expect(doc.end.sum_received).toBeUndefined();
      expect(m.udp_bps).toBeLessThan(doc.end.sum.bits_per_second * 0.98);
      expect(sources(outcome).udp_bps).toMatch(/^\(end\.sum\.packets - end\.sum\.lost_packets\) x start\.test_start\.blksize/);
    }
  });
});

describe('the received UDP rate derived for versions before 3.11', () => {
  it.each(['3.12-glibc', '3.17.1-glibc', '3.21-glibc'])('matches what %s itself reports in end.sum_received to 0.1 %%', (variant) => {
    for (const name of ['udp-upload-loss', 'udp-download-loss']) {
      const doc = JSON.parse(capturedRun(variant, name).stdout);
      delete doc.end.sum_received; // as printed before 3.11
      delete doc.end.sum_sent;
      const outcome = parseIperf3Result({ stdout: JSON.stringify(doc), stderr: '', exitCode: 0, protocol: 'udp', direction: directionOf(name) });
      const reported = JSON.parse(capturedRun(variant, name).stdout).end.sum_received.bits_per_second;
      expect(Math.abs(metrics(outcome).udp_bps - reported) / reported).toBeLessThan(0.001);
    }
  });

  it('leaves udp_bps out, with a warning, when start.test_start.blksize is missing', () => {
    const doc = JSON.parse(capturedRun('3.9-glibc', 'udp-upload-loss').stdout);
    delete doc.start.test_start.blksize;
    const outcome = parseIperf3Result({ stdout: JSON.stringify(doc), stderr: '', exitCode: 0, protocol: 'udp', direction: 'upload' });
    expect(Object.keys(metrics(outcome))).not.toContain('udp_bps');
    expect(outcome.ok && outcome.warnings).toEqual([expect.stringMatching(/^udp_bps left out: .*blksize/)]);
  });

  it('gives 0 for a test that lasted no time', () => {
    const doc = JSON.parse(capturedRun('3.9-glibc', 'udp-upload-loss').stdout);
    doc.end.sum.seconds = 0;
    const outcome = parseIperf3Result({ stdout: JSON.stringify(doc), stderr: '', exitCode: 0, protocol: 'udp', direction: 'upload' });
    expect(metrics(outcome).udp_bps).toBe(0);
  });
});

describe('iperf3 3.9 errors: no `error` key in the JSON, the error on stderr', () => {
  it('keeps their classes when auth is on: a refused or busy server is not a rejection', () => {
    const withAuth = (name: string) => parseIperf3Result({ ...capturedRun('3.9-glibc', name), protocol: 'tcp', direction: 'upload', authenticated: true });
    expect(withAuth('error-connection-refused')).toMatchObject({ ok: false, errorClass: 'server-unreachable' });
    expect(withAuth('error-host-unreachable')).toMatchObject({ ok: false, errorClass: 'server-unreachable' });
    expect(withAuth('error-server-busy')).toMatchObject({ ok: false, errorClass: 'server-busy' });
  });

  it('the other wording of a busy 3.9 server (seen in an earlier capture of the same case) is server-busy too', () => {
    const run = { ...capturedRun('3.9-glibc', 'error-server-busy'), stderr: 'iperf3: error - the server is busy running a test. try again later\n' };
    const outcome = parseIperf3Result({ ...run, protocol: 'tcp', direction: 'upload' });
    expect(!outcome.ok && [outcome.errorClass, outcome.message]).toEqual([
      'server-busy',
      'the iperf3 server is busy with another test: iperf3 said "the server is busy running a test. try again later"',
    ]);
  });

  it.each(['error-server-busy', 'error-connection-refused', 'error-host-unreachable', 'error-auth-failed'])('%s', (name) => {
    const run = capturedRun('3.9-glibc', name);
    expect(JSON.parse(run.stdout).error).toBeUndefined();
    expect(run.stderr).toMatch(/^iperf3: error - /);
    expect(run.exitCode).toBe(1);
    // The failed test still records which iperf3 the device runs.
    expect(parseCaptured('3.9-glibc', name)).toMatchObject({ ok: false, iperfVersion: 'iperf 3.9' });
  });
});

describe('authentication across the 3.17 padding change (cross/)', () => {
  it('a 3.12 client against a 3.21 server started with --use-pkcs1-padding: works', () => {
    expect(parseCaptured('cross', 'auth-client-3.12-server-3.21-pkcs1').ok).toBe(true);
  });

  it('a 3.12 client against a 3.21 server without it: the server hangs up, read as a rejection with the padding hint', () => {
    const outcome = parseCaptured('cross', 'auth-client-3.12-server-3.21');
    if (outcome.ok) throw new Error('expected a failure');
    expect(outcome.errorClass).toBe('iperf3-auth');
    expect(outcome.message).toMatch(/hung up before the test started.*start a 3\.17\+ server with --use-pkcs1-padding for older clients\): iperf3 said "control socket has closed unexpectedly"$/);
    // Without auth, the same output cannot be a rejection.
    const unauthenticated = parseIperf3Result({ ...capturedRun('cross', 'auth-client-3.12-server-3.21'), protocol: 'tcp', direction: 'upload' });
    expect(!unauthenticated.ok && unauthenticated.errorClass).toBe('server-unreachable');
    const streamError = parseIperf3Result({ ...capturedRun('3.21-glibc', 'error-auth-failed'), protocol: 'tcp', direction: 'upload' });
    expect(!streamError.ok && streamError.message).toBe(
      'iperf3 failed before the test started: iperf3 said "SERVER ERROR - unable to read from stream socket: Bad file descriptor, errno: Bad file descriptor"',
    );
  });

  it('a 3.21 client against a 3.12 server: rejected, with the padding hint', () => {
    const outcome = parseCaptured('cross', 'auth-client-3.21-server-3.12');
    if (outcome.ok) throw new Error('expected a failure');
    expect(outcome.errorClass).toBe('iperf3-auth');
    expect(outcome.message).toMatch(/3\.17 and later pad differently/);
    // 3.21 repeats the `error` key; the first one, with "SERVER ERROR", is quoted.
    expect(outcome.message).toMatch(/iperf3 said "SERVER ERROR - test authorization failed, errno: Unknown error 142"$/);
  });

  it('a 3.21 client cannot pad with PKCS#1: --use-pkcs1-padding is a server option since 3.20', () => {
    const outcome = parseCaptured('cross', 'auth-client-3.21-server-3.12-pkcs1');
    if (outcome.ok) throw new Error('expected a failure');
    expect(outcome.errorClass).toBe('iperf3-auth');
    expect(outcome.message).toMatch(/turn off auth\.pkcs1Padding/);
  });
});

describe('a device without iperf3 (shells/)', () => {
  it.each(['error-iperf3-missing-dash', 'error-iperf3-missing-busybox'])('%s', (name) => {
    const outcome = parseCaptured('shells', name);
    if (outcome.ok) throw new Error('expected a failure');
    expect(outcome.errorClass).toBe('iperf3-missing');
    expect(outcome.message).toMatch(/^iperf3 is not installed on the device or not in PATH: .*iperf3: not found$/);
  });
});

describe('version warnings', () => {
  it('warns that 3.17 to 3.19 cannot authenticate with current OpenSSL, on successful tests too', () => {
    const outcome = parseCaptured('3.17.1-glibc', 'tcp-upload');
    expect(outcome.ok && outcome.warnings).toEqual([expect.stringMatching(/^iperf 3\.17\.1: authentication fails .*upgrade iperf3 on the device to 3\.20/)]);
    for (const variant of ['3.9-glibc', '3.12-glibc', '3.21-glibc']) {
      const other = parseCaptured(variant, 'tcp-upload');
      expect(other.ok && other.warnings).toEqual([]);
    }
  });

  it('warns about versions older than the oldest tested, and reads odd version strings', () => {
    expect(versionWarnings(parseIperf3Version('iperf 3.1.3'))).toEqual([expect.stringMatching(/^iperf 3\.1\.3 is older than 3\.7/)]);
    expect(versionWarnings(parseIperf3Version('iperf 3.19.1'))).toHaveLength(1);
    expect(versionWarnings(parseIperf3Version('iperf 3.20'))).toEqual([]);
    expect(versionWarnings(null)).toEqual([]);
    expect(parseIperf3Version('iperf 3.10.1+')).toEqual({ major: 3, minor: 10, patch: 1, text: 'iperf 3.10.1+' });
    expect(parseIperf3Version('iperf')).toBeNull();
    expect(parseIperf3Version(undefined)).toBeNull();
    expect(isAtLeast(parseIperf3Version('3.11')!, 3, 11)).toBe(true);
    expect(isAtLeast(parseIperf3Version('3.10.9')!, 3, 11)).toBe(false);
  });
});

// docs/iperf3-versions.md carries these tables between markers; they are made from the parser's
// output over the fixtures, so the docs say what the code does. To refresh after a re-capture:
//   UPDATE_IPERF3_DOCS=1 npx vitest run collector/iperf3/versions.test.ts
const DOCS = new URL('../../docs/iperf3-versions.md', import.meta.url);

function cell(outcome: TestOutcome): string {
  return outcome.ok ? 'ok' : `\`${outcome.errorClass}\``;
}
const mbit = (bps: number) => (bps / 1e6).toFixed(1);

export function matrixTables(): string {
  const lines: string[] = [];
  lines.push(`| case | ${VARIANTS.join(' | ')} |`, `|---|${VARIANTS.map(() => '---').join('|')}|`);
  for (const name of CASES) lines.push(`| ${name} | ${VARIANTS.map((v) => cell(parseCaptured(v, name))).join(' | ')} |`);
  lines.push('', '| metric | field | versions |', '|---|---|---|');
  const byField = new Map<string, { metric: string; variants: string[] }>();
  for (const variant of VARIANTS) {
    for (const name of ['tcp-upload', 'tcp-bidir', 'udp-upload-loss']) {
      const outcome = parseCaptured(variant, name);
      for (const m of outcome.ok ? outcome.metrics : []) {
        const key = `${m.name}\u0000${m.source}`;
        const entry = byField.get(key) ?? { metric: m.name, variants: [] };
        if (!entry.variants.includes(variant)) entry.variants.push(variant);
        byField.set(key, entry);
      }
    }
  }
  for (const [key, { metric, variants }] of byField) {
    lines.push(`| ${metric} | \`${key.split('\u0000')[1]}\` | ${variants.length === VARIANTS.length ? 'all' : variants.join(', ')} |`);
  }
  lines.push(
    '',
    '| client | TCP up | TCP down | TCP -P 4 | --bidir forward | UDP up: rate, loss | UDP down: rate, loss |',
    '|---|---|---|---|---|---|---|',
  );
  for (const variant of VARIANTS) {
    const m = (name: string) => metrics(parseCaptured(variant, name));
    const udp = (name: string) => `${mbit(m(name).udp_bps)}, ${m(name).udp_lost_percent.toFixed(1)} %`;
    const tcp = (name: string) => mbit(m(name).tcp_received_bps);
    lines.push(
      `| ${variant} | ${tcp('tcp-upload')} | ${tcp('tcp-download')} | ${tcp('tcp-parallel-4')} | ${tcp('tcp-bidir')} | ${udp('udp-upload-loss')} | ${udp('udp-download-loss')} |`,
    );
  }
  return lines.join('\n');
}

describe('docs/iperf3-versions.md', () => {
  it('shows the tables the parser makes of the fixtures', () => {
    const docs = readFileSync(DOCS, 'utf8');
    const [start, end] = ['<!-- matrix:start (made by collector/iperf3/versions.test.ts) -->\n', '\n<!-- matrix:end -->'];
    const tables = matrixTables();
    if (process.env.UPDATE_IPERF3_DOCS === '1') {
      writeFileSync(DOCS, docs.slice(0, docs.indexOf(start) + start.length) + tables + docs.slice(docs.indexOf(end)));
    }
    const current = readFileSync(DOCS, 'utf8');
    expect(current.slice(current.indexOf(start) + start.length, current.indexOf(end))).toBe(tables);
  });
});
