/**
 * What the parser must know about iperf3 versions: which fields a version prints, and what
 * known defects an operator should be told about. Measured on real builds of 3.7 to 3.21
 * (fixtures/versions/, docs/iperf3-versions.md).
 */

export interface Iperf3Version {
  major: number;
  minor: number;
  patch: number;
  /** as iperf3 printed it in `start.version`, e.g. `iperf 3.17.1` */
  text: string;
}

/** `iperf 3.17.1` or `iperf 3.9` (also with a suffix such as `3.10.1+`) to numbers; null if unreadable. */
export function parseIperf3Version(text: string | undefined): Iperf3Version | null {
  const match = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(text ?? '');
  if (!match || text === undefined) return null;
  return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3] ?? 0), text };
}

/** True when `version` is `major.minor[.patch]` or later. */
export function isAtLeast(version: Iperf3Version, major: number, minor: number, patch = 0): boolean {
  const a = [version.major, version.minor, version.patch];
  const b = [major, minor, patch];
  const i = a.findIndex((value, k) => value !== b[k]);
  return i === -1 || a[i] > b[i];
}

/** The oldest and newest versions captured and tested (fixtures/versions/). */
export const OLDEST_TESTED = '3.7';
export const NEWEST_TESTED = '3.21';

/**
 * Warnings about the device's iperf3 version, for successful tests too: they are true of every
 * run of that version, whatever this run did. Failures carry the relevant one in their message.
 */
export function versionWarnings(version: Iperf3Version | null): string[] {
  if (version === null) return [];
  const warnings: string[] = [];
  if (!isAtLeast(version, 3, 7)) {
    warnings.push(
      `${version.text} is older than ${OLDEST_TESTED}, the oldest iperf3 tested: results may be misread (upgrade iperf3 on the device)`,
    );
  }
  if (isAtLeast(version, 3, 17) && !isAtLeast(version, 3, 20)) {
    warnings.push(authBroken317To319(version.text));
  }
  return warnings;
}

/**
 * 3.17 to 3.19 give EVP_PKEY_encrypt no output buffer length; OpenSSL 3.0.19 (Debian 12) and
 * 3.5.3+ refuse ("output buffer too small"), so authentication always fails. Fixed in 3.20
 * (esnet/iperf#1956). Measured with 3.17.1 against OpenSSL 3.0.19.
 */
export function authBroken317To319(versionText: string): string {
  return `${versionText}: authentication fails with current OpenSSL ("output buffer too small", fixed in iperf3 3.20): upgrade iperf3 on the device to 3.20 or later before turning on auth`;
}
