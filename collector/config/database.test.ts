import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfigText } from './load.js';

let dir: string;
const SECRET = 'pg-Secret-7f3a';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cfg-db-'));
  writeFileSync(join(dir, 'token'), `${'a'.repeat(32)}\n`);
  writeFileSync(join(dir, 'pgpass'), `${SECRET}\n`);
});
afterEach(() => vi.unstubAllEnvs());

const load = (extra: string) => loadConfigText(`apiTokenFile: token\n${extra}`, join(dir, 'collector.yaml'));

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('database: a SQLite path or a PostgreSQL URL', () => {
  it('keeps SQLite for a file path', () => {
    const loaded = load('database: ./state/c.db');
    expect(loaded.postgres).toBeNull();
    expect(loaded.databasePath).toBe(join(dir, 'state/c.db'));
  });

  it('takes a postgres:// URL with the password from databasePasswordFile', () => {
    vi.stubEnv('PGPASSWORD', 'from-env');
    const loaded = load('database: postgres://collector@db.example.net:5432/iperf3\ndatabasePasswordFile: pgpass');
    expect(loaded.postgres).toEqual({ url: 'postgres://collector@db.example.net:5432/iperf3', password: SECRET });
    // what the CLI prints as the database: the URL, which holds no password
    expect(loaded.databasePath).toBe('postgres://collector@db.example.net:5432/iperf3');
  });

  it('falls back to PGPASSWORD, then to no password; postgresql:// works too', () => {
    vi.stubEnv('PGPASSWORD', 'from-env');
    expect(load('database: postgresql://c@db/iperf3').postgres).toEqual({ url: 'postgresql://c@db/iperf3', password: 'from-env' });
    vi.stubEnv('PGPASSWORD', undefined);
    expect(load('database: postgres://c@db/iperf3').postgres).toEqual({ url: 'postgres://c@db/iperf3', password: null });
  });

  it('refuses a password written in the URL, without repeating it', () => {
    const err = configError(() => load(`database: postgres://collector:${SECRET}@db/iperf3`));
    expect(err.fields).toEqual([
      { field: 'database', message: 'remove the password from the URL: put it in the file named by databasePasswordFile, or in PGPASSWORD' },
    ]);
    expect(err.message).not.toContain(SECRET);
  });

  it('names a malformed URL, a missing password file, and a password file for SQLite', () => {
    expect(configError(() => load('database: "postgres://[oops/iperf3"')).fields).toEqual([
      { field: 'database', message: 'not a valid URL; use postgres://user@host:5432/database' },
    ]);
    expect(configError(() => load('database: postgres://c@db/x\ndatabasePasswordFile: missing')).fields).toEqual([
      { field: 'databasePasswordFile', message: expect.stringMatching(/^cannot read PostgreSQL password file .*missing \(no such file\)/) },
    ]);
    expect(configError(() => load('database: ./c.db\ndatabasePasswordFile: pgpass')).fields).toEqual([
      { field: 'databasePasswordFile', message: 'only a postgres:// database takes a password' },
    ]);
  });
});
