import { describe, expect, it } from 'vitest';
import { clientOptionsSchema, type ClientOptions } from '../../contract/settings.js';
import { ClassifiedError, type Iperf3TestSpec } from '../model.js';
import { buildIperf3Argv, computeTestDeadlineMs, parseIperf3Size } from './command.js';

function options(overrides: Record<string, unknown> = {}): ClientOptions {
  return clientOptionsSchema.parse(overrides);
}

function spec(overrides: Partial<Iperf3TestSpec> = {}, opts: Record<string, unknown> = {}): Iperf3TestSpec {
  return {
    server: { host: '192.0.2.1', port: 5201 },
    protocol: 'tcp',
    direction: 'upload',
    options: options(opts),
    ...overrides,
  };
}

const AUTH = { username: 'mario', passwordFile: '/run/secrets/iperf3-password', rsaPublicKeyFile: '/etc/iperf3/public.pem' };

describe('buildIperf3Argv', () => {
  it('builds a timed TCP upload from the default options', () => {
    expect(buildIperf3Argv(spec())).toEqual([
      'iperf3', '-c', '192.0.2.1', '-p', '5201', '-J', '--connect-timeout', '1000',
      '-t', '10', '-P', '1', '-l', '128K',
    ]);
  });

  it('adds -R for a download and keeps IPv6 hosts as they are', () => {
    const argv = buildIperf3Argv(spec({ direction: 'download', server: { host: '2001:db8::1', port: 5202 } }));
    expect(argv.slice(0, 5)).toEqual(['iperf3', '-c', '2001:db8::1', '-p', '5202']);
    expect(argv).toContain('-R');
    expect(buildIperf3Argv(spec())).not.toContain('-R');
  });

  it('always passes the UDP bitrate and passes -l only when a UDP length is set', () => {
    expect(buildIperf3Argv(spec({ protocol: 'udp' })).slice(10)).toEqual(['-P', '1', '-u', '-b', '30M']);
    const argv = buildIperf3Argv(spec({ protocol: 'udp' }, { udp: { bitrate: '5M', length: '1400' } }));
    expect(argv.slice(10)).toEqual(['-P', '1', '-u', '-b', '5M', '-l', '1400']);
  });

  it('passes a TCP bitrate unless it is zero, and -l only when a TCP length is set', () => {
    expect(buildIperf3Argv(spec({}, { tcp: { bitrate: '100M', length: null } })).slice(10)).toEqual(['-P', '1', '-b', '100M']);
    expect(buildIperf3Argv(spec({}, { tcp: { bitrate: '0.0M', length: null } })).slice(10)).toEqual(['-P', '1']);
  });

  it('sends -n instead of -t for a byte count, and -k over both for a block count', () => {
    const bytes = buildIperf3Argv(spec({}, { bytes: '100M', time: 30 }));
    expect(bytes.slice(8, 10)).toEqual(['-n', '100M']);
    expect(bytes).not.toContain('-t');
    const blocks = buildIperf3Argv(spec({}, { bytes: '100M', blockcount: '1000' }));
    expect(blocks.slice(8, 10)).toEqual(['-k', '1000']);
    expect(blocks).not.toContain('-n');
    expect(blocks).not.toContain('-t');
  });

  it('passes parallel streams, a non-zero window and a positive omit', () => {
    const argv = buildIperf3Argv(spec({}, { parallel: 4, window: '256K', omit: 2, tcp: { bitrate: '0', length: null } }));
    expect(argv.slice(10)).toEqual(['-P', '4', '-w', '256K', '-O', '2']);
    const unset = buildIperf3Argv(spec({}, { window: '0', omit: 0, tcp: { bitrate: '0', length: null } }));
    expect(unset.slice(10)).toEqual(['-P', '1']);
  });

  it('omits seconds from TCP tests only: with UDP, omit inflates the measured loss', () => {
    const udp = buildIperf3Argv(spec({ protocol: 'udp' }, { omit: 2 }));
    expect(udp).not.toContain('-O');
    expect(udp).toContain('-u');
  });

  it('adds the auth username and the copied key path, never the password', () => {
    const argv = buildIperf3Argv(spec({ remoteRsaPublicKeyPath: '/tmp/iperf3-key.abc' }, { auth: AUTH, tcp: { bitrate: '0', length: null } }));
    expect(argv.slice(10)).toEqual(['-P', '1', '--username', 'mario', '--rsa-public-key-path', '/tmp/iperf3-key.abc']);
    expect(argv.join(' ')).not.toMatch(/password|secrets/i);
  });

  it('adds --use-pkcs1-padding when the auth settings ask for it', () => {
    const argv = buildIperf3Argv(spec({ remoteRsaPublicKeyPath: '/tmp/k' }, { auth: { ...AUTH, pkcs1Padding: true } }));
    expect(argv.at(-1)).toBe('--use-pkcs1-padding');
  });

  it('refuses auth without a key on the device, naming the missing field', () => {
    const build = () => buildIperf3Argv(spec({}, { auth: AUTH }));
    expect(build).toThrow(ClassifiedError);
    expect(build).toThrow(/remoteRsaPublicKeyPath/);
    try {
      build();
    } catch (error) {
      expect((error as ClassifiedError).errorClass).toBe('internal');
    }
  });
});

describe('parseIperf3Size', () => {
  it('reads sizes with powers of 1024, as iperf3 does', () => {
    expect(parseIperf3Size('10')).toBe(10);
    expect(parseIperf3Size('128K')).toBe(131072);
    expect(parseIperf3Size('1.5m')).toBe(1572864);
    expect(parseIperf3Size(' 2G ')).toBe(2 * 1024 ** 3);
    expect(parseIperf3Size('1T')).toBe(1024 ** 4);
  });

  it('rejects text that is not an iperf3 size and says what is expected', () => {
    expect(() => parseIperf3Size('10 MB')).toThrow('"10 MB" is not an iperf3 size: use a number with an optional K, M, G or T suffix, e.g. 128K');
  });
});

describe('computeTestDeadlineMs', () => {
  it('gives a timed test its time, omit and connect timeout plus 20% and 10 s', () => {
    expect(computeTestDeadlineMs(options())).toBe(Math.ceil((10_000 + 1000) * 1.2 + 10_000));
    expect(computeTestDeadlineMs(options({ time: 30, omit: 3, connectTimeout: 5000 }))).toBe(
      Math.ceil((33_000 + 5000) * 1.2 + 10_000),
    );
  });

  it('budgets a byte-sized test for a 1 Mbit/s link', () => {
    const seconds = (100 * 1024 ** 2 * 8) / 1e6;
    expect(computeTestDeadlineMs(options({ bytes: '100M' }))).toBe(Math.ceil((seconds * 1000 + 1000) * 1.2 + 10_000));
  });

  it('counts blocks as the larger of the TCP and UDP lengths, 128 KiB when unset', () => {
    const deadline = (blockBytes: number) => Math.ceil(((100 * blockBytes * 8) / 1e6) * 1000 * 1.2 + 1000 * 1.2 + 10_000);
    expect(computeTestDeadlineMs(options({ blockcount: '100' }))).toBe(deadline(131072));
    expect(computeTestDeadlineMs(options({ blockcount: '100', tcp: { bitrate: '0', length: '8K' } }))).toBe(deadline(131072));
    expect(
      computeTestDeadlineMs(options({ blockcount: '100', tcp: { bitrate: '0', length: null }, udp: { length: '1M' } })),
    ).toBe(deadline(1024 ** 2));
  });

  it('caps byte- and block-sized tests at 1800 s of transfer', () => {
    const capped = Math.ceil((1_800_000 + 1000) * 1.2 + 10_000);
    expect(computeTestDeadlineMs(options({ bytes: '10G' }))).toBe(capped);
    expect(computeTestDeadlineMs(options({ blockcount: '1M' }))).toBe(capped);
  });
});
