import { describe, expect, it } from 'vitest';
import { matchesLabels, querySchema, variableQuerySchema } from './query.js';

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
