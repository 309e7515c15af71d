import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLab, type Lab } from '../../tests/lab/lab.js';
import { ClassifiedError, type DeviceSession, type DeviceTarget, type HostKeyStore } from '../model.js';
import { hostKeyFingerprint, SshConnector, type SshConnectorOptions } from './connector.js';

/** The store contract in memory (the SQLite store implements the same interface). */
class MemoryHostKeys implements HostKeyStore {
  readonly keys = new Map<string, string>();
  async get(deviceId: string): Promise<string | undefined> {
    return this.keys.get(deviceId);
  }
  async record(deviceId: string, fingerprint: string): Promise<void> {
    this.keys.set(deviceId, fingerprint);
  }
  async forget(deviceId: string): Promise<boolean> {
    return this.keys.delete(deviceId);
  }
}

const PASSWORDS = { openssh: 'open-Pw-7c1e', dropbear: 'drop-Pw-9a4f' };
const HOSTILE = ["it's", '$(id)', '`id`', '; rm -rf /', '"\\"', 'a\nb', '*', '', ' x ', '-n', '$HOME', 'ü✓'];

let lab: Lab;
let keyDir: string;
let otherKey: Buffer;
let encryptedKey: Buffer;
const sessions: DeviceSession[] = [];

function connector(options: Partial<SshConnectorOptions> = {}): SshConnector {
  return new SshConnector({ hostKeys: new MemoryHostKeys(), connectTimeoutMs: 5000, killGraceMs: 1000, ...options });
}

async function open(target: DeviceTarget, options: Partial<SshConnectorOptions> = {}): Promise<DeviceSession> {
  const session = await connector(options).connect(target);
  sessions.push(session);
  return session;
}

async function connectError(target: DeviceTarget, options: Partial<SshConnectorOptions> = {}): Promise<ClassifiedError> {
  const error = await connector(options).connect(target).then(
    () => {
      throw new Error('connect succeeded');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ClassifiedError);
  return error as ClassifiedError;
}

/** Waits until a process whose argv matches shows up in the device namespace. */
async function waitForProcess(deviceId: string, match: (argv: string[]) => boolean): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const found = (await lab.processes(deviceId)).find((p) => match(p.argv));
    if (found) return found.pid;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no matching process in ${deviceId}`);
}

async function sleepersIn(deviceId: string, marker: string): Promise<number> {
  return (await lab.processes(deviceId)).filter((p) => p.argv.includes(marker)).length;
}

beforeAll(async () => {
  lab = await createLab({
    name: 'sshc',
    devices: [
      { id: 'openssh', ssh: 'openssh', password: PASSWORDS.openssh },
      { id: 'dropbear', ssh: 'dropbear', password: PASSWORDS.dropbear },
      { id: 'onesession', ssh: 'openssh', sshdOptions: ['MaxSessions 1'] },
      { id: 'notmp', ssh: 'dropbear', env: { TMPDIR: '/nonexistent-tmp' } },
      { id: 'nopath', ssh: 'openssh', env: { PATH: '/nonexistent-bin' } },
    ],
  });
  keyDir = mkdtempSync(join(tmpdir(), 'ssh-conn-test-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keyDir, 'other')]);
  otherKey = readFileSync(join(keyDir, 'other'));
  // the lab's client key, encrypted with a passphrase
  execFileSync('cp', [lab.clientKey.privateKeyPath, join(keyDir, 'enc')]);
  execFileSync('ssh-keygen', ['-q', '-p', '-P', '', '-N', 'key-Pass-31', '-f', join(keyDir, 'enc')]);
  encryptedKey = readFileSync(join(keyDir, 'enc'));
});

afterEach(() => {
  for (const s of sessions.splice(0)) s.close();
});

afterAll(async () => {
  await lab?.destroy();
  rmSync(keyDir, { recursive: true, force: true });
});

describe.each(['openssh', 'dropbear'] as const)('SshConnector against %s', (kind) => {
  it('authenticates with a key and runs a command', async () => {
    const session = await open(lab.sshTarget(kind));
    expect(await session.exec(['echo', 'hi'], { timeoutMs: 5000 })).toEqual({ stdout: 'hi\n', stderr: '', exitCode: 0, timedOut: false });
  });

  it('authenticates with a password', async () => {
    const session = await open(lab.sshTarget(kind, 'password'));
    expect((await session.exec(['id', '-un'], { timeoutMs: 5000 })).stdout).toBe('ipl\n');
  });

  it('classifies a wrong key or password as ssh-auth, without the secret in the message', async () => {
    const wrongKey = await connectError({ ...lab.sshTarget(kind), privateKey: otherKey });
    expect(wrongKey.errorClass).toBe('ssh-auth');
    expect(wrongKey.message).toContain(`device ${kind} (ipl@${lab.device(kind).host}:22)`);
    const wrongPassword = await connectError({ ...lab.sshTarget(kind, 'password'), password: 'not-The-Password-5' });
    expect(wrongPassword.errorClass).toBe('ssh-auth');
    expect(wrongPassword.message).not.toContain('not-The-Password-5');
  });

  it('returns stdout, stderr and exit codes, and 127 for a missing command', async () => {
    const session = await open(lab.sshTarget(kind));
    expect(await session.exec(['sh', '-c', 'echo out; echo err >&2; exit 3'], { timeoutMs: 5000 })).toEqual({
      stdout: 'out\n',
      stderr: 'err\n',
      exitCode: 3,
      timedOut: false,
    });
    const missing = await session.exec(['no-such-command-xyz', '--flag'], { timeoutMs: 5000 });
    expect(missing.exitCode).toBe(127);
    expect(missing.stderr).toMatch(/no-such-command-xyz/);
    expect(missing.stderr).not.toContain('ipl-ssh-pid');
    // A command that fails at once can have its confirmation, exit status and close in one TCP
    // read: the exit status must still be seen (it once surfaced as "lost the SSH connection").
    for (let i = 0; i < 25; i++) {
      const fast = await session.exec(['sh', '-c', 'exit 7'], { timeoutMs: 5000 });
      expect(fast.exitCode, `attempt ${i}`).toBe(7);
    }
  });

  it('passes hostile arguments through unchanged and feeds stdin', async () => {
    const session = await open(lab.sshTarget(kind));
    const printed = await session.exec(['printf', '%s\\0', ...HOSTILE], { timeoutMs: 5000 });
    expect(printed.stdout.split('\0').slice(0, -1)).toEqual(HOSTILE);
    const big = 'line with $(dangerous) `stuff`\n'.repeat(20_000);
    const echoed = await session.exec(['cat'], { stdin: big, timeoutMs: 10_000 });
    expect(echoed.stdout).toBe(big);
  });

  it('stops a device that prints without end at the output cap, keeps what fits, and kills the remote process', async () => {
    const session = await open(lab.sshTarget(kind));
    const flood = await session.exec(['sh', '-c', 'while :; do echo 0123456789abcdef0123456789abcdef; done; sleep 32'], {
      timeoutMs: 30_000,
      maxOutputBytes: 64 * 1024,
    });
    expect(flood).toMatchObject({ exitCode: null, timedOut: false, outputTooLarge: true });
    // the cap counts every byte read, the wrapper's PID line included
    expect(flood.stdout.length + flood.stderr.length).toBeGreaterThan(64 * 1024 - 64);
    expect(flood.stdout.length + flood.stderr.length).toBeLessThanOrEqual(64 * 1024);
    expect(flood.stdout.startsWith('0123456789abcdef')).toBe(true);
    expect(await sleepersIn(kind, '32')).toBe(0);
    const chatty = await session.exec(['sh', '-c', 'while :; do echo noise >&2; done'], { timeoutMs: 30_000, maxOutputBytes: 8 * 1024 });
    expect(chatty.outputTooLarge).toBe(true);
    expect(chatty.stderr.length).toBeLessThanOrEqual(8 * 1024);
    expect((await session.exec(['echo', 'still'], { timeoutMs: 5000 })).stdout).toBe('still\n'); // the session stays usable
  });

  it('kills the remote process on the deadline (TERM) and reports timedOut', async () => {
    const session = await open(lab.sshTarget(kind));
    const result = await session.exec(['sleep', '31'], { timeoutMs: 500 });
    expect(result).toMatchObject({ exitCode: null, timedOut: true });
    expect(await sleepersIn(kind, '31')).toBe(0);
    // the session stays usable
    expect((await session.exec(['echo', 'still'], { timeoutMs: 5000 })).stdout).toBe('still\n');
  });

  it('kills a process that ignores TERM with KILL after the grace time', async () => {
    const session = await open(lab.sshTarget(kind));
    const result = await session.exec(['sh', '-c', 'trap "" TERM; exec sleep 32'], { timeoutMs: 300 });
    expect(result.timedOut).toBe(true);
    expect(await sleepersIn(kind, '32')).toBe(0);
  });

  it('kills the process also when the deadline passes before the command has started', async () => {
    const session = await open(lab.sshTarget(kind));
    const result = await session.exec(['sleep', '33'], { timeoutMs: 1 });
    expect(result.timedOut).toBe(true);
    expect(await sleepersIn(kind, '33')).toBe(0);
  });

  it('writes a private temporary file and removes it without leaving anything', async () => {
    const session = await open(lab.sshTarget(kind));
    // temporary files of the lab user (other processes use /tmp as well)
    const labUserTempFiles = async () => (await lab.exec(kind, ['find', '/tmp', '-maxdepth', '1', '-uid', '64203'])).stdout;
    const before = await labUserTempFiles();
    const content = "-----BEGIN PUBLIC KEY-----\nit's $(not) `run`\n\\n\n";
    const path = await session.writeTempFile(content);
    expect(path).toMatch(/^\/tmp\/tmp\.\w+$/);
    expect((await lab.exec(kind, ['stat', '-c', '%a %u', path])).stdout).toBe('600 64203\n');
    expect(readFileSync(path, 'utf8')).toBe(content); // the namespaces share the file system
    await session.removeFile(path);
    await session.removeFile(path); // already gone: fine
    expect(existsSync(path)).toBe(false);
    // nothing new of ours is left (other labs running at the same time may add their own files)
    const added = (await labUserTempFiles()).split('\n').filter((f) => f !== '' && !before.split('\n').includes(f));
    expect(added.filter((f) => existsSync(f) && readFileSync(f, 'utf8') === content)).toEqual([]);
  });

  it('trusts a host key on first use, records it, then verifies it', async () => {
    const hostKeys = new MemoryHostKeys();
    const logger = { info: vi.fn(), warn: vi.fn() };
    await open(lab.sshTarget(kind), { hostKeys, logger });
    expect(await hostKeys.get(kind)).toBe(lab.device(kind).hostKeyFingerprint);
    expect(logger.info).toHaveBeenCalledWith({ device: kind, fingerprint: lab.device(kind).hostKeyFingerprint }, expect.any(String));
    const record = vi.spyOn(hostKeys, 'record');
    await open(lab.sshTarget(kind), { hostKeys });
    expect(record).not.toHaveBeenCalled();

    await hostKeys.record(kind, 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    const error = await connectError(lab.sshTarget(kind), { hostKeys, logger });
    expect(error.errorClass).toBe('host-key-mismatch');
    expect(error.message).toContain(`device ${kind}`);
    expect(error.message).toContain('expected SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA (recorded on first use)');
    expect(error.message).toContain(`presented ${lab.device(kind).hostKeyFingerprint}`);
    expect(error.message).toContain(`clear the host key recorded for device ${kind}`);
    expect(logger.warn).toHaveBeenCalled();
    // a mismatch never overwrites what was recorded
    expect(await hostKeys.get(kind)).toBe('SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
  });

  it('fails the connection as internal, naming the device, when the host-key store cannot be read or written', async () => {
    const unreadable = new MemoryHostKeys();
    unreadable.get = async () => {
      throw new Error('database is locked');
    };
    const readError = await connectError(lab.sshTarget(kind), { hostKeys: unreadable });
    expect(readError.errorClass).toBe('internal');
    expect(readError.message).toMatch(/cannot read the host key recorded for .*database is locked/);
    const unwritable = new MemoryHostKeys();
    unwritable.record = async () => {
      throw new Error('disk full');
    };
    const writeError = await connectError(lab.sshTarget(kind), { hostKeys: unwritable });
    expect(writeError.errorClass).toBe('internal');
    expect(writeError.message).toMatch(/cannot record the host key of .*disk full/);
    expect(unwritable.keys.size).toBe(0);
  });

  it('does not trust an unknown key on first use when asked not to, but accepts a recorded or pinned one', async () => {
    const hostKeys = new MemoryHostKeys();
    const logger = { info: vi.fn(), warn: vi.fn() };
    const fingerprint = lab.device(kind).hostKeyFingerprint;
    const refused = await connector({ hostKeys, logger })
      .connect(lab.sshTarget(kind), { trustOnFirstUse: false })
      .then(() => null, (e: ClassifiedError) => e);
    expect(refused?.errorClass).toBe('host-key-mismatch');
    expect(refused?.message).toContain(`is not pinned and none is recorded, and a password would be sent`);
    expect(refused?.message).toContain(`pin it as hostKey: ${fingerprint}, or set ssh.trustOnFirstUse: true`);
    expect(hostKeys.keys.size).toBe(0);
    expect(logger.warn).toHaveBeenCalledWith({ device: kind, presented: fingerprint }, expect.stringMatching(/not trusted on first use/));
    sessions.push(await connector({ hostKeys }).connect({ ...lab.sshTarget(kind), hostKey: fingerprint }, { trustOnFirstUse: false }));
    await hostKeys.record(kind, fingerprint);
    sessions.push(await connector({ hostKeys }).connect(lab.sshTarget(kind), { trustOnFirstUse: false }));
  });

  it('checks a pinned fingerprint, padded or not, ahead of the recorded one', async () => {
    const hostKeys = new MemoryHostKeys();
    await hostKeys.record(kind, 'SHA256:stale');
    const fingerprint = lab.device(kind).hostKeyFingerprint;
    await open({ ...lab.sshTarget(kind), hostKey: fingerprint }, { hostKeys });
    await open({ ...lab.sshTarget(kind), hostKey: `${fingerprint}=` }, { hostKeys });
    expect(await hostKeys.get(kind)).toBe('SHA256:stale');
    const error = await connectError({ ...lab.sshTarget(kind), hostKey: 'SHA256:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB' });
    expect(error.errorClass).toBe('host-key-mismatch');
    expect(error.message).toContain('(pinned hostKey)');
    expect(error.message).toContain(`update its pinned hostKey to ${fingerprint}`);
  });

  it('detects a changed host key after the device restarts with a new one', async () => {
    const hostKeys = new MemoryHostKeys();
    await open(lab.sshTarget(kind), { hostKeys });
    const old = await hostKeys.get(kind);
    const rotated = await lab.rotateHostKey(kind);
    const error = await connectError(lab.sshTarget(kind), { hostKeys });
    expect(error.errorClass).toBe('host-key-mismatch');
    expect(error.message).toContain(`expected ${old}`);
    expect(error.message).toContain(`presented ${rotated}`);
  });

  it('classifies a stopped SSH server as unreachable', async () => {
    await lab.stopSsh(kind);
    try {
      const error = await connectError(lab.sshTarget(kind));
      expect(error.errorClass).toBe('unreachable');
      expect(error.message).toMatch(/ECONNREFUSED/);
    } finally {
      await lab.startSsh(kind);
    }
  });
});

describe('SshConnector failures', () => {
  it('classifies an address where nothing answers as unreachable (timeout)', async () => {
    const error = await connectError({ ...lab.sshTarget('openssh'), host: lab.unusedAddress }, { connectTimeoutMs: 1500 });
    expect(error.errorClass).toBe('unreachable');
    expect(error.message).toContain(lab.unusedAddress);
  });

  it('classifies an unknown host name as unreachable', async () => {
    const error = await connectError({ ...lab.sshTarget('openssh'), host: 'no-such-device.invalid' });
    expect(error.errorClass).toBe('unreachable');
    expect(error.message).toContain('no-such-device.invalid');
  });

  it('classifies a server that closes the connection at once as unreachable', async () => {
    const server: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const error = await connectError({ ...lab.sshTarget('openssh'), host: '127.0.0.1', port });
      expect(error.errorClass).toBe('unreachable');
    } finally {
      server.close();
    }
  });

  it('uses an encrypted private key with its passphrase, and classifies a wrong or missing one as ssh-auth', async () => {
    await open({ ...lab.sshTarget('dropbear'), privateKey: encryptedKey, passphrase: 'key-Pass-31' });
    const wrong = await connectError({ ...lab.sshTarget('dropbear'), privateKey: encryptedKey, passphrase: 'bad-Phrase-77' });
    expect(wrong.errorClass).toBe('ssh-auth');
    expect(wrong.message).not.toContain('bad-Phrase-77');
    const missing = await connectError({ ...lab.sshTarget('dropbear'), privateKey: encryptedKey });
    expect(missing.errorClass).toBe('ssh-auth');
    expect(missing.message).toMatch(/private key of device dropbear/);
  });

  it('never puts a secret into an error message, even when the device echoes it', async () => {
    // a host name that contains the password: the resolver error quotes the name
    const password = 'leaky-Secret-42';
    const error = await connectError({ ...lab.sshTarget('openssh'), host: `${password}.invalid`, password });
    expect(error.message).not.toContain(password);
    expect(error.message).toContain('***');
  });

  it('rejects a command when the device refuses another channel, and still ends a timed-out one', async () => {
    const session = await open(lab.sshTarget('onesession'));
    const running = session.exec(['sleep', '34'], { timeoutMs: 1500 });
    await waitForProcess('onesession', (argv) => argv.includes('34'));
    const refused = await session.exec(['echo', 'second'], { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ClassifiedError);
    expect((refused as ClassifiedError).errorClass).toBe('unreachable');
    // no channel for the kill: the command's channel is closed instead
    expect(await running).toMatchObject({ timedOut: true, exitCode: null });
  });

  it('gives up on a stalled connection after the deadline plus the grace time', async () => {
    const session = await open(lab.sshTarget('openssh'), { killGraceMs: 500 });
    const running = session.exec(['sleep', '35'], { timeoutMs: 300 });
    await waitForProcess('openssh', (argv) => argv.includes('35'));
    // freeze the device's SSH session processes (the listener is the daemon started with -D)
    const frozen = (await lab.processes('openssh')).filter((p) => p.argv[0].startsWith('sshd: ipl'));
    expect(frozen.length).toBeGreaterThan(0);
    for (const p of frozen) process.kill(p.pid, 'SIGSTOP');
    try {
      expect(await running).toMatchObject({ timedOut: true, exitCode: null });
    } finally {
      for (const p of frozen) process.kill(p.pid, 'SIGCONT');
    }
  });

  it('reports a connection lost during a command as unreachable', async () => {
    const session = await open(lab.sshTarget('openssh'));
    const running = session.exec(['sleep', '36'], { timeoutMs: 20_000 });
    await waitForProcess('openssh', (argv) => argv.includes('36'));
    for (const p of await lab.processes('openssh')) {
      if (p.argv[0].startsWith('sshd: ipl')) process.kill(p.pid, 'SIGKILL');
    }
    const error = await running.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClassifiedError);
    expect((error as ClassifiedError).errorClass).toBe('unreachable');
    expect((error as ClassifiedError).message).toMatch(/lost the SSH connection to device openssh .* while running sleep/);
    await lab.exec('openssh', ['pkill', '-f', '^sleep 36$']);
  });

  it('rejects commands after close and an empty argv', async () => {
    const session = await open(lab.sshTarget('openssh'));
    await expect(session.exec([], { timeoutMs: 1000 })).rejects.toThrow(/argv is empty/);
    session.close();
    const error = await session.exec(['true'], { timeoutMs: 1000 }).catch((e: unknown) => e);
    expect((error as ClassifiedError).errorClass).toBe('unreachable');
    session.close(); // twice is fine
  });

  it('reports a device whose shell cannot find sh with exit 127 and its error', async () => {
    const session = await open(lab.sshTarget('nopath'));
    const result = await session.exec(['echo', 'x'], { timeoutMs: 5000 });
    expect(result).toMatchObject({ stdout: '', exitCode: 127, timedOut: false });
    expect(result.stderr).toMatch(/sh: .*not found/);
  });

  it('reports temp file failures of the device with its error', async () => {
    const session = await open(lab.sshTarget('notmp'));
    const error = await session.writeTempFile('x').catch((e: unknown) => e);
    expect((error as ClassifiedError).errorClass).toBe('internal');
    expect((error as ClassifiedError).message).toMatch(/cannot write a temporary file on device notmp .*nonexistent-tmp/);
    await expect(session.removeFile('relative/path')).rejects.toThrow(/absolute path/);
    const denied = await session.removeFile('/etc/passwd').catch((e: unknown) => e);
    expect((denied as ClassifiedError).errorClass).toBe('internal');
    expect((denied as ClassifiedError).message).toMatch(/cannot remove \/etc\/passwd on device notmp/);
  });
});

describe('hostKeyFingerprint', () => {
  it('matches ssh-keygen -lf', () => {
    const line = readFileSync(lab.clientKey.publicKeyPath, 'utf8');
    const blob = Buffer.from(line.split(' ')[1], 'base64');
    const expected = execFileSync('ssh-keygen', ['-lf', lab.clientKey.publicKeyPath], { encoding: 'utf8' }).split(' ')[1];
    expect(hostKeyFingerprint(blob)).toBe(expected);
  });
});
