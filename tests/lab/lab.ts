/**
 * Network-namespace lab for integration tests: devices running a real SSH server (OpenSSH or
 * dropbear) and real iperf3 servers, each in its own namespace on a bridge in the root
 * namespace, with known tc shaping and nftables loss. All the work is done by `lab.sh` next to
 * this file (one implementation, usable by hand as well); this module gives it a typed API.
 *
 *   const lab = await createLab({ name: 'ssh', devices: [{ id: 'd1', ssh: 'openssh' }], servers: [{ id: 's1' }] });
 *   ... connect to lab.device('d1').host:22 as lab.device('d1').username with lab.clientKey.privateKey
 *   await lab.destroy();
 *
 * Needs root. Two labs can coexist when their names and subnets differ.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { DeviceTarget } from '../../collector/model.js';

export const LAB_SCRIPT = fileURLToPath(new URL('./lab.sh', import.meta.url));

export type SshServerKind = 'openssh' | 'dropbear';

export interface LabDeviceSpec {
  /** `[a-z0-9][a-z0-9-]{0,30}`, unique in the lab */
  id: string;
  ssh: SshServerKind;
  /** tbf rate in Mbit/s on both directions of the device's link; unshaped when absent */
  rateMbit?: number;
  /** false: the SSH user's PATH has no iperf3 (commands get exit 127). Default true. */
  iperf3?: boolean;
  /** enables password authentication for the SSH user with this password */
  password?: string;
  /** extra environment variables set by the SSH user's login shell */
  env?: Record<string, string>;
  /** extra sshd_config lines (OpenSSH only), e.g. `MaxSessions 1` */
  sshdOptions?: string[];
}

export interface LabServerSpec {
  id: string;
  /** iperf3 server port, default 5201 */
  port?: number;
  /** iperf3 RSA authentication: a fresh key pair and a users file with this user */
  auth?: { username: string; password: string };
  /** tbf rate in Mbit/s on the server's link; unshaped when absent */
  rateMbit?: number;
}

export interface LabSpec {
  /**
   * `[a-z][a-z0-9]{0,4}`. The lab's real name (`lab.name`, in namespace and interface names)
   * adds two characters derived from the process id, so that concurrent test runs of the same
   * file do not collide.
   */
  name: string;
  /** N of the lab's subnet 10.203.N.0/24 (1-254); when absent, derived from the name (the next free one) */
  subnet?: number;
  devices?: LabDeviceSpec[];
  servers?: LabServerSpec[];
}

export interface LabDevice {
  id: string;
  /** network namespace name, for `ip netns exec` */
  ns: string;
  host: string;
  port: number;
  username: string;
  password?: string;
  ssh: SshServerKind;
  /** `SHA256:<base64>` of the current host key, as `ssh-keygen -lf` prints it */
  hostKeyFingerprint: string;
  iperf3: boolean;
}

export interface LabServer {
  id: string;
  ns: string;
  host: string;
  port: number;
  auth?: { username: string; password: string; publicKeyPath: string; publicKeyPem: string };
}

export interface LabExecResult {
  stdout: string;
  stderr: string;
  /** null when killed by a signal */
  exitCode: number | null;
}

export interface LabProcess {
  pid: number;
  argv: string[];
}

export type LossDirection = 'upload' | 'download';

const DEVICE_HOST_BASE = 10; // devices 10.203.N.10-99
const SERVER_HOST_BASE = 100; // servers 10.203.N.100-199
const MAX_DEVICES = 90;
const MAX_SERVERS = 100;

/** Runs lab.sh and returns its key=value output lines. */
async function runScript(args: string[], password?: string): Promise<[string, string][]> {
  const env = { ...process.env };
  delete env.IPL_LAB_PASSWORD;
  if (password !== undefined) env.IPL_LAB_PASSWORD = password;
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(LAB_SCRIPT, args, { env, maxBuffer: 16 << 20 }, (error, out, err) => {
      if (error) reject(new Error(`lab.sh ${args.slice(0, 3).join(' ')} failed: ${err.trim() || error.message}`));
      else resolve(out);
    });
  });
  return stdout
    .split('\n')
    .filter((line) => line.indexOf('=') > 0)
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]);
}

function required(values: [string, string][], key: string): string {
  const found = values.find(([k]) => k === key);
  if (found === undefined) throw new Error(`lab.sh printed no ${key}`);
  return found[1];
}

/** FNV-1a of the name, mapped to 1-254: stable, so a rerun reuses the same subnet. */
export function subnetNumberFor(name: string): number {
  let hash = 0x811c9dc5;
  for (const ch of Buffer.from(name)) hash = Math.imul(hash ^ ch, 0x01000193) >>> 0;
  return (hash % 254) + 1;
}

/** The lab's real name: `name` plus two characters from the process id (see LabSpec.name). */
export function realLabName(name: string): string {
  if (!/^[a-z][a-z0-9]{0,4}$/.test(name)) throw new Error(`lab name '${name}' must match [a-z][a-z0-9]{0,4}`);
  return `${name}${(process.pid % 1296).toString(36).padStart(2, '0')}`;
}

const liveLabs = new Set<string>();
let exitHookInstalled = false;

/** A crashed test must not leave namespaces behind: destroy what is still alive on exit. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const name of liveLabs) spawnSync(LAB_SCRIPT, ['destroy', name], { stdio: 'ignore' });
  });
}

export class Lab {
  readonly devices: LabDevice[] = [];
  readonly servers: LabServer[] = [];
  /** 10.203.N.0/24 */
  readonly subnet: string;
  /** the bridge's address, i.e. the test process as seen from the namespaces */
  readonly gateway: string;
  /** an address in the subnet where nothing answers (connections to it time out) */
  readonly unusedAddress: string;
  private destroyed = false;

  constructor(
    readonly name: string,
    subnetNumber: number,
    /** the lab's state directory (keys, configs, daemon logs) */
    readonly dir: string,
    readonly clientKey: { privateKeyPath: string; publicKeyPath: string; privateKey: Buffer },
  ) {
    this.subnet = `10.203.${subnetNumber}.0/24`;
    this.gateway = `10.203.${subnetNumber}.1`;
    this.unusedAddress = `10.203.${subnetNumber}.254`;
  }

  device(id: string): LabDevice {
    const device = this.devices.find((d) => d.id === id);
    if (!device) throw new Error(`lab ${this.name} has no device '${id}' (devices: ${this.devices.map((d) => d.id).join(', ')})`);
    return device;
  }

  server(id: string): LabServer {
    const server = this.servers.find((s) => s.id === id);
    if (!server) throw new Error(`lab ${this.name} has no server '${id}' (servers: ${this.servers.map((s) => s.id).join(', ')})`);
    return server;
  }

  /** A collector `DeviceTarget` for the device, with key (default) or password credentials. */
  sshTarget(deviceId: string, auth: 'key' | 'password' = 'key'): DeviceTarget {
    const d = this.device(deviceId);
    const target: DeviceTarget = { id: d.id, host: d.host, port: d.port, username: d.username };
    if (auth === 'key') target.privateKey = this.clientKey.privateKey;
    else target.password = d.password;
    return target;
  }

  /** Shapes a device's or server's link to `mbit` Mbit/s in both directions; null removes shaping. */
  async setRate(hostId: string, mbit: number | null): Promise<void> {
    this.hostNs(hostId);
    await runScript(['set-rate', this.name, hostId, mbit === null ? 'off' : String(mbit)]);
  }

  /**
   * Drops `percent` % (integer) of the UDP packets between a device and a server at the receiver
   * (nftables numgen): 'upload' = device to server, 'download' = server to device. 0 removes it.
   */
  async setLoss(serverId: string, deviceId: string, percent: number, direction: LossDirection = 'upload'): Promise<void> {
    this.server(serverId);
    this.device(deviceId);
    await runScript(['set-loss', this.name, serverId, deviceId, String(percent), direction]);
  }

  async stopServer(serverId: string): Promise<void> {
    this.server(serverId);
    await runScript(['stop', this.name, serverId]);
  }

  async startServer(serverId: string): Promise<void> {
    this.server(serverId);
    await runScript(['start', this.name, serverId]);
  }

  /** Stops the device's SSH listener (sessions already open stay up): new connections are refused. */
  async stopSsh(deviceId: string): Promise<void> {
    this.device(deviceId);
    await runScript(['stop', this.name, deviceId]);
  }

  async startSsh(deviceId: string): Promise<void> {
    this.device(deviceId);
    await runScript(['start', this.name, deviceId]);
  }

  /** Restarts the device's SSH server with a new host key; returns (and records) its fingerprint. */
  async rotateHostKey(deviceId: string): Promise<string> {
    const device = this.device(deviceId);
    const values = await runScript(['rotate-host-key', this.name, deviceId]);
    device.hostKeyFingerprint = required(values, 'fingerprint');
    return device.hostKeyFingerprint;
  }

  /** Runs argv as root inside a host's namespace. Never throws for a non-zero exit. */
  exec(hostId: string, argv: string[], options: { stdin?: string; timeoutMs?: number } = {}): Promise<LabExecResult> {
    const ns = this.hostNs(hostId);
    return new Promise((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: 'pipe', timeout: options.timeoutMs ?? 30_000 });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', reject);
      child.stdin.on('error', () => undefined); // EPIPE when the command exits without reading stdin
      child.on('close', (code) =>
        resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), exitCode: code }),
      );
      child.stdin.end(options.stdin ?? '');
    });
  }

  /** Processes running in a host's namespace (e.g. to check that a remote command is gone). */
  async processes(hostId: string): Promise<LabProcess[]> {
    const ns = this.hostNs(hostId);
    const pids = await new Promise<number[]>((resolve, reject) => {
      execFile('ip', ['netns', 'pids', ns], (error, out) =>
        error ? reject(error) : resolve(out.split('\n').filter(Boolean).map(Number)),
      );
    });
    const result: LabProcess[] = [];
    for (const pid of pids) {
      // a process may exit between listing and reading
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline) result.push({ pid, argv: cmdline.replace(/\0$/, '').split('\0') });
    }
    return result;
  }

  /** Removes everything of this lab: processes, namespaces, links, state directory. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    liveLabs.delete(this.name);
    await runScript(['destroy', this.name]);
  }

  private hostNs(hostId: string): string {
    const host = this.devices.find((d) => d.id === hostId) ?? this.servers.find((s) => s.id === hostId);
    if (!host) throw new Error(`lab ${this.name} has no host '${hostId}'`);
    return host.ns;
  }
}

export async function createLab(spec: LabSpec): Promise<Lab> {
  const devices = spec.devices ?? [];
  const servers = spec.servers ?? [];
  const ids = [...devices, ...servers].map((h) => h.id);
  const duplicate = ids.find((id, i) => ids.indexOf(id) !== i);
  if (duplicate !== undefined) throw new Error(`lab ${spec.name}: host id '${duplicate}' is used twice`);
  if (devices.length > MAX_DEVICES || servers.length > MAX_SERVERS) {
    throw new Error(`lab ${spec.name}: at most ${MAX_DEVICES} devices and ${MAX_SERVERS} servers`);
  }
  const name = realLabName(spec.name);
  let subnetNumber = spec.subnet ?? subnetNumberFor(name);
  let created: [string, string][] | undefined;
  for (let attempt = 1; created === undefined; attempt++) {
    try {
      created = await runScript(['create', name, String(subnetNumber), String(process.pid)]);
    } catch (error) {
      const retry = spec.subnet === undefined && attempt < 16 && /already used by interface/.test(String(error));
      if (!retry) throw error;
      subnetNumber = (subnetNumber % 254) + 1;
    }
  }
  const privateKeyPath = required(created, 'client_key');
  const lab = new Lab(name, subnetNumber, required(created, 'dir'), {
    privateKeyPath,
    publicKeyPath: `${privateKeyPath}.pub`,
    privateKey: readFileSync(privateKeyPath),
  });
  liveLabs.add(name);
  installExitHook();
  // allSettled: on failure, destroy only after every lab.sh call has finished
  const results = await Promise.allSettled([
    ...devices.map(async (d, i) => {
      const args = ['add-device', name, d.id, String(DEVICE_HOST_BASE + i), d.ssh];
      if (d.rateMbit !== undefined) args.push('--rate', String(d.rateMbit));
      if (d.iperf3 === false) args.push('--no-iperf3');
      for (const [k, v] of Object.entries(d.env ?? {})) args.push('--env', `${k}=${v}`);
      for (const line of d.sshdOptions ?? []) args.push('--sshd-option', line);
      const values = await runScript(args, d.password);
      lab.devices[i] = {
        id: d.id,
        ns: required(values, 'ns'),
        host: required(values, 'ip'),
        port: 22,
        username: required(values, 'user'),
        password: d.password,
        ssh: d.ssh,
        hostKeyFingerprint: required(values, 'fingerprint'),
        iperf3: d.iperf3 !== false,
      };
    }),
    ...servers.map(async (s, i) => {
      const port = s.port ?? 5201;
      const args = ['add-server', name, s.id, String(SERVER_HOST_BASE + i), String(port)];
      if (s.auth) args.push('--auth', s.auth.username);
      const values = await runScript(args, s.auth?.password);
      const server: LabServer = { id: s.id, ns: required(values, 'ns'), host: required(values, 'ip'), port };
      if (s.auth) {
        const publicKeyPath = required(values, 'public_key');
        server.auth = { ...s.auth, publicKeyPath, publicKeyPem: readFileSync(publicKeyPath, 'utf8') };
      }
      lab.servers[i] = server;
      if (s.rateMbit !== undefined) await runScript(['set-rate', name, s.id, String(s.rateMbit)]);
    }),
  ]);
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) {
    await lab.destroy();
    throw failure.reason;
  }
  return lab;
}

/** Removes leftovers of labs whose owner process is gone (all labs with `all`). Returns their names. */
export async function cleanupLabs(options: { all?: boolean } = {}): Promise<string[]> {
  const values = await runScript(options.all ? ['cleanup', '--all'] : ['cleanup']);
  return values.filter(([k]) => k === 'removed').map(([, v]) => v);
}
