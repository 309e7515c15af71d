/**
 * The plugin's own Prometheus metrics, answered to Grafana's Diagnostics/CollectMetrics (Grafana
 * serves them at /api/plugins/<plugin id>/metrics). One registry per PluginServer, so tests and
 * several servers in one process never share counters. Every label has a bounded set of values:
 * query types from contract/query.ts (or "invalid"), resource paths the plugin serves (or
 * "unknown"), collector API routes with ids replaced by ":id", HTTP status classes.
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import { QUERY_TYPES, type QueryType } from '../../contract/queryTypes.js';

const PREFIX = 'iperf3_plugin_';

/** Seconds: a query is one or two collector round-trips; a slow collector answers in seconds. */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30];

export type QueryTypeLabel = QueryType | 'invalid';

/** The query type a QueryData query asks for, as parseQuery reads it (default timeseries). */
export function queryTypeOf(message: { queryType?: string; json?: Uint8Array | null }): QueryTypeLabel {
  let fromJson: unknown;
  try {
    const text = message.json && message.json.length > 0 ? Buffer.from(message.json).toString('utf8') : '{}';
    fromJson = (JSON.parse(text) as { queryType?: unknown } | null)?.queryType;
  } catch {
    return 'invalid';
  }
  const type = fromJson ?? (message.queryType || 'timeseries');
  return (QUERY_TYPES as readonly unknown[]).includes(type) ? (type as QueryType) : 'invalid';
}

/** `/runs/42/intervals` -> `/runs/:id/intervals`: one series per route, not per run. */
export function routeOf(path: string): string {
  return path.replace(/\/\d+(?=\/|$)/g, '/:id');
}

/** "2xx", "4xx", "5xx", or "unreachable" when no HTTP answer came (refused, timeout). */
export function statusClass(status: number | null): string {
  return status === null ? 'unreachable' : `${Math.floor(status / 100)}xx`;
}

export class PluginMetrics {
  readonly registry = new Registry();
  private readonly queries: Histogram<'query_type'>;
  private readonly queryErrors: Counter<'query_type' | 'status' | 'source'>;
  private readonly roundTrips: Histogram<'method' | 'route' | 'status'>;
  private readonly resources: Counter<'path' | 'method' | 'status'>;
  private readonly healthChecks: Counter<'status'>;
  private readonly heapReleases: Histogram;

  constructor(private readonly resourcePaths: readonly string[] = []) {
    const registers = [this.registry];
    // process_resident_memory_bytes, process_heap_bytes, nodejs_heap_size_used_bytes, ... as
    // every Node.js dashboard expects them (unprefixed)
    collectDefaultMetrics({ register: this.registry });
    this.queries = new Histogram({
      name: `${PREFIX}query_duration_seconds`,
      help: 'Wall time of one QueryData query, by query type (its _count is the number of queries)',
      labelNames: ['query_type'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queryErrors = new Counter({
      name: `${PREFIX}query_errors_total`,
      help: 'Queries answered with an error, by query type, HTTP status and error source (plugin or downstream)',
      labelNames: ['query_type', 'status', 'source'],
      registers,
    });
    this.roundTrips = new Histogram({
      name: `${PREFIX}collector_request_duration_seconds`,
      help: "Round-trips to the collector's HTTP API, by method, route and status class (unreachable: no answer)",
      labelNames: ['method', 'route', 'status'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.resources = new Counter({
      name: `${PREFIX}resource_requests_total`,
      help: 'CallResource requests, by resource path, method and HTTP status',
      labelNames: ['path', 'method', 'status'],
      registers,
    });
    this.healthChecks = new Counter({
      name: `${PREFIX}health_checks_total`,
      help: 'CheckHealth calls (Save & test), by result',
      labelNames: ['status'],
      registers,
    });
    this.heapReleases = new Histogram({
      name: `${PREFIX}heap_release_seconds`,
      help: 'Memory-reducing garbage collections run after a large QueryData answer, and how long each paused the plugin',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
  }

  /** A memory-reducing collection after a large answer (heapRelease.ts) took `seconds`. */
  heapRelease(seconds: number): void {
    this.heapReleases.observe(seconds);
  }

  query(queryType: QueryTypeLabel, seconds: number, status: number, errorSource: string): void {
    this.queries.observe({ query_type: queryType }, seconds);
    if (status >= 400) this.queryErrors.inc({ query_type: queryType, status: String(status), source: errorSource || 'plugin' });
  }

  collectorRequest(method: string, path: string, status: number | null, seconds: number): void {
    this.roundTrips.observe({ method, route: routeOf(path), status: statusClass(status) }, seconds);
  }

  resource(path: string, method: string, status: number): void {
    const known = this.resourcePaths.includes(path) ? path : 'unknown';
    const verb = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'].includes(method.toUpperCase()) ? method.toUpperCase() : 'other';
    this.resources.inc({ path: known, method: verb, status: String(status) });
  }

  healthCheck(status: string): void {
    this.healthChecks.inc({ status: status === 'OK' ? 'OK' : 'ERROR' });
  }

  /** The Prometheus text exposition format (version 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
