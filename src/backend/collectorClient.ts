/**
 * Typed client of the collector's HTTP API (contract/api.ts). Every request carries the
 * bearer token and a deadline; failures become one of three errors a caller can turn into
 * a message that says what to fix. The token never appears in an error message.
 */
import {
  API_PREFIX,
  type ApiErrorBody,
  type DeviceEntry,
  type DeviceInfo,
  type HealthResponse,
  type IntervalsResponse,
  type LatestParams,
  type LatestResponse,
  type RunNowResponse,
  type RunRecord,
  type RunStatus,
  type SeriesParams,
  type SeriesColumnsResponse,
  type SeriesResponse,
  type ServerInfo,
  type SettingsResponse,
  seriesToColumns,
} from '../../contract/api.js';
import {
  deviceEntriesResponseSchema,
  devicesResponseSchema,
  healthResponseSchema,
  intervalsResponseSchema,
  latestResponseSchema,
  runNowResponseSchema,
  runsResponseSchema,
  seriesColumnsReplySchema,
  seriesResponseSchema,
  serversResponseSchema,
  settingsResponseSchema,
} from '../../contract/apiResponses.js';
import { decodeSeriesBinary, SERIES_BINARY_TYPE } from '../../contract/seriesBlock.js';
import { fieldErrors, formatFieldErrors, type Settings } from '../../contract/settings.js';
import type { z } from 'zod';

export const DEFAULT_COLLECTOR_TIMEOUT_MS = 15_000;

/**
 * How long the inventory a query resolves its devices against (GET /devices) is reused:
 * a dashboard's panels and a refresh share one request. A device added, removed or relabelled
 * on the collector shows in queries at most this much later; a Run now through this plugin
 * forgets it at once (docs/plugin-backend.md, "Inventory cache").
 */
export const INVENTORY_CACHE_MS = 5_000;

/** The collector could not be reached, or did not answer before the deadline. */
export class CollectorUnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly timedOut: boolean,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CollectorUnreachableError';
  }
}

/** The collector rejected the API token (401 or 403). */
export class CollectorAuthError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'CollectorAuthError';
  }
}

/** The collector answered with another error status; `message` is the collector's own. */
export class CollectorRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: { field: string; message: string }[] = [],
  ) {
    super(message);
    this.name = 'CollectorRequestError';
  }
}

export type CollectorError = CollectorUnreachableError | CollectorAuthError | CollectorRequestError;

export function isCollectorError(error: unknown): error is CollectorError {
  return (
    error instanceof CollectorUnreachableError || error instanceof CollectorAuthError || error instanceof CollectorRequestError
  );
}

export interface CollectorClientOptions {
  /** e.g. http://collector:8080 (a trailing slash or path prefix is kept) */
  baseUrl: string;
  token: string;
  timeoutMs?: number;
  /** told of every round-trip: method, API path, HTTP status (null: no answer), seconds */
  observe?: (method: string, path: string, status: number | null, seconds: number) => void;
  /** how long queryInventory() reuses an answer (default INVENTORY_CACHE_MS; 0: never) */
  inventoryCacheMs?: number;
  /** clock of the inventory cache (tests) */
  now?: () => number;
}

export type SeriesRequest = SeriesParams;
export type LatestRequest = LatestParams;

export interface RunsRequest {
  devices?: string[];
  status?: RunStatus[];
  fromMs?: number;
  toMs?: number;
  limit?: number;
}

type QueryValue = string | number | boolean | undefined | readonly (string | number)[];

export class CollectorClient {
  readonly baseUrl: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly observe: NonNullable<CollectorClientOptions['observe']>;

  constructor(options: CollectorClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_COLLECTOR_TIMEOUT_MS;
    this.observe = options.observe ?? (() => undefined);
    this.inventoryCacheMs = options.inventoryCacheMs ?? INVENTORY_CACHE_MS;
    this.now = options.now ?? (() => performance.now());
  }

  private readonly inventoryCacheMs: number;
  private readonly now: () => number;
  private readonly inventory = new RecentPromise<DeviceInfo[]>();
  private readonly entries = new RecentPromise<DeviceEntry[]>();
  /** the newest GET /series form the collector has not refused (an older collector refuses newer `format` values) */
  private seriesForm: 'binary' | 'columns' | 'points' = 'binary';

  /**
   * The inventory as queries use it: one GET /devices shared by the queries of the last
   * inventoryCacheMs (requests in flight included); a failed request is not kept. The query
   * editor's device list (devices()) always asks the collector.
   */
  queryInventory(): Promise<DeviceInfo[]> {
    const now = this.now();
    return this.inventory.fresh(now, this.inventoryCacheMs) ?? this.inventory.keep(now, this.inventoryCacheMs, this.devices());
  }

  /**
   * The devices as queries that need no last runs resolve them (ids, labels): GET
   * /devices?lastRun=false, cached as queryInventory() is; a fresh full inventory answers too.
   * At 5,000 devices (docs/benchmarks.md) the full answer is 5.7 MB, this one 0.6 MB.
   */
  queryDevices(): Promise<DeviceEntry[]> {
    const now = this.now();
    return (
      this.inventory.fresh(now, this.inventoryCacheMs) ??
      this.entries.fresh(now, this.inventoryCacheMs) ??
      this.entries.keep(now, this.inventoryCacheMs, this.deviceEntries())
    );
  }

  /** Forgets the cached inventory (after a Run now: queries then see the devices' new last runs). */
  forgetInventory(): void {
    this.inventory.clear();
    this.entries.clear();
  }

  health(signal?: AbortSignal): Promise<HealthResponse> {
    return this.request(healthResponseSchema, 'GET', '/health', {}, undefined, signal);
  }

  async devices(signal?: AbortSignal): Promise<DeviceInfo[]> {
    return (await this.request(devicesResponseSchema, 'GET', '/devices', {}, undefined, signal)).devices;
  }

  /** The devices without their last runs (GET /devices?lastRun=false; a collector older than that parameter ignores it). */
  async deviceEntries(signal?: AbortSignal): Promise<DeviceEntry[]> {
    return (await this.request(deviceEntriesResponseSchema, 'GET', '/devices', { lastRun: false }, undefined, signal)).devices;
  }

  async servers(signal?: AbortSignal): Promise<ServerInfo[]> {
    return (await this.request(serversResponseSchema, 'GET', '/servers', {}, undefined, signal)).servers;
  }

  settings(signal?: AbortSignal): Promise<SettingsResponse> {
    return this.request(settingsResponseSchema, 'GET', '/settings', {}, undefined, signal);
  }

  putSettings(settings: Settings, signal?: AbortSignal): Promise<SettingsResponse> {
    return this.request(settingsResponseSchema, 'PUT', '/settings', {}, settings, signal);
  }

  runNow(devices: string[], signal?: AbortSignal): Promise<RunNowResponse> {
    this.forgetInventory();
    return this.request(runNowResponseSchema, 'POST', '/runs', {}, { devices }, signal);
  }

  async runs(query: RunsRequest, signal?: AbortSignal): Promise<RunRecord[]> {
    const params = {
      device: query.devices,
      status: query.status,
      from: query.fromMs,
      to: query.toMs,
      limit: query.limit,
    };
    return (await this.request(runsResponseSchema, 'GET', '/runs', params, undefined, signal)).runs;
  }

  intervals(runId: number, signal?: AbortSignal): Promise<IntervalsResponse> {
    return this.request(intervalsResponseSchema, 'GET', `/runs/${encodeURIComponent(String(runId))}/intervals`, {}, undefined, signal);
  }

  series(query: SeriesRequest, signal?: AbortSignal): Promise<SeriesResponse> {
    return this.request(seriesResponseSchema, 'GET', '/series', seriesParams(query), undefined, signal);
  }

  /**
   * The same series as columns, read from GET /series?format=binary: no number parsed, times and
   * values handed on as Float64Arrays. A collector older than a form refuses its `format`: it is
   * then asked for the next older one (binary, then columns, then points, which are turned into
   * columns here) from that answer on.
   */
  async seriesColumns(query: SeriesRequest, signal?: AbortSignal): Promise<SeriesColumnsResponse> {
    for (;;) {
      try {
        if (this.seriesForm === 'binary') return await this.seriesAsBinary(query, signal);
        if (this.seriesForm === 'columns') return await this.seriesAsColumns(query, signal);
        break;
      } catch (err) {
        if (!(err instanceof CollectorRequestError && err.status === 400 && err.fields.some((f) => f.field === 'format'))) throw err;
        this.seriesForm = this.seriesForm === 'binary' ? 'columns' : 'points';
      }
    }
    const answer = await this.series(query, signal);
    return { fromMs: answer.fromMs, toMs: answer.toMs, maxPoints: answer.maxPoints, format: 'columns', series: answer.series.map(seriesToColumns) };
  }

  private seriesAsColumns(query: SeriesRequest, signal?: AbortSignal): Promise<SeriesColumnsResponse> {
    return this.request(seriesColumnsReplySchema, 'GET', '/series', { ...seriesParams(query), format: 'columns' }, undefined, signal);
  }

  private async seriesAsBinary(query: SeriesRequest, signal?: AbortSignal): Promise<SeriesColumnsResponse> {
    const bytes = await this.exchange('GET', '/series', { ...seriesParams(query), format: 'binary' }, undefined, signal, SERIES_BINARY_TYPE, (r) => r.arrayBuffer());
    try {
      return decodeSeriesBinary(bytes);
    } catch (err) {
      throw new CollectorRequestError(
        502,
        'malformed-reply',
        `the collector's answer to GET ${API_PREFIX}/series?format=binary cannot be read (${(err as Error).message}): ` +
          `is ${this.baseUrl} the collector, and are the collector and the plugin the same version?`,
      );
    }
  }

  latest(query: LatestRequest, signal?: AbortSignal): Promise<LatestResponse> {
    const params = { device: query.devices, metric: query.metrics, server: query.server, direction: query.direction, from: query.fromMs, to: query.toMs };
    return this.request(latestResponseSchema, 'GET', '/latest', params, undefined, signal);
  }

  /** Builds the URL of an API path with repeated query parameters for lists. */
  url(path: string, params: Record<string, QueryValue> = {}): string {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) search.append(key, String(v));
      else search.append(key, String(value));
    }
    const qs = search.toString();
    return `${this.baseUrl}${API_PREFIX}${path}${qs ? `?${qs}` : ''}`;
  }

  private async request<T>(
    schema: z.ZodType<T>,
    method: string,
    path: string,
    params: Record<string, QueryValue>,
    body: unknown,
    signal?: AbortSignal,
  ): Promise<T> {
    const text = await this.exchange(method, path, params, body, signal, 'application/json', (response) => response.text());
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      // e.g. the URL points at a web server that is not the collector
      throw new CollectorRequestError(502, 'not-json', `${method} ${API_PREFIX}${path} did not answer JSON: is ${this.baseUrl} the collector?`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new CollectorRequestError(
        502,
        'malformed-reply',
        `the collector's answer to ${method} ${API_PREFIX}${path} does not match this plugin's contract (${formatFieldErrors(fieldErrors(parsed.error)).slice(0, 300)}): ` +
          `is ${this.baseUrl} the collector, and are the collector and the plugin the same version?`,
      );
    }
    return parsed.data;
  }

  /**
   * One round-trip with the bearer token and the deadline: the body of a 2xx answer as `read`
   * gives it; no answer becomes CollectorUnreachableError, another status one of the other errors.
   */
  private async exchange<T>(
    method: string,
    path: string,
    params: Record<string, QueryValue>,
    body: unknown,
    signal: AbortSignal | undefined,
    accept: string,
    read: (response: Response) => Promise<T>,
  ): Promise<T> {
    const url = this.url(path, params);
    const deadline = AbortSignal.timeout(this.timeoutMs);
    const started = performance.now();
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
      });
    } catch (error) {
      this.observe(method, path, null, (performance.now() - started) / 1000);
      const timedOut = deadline.aborted;
      const reason = timedOut ? `no answer within ${this.timeoutMs} ms` : describeNetworkError(error);
      throw new CollectorUnreachableError(this.baseUrl, timedOut, `cannot reach the collector at ${this.baseUrl}: ${reason}`, {
        cause: error,
      });
    }
    if (response.ok) {
      const content = await read(response);
      this.observe(method, path, response.status, (performance.now() - started) / 1000);
      return content;
    }
    const text = await response.text();
    this.observe(method, path, response.status, (performance.now() - started) / 1000);
    const apiError = parseApiError(text);
    if (response.status === 401 || response.status === 403) {
      throw new CollectorAuthError(
        response.status,
        `the collector rejected the API token (HTTP ${response.status}${apiError ? `: ${apiError.message}` : ''})`,
      );
    }
    throw new CollectorRequestError(
      response.status,
      apiError?.error ?? `http-${response.status}`,
      apiError?.message ?? `the collector answered HTTP ${response.status} to ${method} ${API_PREFIX}${path}`,
      apiError?.fields ?? [],
    );
  }
}

/** GET /series parameters of a series request (lists repeat, undefined ones are left out). */
function seriesParams(query: SeriesRequest): Record<string, QueryValue> {
  return {
    device: query.devices,
    metric: query.metrics,
    from: query.fromMs,
    to: query.toMs,
    maxPoints: query.maxPoints,
    server: query.server,
    direction: query.direction,
    splitByServer: query.splitByServer,
  };
}

function parseApiError(text: string): ApiErrorBody | null {
  try {
    const parsed = JSON.parse(text) as Partial<ApiErrorBody>;
    if (typeof parsed.message === 'string') return { error: String(parsed.error ?? 'error'), message: parsed.message, fields: parsed.fields };
  } catch {
    // not JSON: fall through to the generic message
  }
  return null;
}

/** fetch wraps socket errors in a TypeError whose `cause` carries the code (ECONNREFUSED, ENOTFOUND). */
function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${cause.code}${cause.message && !cause.message.includes(cause.code) ? ` (${cause.message})` : ''}`;
  if (cause?.message) return cause.message;
  return error instanceof Error ? error.message : String(error);
}

/** A request's promise, reused while it is younger than a given age; a failed one is dropped. */
class RecentPromise<T> {
  private entry: { atMs: number; value: Promise<T> } | null = null;

  /** The kept promise when it is younger than `maxAgeMs` at `now`. */
  fresh(now: number, maxAgeMs: number): Promise<T> | undefined {
    return this.entry && now - this.entry.atMs < maxAgeMs ? this.entry.value : undefined;
  }

  /** Keeps `value` from `now` (not at all when `maxAgeMs` is 0), until it fails; answers it. */
  keep(now: number, maxAgeMs: number, value: Promise<T>): Promise<T> {
    const entry = { atMs: now, value };
    this.entry = maxAgeMs > 0 ? entry : null;
    value.catch(() => {
      if (this.entry === entry) this.entry = null;
    });
    return value;
  }

  clear(): void {
    this.entry = null;
  }
}
