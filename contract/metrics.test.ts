import { describe, expect, it } from 'vitest';
import {
  catalogueEntry,
  DERIVED_METRIC_NAMES,
  isDerivedMetric,
  isQueryMetric,
  isStoredMetric,
  LAST_SUCCESS_AGE,
  METRIC_CATALOGUE,
  METRIC_NAMES,
  metricsFor,
} from './metrics.js';
import { querySchema } from './query.js';

describe('metric catalogue', () => {
  it('lists every stored metric once and the derived ones after them, marked as derived', () => {
    expect(METRIC_CATALOGUE.map((m) => m.name)).toEqual([...METRIC_NAMES, ...DERIVED_METRIC_NAMES]);
    expect(new Set(METRIC_CATALOGUE.map((m) => m.name)).size).toBe(METRIC_CATALOGUE.length);
    expect(catalogueEntry(LAST_SUCCESS_AGE)).toMatchObject({ derived: true, queryTypes: ['latest'], unit: 's' });
    expect(catalogueEntry('tcp_received_bps')).toMatchObject({ derived: false, queryTypes: ['timeseries', 'latest'], unit: 'bps' });
    expect(catalogueEntry('tcp_bps')).toBeUndefined();
  });

  it('keeps derived metrics out of what the collector stores', () => {
    expect(METRIC_NAMES).not.toContain(LAST_SUCCESS_AGE);
    expect(isStoredMetric(LAST_SUCCESS_AGE)).toBe(false);
    expect(isDerivedMetric(LAST_SUCCESS_AGE)).toBe(true);
    expect(isDerivedMetric('result')).toBe(false);
    expect(isQueryMetric('result') && isQueryMetric(LAST_SUCCESS_AGE)).toBe(true);
    expect(isQueryMetric('tcp_bps')).toBe(false);
  });

  it('offers derived metrics to latest queries only', () => {
    expect(metricsFor('latest').map((m) => m.name)).toContain(LAST_SUCCESS_AGE);
    expect(metricsFor('timeseries').map((m) => m.name)).toEqual(METRIC_NAMES);
  });
});

describe('query model and derived metrics', () => {
  it('accepts a derived metric alone in a latest query, without the default metric', () => {
    expect(querySchema.parse({ queryType: 'latest', metrics: [LAST_SUCCESS_AGE] })).toMatchObject({ metrics: [LAST_SUCCESS_AGE] });
  });

  it('tells where a derived metric works when a time series asks for it', () => {
    const bad = querySchema.safeParse({ queryType: 'timeseries', metrics: ['result', LAST_SUCCESS_AGE] });
    expect(bad.error?.issues[0]).toMatchObject({ path: ['metrics', 1], message: `metric ${LAST_SUCCESS_AGE} is only available in "latest" queries` });
  });

  it('gives every new query its own default metric list', () => {
    const a = querySchema.parse({ queryType: 'timeseries' });
    const b = querySchema.parse({ queryType: 'timeseries' });
    expect(a).toMatchObject({ metrics: ['tcp_received_bps'] });
    expect(a.queryType === 'timeseries' && b.queryType === 'timeseries' && a.metrics !== b.metrics).toBe(true);
  });
});
