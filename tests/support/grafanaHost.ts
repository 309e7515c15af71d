/**
 * The plugin executable as Grafana's own code sees it: tests/grafana-host (Go, on
 * grafana-plugin-sdk-go and hashicorp/go-plugin) launches it as Grafana's plugin manager does,
 * decodes every frame with the SDK, checks each frame's data type as server-side expressions
 * read it, and answers with the JSON Grafana's HTTP API would send. Here that JSON is read
 * with Grafana's frontend code (`dataFrameFromJSON` of @grafana/data), as a panel reads it.
 *
 * One GrafanaHost is one plugin process serving many calls (the host's session mode: JSON
 * lines on stdin/stdout). A call the SDK judge rejects throws GrafanaHostRejection.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dataFrameFromJSON, type DataFrame, type DataFrameJSON } from '@grafana/data';
import { savedSecure } from './pluginClient.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const GRAFANA_HOST_DIR = join(ROOT, 'tests/grafana-host');
/** build output, ignored by git (tests/grafana-host/.gitignore) */
export const GRAFANA_HOST_BINARY = join(GRAFANA_HOST_DIR, 'bin/grafana-host');

let built = false;

/**
 * `go build` of the host (modules from the Go proxy on the first run), once per test file. Go's
 * build cache makes this a second or two when nothing changed, so the binary is never stale.
 * No VCS stamping: a worktree or a checkout owned by another user must not fail the build.
 */
export function ensureGrafanaHostBuilt(): string {
  if (built) return GRAFANA_HOST_BINARY;
  try {
    execFileSync('go', ['build', '-buildvcs=false', '-o', GRAFANA_HOST_BINARY, '.'], { cwd: GRAFANA_HOST_DIR, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? '');
    throw new Error(`go build in tests/grafana-host failed (Go 1.26 or newer must be on PATH): ${stderr || (error as Error).message}`);
  }
  built = true;
  return GRAFANA_HOST_BINARY;
}

/** Grafana's org roles; `null` user: a call without a signed-in user (e.g. alert evaluation). */
export type OrgRole = 'Viewer' | 'Editor' | 'Admin' | 'None';
export interface HostUser {
  login: string;
  role: OrgRole;
  name?: string;
  email?: string;
}
export const ADMIN: HostUser = { login: 'admin', role: 'Admin' };

/** The data source instance settings Grafana sends (jsonData as saved, secure data decrypted). */
export interface HostDataSource {
  uid?: string;
  id?: number;
  name?: string;
  lastUpdatedMS?: number;
  jsonData?: unknown;
  secure?: Record<string, string>;
  /** send `secure` exactly as given (default: a bare apiToken is bound to jsonData.collectorUrl, as the config editor saves it) */
  rawSecure?: boolean;
}

export interface HostCallOptions {
  /** default ADMIN */
  user?: HostUser | null;
  orgId?: number;
}

export interface HostQuery {
  refId: string;
  json?: unknown;
  /** sent byte for byte instead of JSON.stringify(json) */
  rawJson?: string;
  fromMs: number;
  toMs: number;
  maxDataPoints?: number;
  intervalMs?: number;
}

/** One query's answer as /api/ds/query sends it, frames read by @grafana/data. */
export interface HostDataResponse {
  status: number;
  error?: string;
  errorSource?: string;
  frames: DataFrame[];
  /** the frames as the SDK marshalled them */
  json: DataFrameJSON[];
}

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
  problems?: string[];
}

/** The SDK judge rejected an answer; `problems` says why, `result` is what it could still decode. */
/** One metric family of a CollectMetrics answer, as prometheus/common/expfmt parsed it. */
export interface HostMetricFamily {
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  samples: Array<{ labels: Record<string, string>; value?: number; count?: number; sum?: number }>;
}

export class GrafanaHostRejection extends Error {
  constructor(
    message: string,
    readonly problems: string[],
    readonly result: unknown,
  ) {
    super(message);
    this.name = 'GrafanaHostRejection';
  }
}

export interface GrafanaHostOptions {
  /** the plugin executable; plugin.json must be next to it */
  plugin: string;
  /** GF_VERSION; the host's default otherwise */
  grafanaVersion?: string;
  /** added to Grafana's environment for the plugin */
  env?: Record<string, string>;
}

export class GrafanaHost {
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private buffered = '';
  private stderr = '';
  private readonly logDir: string;
  readonly exited: Promise<number | null>;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    logDir: string,
  ) {
    this.logDir = logDir;
    child.stdout.on('data', (chunk: Buffer) => this.onStdout(chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    // a request written while the host exits: the exit below answers it
    child.stdin.on('error', () => undefined);
    this.exited = new Promise((resolveExit) =>
      // 'close': after the exit and the last of its stderr
      child.on('close', (code) => {
        const failure = this.exitError();
        for (const { reject } of this.pending.values()) reject(failure);
        this.pending.clear();
        resolveExit(code);
      }),
    );
  }

  /** Starts the host, which launches the plugin; calls wait for the plugin's handshake. */
  static start(options: GrafanaHostOptions): GrafanaHost {
    const binary = ensureGrafanaHostBuilt();
    const logDir = mkdtempSync(join(tmpdir(), 'grafana-host-'));
    const args = ['--plugin', options.plugin, '--plugin-log', join(logDir, 'plugin.log')];
    if (options.grafanaVersion) args.push('--grafana-version', options.grafanaVersion);
    for (const [k, v] of Object.entries(options.env ?? {})) args.push('--env', `${k}=${v}`);
    return new GrafanaHost(spawn(binary, args), logDir);
  }

  private exitError(): Error {
    return new Error(`grafana-host exited (${this.child.exitCode}) before answering: ${this.stderr.trim()}`);
  }

  private onStdout(text: string): void {
    this.buffered += text;
    let newline: number;
    while ((newline = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 1);
      const reply = JSON.parse(line) as Reply;
      this.pending.get(reply.id)?.resolve(reply);
      this.pending.delete(reply.id);
    }
  }

  /** One raw call of the host's protocol (tests/grafana-host/README.md); resolves with the reply, rejected or not. */
  call(request: Record<string, unknown>): Promise<Reply> {
    const id = this.nextId++;
    return new Promise<Reply>((resolveReply, reject) => {
      if (this.child.exitCode !== null) {
        reject(this.exitError());
        return;
      }
      this.pending.set(id, { resolve: resolveReply, reject });
      this.child.stdin.write(`${JSON.stringify({ ...request, id })}\n`);
    });
  }

  private async accepted<T>(request: Record<string, unknown>): Promise<T> {
    const reply = await this.call(request);
    if (!reply.ok) throw new GrafanaHostRejection(reply.error ?? 'rejected', reply.problems ?? [], reply.result);
    return reply.result as T;
  }

  context(ds: HostDataSource, options: HostCallOptions = {}): Record<string, unknown> {
    return {
      orgId: options.orgId ?? 1,
      user: options.user === undefined ? ADMIN : options.user,
      datasource: {
        id: ds.id ?? 1,
        uid: ds.uid ?? 'iperf3-ds',
        name: ds.name ?? 'iperf3',
        jsonData: ds.jsonData ?? {},
        decryptedSecureJsonData: savedSecure(ds.secure, ds.jsonData, ds.rawSecure),
        lastUpdatedMS: ds.lastUpdatedMS ?? 1,
      },
    };
  }

  /** POST /api/ds/query; alert evaluation (`fromAlert`) has no user and the FromAlert header. */
  async query(
    ds: HostDataSource,
    queries: HostQuery[],
    options: HostCallOptions & { fromAlert?: boolean } = {},
  ): Promise<Record<string, HostDataResponse>> {
    const user = options.fromAlert && options.user === undefined ? null : options.user;
    const result = await this.accepted<{ results: Record<string, { status: number; error?: string; errorSource?: string; frames?: DataFrameJSON[] }> }>({
      call: 'query',
      context: this.context(ds, { ...options, user }),
      headers: options.fromAlert ? { FromAlert: 'true' } : {},
      queries: queries.map((q) => ({
        refId: q.refId,
        // Grafana copies the model's queryType into DataQuery.queryType
        queryType: typeof (q.json as { queryType?: unknown } | null)?.queryType === 'string' ? (q.json as { queryType: string }).queryType : '',
        maxDataPoints: q.maxDataPoints ?? 1000,
        intervalMs: q.intervalMs ?? 60_000,
        timeRange: { from: q.fromMs, to: q.toMs },
        ...(q.rawJson === undefined ? { json: q.json } : { rawJson: q.rawJson }),
      })),
    });
    return Object.fromEntries(
      Object.entries(result.results).map(([refId, r]) => [
        refId,
        { status: r.status, error: r.error, errorSource: r.errorSource, frames: (r.frames ?? []).map(dataFrameFromJSON), json: r.frames ?? [] },
      ]),
    );
  }

  /** GET /api/datasources/uid/:uid/health */
  checkHealth(ds: HostDataSource, options: HostCallOptions = {}): Promise<{ status: 'OK' | 'ERROR'; message: string; details?: Record<string, unknown> }> {
    return this.accepted({ call: 'check-health', context: this.context(ds, options) });
  }

  /** /api/datasources/uid/:uid/resources/<path> */
  resource(
    ds: HostDataSource,
    path: string,
    options: HostCallOptions & { method?: string; query?: string; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; headers: Record<string, string[]>; body?: unknown; bodyText?: string }> {
    return this.accepted({
      call: 'resource',
      context: this.context(ds, options),
      path,
      method: options.method ?? 'GET',
      query: options.query ?? '',
      headers: options.headers ?? {},
      ...(options.body === undefined ? {} : typeof options.body === 'string' ? { bodyText: options.body } : { body: options.body }),
    });
  }

  /** CollectMetrics; `families` is the text as Prometheus' own parser (expfmt) reads it. */
  metrics(ds: HostDataSource): Promise<{ prometheus: string; families: Record<string, HostMetricFamily> }> {
    return this.accepted({ call: 'metrics', context: this.context(ds) });
  }

  /** go-plugin's Kill, as Grafana stops a plugin: GRPCController/Shutdown, 2 s, then SIGKILL. */
  shutdown(): Promise<{ exitCode: number; graceful: boolean; ms: number; state: string; stdout: string }> {
    return this.accepted({ call: 'shutdown' });
  }

  /** The plugin's stderr as go-plugin relayed it (hclog JSON lines written by the host). */
  pluginLog(): Record<string, unknown>[] {
    let text = '';
    try {
      text = readFileSync(join(this.logDir, 'plugin.log'), 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** Ends the session (the host stops the plugin if still running) and waits for the host to exit. */
  async close(): Promise<number | null> {
    if (this.child.exitCode === null) this.child.stdin.end();
    const code = await this.exited;
    rmSync(this.logDir, { recursive: true, force: true });
    return code;
  }
}

/** A field's values by name, as a panel sees them (±Inf and NaN restored from the JSON entities). */
export function values(frame: DataFrame, name: string): unknown[] {
  const field = frame.fields.find((f) => f.name === name);
  if (!field) throw new Error(`frame ${frame.name ?? ''} has no field ${name} (fields: ${frame.fields.map((f) => f.name).join(', ')})`);
  return [...field.values];
}

/**
 * Frames judged without a plugin (`grafana-host decode`): decoded by the Go SDK as one
 * DataResponse with status 200, checked like a QueryData answer; throws GrafanaHostRejection
 * when rejected. For encoder unit tests.
 */
export function judgeFrames(frames: Uint8Array[], options: { refId?: string; fromAlert?: boolean } = {}): { frames: DataFrame[]; json: DataFrameJSON[] } {
  const binary = ensureGrafanaHostBuilt();
  const request = { refId: options.refId ?? 'A', fromAlert: options.fromAlert ?? false, frames: frames.map((f) => Buffer.from(f).toString('base64')) };
  let stdout: string;
  try {
    stdout = execFileSync(binary, ['decode'], { input: JSON.stringify(request), encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; status?: number };
    const problems = (e.stderr ?? '').split('\n').filter((l) => l.startsWith('  - ')).map((l) => l.slice(4));
    throw new GrafanaHostRejection(`grafana-host decode exited ${e.status}: ${e.stderr ?? ''}`, problems, e.stdout ? JSON.parse(e.stdout) : undefined);
  }
  const result = JSON.parse(stdout) as { results: Record<string, { frames?: DataFrameJSON[] }> };
  const json = result.results[request.refId]?.frames ?? [];
  return { frames: json.map(dataFrameFromJSON), json };
}
