/**
 * Label-matcher regexes: pathological patterns timed on RE2 (re2js, what contract/query.ts
 * compiles matchers with) on label values of 18 characters and far longer, against JavaScript's
 * backtracking RegExp on values short enough to finish (its time grows exponentially with the
 * length, so the bench stops it at a bounded size and extrapolates nothing).
 */
import { performance } from 'node:perf_hooks';
import { compileLabelRegex } from '../contract/query.js';
import { table, type SectionResult } from './report.js';
import { fixed, percentile } from './stats.js';

export interface RegexOptions {
  re2Lengths: number[];
  jsLengths: number[];
  /** a JS RegExp run slower than this is not repeated at the next length */
  jsBudgetMs: number;
  repetitions: number;
}

export const DEFAULT_REGEX: RegexOptions = { re2Lengths: [18, 100, 1000, 10_000], jsLengths: [12, 14, 16, 18], jsBudgetMs: 2000, repetitions: 5 };

/** Patterns that backtrack exponentially (or polynomially) on a value that almost matches. */
const PATTERNS: { pattern: string; value: (n: number) => string }[] = [
  { pattern: '(?:.|.|.)*Z', value: (n) => 'a'.repeat(n) },
  { pattern: '(a+)+$', value: (n) => `${'a'.repeat(n - 1)}!` },
  { pattern: '(a|aa)*b', value: (n) => 'a'.repeat(n) },
  { pattern: '(?:a*)*b', value: (n) => 'a'.repeat(n) },
];

function time(repetitions: number, run: () => boolean): { ms: number; matched: boolean } {
  const samples: number[] = [];
  let matched = false;
  for (let i = 0; i < repetitions; i++) {
    const started = performance.now();
    matched = run();
    samples.push(performance.now() - started);
  }
  return { ms: percentile(samples, 50), matched };
}

export async function benchRegex(o: RegexOptions = DEFAULT_REGEX, log: (line: string) => void = () => undefined): Promise<SectionResult> {
  const rows: string[][] = [];
  let worstRe2 = 0;
  let js18: { pattern: string; ms: number } | null = null;
  for (const { pattern, value } of PATTERNS) {
    // anchored as a label matcher is (the whole value must match)
    const re2 = compileLabelRegex(pattern);
    const js = new RegExp(`^(?:${pattern})$`);
    const cells: string[] = [];
    for (const n of o.re2Lengths) {
      const input = value(n);
      re2.matches(input); // warm-up
      const r = time(o.repetitions, () => re2.matches(input));
      if (r.matched) throw new Error(`re2js: ${pattern} matched ${n} characters`);
      worstRe2 = Math.max(worstRe2, r.ms);
      cells.push(fixed(r.ms, 3));
    }
    const jsCells: string[] = [];
    let stopped = false;
    for (const n of o.jsLengths) {
      if (stopped) {
        jsCells.push('not run');
        continue;
      }
      const input = value(n);
      const r = time(1, () => js.test(input));
      if (r.matched) throw new Error(`RegExp: ${pattern} matched ${n} characters`);
      jsCells.push(fixed(r.ms, 1));
      if (n === 18 && pattern === '(?:.|.|.)*Z') js18 = { pattern, ms: r.ms };
      stopped = r.ms > o.jsBudgetMs;
    }
    log(`regex: ${pattern}: re2js ${cells.join(' / ')} ms, RegExp ${jsCells.join(' / ')} ms`);
    rows.push([`\`${pattern}\``, ...cells, ...jsCells]);
  }
  const markdown = [
    `Each pattern anchored as a label matcher is (\`^(?:...)$\`), against values that almost match (no match: the worst case for backtracking).`,
    `re2js: compileLabelRegex of contract/query.ts, median of ${o.repetitions} runs after a warm-up. JavaScript RegExp (V8's backtracking engine, what`,
    `matchers used before): one run per length, and no longer lengths once a run takes more than ${fixed(o.jsBudgetMs / 1000, 0)} s.`,
    '',
    table(
      ['pattern', ...o.re2Lengths.map((n) => `re2js, ${n.toLocaleString('en-US')} chars (ms)`), ...o.jsLengths.map((n) => `RegExp, ${n} chars (ms)`)],
      rows,
    ),
    '',
    `- re2js stays linear in the value's length: the slowest match above took ${fixed(worstRe2, 2)} ms, on ${Math.max(...o.re2Lengths).toLocaleString('en-US')} characters.`,
    js18
      ? `- RegExp on \`(?:.|.|.)*Z\` at 18 characters: ${fixed((js18 as { ms: number }).ms / 1000, 1)} s of a blocked event loop, per label value evaluated.`
      : `- RegExp on \`(?:.|.|.)*Z\` was stopped before 18 characters (over the ${fixed(o.jsBudgetMs / 1000, 0)} s budget at a shorter length); the issue measured 12 s at 18.`,
  ];
  return {
    title: 'Label-matcher regexes',
    markdown: markdown.join('\n'),
    summary: [`label regexes: re2js at most ${fixed(worstRe2, 2)} ms on values up to ${Math.max(...o.re2Lengths).toLocaleString('en-US')} characters; JavaScript RegExp ${js18 ? `${fixed((js18 as { ms: number }).ms / 1000, 1)} s` : 'over the budget'} on \`(?:.|.|.)*Z\` at 18`],
  };
}
