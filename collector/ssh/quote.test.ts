import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { quoteArg, quoteArgv } from './quote.js';

/** Runs `printf '%s\0' <quoted argv>` in a real shell and splits what it printed. */
function roundTrip(shell: string, argv: string[]): string[] {
  const r = spawnSync(shell, ['-c', `printf '%s\\0' ${quoteArgv(argv)}`], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split('\0').slice(0, -1);
}

const HOSTILE = [
  '',
  ' ',
  "'",
  "''",
  "it's",
  '"',
  '\\',
  "\\'",
  '$HOME',
  '${PATH}',
  '$(touch /tmp/quote-test-pwned)',
  '`touch /tmp/quote-test-pwned`',
  '; touch /tmp/quote-test-pwned',
  '&& echo x || echo y',
  '| cat',
  '> /tmp/quote-test-pwned',
  '*',
  '?',
  '[a-z]',
  '~',
  '~root',
  '-n',
  '--',
  '#comment',
  'a\nb',
  '\r\n\t\v\f',
  '\x01\x07\x1b[31m',
  '!!',
  '{a,b}',
  'héllo wörld ✓ 𝄞',
  "'\"'\"'",
  'end\\',
  'x'.repeat(10_000),
];

describe('quoteArgv', () => {
  it('wraps arguments in single quotes and escapes single quotes', () => {
    expect(quoteArg('abc')).toBe("'abc'");
    expect(quoteArg("it's")).toBe("'it'\\''s'");
    expect(quoteArg('')).toBe("''");
    expect(quoteArgv(['a b', 'c'])).toBe("'a b' 'c'");
    expect(quoteArgv([])).toBe('');
  });

  for (const shell of ['sh', 'bash']) {
    it(`round-trips hostile arguments through a real ${shell} -c`, () => {
      expect(roundTrip(shell, HOSTILE)).toEqual(HOSTILE);
      expect(existsSync('/tmp/quote-test-pwned')).toBe(false);
    });
  }

  it('round-trips random strings of all code units except NUL', () => {
    let seed = 12345;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const argv = Array.from({ length: 200 }, () =>
      Array.from({ length: Math.floor(random() * 20) }, () => {
        const pick = random();
        // ASCII (most hostile) most of the time, some BMP and astral characters
        const code = pick < 0.8 ? 1 + Math.floor(random() * 127) : pick < 0.95 ? 0x80 + Math.floor(random() * 0xd000) : 0x1f600;
        return String.fromCodePoint(code);
      }).join(''),
    );
    expect(roundTrip('sh', argv)).toEqual(argv);
  });

  it('refuses NUL, which no shell argument can carry', () => {
    expect(() => quoteArgv(['ok', 'a\0b'])).toThrow(/NUL/);
  });
});
