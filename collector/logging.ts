/**
 * Structured logging: JSON lines on stderr for machines, a readable colourised stream when
 * stderr is a terminal. Secrets are redacted by path as a second line of defence.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export const REDACT_PATHS = ['password', '*.password', 'token', '*.token', 'apiToken', 'privateKey', '*.privateKey', 'passphrase', 'headers.authorization'];

export function createLogger(options: { level?: string; pretty?: boolean; destination?: DestinationStream } = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  return pino({
    level,
    base: { service: 'iperf3-collector' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    transport: pretty ? { target: 'pino-pretty', options: { destination: 2, colorize: true, translateTime: 'SYS:HH:MM:ss' } } : undefined,
  }, pretty ? undefined : (options.destination ?? pino.destination(2)));
}
