/**
 * Loads the YAML configuration, validates it and reads the secrets it points to. Relative
 * paths are resolved against the configuration file's folder, so a config works from any cwd.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { load as loadYaml, CORE_SCHEMA } from 'js-yaml';
import { parseDocument } from 'yaml';
import { fieldErrors, type FieldError } from '../../contract/settings.js';
import type { DeviceTarget } from '../model.js';
import { collectorConfigSchema, type CollectorConfig, type DeviceConfig } from './schema.js';

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly fields: FieldError[] = [],
  ) {
    super(fields.length ? `${message}\n${fields.map((f) => `  - ${f.field}: ${f.message}`).join('\n')}` : message);
    this.name = 'ConfigError';
  }
}

export interface LoadedDevice {
  config: DeviceConfig;
  target: DeviceTarget;
}

export interface LoadedConfig {
  path: string;
  config: CollectorConfig;
  apiToken: string;
  devices: LoadedDevice[];
  /** iperf3 client auth secrets read from files (password, RSA public key PEM) */
  iperf3Password: string | null;
  iperf3RsaPublicKey: string | null;
  /** the SQLite file, or the PostgreSQL URL (which never holds the password) */
  databasePath: string;
  /** set when `database` is a postgres:// URL */
  postgres: PostgresTarget | null;
  /** `deviceCredentialsDir` resolved, or null when the configuration sets none */
  credentialsDir: string | null;
  warnings: string[];
}

export interface PostgresTarget {
  url: string;
  /** from databasePasswordFile, else PGPASSWORD, else null (no password, e.g. trust or a socket) */
  password: string | null;
}

const POSTGRES_URL = /^postgres(ql)?:\/\//i;

/** A postgres:// URL checked for shape; a password in it is refused (secrets come from files or the environment). */
function postgresTarget(base: string, config: CollectorConfig, errors: FieldError[]): PostgresTarget | null {
  if (!POSTGRES_URL.test(config.database)) {
    if (config.databasePasswordFile) errors.push({ field: 'databasePasswordFile', message: 'only a postgres:// database takes a password' });
    return null;
  }
  let url: URL;
  try {
    url = new URL(config.database);
  } catch {
    errors.push({ field: 'database', message: 'not a valid URL; use postgres://user@host:5432/database' });
    return null;
  }
  if (url.password !== '') {
    errors.push({ field: 'database', message: 'remove the password from the URL: put it in the file named by databasePasswordFile, or in PGPASSWORD' });
    return null;
  }
  const password = config.databasePasswordFile
    ? readSecret(base, config.databasePasswordFile, 'databasePasswordFile', errors, 'PostgreSQL password')
    : (process.env.PGPASSWORD ?? null);
  return { url: config.database, password };
}

const READ_ERRORS: Record<string, string> = { ENOENT: 'no such file', EACCES: 'permission denied' };

/**
 * The secret files already read while loading one configuration, by resolved path: a fleet
 * usually names one key file for every device, read once and shared (one Buffer, not one per device).
 */
export type SecretCache = Map<string, SecretFile>;

interface SecretFile {
  text: string;
  /** why it cannot be read, or null */
  error: string | null;
  empty: boolean;
}

/** SSH private keys by their text: devices with the same key share one Buffer. */
export type KeyBuffers = Map<string, Buffer>;

const secretPath = (base: string, file: string): string => (isAbsolute(file) ? file : resolve(base, file));

/** Reads a secret file; on failure records a field error and returns '' (the load then fails). */
function readSecretFile(base: string, file: string, what: string, cache?: SecretCache): { path: string; entry: SecretFile } {
  const path = secretPath(base, file);
  const cached = cache?.get(path);
  if (cached) return { path, entry: cached };
  let text = '';
  let error: string | null = null;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code as string;
    error = `cannot read ${what} file ${path} (${READ_ERRORS[code] ?? code}); create it or fix the path`;
  }
  const entry: SecretFile = { text, error, empty: error === null && text.trim() === '' };
  cache?.set(path, entry);
  return { path, entry };
}

function readSecret(base: string, file: string, field: string, errors: FieldError[], what: string, trim = true, cache?: SecretCache): string {
  const { path, entry } = readSecretFile(base, file, what, cache);
  if (entry.error !== null) {
    errors.push({ field, message: entry.error });
    return '';
  }
  if (entry.empty) errors.push({ field, message: `${what} file ${path} is empty` });
  return trim ? entry.text.trim() : entry.text;
}

/**
 * A device with the secrets its credential fields name, read from files relative to `base`.
 * Unreadable files are recorded in `errors` (field names prefixed with `field`).
 */
export function loadDevice(d: DeviceConfig, base: string, field: string, errors: FieldError[], cache: SecretCache = new Map(), keys: KeyBuffers = new Map()): LoadedDevice {
  const target: DeviceTarget = { id: d.id, host: d.host, port: d.port, username: d.username, hostKey: d.hostKey };
  if (d.privateKeyFile) {
    const text = readSecret(base, d.privateKeyFile, `${field}privateKeyFile`, errors, 'SSH private key', false, cache);
    // one Buffer per distinct key, shared by every device that uses it (ssh2 only reads it)
    let key = keys.get(text);
    if (!key) keys.set(text, (key = Buffer.from(text)));
    target.privateKey = key;
  }
  if (d.passphraseFile) target.passphrase = readSecret(base, d.passphraseFile, `${field}passphraseFile`, errors, 'key passphrase', true, cache);
  if (d.passwordFile) target.password = readSecret(base, d.passwordFile, `${field}passwordFile`, errors, 'SSH password', true, cache);
  return { config: d, target };
}

/**
 * The YAML as plain values. js-yaml (core schema: YAML 1.2 types, no dates) builds them in one
 * pass; the `yaml` library, which keeps a full document tree and allocates about 100 KiB of
 * garbage per device entry, is only used to word the errors of a file js-yaml refuses.
 */
function parseYaml(text: string, path: string): unknown {
  try {
    return loadYaml(text, { schema: CORE_SCHEMA, filename: path });
  } catch {
    const doc = parseDocument(text, { prettyErrors: true });
    if (doc.errors.length > 0) {
      throw new ConfigError(`${path} is not valid YAML`, doc.errors.map((e) => ({ field: '(yaml)', message: e.message.split('\n')[0] })));
    }
    return doc.toJS();
  }
}

/** Parses and validates YAML text; `path` is used to resolve relative files and in messages. */
export function loadConfigText(text: string, path: string): LoadedConfig {
  const raw = parseYaml(text, path) ?? {};
  const parsed = collectorConfigSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`${path} has invalid settings`, fieldErrors(parsed.error));
  const config = parsed.data;
  const base = dirname(resolve(path));
  const errors: FieldError[] = [];

  const apiToken = readSecret(base, config.apiTokenFile, 'apiTokenFile', errors, 'API token');
  if (apiToken !== '' && apiToken.length < 16) {
    errors.push({ field: 'apiTokenFile', message: 'the API token must be at least 16 characters; generate one with `openssl rand -hex 32`' });
  }

  const secrets: SecretCache = new Map();
  const keys: KeyBuffers = new Map();
  const devices: LoadedDevice[] = config.devices.map((d, i) => loadDevice(d, base, `devices.${i}.`, errors, secrets, keys));

  let iperf3Password: string | null = null;
  let iperf3RsaPublicKey: string | null = null;
  const auth = config.clientOptions.auth;
  if (auth) {
    if (!auth.passwordFile) errors.push({ field: 'clientOptions.auth.passwordFile', message: 'iperf3 authentication needs passwordFile (a file holding the password)' });
    else iperf3Password = readSecret(base, auth.passwordFile, 'clientOptions.auth.passwordFile', errors, 'iperf3 password');
    if (!auth.rsaPublicKeyFile && !auth.rsaPublicKey) {
      errors.push({ field: 'clientOptions.auth.rsaPublicKeyFile', message: "iperf3 authentication needs the server's RSA public key (PEM file)" });
    } else if (auth.rsaPublicKeyFile) {
      iperf3RsaPublicKey = readSecret(base, auth.rsaPublicKeyFile, 'clientOptions.auth.rsaPublicKeyFile', errors, 'RSA public key', false);
    } else iperf3RsaPublicKey = auth.rsaPublicKey as string;
  }
  const postgres = postgresTarget(base, config, errors);
  const warnings: string[] = [];
  if (config.servers.length === 0 && config.devices.some((d) => d.pool === undefined)) {
    warnings.push('servers: is empty: devices without a pool wait until the Grafana data source pushes its servers (Save & test)');
  }
  if (errors.length > 0) throw new ConfigError(`${path} refers to files or values that are not usable`, errors);

  const databasePath = postgres ? postgres.url : isAbsolute(config.database) ? config.database : resolve(base, config.database);
  if (config.ssh.trustOnFirstUse) {
    warnings.push(
      'ssh.trustOnFirstUse is on: the first connection to a device without a pinned hostKey records whatever key it presents, and passwords are then sent to it; pin hostKey for devices reached over untrusted networks',
    );
  }
  const credentialsDir = config.deviceCredentialsDir === undefined ? null : resolve(base, config.deviceCredentialsDir);
  return { path, config, apiToken, devices, iperf3Password, iperf3RsaPublicKey, databasePath, postgres, credentialsDir, warnings };
}

export function loadConfigFile(path: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read configuration file ${path}: ${(err as NodeJS.ErrnoException).code}; pass --config <file>`);
  }
  return loadConfigText(text, path);
}
