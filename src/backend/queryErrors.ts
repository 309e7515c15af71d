/**
 * How failures become a `DataResponse` (or a resource response): a status code, a message
 * that says what to fix, and Grafana's error source (`downstream` = the user's input or the
 * collector, `plugin` = a bug here).
 */
import { CollectorAuthError, CollectorRequestError, CollectorUnreachableError } from './collectorClient.js';
import { SettingsError } from './instanceSettings.js';

/** A query the plugin cannot run as written; `status` is HTTP-like (400, 404). */
export class QueryError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'QueryError';
  }
}

export interface ErrorOutcome {
  status: number;
  message: string;
  errorSource: 'downstream' | 'plugin';
}

export function describeError(error: unknown): ErrorOutcome {
  if (error instanceof QueryError) return { status: error.status, message: error.message, errorSource: 'downstream' };
  if (error instanceof SettingsError) {
    return { status: 400, message: `${error.message} (fix them in the data source settings)`, errorSource: 'downstream' };
  }
  if (error instanceof CollectorUnreachableError) {
    return {
      status: error.timedOut ? 504 : 502,
      message: `${error.message}; check the Collector URL in the data source settings and that the collector is running`,
      errorSource: 'downstream',
    };
  }
  if (error instanceof CollectorAuthError) {
    return { status: 502, message: `${error.message}; set the collector's API token in the data source settings`, errorSource: 'downstream' };
  }
  if (error instanceof CollectorRequestError) {
    return {
      status: error.status >= 500 ? 502 : error.status,
      message: `collector: ${error.message}`,
      errorSource: 'downstream',
    };
  }
  return { status: 500, message: `internal error in the plugin: ${error instanceof Error ? error.message : String(error)}`, errorSource: 'plugin' };
}
