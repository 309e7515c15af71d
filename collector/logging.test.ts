import { Writable } from 'node:stream';
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

  it('writes readable lines, secrets redacted, when asked for a terminal', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ pretty: true, destination: sink });
    logger.info({ device: 'ap-1', password: 'p1' }, 'run ok');
    const text = lines.join('');
    expect(text).toMatch(/^\[\d{2}:\d{2}:\d{2}\] INFO: run ok\n/);
    expect(text).toContain('device: "ap-1"');
    expect(text).toContain('password: "[redacted]"');
    expect(() => JSON.parse(text)).toThrow();
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
