/**
 * CheckHealth ("Save & test"): reach the collector with the token, push the data source's
 * servers, client options and schedule to it, and report in one message what a user needs.
 * Every failure names what to fix.
 */
import type { HealthResponse, ServerHealth } from '../../contract/api.js';
import { formatFieldErrors } from '../../contract/settings.js';
import { CollectorAuthError, CollectorRequestError, CollectorUnreachableError } from './collectorClient.js';
import type { DataSourceInstance } from './instanceSettings.js';
import { describeError } from './queryErrors.js';

export interface HealthResult {
  status: 'OK' | 'ERROR';
  message: string;
  details: Record<string, unknown>;
}

export async function checkHealth(instance: DataSourceInstance): Promise<HealthResult> {
  const { config, client } = instance;
  if (!config.settings) {
    return {
      status: 'ERROR',
      message: `Invalid iperf3 settings: ${formatFieldErrors(config.settingsErrors)}. Fix these entries and save again.`,
      details: { fields: config.settingsErrors },
    };
  }
  let health: HealthResponse;
  try {
    await client.putSettings(config.settings);
    health = await client.health();
  } catch (error) {
    return { status: 'ERROR', message: explainFailure(error, config.collectorUrl), details: {} };
  }
  const reachable = health.servers.filter((s) => s.reachable);
  const parts = [
    `Collector ${health.version} at ${config.collectorUrl}: ${health.devices} device${health.devices === 1 ? '' : 's'} (${health.enabledDevices} enabled).`,
    `iperf3 servers: ${health.servers.map(describeServer).join(', ') || 'none'}.`,
    health.nextRun
      ? `Next scheduled run: ${health.nextRun} (cron "${config.settings.schedule.cron}", ${config.settings.schedule.timezone}).`
      : 'The schedule is off: no run is planned.',
  ];
  const allDown = health.servers.length > 0 && reachable.length === 0;
  if (allDown) parts.push('No iperf3 server is reachable from the collector: check the server hosts and ports, and that iperf3 -s runs there.');
  else if (reachable.length < health.servers.length) parts.push('Tests use only the reachable servers until the others answer.');
  if (health.devices === 0) parts.push('Add devices to the collector\'s inventory to start measuring.');
  return {
    status: allDown ? 'ERROR' : 'OK',
    message: parts.join(' '),
    details: {
      version: health.version,
      devices: health.devices,
      enabledDevices: health.enabledDevices,
      servers: health.servers.map((s) => ({ key: s.key, reachable: s.reachable, error: s.error ?? null })),
      nextRun: health.nextRun,
    },
  };
}

function describeServer(server: ServerHealth): string {
  const name = server.label ? `${server.label} (${server.key})` : server.key;
  return server.reachable ? `${name} reachable` : `${name} NOT reachable${server.error ? ` (${server.error})` : ''}`;
}

function explainFailure(error: unknown, url: string): string {
  if (error instanceof CollectorUnreachableError) {
    return `Cannot reach the collector at ${url} (${error.message.replace(/^cannot reach the collector at \S+: /, '')}). Check the Collector URL and that the collector is running.`;
  }
  if (error instanceof CollectorAuthError) {
    return `The collector at ${url} rejected the API token (HTTP ${error.status}). Set the API token to the collector's token (its API_TOKEN secret).`;
  }
  if (error instanceof CollectorRequestError) {
    if (error.status === 400 && error.fields.length > 0) {
      return `The collector rejected the iperf3 settings: ${formatFieldErrors(error.fields)}. Fix these entries and save again.`;
    }
    if (error.status === 404) {
      return `${url} answered 404: it does not look like the collector's API. Check the Collector URL (e.g. http://collector:8080).`;
    }
    return `The collector answered HTTP ${error.status}: ${error.message}`;
  }
  return describeError(error).message;
}
