/**
 * Logs as JSON lines on stderr in hashicorp/go-hclog's JSON format, which go-plugin (inside
 * Grafana) parses and maps to Grafana's log levels: `@level`, `@message`, `@timestamp` with
 * exactly six fractional digits (go-plugin parses "2006-01-02T15:04:05.000000Z07:00"), and
 * the remaining keys as key/value pairs. stdout is reserved for the handshake line.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

export type PluginLogger = Logger;

/** hclog level names; pino's `fatal` has no hclog counterpart and maps to `error`. */
const HCLOG_LEVELS: Record<string, string> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  error: 'error',
  fatal: 'error',
};

/** `2024-05-01T02:00:00.123000Z`: go-plugin needs microsecond precision in the layout. */
export function hclogTimestamp(date: Date): string {
  return date.toISOString().replace(/Z$/, '000Z');
}

export function createPluginLogger(options: { level?: string; destination?: DestinationStream } = {}): PluginLogger {
  return pino(
    {
      level: options.level ?? 'debug',
      base: null,
      messageKey: '@message',
      errorKey: 'error',
      timestamp: () => `,"@timestamp":"${hclogTimestamp(new Date())}"`,
      formatters: {
        level: (label) => ({ '@level': HCLOG_LEVELS[label] ?? 'info' }),
      },
      // Secrets must never reach the log, whatever a caller passes in.
      redact: { paths: ['apiToken', '*.apiToken', 'iperf3Password', '*.iperf3Password', 'authorization', '*.authorization'], censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ fd: 2, sync: true }),
  );
}
