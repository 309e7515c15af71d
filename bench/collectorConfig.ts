/**
 * Collector configurations for the benchmarks: written as YAML files and loaded the way the
 * CLI loads them, so every benchmark goes through the real configuration code.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfigFile, type LoadedConfig } from '../collector/config/load.js';

export const BENCH_TOKEN = 'bench-token-0123456789abcdef0123';

/** A schedule that cannot fire while a benchmark runs: 02:00 on 1 January. */
export const DORMANT_SCHEDULE = { cron: '0 2 1 1 *', timezone: 'UTC', runAtStart: false };

/**
 * A distinct loopback address per device (127.1.0.1, 127.1.0.2, ...). The benchmarks that use
 * them never start a run (no schedule fires), and if one did, it would stay on this machine.
 */
export function loopbackDeviceAddress(index: number): string {
  const n = index + 1;
  return `127.${1 + ((n >> 16) & 0x7f)}.${(n >> 8) & 0xff}.${n & 0xff}`;
}

/** Nothing listens on the discard port here: a connection attempt would be refused at once. */
export const UNUSED_PORT = 9;

export interface BenchDevice {
  id: string;
  host: string;
  port?: number;
  username?: string;
  labels?: Record<string, string>;
}

export interface BenchConfig {
  devices: BenchDevice[];
  servers: { host: string; port: number; label?: string }[];
  clientOptions?: Record<string, unknown>;
  schedule?: Record<string, unknown>;
  /** SSH private key the devices accept (any text when no device is ever contacted) */
  privateKey?: string | Buffer;
  database?: string;
  extra?: Record<string, unknown>;
}

/** Writes `dir/collector.yaml` (+ token and key files) and returns its path. */
export function writeCollectorConfig(dir: string, cfg: BenchConfig): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'token'), BENCH_TOKEN);
  writeFileSync(join(dir, 'id_ed25519'), cfg.privateKey ?? 'not a key: these devices are never contacted\n', { mode: 0o600 });
  const yaml = {
    listen: '127.0.0.1:0',
    database: cfg.database ?? './collector.db',
    apiTokenFile: 'token',
    schedule: cfg.schedule ?? DORMANT_SCHEDULE,
    servers: cfg.servers,
    clientOptions: cfg.clientOptions ?? {},
    ssh: { connectTimeoutMs: 3000 },
    devices: cfg.devices.map((d) => ({
      id: d.id,
      host: d.host,
      port: d.port ?? 22,
      username: d.username ?? 'root',
      privateKeyFile: 'id_ed25519',
      labels: d.labels ?? {},
    })),
    ...cfg.extra,
  };
  const path = join(dir, 'collector.yaml');
  writeFileSync(path, stringify(yaml));
  return path;
}

export function loadCollectorConfig(dir: string, cfg: BenchConfig): LoadedConfig {
  return loadConfigFile(writeCollectorConfig(dir, cfg));
}
