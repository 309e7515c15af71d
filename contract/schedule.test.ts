import { describe, expect, it } from 'vitest';
import { isValidCron, nextRuns, scheduleSchema } from './settings.js';

describe('the schedule (croner, the one cron engine of every runtime)', () => {
  it('accepts five fields and nicknames, rejects seconds and nonsense with a message that says how', () => {
    expect(isValidCron('0 2 * * *')).toBe(true);
    expect(isValidCron(' 30 3 * * 1-5 ')).toBe(true);
    expect(isValidCron('@daily')).toBe(true);
    expect(isValidCron('* * * * * *')).toBe(false); // seconds: a round of tests lasts minutes
    expect(isValidCron('61 2 * * *')).toBe(false);
    expect(isValidCron('0 2 * *')).toBe(false);
    const parsed = scheduleSchema.safeParse({ cron: '*/10 * * * * *' });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0].message).toMatch(/use five fields \(minute hour day-of-month month day-of-week\)/);
  });

  it('computes the next runs in the schedule time zone, across a DST change', () => {
    // 02:00 Europe/Rome: CET (UTC+1) before 29 March 2026, CEST (UTC+2) after; 02:00 does not exist on the 29th
    const runs = nextRuns('0 2 * * *', 'Europe/Rome', 3, new Date('2026-03-27T12:00:00Z')).map((d) => d.toISOString());
    expect(runs).toEqual(['2026-03-28T01:00:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:00:00.000Z']);
    expect(nextRuns('@daily', 'UTC', 1, new Date('2026-01-01T10:00:00Z'))[0].toISOString()).toBe('2026-01-02T00:00:00.000Z');
  });
});
