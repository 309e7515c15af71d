import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, REDACT_PATHS } from './logging.js';

const saved = process.env.LOG_LEVEL;
afterEach(() => {
  if (saved === undefined) delete process.env.LOG_LEVEL;
  else process.env.LOG_LEVEL = saved;
});

describe('collector logger', () => {
  it('takes its level from the option, else LOG_LEVEL, else info', () => {
    delete process.env.LOG_LEVEL;
    expect(createLogger({ pretty: false }).level).toBe('info');
    process.env.LOG_LEVEL = 'debug';
    expect(createLogger({ pretty: false }).level).toBe('debug');
    expect(createLogger({ pretty: false, level: 'warn' }).level).toBe('warn');
  });

  it('writes readable lines through pino-pretty on a terminal', () => {
    const logger = createLogger({ pretty: true, level: 'silent' });
    expect(logger.level).toBe('silent');
    expect(() => logger.info('not written')).not.toThrow();
  });

  it('redacts secrets by key, as JSON lines', () => {
    const lines: string[] = [];
    const logger = createLogger({ pretty: false, destination: { write: (l: string) => lines.push(l) } });
    logger.info({ password: 'p1', device: { password: 'p2', id: 'ap-1' }, token: 't', headers: { authorization: 'Bearer x' } }, 'hello');
    const entry = JSON.parse(lines[0]) as Record<string, unknown>;
    expect(entry).toMatchObject({ msg: 'hello', service: 'iperf3-collector', password: '[redacted]', device: { password: '[redacted]', id: 'ap-1' }, token: '[redacted]', headers: { authorization: '[redacted]' } });
    expect(lines[0]).not.toMatch(/p1|p2|Bearer x/);
    expect(REDACT_PATHS).toContain('privateKey');
  });
});
