import { describe, expect, it } from 'vitest';
import { normalizeQuery, withQueryType } from './queryDefaults.js';
import type { Iperf3DataQuery } from './types.js';

describe('normalizeQuery', () => {
  it('fills the devices of a saved query that has none', () => {
    expect(normalizeQuery({ refId: 'A', queryType: 'runs' }).devices).toEqual(['*']);
    expect(normalizeQuery({ refId: 'A', queryType: 'runs', devices: [] }).devices).toEqual(['*']);
    expect(normalizeQuery({ refId: 'A', queryType: 'runs', devices: ['r1'] }).devices).toEqual(['r1']);
  });

  it('reads a saved query without a known type as a time series, keeping its stored metrics', () => {
    const untyped = JSON.parse('{"refId": "A", "metrics": ["udp_bps", "last_success_age_s"]}') as Iperf3DataQuery;
    expect(normalizeQuery(untyped)).toEqual({ refId: 'A', queryType: 'timeseries', metrics: ['udp_bps'], devices: ['*'] });
    const unknown = JSON.parse('{"refId": "B", "queryType": "heatmap"}') as Iperf3DataQuery;
    expect(normalizeQuery(unknown)).toMatchObject({ refId: 'B', queryType: 'timeseries', metrics: undefined });
  });
});

describe('withQueryType', () => {
  const latest: Iperf3DataQuery = { refId: 'A', queryType: 'latest', devices: ['r1'], metrics: ['result', 'last_success_age_s'], direction: 'upload' };

  it('keeps the fields of the old type, so switching back restores them', () => {
    const runs = withQueryType(latest, 'runs');
    expect(runs).toMatchObject({ queryType: 'runs', devices: ['r1'], metrics: ['result', 'last_success_age_s'], direction: 'upload' });
    expect(withQueryType(runs, 'latest')).toEqual(latest);
    expect(withQueryType(latest, 'intervals')).toMatchObject({ queryType: 'intervals', devices: ['r1'] });
  });

  it('drops derived metrics for a time series, and falls back to the default metric when none is left', () => {
    expect(withQueryType(latest, 'timeseries')).toMatchObject({ queryType: 'timeseries', metrics: ['result'] });
    const onlyDerived: Iperf3DataQuery = { refId: 'A', queryType: 'latest', metrics: ['last_success_age_s'] };
    expect(withQueryType(onlyDerived, 'timeseries')).toEqual({ refId: 'A', queryType: 'timeseries', metrics: undefined });
  });
});
