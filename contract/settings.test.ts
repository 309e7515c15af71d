import { describe, expect, it } from 'vitest';
import { clientOptionsSchema, collectorUrlSchema, DEFAULT_CLIENT_OPTIONS, fieldErrors, jsonDataSettingsSchema, poolGroup, poolServerList, settingsSchema } from './settings.js';

describe('settings defaults', () => {
  it('fills a missing tcp or udp block from the inner defaults, and keeps what is given', () => {
    expect(clientOptionsSchema.parse({}).tcp).toEqual({ bitrate: '0', length: '128K' });
    expect(clientOptionsSchema.parse({}).udp).toEqual({ enabled: true, bitrate: '30M', length: null });
    expect(clientOptionsSchema.parse({ udp: { bitrate: '10M' } }).udp).toEqual({ enabled: true, bitrate: '10M', length: null });
    expect(settingsSchema.parse({ servers: [{ host: '192.0.2.1' }] })).toMatchObject({
      servers: [{ host: '192.0.2.1', port: 5201 }],
      pools: {},
      clientOptions: DEFAULT_CLIENT_OPTIONS,
      schedule: { cron: '0 2 * * *', timezone: 'UTC', runAtStart: false },
    });
  });

  it('hands every parse its own defaults, so changing one result never changes another', () => {
    const a = settingsSchema.parse({ servers: [{ host: '192.0.2.1' }] });
    a.clientOptions.directions.pop();
    a.schedule.cron = '0 3 * * *';
    const b = settingsSchema.parse({ servers: [{ host: '192.0.2.1' }] });
    expect(b.clientOptions.directions).toEqual(['upload', 'download']);
    expect(b.schedule.cron).toBe('0 2 * * *');
  });

  it('checks pool names and that a pool has servers', () => {
    const pools = { 'south pool': [{ host: '192.0.2.2' }], north: [], ['x'.repeat(65)]: [{ host: '192.0.2.3' }] };
    const bad = settingsSchema.safeParse({ servers: [{ host: '192.0.2.1' }], pools });
    expect(fieldErrors(bad.error!).map((e) => e.message).sort()).toEqual(
      ['a pool needs at least one server', 'pool names have at most 64 characters', 'pool names use letters, digits, . _ -'].sort(),
    );
  });
});

describe('pools pinned to a collector group', () => {
  it('take a plain list (unpinned) or { group, servers }, and say which shape failed and how', () => {
    const ok = settingsSchema.parse({
      servers: [{ host: '192.0.2.1' }],
      pools: { eu: { group: 'eu-west', servers: [{ host: '192.0.2.2' }] }, any: [{ host: '192.0.2.3' }] },
    });
    expect(ok.pools).toEqual({ eu: { group: 'eu-west', servers: [{ host: '192.0.2.2', port: 5201 }] }, any: [{ host: '192.0.2.3', port: 5201 }] });
    expect([poolGroup(ok.pools.eu), poolGroup(ok.pools.any), poolGroup(undefined)]).toEqual(['eu-west', undefined, undefined]);
    expect(poolServerList(ok.pools.eu)).toEqual([{ host: '192.0.2.2', port: 5201 }]);
    expect(poolServerList(ok.pools.any)).toEqual([{ host: '192.0.2.3', port: 5201 }]);
    const errors = (pools: unknown) => fieldErrors(settingsSchema.safeParse({ servers: [{ host: '192.0.2.1' }], pools }).error!);
    expect(errors({ a: { servers: [{ host: '192.0.2.2' }] } })).toEqual([
      { field: 'pools.a', message: 'group: name the collector group the pool is pinned to, or give an unpinned pool as a plain list of servers' },
    ]);
    expect(errors({ a: { group: 'no spaces', servers: [] } })).toEqual([
      { field: 'pools.a.group', message: 'group names use letters, digits, . _ -' },
      { field: 'pools.a.servers', message: 'a pool needs at least one server' },
    ]);
    expect(errors({ a: 'eu' })).toEqual([{ field: 'pools.a', message: 'a pool is a list of servers, or { group, servers } to pin it to a collector group' }]);
    expect(errors({ a: null })).toEqual([{ field: 'pools.a', message: 'a pool is a list of servers, or { group, servers } to pin it to a collector group' }]);
    expect(errors({ a: [{ host: 7 }] })[0].message).toMatch(/^0\.host: /);
    expect(errors({ a: { group: 'eu', servers: [{ host: '192.0.2.2' }], region: 'x' } })[0]).toMatchObject({ field: 'pools.a', message: expect.stringContaining('region') });
  });
});

describe('data source jsonData', () => {
  it('takes the settings out of jsonData, ignoring its other keys', () => {
    const parsed = jsonDataSettingsSchema.parse({ collectorUrl: 'http://c:8686', servers: [{ host: 'iperf3.example.net' }], tlsSkipVerify: true });
    expect(parsed).toEqual(settingsSchema.parse({ servers: [{ host: 'iperf3.example.net' }] }));
  });

  it('asks for a server when jsonData has none', () => {
    const missing = jsonDataSettingsSchema.safeParse({ collectorUrl: 'http://c:8686' });
    expect(fieldErrors(missing.error!)).toEqual([{ field: 'servers', message: 'add at least one iperf3 server' }]);
  });

  it('accepts an http(s) collector URL and says how to fix anything else', () => {
    expect(collectorUrlSchema.parse(' https://collector.example:8686/base ')).toBe('https://collector.example:8686/base');
    expect(collectorUrlSchema.safeParse(undefined).error?.issues[0].message).toBe("is required: the collector's address, e.g. http://collector:8080");
    expect(collectorUrlSchema.safeParse('  ').error?.issues[0].message).toBe("is required: the collector's address, e.g. http://collector:8080");
    for (const bad of ['ftp://collector', 'collector:8080', 'http//x']) {
      expect(collectorUrlSchema.safeParse(bad).error?.issues[0].message).toBe('must be an http:// or https:// URL, e.g. http://collector:8080');
    }
  });
});

describe('secrets stay where they belong', () => {
  it('refuses collector URLs that would carry credentials or send the token elsewhere', () => {
    const message = (url: string) => collectorUrlSchema.safeParse(url).error?.issues[0].message;
    expect(message('http://user:pw@collector:8686')).toMatch(/^must not contain a user name or password/);
    expect(message('http://collector.example@evil.example:8686')).toMatch(/^must not contain a user name or password/);
    expect(message('http://evil.example/steal?')).toMatch(/^must not contain a query \(\?\) or fragment \(#\)/);
    expect(message('http://evil.example/steal#')).toMatch(/^must not contain a query/);
    expect(message('http://collector:8686/?x=1')).toMatch(/^must not contain a query/);
    expect(message('ftp://collector')).toBe('must be an http:// or https:// URL, e.g. http://collector:8080');
    expect(collectorUrlSchema.safeParse('http://collector:8686/prefix').success).toBe(true);
  });

  it('refuses an iperf3 password or file paths in plain jsonData, naming the field', () => {
    const parsed = jsonDataSettingsSchema.safeParse({ servers: [{ host: '10.0.0.1' }], clientOptions: { auth: { username: 'u', password: 'visible', passwordFile: '/etc/p' } } });
    expect(fieldErrors(parsed.error!)).toEqual([
      { field: 'clientOptions.auth.password', message: expect.stringMatching(/^a password in jsonData is readable by every Viewer/) },
      { field: 'clientOptions.auth.passwordFile', message: 'file paths belong to the collector configuration, not to the data source' },
    ]);
    expect(jsonDataSettingsSchema.safeParse({ servers: [{ host: '10.0.0.1' }], clientOptions: { auth: { username: 'u' } } }).success).toBe(true);
  });
});
