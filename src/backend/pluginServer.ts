/**
 * The gRPC server Grafana talks to: pluginv2 Data, Diagnostics and Resource, plus what
 * hashicorp/go-plugin needs (grpc.health.v1 reporting "plugin" SERVING, and
 * plugin.GRPCController/Shutdown).
 */
import { format } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import pLimit from 'p-limit';
import { checkHealth } from './checkHealth.js';
import { HeapRelease, type HeapReleaseOptions } from './heapRelease.js';
import { InstanceManager, SettingsError, type DataSourceInstance, type DataSourceInstanceSettingsMessage } from './instanceSettings.js';
import type { PluginLogger } from './logger.js';
import { loadPluginProtos } from './protoDefinitions.js';
import { runQuery, type DataQueryMessage, type DataResponseMessage } from './queryData.js';
import { describeError } from './queryErrors.js';
import { PluginMetrics, queryTypeOf } from './pluginMetrics.js';
import { handleResource, jsonResponse, RESOURCE_PATHS, staticResource, type ResourceResponse } from './resources.js';
import { formatFieldErrors } from '../../contract/settings.js';

/** go-plugin's core protocol version and Grafana's plugin protocol version. */
export const CORE_PROTOCOL_VERSION = 1;
export const APP_PROTOCOL_VERSION = 2;

/** As grafana-plugin-sdk-go: receive up to 16 MiB, send without limit (frames can be large). */
export const MAX_RECEIVE_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Queries of one request run concurrently, at most this many at a time. */
const QUERY_CONCURRENCY = 4;

interface PluginContextMessage {
  orgId?: number;
  pluginId?: string;
  user?: { login?: string; role?: string } | null;
  dataSourceInstanceSettings?: DataSourceInstanceSettingsMessage | null;
}

export interface PluginServerOptions {
  logger: PluginLogger;
  now?: () => number;
  collectorTimeoutMs?: number;
  /** called after GRPCController/Shutdown has been answered */
  onShutdownRequest?: () => void;
  /** when memory is given back after a large answer (heapRelease.ts; default: its defaults) */
  heapRelease?: Pick<HeapReleaseOptions, 'thresholdBytes' | 'delayMs'>;
}

/** Grafana org roles that may change or start something; any role may read. */
const CHANGING_ROLES = new Set(['Editor', 'Admin']);

/**
 * Grafana lets every role that may query a data source call its resources, Viewers and
 * anonymous users included: anything but a read needs an Editor or an Admin.
 */
export function refuseChange(method: string, user: PluginContextMessage['user']): ResourceResponse | null {
  if (['GET', 'HEAD'].includes(method.toUpperCase())) return null;
  if (user?.role && CHANGING_ROLES.has(user.role)) return null;
  const who = user?.role ? `your role is ${user.role}` : 'no user is signed in';
  return jsonResponse(403, { error: 'forbidden', message: `starting runs needs the Editor or Admin role in this organization (${who}); ask an Editor or Admin` });
}

export class PluginServer {
  private readonly server: grpc.Server;
  private readonly instances: InstanceManager;
  private readonly logger: PluginLogger;
  private readonly now: () => number;
  private readonly watchers = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  private stopping: Promise<void> | null = null;
  /** what CollectMetrics answers */
  readonly metrics = new PluginMetrics(RESOURCE_PATHS);
  private readonly heapRelease: HeapRelease;
  port = 0;

  constructor(private readonly options: PluginServerOptions) {
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.heapRelease = new HeapRelease({ ...options.heapRelease, onRelease: (seconds) => this.metrics.heapRelease(seconds) });
    this.instances = new InstanceManager({
      collectorTimeoutMs: options.collectorTimeoutMs,
      observeCollector: (method, path, status, seconds) => this.metrics.collectorRequest(method, path, status, seconds),
      onNewInstance: (instance) => this.pushSettings(instance),
    });
    // grpc-js logs with console.error (stderr) in its own format; Grafana expects hclog JSON
    // there. Its messages (e.g. a port of the range already taken) are debugging detail.
    const grpcLog = (...args: unknown[]): void => this.logger.debug({ component: 'grpc-js' }, format(...args));
    grpc.setLogger({ error: grpcLog, info: grpcLog, debug: grpcLog });
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': MAX_RECEIVE_MESSAGE_BYTES,
      'grpc.max_send_message_length': -1,
    });
    const protos = loadPluginProtos();
    this.server.addService(protos.Data.service, { QueryData: this.queryData });
    this.server.addService(protos.Diagnostics.service, { CheckHealth: this.checkHealth, CollectMetrics: this.collectMetrics });
    this.server.addService(protos.Resource.service, { CallResource: this.callResource });
    this.server.addService(protos.Health.service, { Check: this.healthCheck, Watch: this.healthWatch });
    this.server.addService(protos.GRPCController.service, { Shutdown: this.shutdown });
  }

  /** Binds the first free port from `minPort` to `maxPort` (0/0: any free port), as go-plugin does. */
  async listen(host = '127.0.0.1', minPort = 0, maxPort = 0): Promise<number> {
    if (minPort > maxPort) throw new Error(`PLUGIN_MIN_PORT (${minPort}) is greater than PLUGIN_MAX_PORT (${maxPort})`);
    for (let port = minPort; port <= maxPort; port++) {
      try {
        this.port = await new Promise<number>((resolve, reject) =>
          this.server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
            error ? reject(error) : resolve(bound),
          ),
        );
        return this.port;
      } catch (error) {
        this.logger.debug({ port, error: (error as Error).message }, 'port not available');
      }
    }
    throw new Error(`no free port from ${minPort} to ${maxPort} (PLUGIN_MIN_PORT/PLUGIN_MAX_PORT)`);
  }

  /** The line go-plugin reads from stdout. */
  handshakeLine(host = '127.0.0.1'): string {
    return `${CORE_PROTOCOL_VERSION}|${APP_PROTOCOL_VERSION}|tcp|${host}:${this.port}|grpc`;
  }

  /** Stops serving: lets calls in flight finish for up to `graceMs`, then cuts them. Idempotent. */
  stop(graceMs = 2000): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      this.heapRelease.cancel();
      for (const watcher of this.watchers) watcher.end();
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.stopping;
  }

  private instanceFor(context: PluginContextMessage | null | undefined, notify = true): DataSourceInstance {
    return this.instances.get(context?.dataSourceInstanceSettings, notify, context?.orgId);
  }

  /** The collector persists the servers, client options and schedule the data source owns. */
  private pushSettings(instance: DataSourceInstance): void {
    const { settings } = instance.config;
    if (!settings) return;
    instance.client.putSettings(settings).then(
      () => this.logger.info({ datasource: instance.key, collector: instance.client.baseUrl }, 'pushed settings to the collector'),
      (error: unknown) =>
        this.logger.warn({ datasource: instance.key, error: describeError(error).message }, 'could not push settings to the collector'),
    );
  }

  private readonly queryData = (
    call: grpc.ServerUnaryCall<
      { pluginContext?: PluginContextMessage; headers?: Record<string, string>; queries?: DataQueryMessage[] },
      unknown
    >,
    callback: grpc.sendUnaryData<{ responses: Record<string, DataResponseMessage> }>,
  ): void => {
    const { pluginContext, headers = {}, queries = [] } = call.request;
    const fromAlert = Object.entries(headers).some(([k, v]) => k.toLowerCase() === 'fromalert' && v === 'true');
    const abort = new AbortController();
    call.on('cancelled', () => abort.abort());
    const started = this.now();
    this.heapRelease.started();
    let instance: DataSourceInstance;
    try {
      instance = this.instanceFor(pluginContext);
    } catch (error) {
      const outcome = describeError(error);
      const failed = { frames: [], error: outcome.message, status: outcome.status, errorSource: outcome.errorSource };
      for (const q of queries) this.metrics.query(queryTypeOf(q), 0, outcome.status, outcome.errorSource);
      callback(null, { responses: Object.fromEntries(queries.map((q) => [q.refId, failed])) });
      this.heapRelease.answered(0);
      return;
    }
    const ctx = { client: instance.client, fromAlert, now: this.now, signal: abort.signal };
    void pLimit(QUERY_CONCURRENCY)
      .map(queries, async (query) => {
        const queryStarted = performance.now();
        const response = await runQuery(query, ctx);
        this.metrics.query(queryTypeOf(query), (performance.now() - queryStarted) / 1000, response.status, response.errorSource);
        return [query.refId, response] as const;
      })
      .then((answered) => {
        const responses: Record<string, DataResponseMessage> = Object.fromEntries(answered);
        for (const [refId, r] of answered) {
          if (r.status >= 500) this.logger.error({ refId, status: r.status, error: r.error }, 'query failed');
          else if (r.status >= 400) this.logger.info({ refId, status: r.status, error: r.error }, 'query rejected');
        }
        const bytes = answered.reduce((n, [, r]) => r.frames.reduce((m, f) => m + f.byteLength, n), 0);
        this.logger.debug({ queries: queries.length, fromAlert, ms: this.now() - started, bytes }, 'QueryData');
        callback(null, { responses });
        this.heapRelease.answered(bytes);
      });
  };

  private readonly checkHealth = (
    call: grpc.ServerUnaryCall<{ pluginContext?: PluginContextMessage }, unknown>,
    callback: grpc.sendUnaryData<{ status: string; message: string; jsonDetails: Uint8Array }>,
  ): void => {
    let instance: DataSourceInstance;
    try {
      instance = this.instanceFor(call.request.pluginContext, false);
    } catch (error) {
      const message =
        error instanceof SettingsError
          ? `Invalid data source settings: ${formatFieldErrors(error.fields)}.`
          : describeError(error).message;
      this.metrics.healthCheck('ERROR');
      callback(null, { status: 'ERROR', message, jsonDetails: Buffer.from(JSON.stringify({})) });
      return;
    }
    // a rejection must never escape: Grafana gets an ERROR with the reason, and the plugin keeps running
    void checkHealth(instance)
      .catch((error: unknown) => ({ status: 'ERROR', message: describeError(error).message, details: {} }))
      .then((result) => {
        this.logger.info({ datasource: instance.key, status: result.status }, 'CheckHealth');
        this.metrics.healthCheck(result.status);
        callback(null, { status: result.status, message: result.message, jsonDetails: Buffer.from(JSON.stringify(result.details)) });
      });
  };

  /** The plugin's own metrics in Prometheus text format (Grafana: /api/plugins/<id>/metrics). */
  private readonly collectMetrics = (
    _call: grpc.ServerUnaryCall<unknown, unknown>,
    callback: grpc.sendUnaryData<{ metrics: { prometheus: Uint8Array } }>,
  ): void => {
    this.metrics.text().then(
      (text) => callback(null, { metrics: { prometheus: Buffer.from(text, 'utf8') } }),
      (error: unknown) => callback({ code: grpc.status.INTERNAL, details: `cannot collect metrics: ${describeError(error).message}` }),
    );
  };

  private readonly callResource = (
    call: grpc.ServerWritableStream<
      { pluginContext?: PluginContextMessage; path?: string; method?: string; url?: string; body?: Uint8Array },
      ResourceResponse
    >,
  ): void => {
    const { pluginContext, path = '', method = 'GET', url = '', body = null } = call.request;
    const fixed = staticResource(path.replace(/^\/+|\/+$/g, ''), method);
    const respond = (response: ResourceResponse): void => {
      this.logger.debug({ path, method, code: response.code }, 'CallResource');
      this.metrics.resource(path.replace(/^\/+|\/+$/g, ''), method, response.code);
      call.write(response);
      call.end();
    };
    if (fixed) {
      respond(fixed);
      return;
    }
    const refused = refuseChange(method, pluginContext?.user);
    if (refused) {
      respond(refused);
      return;
    }
    let instance: DataSourceInstance;
    try {
      instance = this.instanceFor(pluginContext);
    } catch (error) {
      const outcome = describeError(error);
      respond(jsonResponse(outcome.status, { error: 'settings', message: outcome.message }));
      return;
    }
    void handleResource({ path, method, url, body }, () => instance).then(respond);
  };

  private readonly healthCheck = (
    call: grpc.ServerUnaryCall<{ service?: string }, unknown>,
    callback: grpc.sendUnaryData<{ status: string }>,
  ): void => {
    const service = call.request.service ?? '';
    if (service === '' || service === 'plugin') callback(null, { status: this.stopping ? 'NOT_SERVING' : 'SERVING' });
    else callback({ code: grpc.status.NOT_FOUND, details: `unknown service "${service}"` });
  };

  private readonly healthWatch = (call: grpc.ServerWritableStream<{ service?: string }, unknown>): void => {
    const service = call.request.service ?? '';
    call.write({ status: service === '' || service === 'plugin' ? 'SERVING' : 'SERVICE_UNKNOWN' });
    this.watchers.add(call);
    call.on('cancelled', () => this.watchers.delete(call));
  };

  private readonly shutdown = (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<object>): void => {
    this.logger.info('shutdown requested by Grafana');
    callback(null, {});
    // Answer first: go-plugin waits for the reply before it stops waiting on the process.
    setImmediate(() => this.options.onShutdownRequest?.());
  };
}
