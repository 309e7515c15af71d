/**
 * The data source's settings as Grafana sends them in every request: `jsonData` (UTF-8 JSON
 * bytes) and the decrypted secure settings. Parsed and validated once per data source and
 * version (`lastUpdatedMS`); the parsed instance, with its collector client, is cached.
 */
import {
  collectorUrlSchema,
  parseBoundApiToken,
  urlOrigin,
  fieldErrors,
  formatFieldErrors,
  jsonDataSettingsSchema,
  type FieldError,
  type Settings,
} from '../../contract/settings.js';
import { CollectorClient, type CollectorClientOptions } from './collectorClient.js';

/** What Grafana sends as `pluginContext.dataSourceInstanceSettings` (proto field names). */
export interface DataSourceInstanceSettingsMessage {
  id?: number;
  uid?: string;
  name?: string;
  jsonData?: Uint8Array | null;
  decryptedSecureJsonData?: Record<string, string>;
  lastUpdatedMS?: number;
}

export interface DataSourceConfig {
  collectorUrl: string;
  /** the bare token, checked to be bound to the collector URL's origin */
  apiToken: string;
  iperf3Password?: string;
  /** what the data source owns and pushes to the collector; null when invalid */
  settings: Settings | null;
  /** why `settings` is null: queries still work, Save & test reports these */
  settingsErrors: FieldError[];
}

/** The collector URL or token is missing or invalid; `fields` say which and how to fix them. */
export class SettingsError extends Error {
  constructor(readonly fields: FieldError[]) {
    super(`data source settings are invalid: ${formatFieldErrors(fields)}`);
    this.name = 'SettingsError';
  }
}

export function parseDataSourceConfig(message: DataSourceInstanceSettingsMessage): DataSourceConfig {
  const errors: FieldError[] = [];
  let jsonData: Record<string, unknown> = {};
  const bytes = message.jsonData;
  if (bytes && bytes.length > 0) {
    try {
      const parsed: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) jsonData = parsed as Record<string, unknown>;
      else errors.push({ field: 'jsonData', message: 'must be a JSON object' });
    } catch {
      errors.push({ field: 'jsonData', message: 'is not valid JSON' });
    }
  }
  const url = collectorUrlSchema.safeParse(jsonData.collectorUrl);
  if (!url.success) errors.push(...fieldErrors(url.error, 'collectorUrl'));
  const secure = message.decryptedSecureJsonData ?? {};
  const stored = (secure.apiToken ?? '').trim();
  const { origin: tokenOrigin, token: apiToken } = parseBoundApiToken(stored);
  if (!apiToken) errors.push({ field: 'apiToken', message: "is required: paste the collector's API token into the data source settings" });
  else if (url.success) {
    // never send the token to a host other than the one it was saved for (docs/security.md)
    const origin = urlOrigin(url.data) as string;
    if (tokenOrigin === null) errors.push({ field: 'apiToken', message: unboundMessage(origin) });
    else if (tokenOrigin !== origin) {
      errors.push({
        field: 'apiToken',
        message: `was saved for ${tokenOrigin}, but the collector URL is now ${origin}: re-enter the API token for the new URL (a token is never sent to another host)`,
      });
    }
  }
  const settings = jsonDataSettingsSchema.safeParse(jsonData);
  if (errors.length > 0 || !url.success) throw new SettingsError(errors);
  const password = secure.iperf3Password?.trim();
  // The iperf3 password travels to the collector inside the pushed settings (auth.password);
  // it needs a username, which jsonData's clientOptions.auth carries.
  const auth = settings.success ? settings.data.clientOptions.auth : null;
  if (auth && password) auth.password = password;
  return {
    collectorUrl: url.data,
    apiToken,
    ...(password ? { iperf3Password: password } : {}),
    settings: settings.success ? settings.data : null,
    settingsErrors: settings.success ? [] : fieldErrors(settings.error),
  };
}

function unboundMessage(origin: string): string {
  return (
    'is not bound to a collector URL (saved before tokens were bound, or provisioned as a bare token): ' +
    `re-enter the API token for this URL in the data source settings, or provision it as apiToken: "${origin} <token>" (docs/provisioning.md)`
  );
}

export interface DataSourceInstance {
  key: string;
  lastUpdatedMS: number;
  config: DataSourceConfig;
  client: CollectorClient;
}

export interface InstanceManagerOptions {
  collectorTimeoutMs?: number;
  /** passed to every collector client: told of each round-trip */
  observeCollector?: CollectorClientOptions['observe'];
  /** called once for every new or rebuilt instance (the plugin pushes settings then) */
  onNewInstance?: (instance: DataSourceInstance) => void;
}

/**
 * One instance per data source of an organization (uids are unique per organization only),
 * rebuilt when Grafana reports another `lastUpdatedMS`.
 */
export class InstanceManager {
  private readonly instances = new Map<string, DataSourceInstance>();

  constructor(private readonly options: InstanceManagerOptions = {}) {}

  /** Throws SettingsError when the settings are missing or invalid. */
  get(message: DataSourceInstanceSettingsMessage | null | undefined, notify = true, orgId = 0): DataSourceInstance {
    if (!message) throw new SettingsError([{ field: '(root)', message: 'the request carries no data source settings' }]);
    const key = `${orgId}/${message.uid || String(message.id ?? '')}`;
    const lastUpdatedMS = Number(message.lastUpdatedMS ?? 0);
    const cached = this.instances.get(key);
    if (cached && cached.lastUpdatedMS === lastUpdatedMS) return cached;
    const config = parseDataSourceConfig(message);
    const instance: DataSourceInstance = {
      key,
      lastUpdatedMS,
      config,
      client: new CollectorClient({ baseUrl: config.collectorUrl, token: config.apiToken, timeoutMs: this.options.collectorTimeoutMs, observe: this.options.observeCollector }),
    };
    this.instances.set(key, instance);
    if (notify) this.options.onNewInstance?.(instance);
    return instance;
  }
}
