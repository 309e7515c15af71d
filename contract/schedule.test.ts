import { describe, expect, it } from 'vitest';
import { fieldErrors, isValidCron, nextRuns, scheduleSchema, settingsSchema, SETTINGS_LIMITS, shortestCronGapMinutes } from './settings.js';

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

describe('bounds of the settings', () => {
  it('refuses a schedule that fires more often than every 5 minutes, naming a fix', () => {
    expect(shortestCronGapMinutes('0 2 * * *')).toBe(1440);
    expect(scheduleSchema.safeParse({ cron: '*/10 * * * *' }).success).toBe(true);
    const every2 = scheduleSchema.safeParse({ cron: '*/2 * * * *' });
    expect(every2.error?.issues.map((i) => i.message)).toEqual([expect.stringMatching(/^fires more often than every 5 minutes: .*"0 \*\/6 \* \* \*"/)]);
    // two fires close together inside an otherwise sparse schedule count too
    expect(scheduleSchema.safeParse({ cron: '0,1 3 * * *' }).success).toBe(false);
  });

  it('caps servers per list and pools, and lists each host:port once', () => {
    const many = Array.from({ length: SETTINGS_LIMITS.serversPerList + 1 }, (_, i) => ({ host: `10.0.${i >> 8}.${i & 255}` }));
    const tooMany = settingsSchema.safeParse({ servers: many });
    expect(fieldErrors(tooMany.error!)).toEqual([{ field: 'servers', message: 'at most 256 servers per list; split them into pools' }]);
    const pools = Object.fromEntries(Array.from({ length: SETTINGS_LIMITS.pools + 1 }, (_, i) => [`p${i}`, [{ host: '10.0.0.1' }]]));
    expect(fieldErrors(settingsSchema.safeParse({ servers: [{ host: '10.0.0.1' }], pools }).error!)).toEqual([{ field: 'pools', message: 'at most 64 pools' }]);
    const twice = settingsSchema.safeParse({ servers: [{ host: 'Iperf.example.net' }, { host: '10.0.0.2' }, { host: 'iperf.example.net', port: 5201 }] });
    expect(fieldErrors(twice.error!)).toEqual([{ field: 'servers.2.host', message: 'iperf.example.net:5201 is listed twice; list each server once' }]);
    // the same server in two pools is fine: the collector holds one lock per host:port
    expect(settingsSchema.safeParse({ servers: [{ host: '10.0.0.1' }], pools: { a: [{ host: '10.0.0.1' }] } }).success).toBe(true);
  });
});
