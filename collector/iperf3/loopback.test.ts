/**
 * The command builder and the parser against the real iperf3 on loopback: argv spawned directly
 * (no shell), output parsed as the dispatcher will.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientOptionsSchema } from '../../contract/settings.js';
import type { Iperf3TestSpec, TestOutcome } from '../model.js';
import { buildIperf3Argv, computeTestDeadlineMs } from './command.js';
import { parseIperf3Result } from './parse.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts `iperf3 -s` on 127.0.0.1 and resolves once it listens. */
async function startServer(port: number, extraArgs: string[] = []): Promise<ChildProcess> {
  // --forceflush: stdout is a pipe, and "Server listening" would otherwise sit in a buffer.
  const args = ['-s', '-B', '127.0.0.1', '-p', String(port), '--forceflush', ...extraArgs];
  const server = spawn('iperf3', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`iperf3 server did not start in 10 s: ${output}`)), 10_000);
      server.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Server listening')) {
          clearTimeout(timer);
          resolve();
        }
      });
      server.on('exit', (code) => reject(new Error(`iperf3 server exited (${code}): ${output}`)));
    });
  } catch (error) {
    server.kill();
    throw error;
  }
  return server;
}

async function runClient(spec: Iperf3TestSpec, password?: string): Promise<TestOutcome> {
  const [command, ...args] = buildIperf3Argv(spec);
  const env = password === undefined ? process.env : { ...process.env, IPERF3_PASSWORD: password };
  const client = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  client.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  client.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const deadline = setTimeout(() => client.kill('SIGKILL'), computeTestDeadlineMs(spec.options));
  const exitCode = await new Promise<number | null>((resolve) => client.on('close', resolve));
  clearTimeout(deadline);
  return parseIperf3Result({ stdout, stderr, exitCode, protocol: spec.protocol, direction: spec.direction });
}

function metric(outcome: TestOutcome, name: string): number {
  if (!outcome.ok) throw new Error(`iperf3 failed: ${outcome.errorClass}: ${outcome.message}`);
  const found = outcome.metrics.find((m) => m.name === name);
  if (!found) throw new Error(`no ${name} in ${JSON.stringify(outcome.metrics)}`);
  return found.value;
}

describe('real iperf3 on loopback', () => {
  const servers: ChildProcess[] = [];
  let port: number;
  let authPort: number;
  let keyDir: string;
  let publicKeyPath: string;

  beforeAll(async () => {
    port = await freePort();
    servers.push(await startServer(port));

    // An authenticating server: PKCS#1 private key, users file of user,sha256("{user}password").
    keyDir = mkdtempSync(join(tmpdir(), 'iperf3-auth-'));
    const { publicKey, privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    });
    publicKeyPath = join(keyDir, 'public.pem');
    writeFileSync(publicKeyPath, publicKey);
    writeFileSync(join(keyDir, 'private.pem'), privateKey);
    const hash = createHash('sha256').update('{mario}rossi').digest('hex');
    writeFileSync(join(keyDir, 'users.csv'), `mario,${hash}\n`);
    authPort = await freePort();
    servers.push(
      await startServer(authPort, [
        '--rsa-private-key-path', join(keyDir, 'private.pem'),
        '--authorized-users-path', join(keyDir, 'users.csv'),
      ]),
    );
  });

  afterAll(() => {
    for (const server of servers) server.kill();
    rmSync(keyDir, { recursive: true, force: true });
  });

  function spec(protocol: 'tcp' | 'udp', direction: 'upload' | 'download', options: Record<string, unknown> = {}): Iperf3TestSpec {
    return { server: { host: '127.0.0.1', port }, protocol, direction, options: clientOptionsSchema.parse({ time: 1, ...options }) };
  }

  it.each(['upload', 'download'] as const)('TCP %s: a positive received rate and per-second intervals', async (direction) => {
    const outcome = await runClient(spec('tcp', direction));
    expect(metric(outcome, 'tcp_received_bps')).toBeGreaterThan(0);
    expect(metric(outcome, 'tcp_bytes')).toBeGreaterThan(0);
    expect(outcome.ok && outcome.intervals.length).toBeGreaterThanOrEqual(1);
    expect(outcome.ok && outcome.iperfVersion).toMatch(/^iperf 3\./);
  });

  it.each(['upload', 'download'] as const)('UDP %s at -b 5M receives about 5 Mbit/s', async (direction) => {
    const outcome = await runClient(spec('udp', direction, { time: 2, udp: { bitrate: '5M' } }));
    // iperf3's own UDP default is 1 Mbit/s and ours is 30M: 5 Mbit/s proves -b reached iperf3.
    expect(metric(outcome, 'udp_bps')).toBeGreaterThan(4e6);
    expect(metric(outcome, 'udp_bps')).toBeLessThan(6e6);
    expect(metric(outcome, 'udp_packets')).toBeGreaterThan(0);
  });

  it('authenticates with the username and key from the argv and the password from the environment', async () => {
    const authSpec: Iperf3TestSpec = {
      ...spec('tcp', 'upload', { auth: { username: 'mario' } }),
      server: { host: '127.0.0.1', port: authPort },
      remoteRsaPublicKeyPath: publicKeyPath,
    };
    expect(metric(await runClient(authSpec, 'rossi'), 'tcp_received_bps')).toBeGreaterThan(0);
    const rejected = await runClient(authSpec, 'wrong');
    expect(rejected.ok ? null : rejected.errorClass).toBe('iperf3-auth');
  });
});
