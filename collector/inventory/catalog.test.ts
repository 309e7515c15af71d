/**
 * The inventory in a real SQLite store: the configuration file's devices, devices added through
 * the API (the catalog the routes and `devices import` use), and reloads of the file.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deviceConfigSchema, type DeviceConfigInput } from '../../contract/devices.js';
import { loadConfigFile, type LoadedConfig } from '../config/load.js';
import { DeviceIdTakenError, DeviceManagedByFileError, DeviceRejectedError, UnknownDevicesError } from '../errors.js';
import { SqliteStore } from '../store/sqlite/sqliteStore.js';
import type { DeviceStore } from '../store/store.js';
import { DeviceAdminError } from './bulk.js';
import { DeviceCatalog } from './catalog.js';
import { watchConfigFile } from './configWatch.js';
import { apiUrl, storeDeviceAdmin } from './deviceAdmin.js';
import { Inventory } from './inventory.js';

const TOKEN = 'catalog-token-0123456789abcdef';
let dir: string;
let store: SqliteStore;
let lines: string[];

const logger = () => pino({ level: 'info' }, { write: (l: string) => lines.push(l) });
const logged = (level: number) => lines.map((l) => JSON.parse(l) as { level: number; msg: string; [k: string]: unknown }).filter((l) => l.level === level);

function writeConfig(devices: string, extra = 'deviceCredentialsDir: creds\n'): string {
  const path = join(dir, 'collector.yaml');
  writeFileSync(path, `apiTokenFile: token\n${extra}servers: [{ host: 10.0.0.1 }]\npools: { edge: [{ host: 10.0.0.9 }] }\ndevices:\n${devices}`);
  return path;
}

function catalog(loaded: LoadedConfig, inventory = new Inventory()) {
  return { inventory, catalog: new DeviceCatalog({ store, loaded, inventory, pools: () => Object.keys(loaded.config.pools), logger: logger(), readConfig: loadConfigFile }) };
}

const dev = (id: string, extra: Partial<DeviceConfigInput> = {}) => deviceConfigSchema.parse({ id, host: '192.0.2.7', username: 'root', privateKeyFile: 'id_ed25519', ...extra });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'catalog-'));
  lines = [];
  writeFileSync(join(dir, 'token'), TOKEN);
  writeFileSync(join(dir, 'key'), 'file-key');
  mkdirSync(join(dir, 'creds'));
  writeFileSync(join(dir, 'creds', 'id_ed25519'), 'api-key');
  writeFileSync(join(dir, 'creds', 'password'), 'secret-password\n');
  store = SqliteStore.open(join(dir, 'collector.db'));
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the inventory in the store', () => {
  it('writes the file devices at start, adds API devices with their credentials read from deviceCredentialsDir', async () => {
    const loaded = loadConfigFile(writeConfig('  - { id: f1, host: 192.0.2.1, username: root, privateKeyFile: key }\n'));
    const { inventory, catalog: c } = catalog(loaded);
    await c.start();
    expect((await store.devices.list(['file:'])).map((d) => d.device.id)).toEqual(['f1']);
    expect([...inventory.summaries()]).toEqual([{ id: 'f1', host: '192.0.2.1', port: 22, labels: {}, pool: null, enabled: true, managedBy: 'file' }]);

    const record = await c.add(dev('a1', { labels: { site: 'rome' }, pool: 'edge', passwordFile: 'password' }));
    expect(record).toEqual({ device: dev('a1', { labels: { site: 'rome' }, pool: 'edge', passwordFile: 'password' }), managedBy: 'api' });
    const added = inventory.get('a1')!;
    expect(added.managedBy).toBe('api');
    expect(added.target.privateKey?.toString()).toBe('api-key');
    expect(added.target.password).toBe('secret-password');
    expect(inventory.poolOf('a1')).toBe('edge');
    expect(c.records().map((r) => [r.device.id, r.managedBy])).toEqual([
      ['a1', 'api'],
      ['f1', 'file'],
    ]);
    // the store holds paths, never the secrets
    expect(JSON.stringify(await store.devices.list(['api']))).not.toContain('api-key');
  });

  it('API devices that name the same key file share one Buffer', async () => {
    const { inventory, catalog: c } = catalog(loadConfigFile(writeConfig('  - { id: f1, host: 192.0.2.1, username: root, privateKeyFile: key }\n')));
    await c.start();
    await c.add(dev('a1'));
    await c.add(dev('a2'));
    expect(inventory.get('a1')?.target.privateKey?.toString()).toBe('api-key');
    expect(inventory.get('a2')?.target.privateKey).toBe(inventory.get('a1')?.target.privateKey);
  });

  it('refuses devices that cannot work, naming the field: unknown pool, files outside deviceCredentialsDir, missing files, taken ids', async () => {
    const { catalog: c } = catalog(loadConfigFile(writeConfig('  - { id: f1, host: 192.0.2.1, username: root, privateKeyFile: key }\n')));
    await c.start();
    const fields = async (p: Promise<unknown>) => ((await p.catch((e: unknown) => e)) as DeviceRejectedError).fields;
    expect(await fields(c.add(dev('x', { pool: 'nope' })))).toEqual([{ field: 'pool', message: 'unknown pool "nope"; known: edge; or leave it out for the default servers' }]);
    expect(await fields(c.add(dev('x', { privateKeyFile: '../token' })))).toEqual([
      { field: 'privateKeyFile', message: expect.stringContaining('give a file name inside deviceCredentialsDir') },
    ]);
    expect(await fields(c.add(dev('x', { privateKeyFile: join(dir, 'token') })))).toEqual([
      { field: 'privateKeyFile', message: expect.stringContaining('other paths cannot be named through the API') },
    ]);
    expect(await fields(c.add(dev('x', { privateKeyFile: 'missing' })))).toEqual([
      { field: 'privateKeyFile', message: expect.stringContaining('no such file') },
    ]);
    await expect(c.add(dev('f1'))).rejects.toThrow(DeviceIdTakenError);
    await expect(c.add(dev('f1'))).rejects.toThrow('exists already in a configuration file');
    await c.add(dev('x'));
    await expect(c.add(dev('x'))).rejects.toThrow('change it with PATCH /api/v1/devices/x');
  });

  it('without deviceCredentialsDir, API devices are refused with the key to set', async () => {
    const path = writeConfig('  - { id: f1, host: 192.0.2.1, username: root, privateKeyFile: key }\n', '');
    const { catalog: c } = catalog(loadConfigFile(path));
    await c.start();
    const err = (await c.add(dev('x', { privateKeyFile: undefined, passwordFile: 'password' })).catch((e: unknown) => e)) as DeviceRejectedError;
    expect(err.fields).toEqual([{ field: 'passwordFile', message: expect.stringContaining(`set deviceCredentialsDir in ${path}`) }]);
  });

  it('changes an API device (enable, labels, pool, null removes a field, host key reset) and refuses file devices, pointing to the file', async () => {
    const path = writeConfig('  - { id: f1, host: 192.0.2.1, username: root, privateKeyFile: key }\n');
    const { inventory, catalog: c } = catalog(loadConfigFile(path));
    await c.start();
    await c.add(dev('a1', { pool: 'edge', hostKey: `SHA256:${'A'.repeat(43)}` }));
    await store.hostKeys.record('a1', 'SHA256:recorded');
    const changed = await c.update('a1', { enabled: false, labels: { site: 'milan' }, pool: null, hostKey: null, resetHostKey: true });
    expect(changed.device).toEqual(dev('a1', { enabled: false, labels: { site: 'milan' } }));
    expect(inventory.get('a1')!.config.enabled).toBe(false);
    expect(inventory.enabledIds()).toEqual(['f1']);
    expect(await store.hostKeys.get('a1')).toBeUndefined();
    // the result must still be a device: removing its only credential is refused
    const invalid = (await c.update('a1', { privateKeyFile: null }).catch((e: unknown) => e)) as DeviceRejectedError;
    expect(invalid.fields).toEqual([{ field: 'privateKeyFile', message: 'set privateKeyFile (recommended) or passwordFile for SSH authentication' }]);

    const refused = (await c.update('f1', { enabled: false }).catch((e: unknown) => e)) as DeviceManagedByFileError;
    expect(refused).toBeInstanceOf(DeviceManagedByFileError);
    expect(refused.message).toBe(`device f1 is managed by the configuration file ${path} (its devices: list): edit the file there; the collector reloads it when it is saved`);
    await expect(c.remove('f1', false)).rejects.toThrow(DeviceManagedByFileError);
    await expect(c.update('nope', { enabled: false })).rejects.toThrow(UnknownDevicesError);
    await expect(c.remove('nope', false)).rejects.toThrow('unknown device: nope');

    // a device another group's file lists is that file's
    await store.devices.replaceSource('file:eu', [dev('eu1')]);
    await expect(c.update('eu1', { enabled: false })).rejects.toThrow('managed by the configuration file of the collectors of group "eu"');
  });

  it('removes an API device: gone from the inventory, its runs kept unless asked', async () => {
    const { inventory, catalog: c } = catalog(loadConfigFile(writeConfig('  []\n')));
    await c.start();
    await c.add(dev('a1'));
    await c.add(dev('a2'));
    for (const id of ['a1', 'a2']) await store.runs.start({ device: id, trigger: 'manual', roundId: null, startedAt: new Date(0) });
    await store.markInterrupted();
    await c.remove('a1', false);
    await c.remove('a2', true);
    expect(inventory.size).toBe(0);
    expect((await store.runs.list()).map((r) => r.device)).toEqual(['a1']);
  });

  it('the file wins over an API device of the same id, with a warning', async () => {
    const path = writeConfig('  - { id: f1, host: 192.0.2.1, username: root, privateKeyFile: key }\n');
    await store.devices.add(dev('f1', { host: '192.0.2.99' }));
    const { inventory, catalog: c } = catalog(loadConfigFile(path));
    await c.start();
    expect(inventory.get('f1')).toMatchObject({ managedBy: 'file', config: { host: '192.0.2.1' } });
    expect(logged(40).map((l) => l.msg)).toEqual(['device is both in the configuration file and added through the API: the file entry is used; delete the API one']);
  });

  it('reads devices added through another collector (same store) at refresh; credentials that vanished are logged', async () => {
    const loaded = loadConfigFile(writeConfig('  []\n'));
    const { inventory, catalog: c } = catalog(loaded);
    await c.start();
    await store.devices.add(dev('other', { privateKeyFile: 'gone' }));
    await c.refresh();
    expect(inventory.get('other')?.managedBy).toBe('api');
    expect(inventory.get('other')?.target.privateKey?.toString()).toBe('');
    expect(logged(50)[0]).toMatchObject({ device: 'other', msg: expect.stringContaining('credentials of a device added through the API cannot be read') });
    // read once: a refresh without changes does not read the files again
    await c.refresh();
    expect(logged(50)).toHaveLength(1);
    await store.devices.remove('other', false);
    await c.refresh();
    expect(inventory.size).toBe(0);

    // a configuration without deviceCredentialsDir: API devices have no credentials
    const bare = catalog({ ...loaded, credentialsDir: null });
    await store.devices.add(dev('late'));
    await bare.catalog.refresh();
    expect(bare.inventory.get('late')?.target.privateKey).toBeUndefined();
  });

  it('follows changes announced by the store: one more read for any number of changes during a read, a failed read logged, stop waits', async () => {
    const loaded = loadConfigFile(writeConfig('  []\n'));
    const { inventory, catalog: c } = catalog(loaded);
    await c.start();
    // SQLite has no notifications (one process owns it): the PostgreSQL NOTIFY is injected here,
    // and tests/integration/multi-collector.test.ts follows it between real collectors
    let announce: (() => void) | undefined;
    (store.devices as DeviceStore).onChange = async (listener) => {
      announce = listener;
      return () => (announce = undefined);
    };
    const list = store.devices.list.bind(store.devices);
    let reads = 0;
    let hold: Promise<void> | undefined;
    let failNext = false;
    store.devices.list = async (sources) => {
      reads++;
      await hold;
      if (failNext) {
        failNext = false;
        throw new Error('connection terminated');
      }
      return list(sources);
    };
    const following = await c.follow();
    const settled = async (n: number) => {
      while (reads < n) await new Promise((r) => setImmediate(r));
      await c.refresh();
      reads--; // the refresh of this helper itself
    };

    await store.devices.add(dev('other-1'));
    let release!: () => void;
    hold = new Promise((r) => (release = r));
    announce!();
    await store.devices.add(dev('other-2'));
    announce!();
    announce!();
    release();
    hold = undefined;
    await settled(2);
    expect(reads).toBe(2);
    expect([...inventory.summaries()].map((d) => d.id)).toEqual(['other-1', 'other-2']);

    failNext = true;
    await store.devices.remove('other-1', false);
    announce!();
    await settled(3);
    expect(logged(40)).toContainEqual(expect.objectContaining({ err: 'Error: connection terminated', msg: expect.stringContaining('read again before the next round') }));

    hold = new Promise((r) => (release = r));
    announce!();
    let stopped = false;
    const stopping = following.stop().then(() => (stopped = true));
    expect(announce).toBeUndefined();
    await new Promise((r) => setTimeout(r, 20));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect([...inventory.summaries()].map((d) => d.id)).toEqual(['other-2']);
  });

  it('reloads the file: a good edit applies its devices, a bad one is logged like check-config and keeps the inventory', async () => {
    const path = writeConfig('  - { id: f1, host: 192.0.2.1, username: root, privateKeyFile: key }\n');
    const { inventory, catalog: c } = catalog(loadConfigFile(path));
    await c.start();
    await c.add(dev('a1'));

    writeConfig('  - { id: f1, host: 192.0.2.1, username: root, privateKeyFile: key, enabled: false }\n  - { id: f2, host: 192.0.2.2, username: root, privateKeyFile: key }\n');
    expect(await c.reloadFile()).toBe(true);
    expect([...inventory.summaries()].map((d) => [d.id, d.enabled, d.managedBy])).toEqual([
      ['a1', true, 'api'],
      ['f1', false, 'file'],
      ['f2', true, 'file'],
    ]);
    expect(logged(30).at(-1)).toMatchObject({ msg: 'configuration file reloaded: devices applied', added: ['f2'], changed: ['f1'], removed: [] });

    writeConfig('  - { id: f1, host: 999.1.1.1, username: root, privateKeyFile: key }\n');
    expect(await c.reloadFile()).toBe(false);
    const error = logged(50).at(-1)!;
    expect(error.msg).toContain(`configuration not reloaded, the devices in use stay: ${path} has invalid settings`);
    expect(error.errors).toEqual([{ field: 'devices.0.host', message: expect.any(String) }]);
    expect([...inventory.summaries()].map((d) => d.id)).toEqual(['a1', 'f1', 'f2']);
    expect((await store.devices.list(['file:'])).map((d) => d.device.id)).toEqual(['f1', 'f2']);

    // other keys changed: the devices apply, the rest waits for a restart (said once per reload)
    writeConfig('  []\n', 'deviceCredentialsDir: creds\nretention: { days: 9 }\n');
    expect(await c.reloadFile()).toBe(true);
    expect(logged(40).map((l) => l.msg)).toContain('only the devices: list is applied without a restart; restart the collector for the other changes to the file');
    expect([...inventory.summaries()].map((d) => d.id)).toEqual(['a1']);
  });

  it('rethrows what is not a configuration error (the reload is reported failed by the service)', async () => {
    const loaded = loadConfigFile(writeConfig('  []\n'));
    const inventory = new Inventory();
    const c = new DeviceCatalog({ store, loaded, inventory, pools: () => [], logger: logger(), readConfig: () => { throw new Error('disk on fire'); } });
    await expect(c.reloadFile()).rejects.toThrow('disk on fire');
    // the queue goes on after a failure
    await c.start();
    expect(inventory.size).toBe(0);
  });

  it('an add the store cannot write is an error, not a refusal', async () => {
    const { catalog: c } = catalog(loadConfigFile(writeConfig('  []\n')));
    await c.start();
    await store.close();
    const err = await c.add(dev('x')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(DeviceRejectedError);
    store = SqliteStore.open(join(dir, 'collector.db'));
  });

  it('devices import through the store: refusals become row errors, other failures stay errors', async () => {
    const loaded = loadConfigFile(writeConfig('  []\n'));
    const admin = await storeDeviceAdmin(loaded, store, logger());
    await admin.add(dev('x'));
    await expect(admin.add(dev('x'))).rejects.toThrow(DeviceAdminError);
    await expect(admin.update('nope', { enabled: false })).rejects.toThrow(DeviceAdminError);
    await store.close();
    const err = await admin.add(dev('y')).catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(DeviceAdminError);
    store = SqliteStore.open(join(dir, 'collector.db'));
  });

  it('a configuration file in a folder that cannot be watched says to use SIGHUP', () => {
    const watch = watchConfigFile(join(dir, 'no-such-folder', 'collector.yaml'), () => undefined, logger());
    watch.close();
    expect(logged(40)[0]).toMatchObject({ msg: 'cannot watch the configuration file: send SIGHUP to reload its devices' });
  });

  it('names the collectors without a group whose file lists a device', async () => {
    const loaded = loadConfigFile(writeConfig('  []\n', 'deviceCredentialsDir: creds\ngroup: eu\n'));
    const { catalog: c } = catalog(loaded);
    await c.start();
    await store.devices.replaceSource('file:', [dev('plain')]);
    await expect(c.remove('plain', false)).rejects.toThrow('managed by the configuration file of the collectors without a group (their devices: list)');
  });

  it('a device deleted through another collector between the check and the write is unknown', async () => {
    const { catalog: c } = catalog(loadConfigFile(writeConfig('  []\n')));
    await c.start();
    await c.add(dev('gone'));
    // fault injection: another collector deletes the device right after this one looked it up
    const find = store.devices.find.bind(store.devices);
    store.devices.find = async (id: string) => {
      const found = await find(id);
      await store.devices.remove(id, false);
      return found;
    };
    await expect(c.update('gone', { enabled: false })).rejects.toThrow(UnknownDevicesError);
    await store.devices.add(dev('gone'));
    await expect(c.remove('gone', false)).rejects.toThrow(UnknownDevicesError);
  });

  it('watches the folder of the configuration file: one reload for a burst of writes, none for other files', async () => {
    let calls = 0;
    const watch = watchConfigFile(join(dir, 'watched.yaml'), () => calls++, logger(), 100);
    try {
      for (let i = 0; i < 3; i++) writeFileSync(join(dir, 'watched.yaml'), `n: ${i}\n`);
      await new Promise((r) => setTimeout(r, 400));
      expect(calls).toBe(1);
      writeFileSync(join(dir, 'other.yaml'), 'x\n');
      await new Promise((r) => setTimeout(r, 300));
      expect(calls).toBe(1);
      writeFileSync(join(dir, 'watched.yaml'), 'n: 9\n');
    } finally {
      // closing cancels a reload that is still waiting
      watch.close();
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(calls).toBe(1);
  });

  it('reaches a collector listening on every address through loopback', () => {
    expect([apiUrl('0.0.0.0:8686'), apiUrl('[::]:8686'), apiUrl('10.0.0.5:1')]).toEqual(['http://127.0.0.1:8686', 'http://[::1]:8686', 'http://10.0.0.5:1']);
  });
});
