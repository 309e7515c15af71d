import { describe, expect, it } from 'vitest';
import { MAX_RUNS_PER_REQUEST, runNowRequestSchema, runsLimitSchema, runStatusSchema, seriesToColumns } from './api.js';

describe('API values', () => {
  it('bounds a runs limit by what one request returns', () => {
    expect(runsLimitSchema.parse(1)).toBe(1);
    expect(runsLimitSchema.parse(MAX_RUNS_PER_REQUEST)).toBe(MAX_RUNS_PER_REQUEST);
    expect(runsLimitSchema.safeParse(MAX_RUNS_PER_REQUEST + 1).error?.issues[0].message).toBe(`at most ${MAX_RUNS_PER_REQUEST} runs per request`);
    for (const bad of [0, 2.5, Number.NaN]) {
      expect(runsLimitSchema.safeParse(bad).error?.issues[0].message).toBe(`must be a whole number from 1 to ${MAX_RUNS_PER_REQUEST}`);
    }
  });

  it('names the run statuses when given another', () => {
    expect(runStatusSchema.parse('failed')).toBe('failed');
    expect(runStatusSchema.safeParse('weird').error?.issues[0].message).toBe('"weird" is not a run status; use one of running, ok, failed, skipped, interrupted');
  });

  it('takes a run-now body of device ids and says what to send otherwise', () => {
    expect(runNowRequestSchema.parse({ devices: [' r1 '] })).toEqual({ devices: ['r1'] });
    const message = (body: unknown) => runNowRequestSchema.safeParse(body).error?.issues[0].message;
    expect(message([])).toBe('send a JSON object such as {"devices": ["r1"]}');
    expect(message({})).toBe('required: a list of device ids, e.g. ["r1"]');
    expect(message({ devices: [] })).toBe('name at least one device');
    expect(message({ devices: [' '] })).toBe('a device id cannot be empty');
    expect(runNowRequestSchema.safeParse({ devices: ['r1'], now: true }).success).toBe(false);
  });
});

describe('series as columns', () => {
  it('transposes the points, in time order', () => {
    const key = { device: 'r1', metric: 'result' as const, server: null, direction: null };
    expect(seriesToColumns({ ...key, points: [[1, 10, 0], [2, 0, 1]] })).toEqual({ ...key, times: [1, 2], values: [10, 0], failed: [0, 1] });
    expect(seriesToColumns({ ...key, points: [[3, 30, 0], [1, 10, 1], [2, 20, 0]] })).toEqual({ ...key, times: [1, 2, 3], values: [10, 20, 30], failed: [1, 0, 0] });
    expect(seriesToColumns({ ...key, points: [] })).toEqual({ ...key, times: [], values: [], failed: [] });
  });
});
