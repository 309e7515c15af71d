import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SettingsRejectedError } from '../errors.js';
import { Inventory } from '../inventory/inventory.js';
import { SqliteStore } from '../store/sqlite/sqliteStore.js';
import { EffectiveSettings } from './effectiveSettings.js';
import { loadConfigText } from './load.js';
import { poolServerList } from '../../contract/settings.js';

let dir: string;
let store: SqliteStore;

function config(extra = '') {
  writeFileSync(join(dir, 'token'), 'effective-settings-token-0123');
  writeFileSync(join(dir, 'key'), 'k');
  return loadConfigText(
    `apiTokenFile: token
database: ./db.sqlite
servers: [{ host: 10.9.0.1 }]
pools: { edge: [{ host: 10.9.1.1 }] }
devices:
  - { id: a, host: 10.9.0.10, username: root, privateKeyFile: key, pool: edge }
${extra}`,
    join(dir, 'collector.yaml'),
  );
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'effective-'));
  store = SqliteStore.open(join(dir, 'db.sqlite'));
});
afterEach(() => store.close());

describe('EffectiveSettings', () => {
  it('uses the file until settings are stored, then the stored ones', async () => {
    const loaded = config();
    const inventory = new Inventory(loaded.devices);
    const fromFile = await EffectiveSettings.load(loaded, store.settings, inventory);
    expect(fromFile.source).toBe('file');
    expect(fromFile.updatedAt).toBeNull();
    expect(fromFile.poolServers('edge')).toEqual([{ host: '10.9.1.1', port: 5201 }]);
    expect(fromFile.poolServers('gone')).toEqual([]);
    const pushed = { ...fromFile.current, servers: [{ host: '10.9.0.2', port: 5202 }] };
    await store.settings.save(pushed);
    const stored = await EffectiveSettings.load(loaded, store.settings, inventory);
    expect(stored.source).toBe('api');
    expect(stored.poolServers(null)).toEqual([{ host: '10.9.0.2', port: 5202 }]);
  });

  it("pins a device to its pool's group unless it names its own, and rejects pushed settings that pin them apart", async () => {
    const loaded = config(`  - { id: b, host: 10.9.0.11, username: root, privateKeyFile: key, pool: edge, group: eu }
  - { id: c, host: 10.9.0.12, username: root, privateKeyFile: key }`);
    const effective = await EffectiveSettings.load(loaded, store.settings, new Inventory(loaded.devices));
    const [a, b, c] = loaded.devices;
    expect([a, b, c].map((d) => effective.groupOf(d))).toEqual([undefined, 'eu', undefined]);
    const before = effective.current;
    const edge = poolServerList(before.pools.edge);
    expect(() => effective.apply({ ...before, pools: { edge: { group: 'us', servers: edge } } }, '2026-01-01T00:00:00.000Z')).toThrow(
      'pools.edge.group: device b is pinned to group "eu" but its pool to "us"; pin both to the same group',
    );
    effective.apply({ ...before, pools: { edge: { group: 'eu', servers: edge } } }, '2026-01-01T00:00:00.000Z');
    expect([a, b, c].map((d) => effective.groupOf(d))).toEqual(['eu', 'eu', undefined]);
    expect(effective.poolServers('edge')).toEqual(edge);
  });

  it('rejects settings that drop a pool a device uses, or pushed auth without its own password, and keeps the current ones', async () => {
    const loaded = config();
    const effective = await EffectiveSettings.load(loaded, store.settings, new Inventory(loaded.devices));
    const before = effective.current;
    expect(() => effective.apply({ ...before, pools: {} }, '2026-01-01T00:00:00.000Z')).toThrow(SettingsRejectedError);
    const auth = { ...before, clientOptions: { ...before.clientOptions, auth: { username: 'u', rsaPublicKey: 'PEM', pkcs1Padding: false } } };
    expect(() => effective.apply(auth, '2026-01-01T00:00:00.000Z')).toThrow(/clientOptions.auth.password: pushed iperf3 authentication needs its own password/);
    expect(effective.current).toBe(before);
    expect(effective.apply({ ...before, schedule: { ...before.schedule, cron: '0 3 * * *' } }, '2026-01-01T00:00:00.000Z')).toEqual({ scheduleChanged: true });
    expect(effective.source).toBe('api');
  });
});
