/**
 * Fault injection for the device run: a scripted session replays real iperf3 outputs captured
 * in collector/iperf3/fixtures, to reach failures that a lab cannot produce on demand (a lost
 * UDP set-up datagram, a device that cannot delete a file). The real paths run in
 * tests/integration/collector-lab.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { clientOptionsSchema } from '../../contract/settings.js';
import type { DeviceConnector, DeviceSession, ExecResult, RunOutcome } from '../model.js';
import { planTests, runTcpThenUdp, type RunDeps, type RunPlan } from './deviceRun.js';
import { RunProgressBoard } from './runProgress.js';
import { RegistryStoppedError, ServerRegistry } from './serverRegistry.js';

const FIXTURES = join(import.meta.dirname, '../iperf3/fixtures');
const fixture = (name: string): ExecResult => ({ stdout: readFileSync(join(FIXTURES, name), 'utf8'), stderr: '', exitCode: 0, timedOut: false });

class ScriptedSession implements DeviceSession {
  readonly commands: string[][] = [];
  readonly removed: string[] = [];
  constructor(
    private readonly outputs: ExecResult[],
    private readonly failRemove = false,
  ) {}
  async exec(argv: string[]): Promise<ExecResult> {
    this.commands.push(argv);
    const next = this.outputs.shift();
    if (!next) throw new Error('script exhausted');
    return next;
  }
  async writeTempFile(): Promise<string> {
    return '/tmp/key.abc';
  }
  async removeFile(path: string): Promise<void> {
    if (this.failRemove) throw new Error('read-only file system');
    this.removed.push(path);
  }
  closed = 0;
  close(): void {
    this.closed++;
    if (this.failClose) throw new Error('socket already destroyed');
  }
  failClose = false;
}

function harness(connector: DeviceConnector, planOverrides: Partial<RunPlan> = {}) {
  const finished: RunOutcome[] = [];
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(line) });
  const deps: RunDeps = {
    store: { runs: { start: async () => 1, finish: async (_id, outcome) => void finished.push(outcome) } },
    connector,
    registry: new ServerRegistry(),
    logger,
    clock: () => new Date(),
    sleep: async () => undefined,
    busyRetry: { attempts: 2, backoffMs: 1 },
  };
  const plan: RunPlan = {
    device: { id: 'dev', host: '10.0.0.2', port: 22, username: 'root' },
    servers: [{ host: '127.0.0.1', port: 5201 }],
    options: clientOptionsSchema.parse({ directions: ['upload'] }),
    auth: null,
    trigger: 'manual',
    roundId: null,
    ...planOverrides,
  };
  return { deps, plan, finished, logs };
}

describe('device run, fault injection', () => {
  it('plans TCP per direction, then UDP per direction when enabled', () => {
    expect(planTests(clientOptionsSchema.parse({})).map((t) => `${t.protocol}-${t.direction}`)).toEqual(['tcp-upload', 'tcp-download', 'udp-upload', 'udp-download']);
    expect(planTests(clientOptionsSchema.parse({ directions: ['download'], udp: { enabled: false } })).map((t) => `${t.protocol}-${t.direction}`)).toEqual(['tcp-download']);
  });

  it('retries a UDP test once when it fails to start (lost set-up datagram), and keeps the second result', async () => {
    const session = new ScriptedSession([fixture('tcp-upload.json'), fixture('error-server-terminated.json'), fixture('udp-upload.json')]);
    const { deps, plan, finished, logs } = harness({ connect: async () => session });
    const summary = await runTcpThenUdp(deps, plan);
    expect(summary.status).toBe('ok');
    expect(session.commands).toHaveLength(3);
    expect(session.commands[2]).toEqual(session.commands[1]);
    expect(finished[0].tests.map((t) => [t.protocol, t.outcome.ok])).toEqual([
      ['tcp', true],
      ['udp', true],
    ]);
    expect(logs.join('')).toContain('retrying once');
  });

  it('tells the progress board which test the run is in, and forgets the run once it is stored', async () => {
    const session = new ScriptedSession([fixture('tcp-upload.json'), fixture('udp-upload.json')]);
    const { deps, plan, finished } = harness({ connect: async () => session });
    const board = new RunProgressBoard();
    const seen: Array<string | undefined> = [];
    const exec = session.exec.bind(session);
    // what GET /api/v1/runs would say while each iperf3 command runs
    session.exec = async (argv) => {
      const c = board.get(1);
      seen.push(c && `${c.protocol} ${c.direction} ${c.index}/${c.of}`);
      return exec(argv);
    };
    deps.clock = () => new Date('2026-01-01T00:00:00Z');
    await runTcpThenUdp({ ...deps, progress: board }, plan);
    expect(seen).toEqual(['tcp upload 1/2', 'udp upload 2/2']);
    expect(board.size).toBe(0);
    expect(finished).toHaveLength(1);
  });

  it('forgets the run even when storing its outcome fails', async () => {
    const session = new ScriptedSession([fixture('tcp-upload.json'), fixture('udp-upload.json')]);
    const { deps, plan } = harness({ connect: async () => session });
    const board = new RunProgressBoard();
    deps.store.runs.finish = async () => {
      throw new Error('disk full');
    };
    await expect(runTcpThenUdp({ ...deps, progress: board }, plan)).rejects.toThrow('disk full');
    expect(board.size).toBe(0);
  });

  it('gives up after the second UDP failure and records it, with zeros for UDP only', async () => {
    const session = new ScriptedSession([fixture('tcp-upload.json'), fixture('error-server-terminated.json'), fixture('error-server-terminated.json')]);
    const { deps, plan, finished } = harness({ connect: async () => session });
    const summary = await runTcpThenUdp(deps, plan);
    expect([summary.status, summary.errorClass]).toEqual(['failed', 'iperf3-error']);
    expect(summary.message).toMatch(/^udp upload: /);
    const zeros = finished[0].metrics.filter((m) => m.value === 0 && m.failed && m.name !== 'duration_s').map((m) => `${m.name}/${m.direction}`);
    expect(zeros).toEqual(['result/null', 'udp_bps/upload']);
  });

  it('records a timeout with what iperf3 printed when it was killed at the deadline', async () => {
    const killed = { ...fixture('error-client-interrupted.json'), exitCode: null, timedOut: true };
    const session = new ScriptedSession([killed]);
    const { deps, plan, finished } = harness({ connect: async () => session });
    const summary = await runTcpThenUdp(deps, plan);
    expect([summary.status, summary.errorClass]).toEqual(['failed', 'timeout']);
    expect(summary.message).toMatch(/deadline and was killed/);
    const outcome = finished[0].tests[0].outcome;
    expect(outcome.ok ? null : outcome.raw).toContain('interrupt - the client has terminated');
  });

  it('keeps the result when closing the SSH connection fails', async () => {
    const session = new ScriptedSession([fixture('tcp-upload.json'), fixture('udp-upload.json')]);
    session.failClose = true;
    const { deps, plan, logs } = harness({ connect: async () => session });
    const summary = await runTcpThenUdp(deps, plan);
    expect(summary.status).toBe('ok');
    expect(session.closed).toBe(1);
    expect(logs.join('')).toContain('closing the SSH connection failed');
  });

  it('fails with server-unreachable and a fix when the device has no server at all', async () => {
    const session = new ScriptedSession([]);
    const { deps, plan } = harness({ connect: async () => session }, { servers: [] });
    const summary = await runTcpThenUdp(deps, plan);
    expect([summary.status, summary.errorClass]).toEqual(['failed', 'server-unreachable']);
    expect(summary.message).toMatch(/no iperf3 server is configured.*add servers/);
  });

  it('leaves the run unfinished (to be marked interrupted) when the collector stops while it waits for a server', async () => {
    const session = new ScriptedSession([]);
    const { deps, plan, finished } = harness({ connect: async () => session });
    // the only server is held: the run waits for it, then the registry stops
    const held = await deps.registry.acquireFree(plan.servers);
    const run = runTcpThenUdp(deps, plan);
    await new Promise((r) => setTimeout(r, 10));
    deps.registry.stop();
    await expect(run).rejects.toThrow(RegistryStoppedError);
    expect(finished).toEqual([]);
    expect(session.closed).toBe(1);
    held.release();
  });

  it('stores an unexpected error as internal instead of crashing the round', async () => {
    const { deps, plan } = harness({
      connect: async () => {
        throw new TypeError('boom');
      },
    });
    const summary = await runTcpThenUdp(deps, plan);
    expect([summary.status, summary.errorClass, summary.message]).toEqual(['failed', 'internal', 'boom']);
    const { deps: d2, plan: p2 } = harness({
      connect: async () => {
        throw 'a string';
      },
    });
    expect((await runTcpThenUdp(d2, p2)).message).toBe('a string');
  });

  it('passes the iperf3 password on stdin only, and warns when the key file cannot be removed', async () => {
    const session = new ScriptedSession([fixture('tcp-upload-auth.json')], true);
    const execs: { argv: string[]; stdin?: string }[] = [];
    const recording: DeviceSession = {
      exec: (argv, o) => {
        execs.push({ argv, stdin: o.stdin });
        return session.exec(argv);
      },
      writeTempFile: () => session.writeTempFile(),
      removeFile: (p) => session.removeFile(p),
      close: () => session.close(),
    };
    const { deps, plan, logs } = harness(
      { connect: async () => recording },
      { auth: { username: 'mon', password: 'pa ss', rsaPublicKey: 'PEM' }, options: clientOptionsSchema.parse({ directions: ['upload'], udp: { enabled: false }, auth: { username: 'mon' } }) },
    );
    const summary = await runTcpThenUdp(deps, plan);
    expect(summary.status).toBe('ok');
    expect(execs[0].stdin).toBe('pa ss\n');
    expect(execs[0].argv.slice(0, 3)).toEqual(['sh', '-c', 'IFS= read -r IPERF3_PASSWORD; export IPERF3_PASSWORD; exec "$@"']);
    expect(execs[0].argv).toContain('/tmp/key.abc');
    expect(execs[0].argv.join(' ')).not.toContain('pa ss');
    expect(logs.join('')).toContain('could not remove the temporary RSA key');
  });

  it('refuses a password with a line break (it would end the stdin line early), without ever running iperf3 or naming the password', async () => {
    const session = new ScriptedSession([fixture('tcp-upload-auth.json')]);
    const { deps, plan, finished } = harness(
      { connect: async () => session },
      { auth: { username: 'mon', password: 'first\nsecond', rsaPublicKey: 'PEM' }, options: clientOptionsSchema.parse({ directions: ['upload'], udp: { enabled: false }, auth: { username: 'mon' } }) },
    );
    const summary = await runTcpThenUdp(deps, plan);
    expect([summary.status, summary.errorClass]).toEqual(['failed', 'internal']);
    expect(summary.message).toMatch(/IPERF3_PASSWORD must not contain a newline/);
    expect(JSON.stringify(finished)).not.toContain('second');
    expect(session.commands).toEqual([]);
  });

  it('stops a test whose output exceeds the cap and records output-too-large, keeping nothing of it', async () => {
    const flood: ExecResult = { stdout: 'x'.repeat(1000), stderr: '', exitCode: null, timedOut: false, outputTooLarge: true };
    const { deps, plan, finished } = harness({ connect: async () => new ScriptedSession([flood]) });
    const summary = await runTcpThenUdp(deps, plan);
    expect([summary.status, summary.errorClass]).toEqual(['failed', 'output-too-large']);
    expect(finished[0].tests[0].outcome).toMatchObject({ ok: false, errorClass: 'output-too-large', raw: null });
  });

  it('tells the parser that auth was on, so that a server hanging up at once is read as a rejection', async () => {
    // A 3.12 client against a 3.21 server that rejects it: "control socket has closed unexpectedly".
    const hangUp = fixture('versions/cross/auth-client-3.12-server-3.21.json');
    const auth = { auth: { username: 'mon', password: 'pw', rsaPublicKey: 'PEM' } };
    const withAuth = harness(
      { connect: async () => new ScriptedSession([hangUp]) },
      { ...auth, options: clientOptionsSchema.parse({ directions: ['upload'], udp: { enabled: false }, auth: { username: 'mon' } }) },
    );
    expect((await runTcpThenUdp(withAuth.deps, withAuth.plan)).errorClass).toBe('iperf3-auth');
    const withoutAuth = harness(
      { connect: async () => new ScriptedSession([hangUp]) },
      { options: clientOptionsSchema.parse({ directions: ['upload'], udp: { enabled: false } }) },
    );
    expect((await runTcpThenUdp(withoutAuth.deps, withoutAuth.plan)).errorClass).toBe('server-unreachable');
  });

  it("logs the warnings about the device's iperf3 version (3.17.1: no authentication with current OpenSSL)", async () => {
    const tcp = fixture('versions/3.17.1-glibc/tcp-upload.json');
    const { deps, plan, logs } = harness(
      { connect: async () => new ScriptedSession([tcp]) },
      { options: clientOptionsSchema.parse({ directions: ['upload'], udp: { enabled: false } }) },
    );
    expect((await runTcpThenUdp(deps, plan)).status).toBe('ok');
    const line = JSON.parse(logs.find((l) => l.includes('known problems')) ?? '{}');
    expect(line).toMatchObject({ level: 40, iperfVersion: 'iperf 3.17.1', warnings: [expect.stringMatching(/fixed in iperf3 3\.20/)] });
    const quiet = harness(
      { connect: async () => new ScriptedSession([fixture('versions/3.21-glibc/tcp-upload.json')]) },
      { options: clientOptionsSchema.parse({ directions: ['upload'], udp: { enabled: false } }) },
    );
    await runTcpThenUdp(quiet.deps, quiet.plan);
    expect(quiet.logs.join('')).not.toContain('known problems');
  });
});
