/**
 * Structured logging: JSON lines on stderr for machines, a readable colourised stream when
 * stderr is a terminal. Secrets are redacted by path as a second line of defence.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { PinoPretty } from 'pino-pretty';

export const REDACT_PATHS = ['password', '*.password', 'token', '*.token', 'apiToken', 'privateKey', '*.privateKey', 'passphrase', 'headers.authorization'];

export interface LoggerOptions {
  level?: string;
  /** readable lines instead of JSON; default: when stderr is a terminal */
  pretty?: boolean;
  /** where lines go; default stderr */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? process.stderr.isTTY === true;
  const destination = options.destination ?? pino.destination(2);
  // pino-pretty as an in-process stream (not a worker transport): a CLI's progress lines
  // appear in order with its other output and none are lost at exit.
  const stream = pretty ? PinoPretty({ destination, colorize: options.destination === undefined, translateTime: 'SYS:HH:MM:ss', sync: true }) : destination;
  return pino({ level, base: { service: 'iperf3-collector' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, stream);
}
