/**
 * Passing secrets (the iperf3 password) as environment variables of a remote command without
 * putting them on a command line: OpenSSH refuses SSH "env" requests by default, and a command
 * line is visible to every user of the device through `ps`. The values travel on stdin, one line
 * each, and a POSIX sh wrapper reads and exports them before exec'ing the command.
 */
import type { DeviceSession, ExecOptions, ExecResult } from '../model.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Runs argv with `env` added to its environment; `options.stdin` still reaches the command after the values. */
export function execWithSecretEnv(
  session: DeviceSession,
  argv: string[],
  env: Record<string, string>,
  options: ExecOptions,
): Promise<ExecResult> {
  const entries = Object.entries(env);
  for (const [name, value] of entries) {
    if (!ENV_NAME.test(name)) throw new Error(`environment variable name '${name}' must match ${ENV_NAME.source}`);
    // the value must fit on one line of stdin; the message names the variable, never the value
    if (/[\n\0]/.test(value)) throw new Error(`environment variable ${name} must not contain a newline or NUL`);
  }
  const script = entries.map(([name]) => `IFS= read -r ${name}; export ${name}; `).join('') + 'exec "$@"';
  const stdin = entries.map(([, value]) => `${value}\n`).join('') + (options.stdin ?? '');
  return session.exec(['sh', '-c', script, 'sh', ...argv], { ...options, stdin });
}
