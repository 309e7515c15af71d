/**
 * Builds the iperf3 client command a device runs, as an argument vector (the SSH session quotes
 * each element), and the hard deadline the runner gives it.
 */
import type { ClientOptions } from '../../contract/settings.js';
import { ClassifiedError, type Iperf3TestSpec } from '../model.js';

/** iperf3's default TCP block length (`-l`), used when estimating `-k` transfers. */
const DEFAULT_BLOCK_BYTES = 128 * 1024;

/**
 * The slowest link we budget for when a test is sized in bytes or blocks rather than seconds:
 * 1 Mbit/s. A slower transfer hits the deadline and is recorded as a timeout.
 */
const SLOWEST_EXPECTED_BPS = 1_000_000;

/** A byte- or block-sized test never gets more than iperf3's longest timed test (1800 s). */
const MAX_TRANSFER_SECONDS = 1800;

/** Deadline margin: connection setup, the result exchange at the end, SSH and a slow device. */
const DEADLINE_FIXED_MARGIN_MS = 10_000;
const DEADLINE_PROPORTIONAL_MARGIN = 0.2;

const SIZE_SUFFIX_BYTES: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/**
 * Bytes in an iperf3 size such as `128K` or `1.5G`. iperf3 reads size suffixes (`-n`, `-l`, `-w`,
 * `-k`) as powers of 1024, unlike rates (`-b`), which are powers of 1000.
 */
export function parseIperf3Size(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([KMGTkmgt]?)$/.exec(text.trim());
  if (!match) {
    throw new Error(`"${text}" is not an iperf3 size: use a number with an optional K, M, G or T suffix, e.g. 128K`);
  }
  return Math.round(Number(match[1]) * (SIZE_SUFFIX_BYTES[match[2].toUpperCase()] ?? 1));
}

/** True when an iperf3 quantity means zero, i.e. "unset"/"unlimited" (`0`, `0K`, `0.0M`). */
function isZeroQuantity(text: string): boolean {
  return Number.parseFloat(text) === 0;
}

/**
 * The iperf3 client argv for one test, e.g.
 * `iperf3 -c 192.0.2.1 -p 5201 -J --connect-timeout 1000 -t 10 -P 1 -R`.
 * The auth password is never part of it: it travels as `IPERF3_PASSWORD` on stdin.
 */
export function buildIperf3Argv(spec: Iperf3TestSpec): string[] {
  const { options } = spec;
  // IPv6 hosts go as-is: iperf3's -c takes them without brackets.
  const argv = ['iperf3', '-c', spec.server.host, '-p', String(spec.server.port), '-J'];
  argv.push('--connect-timeout', String(options.connectTimeout));

  // iperf3 lets -k override -n and -n override -t; pass only the one that wins.
  if (options.blockcount !== null) argv.push('-k', options.blockcount);
  else if (options.bytes !== null) argv.push('-n', options.bytes);
  else argv.push('-t', String(options.time));

  argv.push('-P', String(options.parallel));
  if (options.window !== null && !isZeroQuantity(options.window)) argv.push('-w', options.window);
  // Omit is for TCP slow start. With UDP, iperf3 (3.12 measured) counts the datagrams in flight
  // when the omitted seconds end as lost: about +1 point at 5 % real loss (docs/benchmarks.md).
  if (options.omit > 0 && spec.protocol === 'tcp') argv.push('-O', String(options.omit));
  if (spec.direction === 'download') argv.push('-R');

  if (spec.protocol === 'udp') {
    // Always pass -b for UDP: iperf3's own default is 1 Mbit/s, not the configured rate.
    argv.push('-u', '-b', options.udp.bitrate);
    if (options.udp.length !== null) argv.push('-l', options.udp.length);
  } else {
    if (!isZeroQuantity(options.tcp.bitrate)) argv.push('-b', options.tcp.bitrate);
    if (options.tcp.length !== null) argv.push('-l', options.tcp.length);
  }

  if (options.auth !== null) {
    if (spec.remoteRsaPublicKeyPath === undefined) {
      throw new ClassifiedError(
        'internal',
        'clientOptions.auth is set but no RSA public key was copied to the device: pass remoteRsaPublicKeyPath',
      );
    }
    argv.push('--username', options.auth.username, '--rsa-public-key-path', spec.remoteRsaPublicKeyPath);
    if (options.auth.pkcs1Padding) argv.push('--use-pkcs1-padding');
  }
  return argv;
}

/** Seconds of data transfer a test is expected to need, before margins. */
function transferSeconds(options: ClientOptions): number {
  let bytes: number;
  if (options.blockcount !== null) {
    // A block is one -l buffer; take the larger of the TCP and UDP lengths so that one
    // deadline covers both protocols.
    const tcpBlock = options.tcp.length === null ? DEFAULT_BLOCK_BYTES : parseIperf3Size(options.tcp.length);
    const udpBlock = options.udp.length === null ? DEFAULT_BLOCK_BYTES : parseIperf3Size(options.udp.length);
    bytes = parseIperf3Size(options.blockcount) * Math.max(tcpBlock, udpBlock);
  } else if (options.bytes !== null) {
    bytes = parseIperf3Size(options.bytes);
  } else {
    return options.time;
  }
  return Math.min((bytes * 8) / SLOWEST_EXPECTED_BPS, MAX_TRANSFER_SECONDS);
}

/**
 * Hard deadline for one iperf3 test, in milliseconds: after it the runner kills the test, so
 * a hung iperf3 never blocks its server (OpenWISP #477).
 *
 * Transfer time is `time` for timed tests. Tests sized with `-n`/`-k` have no known duration, so
 * we budget for a 1 Mbit/s link (bytes x 8 / 1e6 s; blocks count as the larger of the TCP and
 * UDP `-l`, 128 KiB when unset), capped at 1800 s. To that we add `omit` (iperf3 runs it before
 * the measured time) and the connect timeout, then 20% for slow devices and 10 s for the
 * result exchange and the SSH round trip.
 *   deadline = (transfer + omit + connectTimeout) x 1.2 + 10 s
 */
export function computeTestDeadlineMs(options: ClientOptions): number {
  const expectedMs = (transferSeconds(options) + options.omit) * 1000 + options.connectTimeout;
  return Math.ceil(expectedMs * (1 + DEADLINE_PROPORTIONAL_MARGIN) + DEADLINE_FIXED_MARGIN_MS);
}
