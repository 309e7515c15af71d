import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, type Lab } from '../../tests/lab/lab.js';
import type { DeviceSession } from '../model.js';
import { SshConnector } from './connector.js';
import { execWithSecretEnv } from './secret-env.js';

const SECRET = "s3cr3t-Value with spaces, 'quotes' and $(no-expansion)";

describe.each(['openssh', 'dropbear'] as const)('execWithSecretEnv against %s', (kind) => {
  let lab: Lab;
  let session: DeviceSession;

  beforeAll(async () => {
    lab = await createLab({ name: `env${kind[0]}`, devices: [{ id: 'dev', ssh: kind }] });
    session = await new SshConnector({ hostKeys: { get: async () => undefined, record: async () => undefined, forget: async () => false }, connectTimeoutMs: 5000 }).connect(
      lab.sshTarget('dev'),
    );
  });

  afterAll(async () => {
    session?.close();
    await lab?.destroy();
  });

  it('gives the remote process the variables, and stdin after them', async () => {
    const result = await execWithSecretEnv(
      session,
      ['sh', '-c', 'printf "%s|%s|" "$IPERF3_PASSWORD" "$OTHER"; cat'],
      { IPERF3_PASSWORD: SECRET, OTHER: '' },
      { stdin: 'rest of stdin\n', timeoutMs: 5000 },
    );
    expect(result).toEqual({ stdout: `${SECRET}||rest of stdin\n`, stderr: '', exitCode: 0, timedOut: false });
    const none = await execWithSecretEnv(session, ['echo', 'plain'], {}, { timeoutMs: 5000 });
    expect(none.stdout).toBe('plain\n');
  });

  it('keeps the value out of every command line on the device, but in the process environment', async () => {
    const running = execWithSecretEnv(session, ['sleep', '2'], { IPERF3_PASSWORD: SECRET }, { timeoutMs: 10_000 });
    let sleeper: number | undefined;
    for (let i = 0; i < 200 && sleeper === undefined; i++) {
      const procs = await lab.processes('dev');
      for (const p of procs) expect(p.argv.join(' ')).not.toContain('s3cr3t');
      sleeper = procs.find((p) => p.argv[0] === 'sleep')?.pid;
      if (sleeper === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    expect(sleeper).toBeDefined();
    const environ = await lab.exec('dev', ['cat', `/proc/${sleeper}/environ`]);
    expect(environ.stdout.split('\0')).toContain(`IPERF3_PASSWORD=${SECRET}`);
    const ps = await lab.exec('dev', ['ps', '-eo', 'args']);
    expect(ps.stdout).not.toContain('s3cr3t');
    expect((await running).exitCode).toBe(0);
  });

  it('refuses names that are not shell variables and values that do not fit on one line', () => {
    expect(() => execWithSecretEnv(session, ['true'], { 'BAD-NAME': 'x' }, { timeoutMs: 1000 })).toThrow(/BAD-NAME/);
    expect(() => execWithSecretEnv(session, ['true'], { A: 'line1\nline2' }, { timeoutMs: 1000 })).toThrow(
      /variable A must not contain a newline/,
    );
  });
});
