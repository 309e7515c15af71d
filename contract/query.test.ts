import { describe, expect, it } from 'vitest';
import { labelFilter, labelMatcherSchema, querySchema, variableQuerySchema, type LabelMatcher } from './query.js';

/** One device's labels against matchers, through the filter the runtimes use. */
const matchesLabels = (labels: Record<string, string>, matchers: LabelMatcher[]): boolean => labelFilter(matchers)(labels);

describe('label matchers', () => {
  const labels = { site: 'hq', org: 'org-a' };
  it('match exactly, by negation and by anchored regular expressions', () => {
    expect(matchesLabels(labels, [{ label: 'site', op: '=', value: 'hq' }])).toBe(true);
    expect(matchesLabels(labels, [{ label: 'site', op: '!=', value: 'hq' }])).toBe(false);
    expect(matchesLabels(labels, [{ label: 'org', op: '=~', value: 'org-.' }])).toBe(true);
    expect(matchesLabels(labels, [{ label: 'org', op: '=~', value: 'org' }])).toBe(false); // anchored
    expect(matchesLabels(labels, [{ label: 'org', op: '!~', value: 'org-b|org-c' }])).toBe(true);
    expect(matchesLabels(labels, [{ label: 'org', op: '!~', value: 'org-.' }])).toBe(false);
    // a missing label is the empty string, as in Prometheus
    expect(matchesLabels(labels, [{ label: 'rack', op: '=', value: '' }])).toBe(true);
    expect(matchesLabels(labels, [])).toBe(true);
  });
});

describe('query model', () => {
  it('fills the defaults a new query needs', () => {
    expect(querySchema.parse({ queryType: 'runs' })).toMatchObject({ refId: 'A', devices: ['*'], labelMatchers: [], status: [], limit: 500 });
    expect(variableQuerySchema.parse({})).toEqual({ kind: 'devices', labelMatchers: [] });
  });
  it('names the field of an unknown metric and of a limit above what the collector answers', () => {
    const bad = querySchema.safeParse({ queryType: 'latest', metrics: ['tcp_bps'] });
    expect(bad.error?.issues[0]).toMatchObject({ path: ['metrics', 0], message: expect.stringMatching(/unknown metric "tcp_bps"; use one of tcp_received_bps/) });
    expect(querySchema.safeParse({ queryType: 'runs', limit: 5000 }).error?.issues[0].path).toEqual(['limit']);
  });
});

describe('label matchers on RE2', () => {
  it('anchors regexes, compiles each once, and stays linear on patterns that make backtracking engines explode', { timeout: 5000 }, () => {
    const labels = { site: 'a'.repeat(18), role: 'ap' };
    const hostile = labelFilter([{ label: 'site', op: '=~', value: '(?:.|.|.)*Z' }]);
    expect(hostile(labels)).toBe(false);
    expect(labelFilter([{ label: 'site', op: '=~', value: '(a+)+' }])(labels)).toBe(true);
    expect(labelFilter([{ label: 'role', op: '=~', value: 'a' }])(labels)).toBe(false); // anchored
    expect(labelFilter([{ label: 'role', op: '!~', value: 'a.*' }])(labels)).toBe(false);
    expect(labelFilter([{ label: 'missing', op: '=', value: '' }])(labels)).toBe(true);
    expect(matchesLabels(labels, [{ label: 'role', op: '!=', value: 'x' }])).toBe(true);
  });

  it('rejects regexes RE2 cannot run, naming the field', () => {
    const parsed = labelMatcherSchema.safeParse({ label: 'site', op: '=~', value: '(a)\\1' });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]).toMatchObject({ path: ['value'], message: expect.stringMatching(/^not a valid regular expression \(RE2 syntax/) });
    expect(labelMatcherSchema.safeParse({ label: 'site', op: '=', value: '(' }).success).toBe(true); // only regex operators compile
  });
});
