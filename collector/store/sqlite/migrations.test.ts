import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyMigrations, MIGRATIONS, SchemaTooNewError, type Migration } from './migrations.js';
import { SqliteStore } from './sqliteStore.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'store-migrations-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const tables = (db: Database.Database): string[] =>
  db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[];

describe('opening and migrating', () => {
  it('creates the folder and the schema on an empty file, in WAL mode with foreign keys on', async () => {
    const path = join(dir, 'nested', 'deeper', 'collector.db');
    const store = SqliteStore.open(path);
    expect(store.schemaVersion()).toBe(MIGRATIONS.length);
    await store.close();
    expect(existsSync(path)).toBe(true);

    const db = new Database(path);
    expect(tables(db)).toEqual(['devices', 'host_keys', 'intervals', 'metrics', 'rounds', 'runs', 'settings', 'tests']);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'").pluck().all();
    expect(indexes).toEqual(
      expect.arrayContaining(['metrics_name_device_time', 'metrics_run_id', 'runs_device_started_at', 'runs_status']),
    );
    db.close();
  });

  it('reopens an up-to-date database without applying anything and keeps its data', async () => {
    const path = join(dir, 'c.db');
    const store = SqliteStore.open(path);
    await store.hostKeys.record('r1', 'SHA256:abc');
    await store.close();

    const db = new Database(path);
    expect(applyMigrations(db, MIGRATIONS, path)).toEqual([]);
    db.close();

    const again = SqliteStore.open(path);
    expect(again.schemaVersion()).toBe(MIGRATIONS.length);
    expect(await again.hostKeys.get('r1')).toBe('SHA256:abc');
    await again.close();
  });

  it('turns foreign keys on for the connection (deleting a run cascades to its metrics)', async () => {
    const path = join(dir, 'fk.db');
    const store = SqliteStore.open(path);
    const id = await store.runs.start({ device: 'd', trigger: 'manual', roundId: null, startedAt: new Date(1000) });
    await store.runs.finish(id, {
      status: 'failed',
      errorClass: 'timeout',
      message: 'x',
      server: 's:1',
      endedAt: new Date(2000),
      tests: [],
      metrics: [{ name: 'result', direction: null, value: 0, failed: true }],
    });
    expect(await store.applyRetention(new Date(5000))).toBe(1);
    await store.close();
    const db = new Database(path);
    expect(db.prepare('SELECT count(*) FROM metrics').pluck().get()).toBe(0);
    db.close();
  });

  it('refuses a database written by a newer collector, with a message saying what to do', async () => {
    const path = join(dir, 'newer.db');
    await SqliteStore.open(path).close();
    const db = new Database(path);
    db.pragma('user_version = 7');
    db.close();

    expect(() => SqliteStore.open(path)).toThrow(SchemaTooNewError);
    expect(() => SqliteStore.open(path)).toThrow(
      `database ${path} has schema version 7, but this collector knows versions up to ${MIGRATIONS.length}: it was written by a newer collector`,
    );
    // the refused file was closed, not left locked: it can be opened and inspected
    const check = new Database(path);
    expect(check.pragma('user_version', { simple: true })).toBe(7);
    check.close();
  });

  it('applies later migrations in order, each with its version, and only the missing ones', () => {
    const path = join(dir, 'm.db');
    const db = new Database(path);
    const log: number[] = [];
    const list: Migration[] = [
      { version: 1, description: 'a', up: (d) => (d.exec('CREATE TABLE a (x)'), log.push(1)) },
      { version: 2, description: 'b', up: (d) => (d.exec('CREATE TABLE b (x)'), log.push(2)) },
    ];
    expect(applyMigrations(db, list.slice(0, 1), path)).toEqual([1]);
    expect(applyMigrations(db, list, path)).toEqual([2]);
    expect(log).toEqual([1, 2]);
    expect(db.pragma('user_version', { simple: true })).toBe(2);
    db.close();
  });

  it('rolls a failing migration back entirely, version included', () => {
    const path = join(dir, 'fail.db');
    const db = new Database(path);
    const list: Migration[] = [
      { version: 1, description: 'ok', up: (d) => d.exec('CREATE TABLE a (x)') },
      {
        version: 2,
        description: 'breaks half-way',
        up: (d) => {
          d.exec('CREATE TABLE b (x)');
          throw new Error('boom');
        },
      },
    ];
    expect(() => applyMigrations(db, list, path)).toThrow('boom');
    expect(db.pragma('user_version', { simple: true })).toBe(1);
    expect(tables(db)).toEqual(['a']);
    db.close();
  });

  it('rejects a migration list whose versions are not 1, 2, 3, ...', () => {
    const db = new Database(join(dir, 'order.db'));
    const list: Migration[] = [{ version: 2, description: 'x', up: () => undefined }];
    expect(() => applyMigrations(db, list, 'order.db')).toThrow('migration list out of order: position 1 has version 2');
    db.close();
  });
});

describe('migration 2: the settings secret moves out of the JSON', () => {
  it('upgrades a version-1 database, keeping its settings, and seals the password of the next save', async () => {
    const dir2 = mkdtempSync(join(tmpdir(), 'mig2-'));
    const path = join(dir2, 'v1.db');
    const db = new Database(path);
    applyMigrations(db, MIGRATIONS.slice(0, 1), path);
    db.prepare('INSERT INTO settings (id, json, updated_at) VALUES (1, ?, 0)').run(JSON.stringify({ servers: [{ host: '10.0.0.1', port: 5201 }] }));
    db.close();
    const store = SqliteStore.open(path);
    expect(store.schemaVersion()).toBe(MIGRATIONS.length);
    const stored = await store.settings.get();
    expect(stored?.settings.servers).toEqual([{ host: '10.0.0.1', port: 5201 }]);
    await store.settings.save({ ...stored!.settings, clientOptions: { ...stored!.settings.clientOptions, auth: { username: 'u', password: 'sealed-pw', pkcs1Padding: false } } });
    const raw = new Database(path);
    const row = raw.prepare('SELECT json, secret FROM settings').get() as { json: string; secret: string };
    raw.close();
    expect(row.json).not.toContain('sealed-pw');
    expect(row.secret).toMatch(/^v1:/);
    expect((await store.settings.get())?.settings.clientOptions.auth?.password).toBe('sealed-pw');
    await store.close();
    rmSync(dir2, { recursive: true, force: true });
  });
});

describe('migration 3: the inventory moves into the store', () => {
  it('upgrades a version-2 database, keeping its runs, with an empty devices table keyed by source and id', async () => {
    const dir3 = mkdtempSync(join(tmpdir(), 'mig3-'));
    const path = join(dir3, 'v2.db');
    const db = new Database(path);
    applyMigrations(db, MIGRATIONS.slice(0, 2), path);
    db.prepare("INSERT INTO runs (device, trigger, status, started_at) VALUES ('r1', 'manual', 'ok', 1)").run();
    db.close();
    const store = SqliteStore.open(path);
    expect(store.schemaVersion()).toBe(3);
    expect((await store.runs.list()).map((r) => r.device)).toEqual(['r1']);
    expect(await store.devices.list(['api'])).toEqual([]);
    await store.close();
    const raw = new Database(path);
    const pk = raw.prepare("SELECT name FROM pragma_table_info('devices') WHERE pk > 0 ORDER BY pk").pluck().all();
    raw.close();
    expect(pk).toEqual(['source', 'id']);
    rmSync(dir3, { recursive: true, force: true });
  });
});
