/**
 * SSH access to devices with ssh2: host key verification (pinned or trust on first use),
 * classified connection errors, and commands with a hard deadline that kills the remote process.
 */
import { createHash } from 'node:crypto';
import { Client, type ClientChannel } from 'ssh2';
import type { Logger } from 'pino';
import {
  ClassifiedError,
  type DeviceConnector,
  type DeviceSession,
  type ConnectOptions,
  type DeviceTarget,
  type ExecOptions,
  type ExecResult,
  type HostKeyStore,
} from '../model.js';
import type { ErrorClass } from '../../contract/api.js';
import { quoteArgv } from './quote.js';

export interface SshConnectorOptions {
  hostKeys: HostKeyStore;
  /** TCP connect + SSH handshake + authentication */
  connectTimeoutMs: number;
  logger?: Pick<Logger, 'info' | 'warn'>;
  /** after a deadline: how long the remote process gets between TERM and KILL (whole seconds on the device) */
  killGraceMs?: number;
  /** deadline of the short commands behind writeTempFile/removeFile */
  fileCommandTimeoutMs?: number;
}

/** `SHA256:<base64 without padding>` of a raw public key blob, as `ssh-keygen -lf` prints it. */
export function hostKeyFingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/**
 * The remote wrapper: prints its PID on stderr (so that a deadline can kill it through a second
 * channel), then execs the command in place, keeping that PID. POSIX sh only.
 */
const PID_MARKER = 'ipl-ssh-pid:';
const PID_WRAPPER = `echo "${PID_MARKER}$$" >&2; exec "$@"`;
const PID_LINE = new RegExp(`${PID_MARKER}(\\d+)\\n`);

/** TERM, then KILL after $2 seconds when the process is still there. */
const KILL_SCRIPT =
  'kill -TERM "$1" 2>/dev/null || exit 0; i=0; ' +
  'while kill -0 "$1" 2>/dev/null; do ' +
  'if [ "$i" -ge "$2" ]; then kill -KILL "$1" 2>/dev/null; exit 0; fi; sleep 1; i=$((i+1)); done';

const WRITE_TEMP_SCRIPT = 'f=$(mktemp) || exit 1; if cat > "$f"; then echo "$f"; else rm -f "$f"; exit 1; fi';

function describe(target: DeviceTarget): string {
  return `device ${target.id} (${target.username}@${target.host}:${target.port})`;
}

/** Error texts come from ssh2 and the OS; make sure no credential can ride along. */
function redact(message: string, target: DeviceTarget): string {
  let text = message;
  for (const secret of [target.password, target.passphrase]) {
    if (secret) text = text.split(secret).join('***');
  }
  return text;
}

/** Most output kept of one command: iperf3's JSON of a long test with many streams stays far below. */
export const DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

export class SshConnector implements DeviceConnector {
  private readonly killGraceMs: number;
  private readonly fileCommandTimeoutMs: number;

  constructor(private readonly options: SshConnectorOptions) {
    this.killGraceMs = options.killGraceMs ?? 2000;
    this.fileCommandTimeoutMs = options.fileCommandTimeoutMs ?? 15_000;
  }

  connect(target: DeviceTarget, connectOptions: ConnectOptions = {}): Promise<DeviceSession> {
    const { hostKeys, logger } = this.options;
    const client = new Client();
    let mismatch: string | undefined;
    let firstUse: string | undefined;
    let storeFailure: string | undefined;

    const verify = async (key: Buffer): Promise<boolean> => {
      const presented = hostKeyFingerprint(key);
      const pinned = target.hostKey?.replace(/=+$/, '');
      const expected = pinned ?? (await hostKeys.get(target.id));
      if (expected === undefined) {
        if (connectOptions.trustOnFirstUse === false) {
          mismatch =
            `the host key of ${describe(target)} is not pinned and none is recorded, and a password would be sent: the collector does not trust it on first use. ` +
            `Check the key on the device (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub or dropbearkey -y -f <key>) and pin it as hostKey: ${presented}, ` +
            'or set ssh.trustOnFirstUse: true in the collector configuration';
          logger?.warn({ device: target.id, presented }, 'SSH host key not trusted on first use: a password would be sent');
          return false;
        }
        firstUse = presented;
        return true;
      }
      if (expected === presented) return true;
      const fix = pinned
        ? `If the device's key really changed, update its pinned hostKey to ${presented}`
        : `If the device's key really changed, clear the host key recorded for device ${target.id} (it is then recorded again on the next connection) or pin the new one with hostKey: ${presented}`;
      mismatch =
        `host key mismatch for ${describe(target)}: expected ${expected} (${pinned ? 'pinned hostKey' : 'recorded on first use'}), ` +
        `the device presented ${presented}. ${fix}; otherwise someone may be intercepting the connection.`;
      logger?.warn({ device: target.id, expected, presented }, 'SSH host key mismatch');
      return false;
    };

    return new Promise<DeviceSession>((resolve, reject) => {
      let settled = false;
      // The whole message is redacted (it quotes host names and ssh2 texts); ssh2's error is not
      // attached as `cause` for the same reason.
      const fail = (errorClass: ErrorClass, message: string) => {
        if (settled) return;
        settled = true;
        client.end();
        reject(new ClassifiedError(errorClass, redact(message, target)));
      };
      client.on('ready', () => {
        // recorded only once the device has proven the key and accepted us
        const recorded = firstUse === undefined ? Promise.resolve() : hostKeys.record(target.id, firstUse);
        recorded.then(
          () => {
            if (settled) return;
            settled = true;
            if (firstUse !== undefined) logger?.info({ device: target.id, fingerprint: firstUse }, 'SSH host key recorded on first use');
            resolve(new SshSession(client, target, this.killGraceMs, this.fileCommandTimeoutMs));
          },
          (err: unknown) => fail('internal', `cannot record the host key of ${describe(target)}: ${err instanceof Error ? err.message : String(err)}`),
        );
      });
      // stays attached after 'ready' (then a no-op): later errors surface through the channels
      client.on('error', (error: Error & { level?: string }) => {
        if (storeFailure) return fail('internal', storeFailure);
        if (mismatch) return fail('host-key-mismatch', mismatch);
        if (error.level === 'client-authentication') {
          return fail('ssh-auth', `SSH authentication failed for ${describe(target)}: ${error.message}; check the username and the key or password`);
        }
        fail('unreachable', `cannot reach ${describe(target)} over SSH: ${error.message}`);
      });
      client.on('close', () => fail('unreachable', `${describe(target)} closed the connection before SSH was set up`));
      try {
        client.connect({
          host: target.host,
          port: target.port,
          username: target.username,
          privateKey: target.privateKey,
          passphrase: target.passphrase,
          password: target.password,
          readyTimeout: this.options.connectTimeoutMs,
          hostVerifier: (key: Buffer, callback: (valid: boolean) => void) => {
            verify(key).then(callback, (err: unknown) => {
              storeFailure = `cannot read the host key recorded for ${describe(target)}: ${err instanceof Error ? err.message : String(err)}`;
              callback(false);
            });
          },
        });
      } catch (error) {
        // ssh2 parses the private key synchronously: a bad key or passphrase lands here
        fail('ssh-auth', `cannot use the private key of ${describe(target)}: ${(error as Error).message}`);
      }
    });
  }
}

class SshSession implements DeviceSession {
  constructor(
    private readonly client: Client,
    private readonly target: DeviceTarget,
    private readonly killGraceMs: number,
    private readonly fileCommandTimeoutMs: number,
  ) {}

  /**
   * Opens an exec channel; ssh2's synchronous "Not connected" becomes a rejection too.
   * `onOpen` runs synchronously in ssh2's callback, before the channel can emit anything.
   */
  private openChannel(command: string, onOpen: (channel: ClientChannel) => void = () => undefined): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (error, channel) => {
        if (error) return reject(error);
        onOpen(channel);
        resolve(channel);
      });
    });
  }

  exec(argv: string[], options: ExecOptions): Promise<ExecResult> {
    if (argv.length === 0) return Promise.reject(new Error('exec needs a command: argv is empty'));
    const command = quoteArgv(['sh', '-c', PID_WRAPPER, 'sh', ...argv]);
    return new Promise<ExecResult>((resolve, reject) => {
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let head = ''; // stderr until the PID line has been seen
      let pid: number | undefined;
      let timedOut = false;
      let outputTooLarge = false;
      let kept = 0;
      const maxOutput = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
      let exitCode: number | null | undefined;
      let channel: ClientChannel | undefined;
      let backstop: NodeJS.Timeout | undefined;
      let settled = false;

      const settle = () => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        clearTimeout(backstop);
        const result = { stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() + head };
        if (outputTooLarge) return resolve({ ...result, exitCode: null, timedOut: false, outputTooLarge: true });
        if (timedOut) return resolve({ ...result, exitCode: null, timedOut: true });
        if (exitCode === undefined) {
          return reject(
            new ClassifiedError('unreachable', `lost the SSH connection to ${describe(this.target)} while running ${argv[0]}`),
          );
        }
        resolve({ ...result, exitCode, timedOut: false });
      };

      const killRemote = () => {
        if (!(timedOut || outputTooLarge) || pid === undefined) return;
        const graceSeconds = String(Math.ceil(this.killGraceMs / 1000));
        this.openChannel(quoteArgv(['sh', '-c', KILL_SCRIPT, 'sh', String(pid), graceSeconds])).then(
          (killer) => {
            killer.resume();
            killer.stderr.resume();
            killer.on('close', () => channel?.close());
            killer.end();
          },
          // No second channel (session limit, dying connection): closing ours is all that is left;
          // the backstop below ends the wait if the device keeps the channel open.
          () => channel?.close(),
        );
      };

      const stop = () => {
        killRemote();
        // a stalled connection never confirms the kill: give up on it after the grace time
        backstop ??= setTimeout(() => {
          channel?.close();
          settle();
        }, 2 * this.killGraceMs + 3000);
      };
      const deadline = setTimeout(() => {
        timedOut = true;
        stop();
      }, options.timeoutMs);
      /** The part of a chunk kept under the cap; a device that prints more is stopped (its output is not ours to buffer). */
      const admit = (chunk: Buffer): Buffer => {
        if (outputTooLarge) return chunk.subarray(0, 0);
        if (kept + chunk.length <= maxOutput) {
          kept += chunk.length;
          return chunk;
        }
        const part = chunk.subarray(0, maxOutput - kept);
        kept = maxOutput;
        outputTooLarge = true;
        clearTimeout(deadline);
        stop();
        return part;
      };

      // Listeners go on in ssh2's callback itself, not in a promise continuation: when the
      // confirmation, the exit status and the close arrive in one TCP read (a command that fails
      // at once, on a loaded machine), ssh2 emits 'exit' before any microtask runs.
      this.openChannel(command, (opened) => {
        channel = opened;
        opened.on('data', (chunk: Buffer) => stdout.push(admit(chunk)));
        opened.stderr.on('data', (chunk: Buffer) => {
          if (pid !== undefined) return stderr.push(admit(chunk));
          // stderr before the PID line counts against the cap too (the wrapper may never run)
          head += admit(chunk).toString();
          const match = PID_LINE.exec(head);
          if (match) {
            pid = Number(match[1]);
            stderr.push(Buffer.from(head.replace(match[0], '')));
            head = '';
            killRemote();
          }
        });
        opened.on('exit', (code: number | null) => {
          exitCode = typeof code === 'number' ? code : null;
        });
        opened.on('close', settle);
        opened.end(options.stdin);
      }).catch((error: Error) => {
        settled = true;
        clearTimeout(deadline);
        clearTimeout(backstop);
        reject(new ClassifiedError('unreachable', `cannot run a command on ${describe(this.target)}: ${error.message}`, { cause: error }));
      });
    });
  }

  async writeTempFile(content: string): Promise<string> {
    const result = await this.exec(['sh', '-c', WRITE_TEMP_SCRIPT], { stdin: content, timeoutMs: this.fileCommandTimeoutMs });
    if (result.exitCode !== 0) {
      throw new ClassifiedError(
        'internal',
        `cannot write a temporary file on ${describe(this.target)} (exit ${result.exitCode}): ${result.stderr.trim()}`,
      );
    }
    return result.stdout.trim();
  }

  async removeFile(path: string): Promise<void> {
    if (!path.startsWith('/')) throw new Error(`removeFile needs an absolute path, got '${path}'`);
    const result = await this.exec(['rm', '-f', '--', path], { timeoutMs: this.fileCommandTimeoutMs });
    if (result.exitCode !== 0) {
      throw new ClassifiedError(
        'internal',
        `cannot remove ${path} on ${describe(this.target)} (exit ${result.exitCode}): ${result.stderr.trim()}`,
      );
    }
  }

  close(): void {
    this.client.end();
  }
}
