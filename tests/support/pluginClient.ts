/**
 * A gRPC client of the plugin as Grafana is one (same protos, same calls), and a decoder of
 * the frames it returns, as Grafana's Go SDK reads them (Arrow IPC file + metadata).
 */
import * as grpc from '@grpc/grpc-js';
import { tableFromIPC, type Table } from 'apache-arrow';
import { bindApiToken } from '../../contract/settings.js';
import { loadPluginProtos } from '../../src/backend/protoDefinitions.js';

export interface DataSourceSettingsInput {
  uid?: string;
  id?: number;
  lastUpdatedMS?: number;
  jsonData?: unknown;
  secure?: Record<string, string>;
  /** raw jsonData bytes (overrides jsonData) */
  jsonBytes?: Buffer;
  /** send `secure` exactly as given (default: a bare apiToken is bound to jsonData.collectorUrl, as the config editor saves it) */
  rawSecure?: boolean;
  /** Grafana organization (default 1); uids are unique per organization only */
  orgId?: number;
}

export function pluginContext(input: DataSourceSettingsInput, user: { login: string } | null = { login: 'admin' }) {
  return {
    orgId: input.orgId ?? 1,
    pluginId: 'iperf3grafana-iperf3-datasource',
    ...(user ? { user } : {}),
    dataSourceInstanceSettings: {
      id: input.id ?? 1,
      uid: input.uid ?? 'iperf3-ds',
      name: 'iperf3',
      jsonData: input.jsonBytes ?? Buffer.from(JSON.stringify(input.jsonData ?? {})),
      decryptedSecureJsonData: savedSecure(input.secure, input.jsonData, input.rawSecure),
      lastUpdatedMS: input.lastUpdatedMS ?? 1,
    },
  };
}

/**
 * Secure settings as Grafana holds them after the config editor saved them: the API token is
 * stored bound to the origin of the collector URL it was entered for (contract/settings.ts,
 * bindApiToken). A token that already names its origin, and `raw`, are left as given.
 */
export function savedSecure(secure: Record<string, string> | undefined, jsonData: unknown, raw = false): Record<string, string> {
  if (!secure || raw || secure.apiToken === undefined || secure.apiToken.includes(' ')) return secure ?? {};
  const url = (jsonData as { collectorUrl?: unknown } | undefined)?.collectorUrl;
  return { ...secure, apiToken: bindApiToken(typeof url === 'string' ? url : undefined, secure.apiToken) };
}

export interface QueryInput {
  refId: string;
  json: unknown;
  fromMs: number;
  toMs: number;
  maxDataPoints?: number;
  /** raw bytes instead of JSON.stringify(json) */
  raw?: Buffer;
}

export interface DataResponse {
  frames: Buffer[];
  error: string;
  status: number;
  errorSource: string;
}

export interface DecodedFrame {
  table: Table;
  name: string;
  refId: string;
  meta: Record<string, unknown> | undefined;
}

export function decodeFrame(bytes: Uint8Array): DecodedFrame {
  const magic = Buffer.from(bytes.subarray(0, 6)).toString('latin1');
  if (magic !== 'ARROW1') throw new Error(`not an Arrow IPC file (starts with ${JSON.stringify(magic)})`);
  const table = tableFromIPC(bytes);
  const md = table.schema.metadata;
  return {
    table,
    name: md.get('name') ?? '',
    refId: md.get('refId') ?? '',
    meta: md.has('meta') ? (JSON.parse(md.get('meta') as string) as Record<string, unknown>) : undefined,
  };
}

export function fieldLabels(frame: DecodedFrame, index: number): Record<string, string> | undefined {
  const labels = frame.table.schema.fields[index].metadata.get('labels');
  return labels ? (JSON.parse(labels) as Record<string, string>) : undefined;
}

export function fieldConfig(frame: DecodedFrame, index: number): Record<string, unknown> | undefined {
  const config = frame.table.schema.fields[index].metadata.get('config');
  return config ? (JSON.parse(config) as Record<string, unknown>) : undefined;
}

/** The time column as nanosecond bigints (what Go's SDK reads). */
export function timeNanos(frame: DecodedFrame, name = 'time'): bigint[] {
  const column = frame.table.getChild(name);
  if (!column) throw new Error(`no field ${name}`);
  return column.data.flatMap((d) => Array.from(d.values as BigInt64Array));
}

type Unary<Req, Res> = (request: Req) => Promise<Res>;

export class PluginClient {
  private readonly clients: Record<string, grpc.Client>;

  constructor(readonly address: string) {
    const protos = loadPluginProtos();
    const options = { 'grpc.max_receive_message_length': -1 };
    const creds = grpc.credentials.createInsecure();
    this.clients = {
      Data: new protos.Data(address, creds, options),
      Diagnostics: new protos.Diagnostics(address, creds, options),
      Resource: new protos.Resource(address, creds, options),
      Health: new protos.Health(address, creds, options),
      GRPCController: new protos.GRPCController(address, creds, options),
    };
  }

  private unary<Req, Res>(service: string, method: string): Unary<Req, Res> {
    return (request) =>
      new Promise((resolve, reject) => {
        const client = this.clients[service] as unknown as Record<string, (r: Req, cb: (e: Error | null, v: Res) => void) => void>;
        client[method].call(client, request, (error, value) => (error ? reject(error) : resolve(value)));
      });
  }

  health(service = 'plugin'): Promise<{ status: string }> {
    return this.unary<{ service: string }, { status: string }>('Health', 'Check')({ service });
  }

  watchHealth(service = 'plugin'): grpc.ClientReadableStream<{ status: string }> {
    const client = this.clients.Health as unknown as { Watch(r: { service: string }): grpc.ClientReadableStream<{ status: string }> };
    return client.Watch({ service });
  }

  shutdown(): Promise<object> {
    return this.unary<object, object>('GRPCController', 'Shutdown')({});
  }

  checkHealth(settings: DataSourceSettingsInput): Promise<{ status: string; message: string; details: Record<string, unknown> }> {
    return this.unary<object, { status: string; message: string; jsonDetails: Buffer }>('Diagnostics', 'CheckHealth')({
      pluginContext: pluginContext(settings),
    }).then((r) => ({ status: r.status, message: r.message, details: JSON.parse(r.jsonDetails.toString() || '{}') }));
  }

  collectMetrics(settings: DataSourceSettingsInput): Promise<{ metrics: { prometheus: Buffer } }> {
    return this.unary<object, { metrics: { prometheus: Buffer } }>('Diagnostics', 'CollectMetrics')({ pluginContext: pluginContext(settings) });
  }

  async queryData(
    settings: DataSourceSettingsInput,
    queries: QueryInput[],
    options: { fromAlert?: boolean } = {},
  ): Promise<Record<string, DataResponse>> {
    const request = {
      pluginContext: pluginContext(settings, options.fromAlert ? null : { login: 'admin' }),
      headers: options.fromAlert ? { FromAlert: 'true' } : {},
      queries: queries.map((q) => ({
        refId: q.refId,
        maxDataPoints: q.maxDataPoints ?? 1000,
        intervalMS: 60_000,
        timeRange: { fromEpochMS: q.fromMs, toEpochMS: q.toMs },
        json: q.raw ?? Buffer.from(JSON.stringify(q.json)),
      })),
    };
    const response = await this.unary<object, { responses: Record<string, DataResponse> }>('Data', 'QueryData')(request);
    return response.responses;
  }

  callResource(
    settings: DataSourceSettingsInput,
    path: string,
    options: { method?: string; query?: string; body?: unknown; user?: { login: string; role: string } | null } = {},
  ): Promise<{ code: number; json: unknown; contentType: string | undefined }> {
    const client = this.clients.Resource as unknown as { CallResource(r: object): grpc.ClientReadableStream<{ code: number; body: Buffer; headers: Record<string, { values: string[] }> }> };
    const stream = client.CallResource({
      // Grafana passes the signed-in user; an Editor unless a test says otherwise
      pluginContext: { ...pluginContext(settings), user: options.user === undefined ? { login: 'editor', role: 'Editor' } : options.user },
      path,
      method: options.method ?? 'GET',
      url: `/api/datasources/uid/iperf3-ds/resources/${path}${options.query ? `?${options.query}` : ''}`,
      body: options.body === undefined ? Buffer.alloc(0) : Buffer.from(typeof options.body === 'string' ? options.body : JSON.stringify(options.body)),
    });
    return new Promise((resolve, reject) => {
      const parts: { code: number; body: Buffer; headers: Record<string, { values: string[] }> }[] = [];
      stream.on('data', (part) => parts.push(part));
      stream.on('error', reject);
      stream.on('end', () => {
        const first = parts[0];
        const body = Buffer.concat(parts.map((p) => p.body));
        resolve({ code: first.code, json: JSON.parse(body.toString()), contentType: first.headers['Content-Type']?.values[0] });
      });
    });
  }

  close(): void {
    for (const client of Object.values(this.clients)) client.close();
  }
}
