/**
 * Command line: `serve`, `run <device-id>...`, `check-config`. Exit codes: 0 success,
 * 1 a run did not succeed or the service failed, 2 invalid configuration or usage.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { ConfigError, loadConfigFile, type LoadedConfig } from './config/load.js';
import { StartupError, UnknownDevicesError } from './errors.js';
import { createLogger } from './logging.js';
import { StoredSettingsError } from './store/store.js';
import type { RunSummary } from './dispatch/deviceRun.js';
import { DeviceAdminError, formatDevices, formatOf, formatRowErrors, importDevices, parseDeviceFile, type DeviceAdmin } from './inventory/bulk.js';
import { COLLECTOR_VERSION } from './version.js';

export const USAGE = `iperf3 collector ${COLLECTOR_VERSION}

Usage:
  collector serve --config <file>            run the schedule and the HTTP API
  collector run <device-id>... --config <file>  test devices now, store and print the results
  collector check-config --config <file>     validate the configuration and exit
  collector forget-host-key <device-id> --config <file>
                                             forget the SSH host key recorded for a device
                                             (after it was re-keyed); the next connection records it again
  collector devices import <devices.csv|devices.yaml> --config <file>
                                             add or update devices managed by the API, without a restart
                                             (columns: docs/configuration.md); through the API of a running collector
  collector devices export [--format csv|yaml] --config <file>
                                             print every device with its configuration (no secrets)

Options:
  -c, --config <file>   configuration file (default: $COLLECTOR_CONFIG or ./collector.yaml)
  --format csv|yaml     devices export: the output format (default csv)
  --log-level <level>   trace, debug, info, warn, error (default: info)
  -h, --help            this help
  -v, --version         print the version
`;

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

export interface Runtime {
  serve(loaded: LoadedConfig, logger: Logger): Promise<number>;
  run(loaded: LoadedConfig, logger: Logger, devices: string[]): Promise<RunSummary[]>;
  /** `forgotten` when a key was recorded and is now forgotten; `unknown`: no such device and no key */
  forgetHostKey(loaded: LoadedConfig, device: string): Promise<'forgotten' | 'none' | 'unknown'>;
  /** the inventory for `devices import/export`: the running collector's API, or the store */
  deviceAdmin(loaded: LoadedConfig, logger: Logger): Promise<DeviceAdmin>;
}

function formatRate(bps: number | undefined): string {
  return bps === undefined ? '-' : `${(bps / 1e6).toFixed(1)} Mbit/s`;
}

/** A human summary of runs, one line per test. */
export function formatSummary(results: RunSummary[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${r.device}: ${r.status}${r.server ? ` via ${r.server}` : ''}${r.errorClass ? ` [${r.errorClass}] ${r.message}` : ''} (run ${r.runId})`);
    for (const t of r.tests) {
      if (!t.outcome.ok) {
        lines.push(`  ${t.protocol} ${t.direction}: failed [${t.outcome.errorClass}]`);
        continue;
      }
      const m = Object.fromEntries(t.outcome.metrics.map((x) => [x.name, x.value]));
      lines.push(
        t.protocol === 'tcp'
          ? `  tcp ${t.direction}: ${formatRate(m.tcp_received_bps)} received, ${formatRate(m.tcp_sent_bps)} sent${m.tcp_retransmits !== undefined ? `, ${m.tcp_retransmits} retransmits` : ''}`
          : `  udp ${t.direction}: ${formatRate(m.udp_bps)}, jitter ${m.udp_jitter_ms?.toFixed(3)} ms, loss ${m.udp_lost_percent?.toFixed(2)}% (${m.udp_lost_packets}/${m.udp_packets})`,
      );
    }
  }
  return lines.join('\n') + '\n';
}

export async function runCli(argv: string[], io: CliIo, runtime: Runtime): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        'log-level': { type: 'string' },
        format: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    io.err(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) {
    io.out(`${COLLECTOR_VERSION}\n`);
    return 0;
  }
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    (values.help ? io.out : io.err)(USAGE);
    return values.help ? 0 : 2;
  }
  if (!['serve', 'run', 'check-config', 'forget-host-key', 'devices'].includes(command)) {
    io.err(`unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  const configPath = values.config ?? io.env.COLLECTOR_CONFIG ?? 'collector.yaml';
  let loaded: LoadedConfig;
  try {
    loaded = loadConfigFile(configPath);
  } catch (err) {
    // loadConfigFile throws ConfigError, naming the file and each invalid field
    io.err(`${(err as ConfigError).message}\n`);
    return 2;
  }
  for (const w of loaded.warnings) io.err(`warning: ${w}\n`);

  if (command === 'check-config') {
    const { config } = loaded;
    const pools = Object.keys(config.pools);
    io.out(
      `${configPath}: OK\n` +
        `  devices: ${loaded.devices.length} (${loaded.devices.filter((d) => d.config.enabled).length} enabled)\n` +
        `  servers: ${config.servers.length} in the default pool${pools.length ? `, pools: ${pools.join(', ')}` : ''}\n` +
        `  schedule: "${config.schedule.cron}" ${config.schedule.timezone}\n` +
        `  database: ${loaded.databasePath}\n`,
    );
    return 0;
  }

  if (command === 'forget-host-key') {
    const device = rest[0];
    if (rest.length !== 1) {
      io.err(`forget-host-key needs one device id, e.g. \`collector forget-host-key ap-lobby --config ${configPath}\`\n`);
      return 2;
    }
    return startupGuard(io, async () => {
      const result = await runtime.forgetHostKey(loaded, device);
      if (result === 'unknown') {
        io.err(`unknown device id ${device}, and no host key is recorded for it; ${LIST_DEVICES(configPath)}\n`);
        return 2;
      }
      if (result === 'none') {
        io.err(`no host key is recorded for ${device}: nothing to forget\n`);
        return 1;
      }
      io.out(`forgot the SSH host key recorded for ${device}; the next connection records the key the device presents (pin hostKey to check it instead)\n`);
      return 0;
    });
  }

  const logger = createLogger({ level: values['log-level'] });
  if (command === 'devices') return devicesCommand(rest, values.format, io, () => runtime.deviceAdmin(loaded, logger));
  if (command === 'serve') {
    if (rest.length > 0) {
      io.err(`serve takes no device ids (got ${rest.join(' ')})\n`);
      return 2;
    }
    return startupGuard(io, () => runtime.serve(loaded, logger));
  }
  if (rest.length === 0) {
    io.err('run needs at least one device id, e.g. `collector run ap-lobby --config collector.yaml`\n');
    return 2;
  }
  return startupGuard(io, async () => {
    let results: RunSummary[];
    try {
      results = await runtime.run(loaded, logger, rest);
    } catch (err) {
      if (!(err instanceof UnknownDevicesError)) throw err;
      io.err(`unknown device id(s): ${err.devices.join(', ')}; ${LIST_DEVICES(configPath)}\n`);
      return 2;
    }
    io.out(formatSummary(results));
    return results.every((r) => r.status === 'ok') ? 0 : 1;
  });
}

/** Where the ids are: the configuration's devices and those added through the API. */
const LIST_DEVICES = (configPath: string) =>
  `\`collector devices export --config ${configPath}\` lists the devices (the configuration's and those added through the API)`;

const DEVICES_USAGE = 'use `collector devices import <devices.csv|devices.yaml>` or `collector devices export [--format csv|yaml]`';

/** `devices import <file>` and `devices export`. Exit codes: 2 bad usage or file (nothing written), 1 rows refused. */
async function devicesCommand(args: string[], format: string | undefined, io: CliIo, open: () => Promise<DeviceAdmin>): Promise<number> {
  const [sub, ...files] = args;
  if (sub === 'export') {
    if (files.length > 0 || (format !== undefined && format !== 'csv' && format !== 'yaml')) {
      io.err(`devices export takes no file and --format csv or yaml; ${DEVICES_USAGE}\n`);
      return 2;
    }
    return adminGuard(io, open, async (admin) => {
      io.out(formatDevices((await admin.records()).map((r) => r.device), format === 'yaml' ? 'yaml' : 'csv'));
      return 0;
    });
  }
  const kind = files.length === 1 ? formatOf(files[0]) : null;
  if (sub !== 'import' || kind === null) {
    io.err(`${sub === 'import' ? 'devices import needs one .csv, .yaml or .yml file' : `unknown devices command "${sub ?? ''}"`}; ${DEVICES_USAGE}\n`);
    return 2;
  }
  let text: string;
  try {
    text = readFileSync(files[0], 'utf8');
  } catch (err) {
    io.err(`cannot read ${files[0]}: ${(err as NodeJS.ErrnoException).code}\n`);
    return 2;
  }
  const { rows, errors } = parseDeviceFile(text, kind);
  if (errors.length > 0) {
    io.err(`${files[0]}: nothing imported, fix these rows first:\n${formatRowErrors(errors)}\n`);
    return 2;
  }
  return adminGuard(io, open, async (admin) => {
    const report = await importDevices(admin, rows);
    io.out(`${files[0]}: ${report.added.length} added, ${report.updated.length} updated, ${report.unchanged.length} unchanged, ${report.errors.length} refused\n`);
    if (report.errors.length === 0) return 0;
    io.err(`refused (the other rows were applied):\n${formatRowErrors(report.errors)}\n`);
    return 1;
  });
}

async function adminGuard(io: CliIo, open: () => Promise<DeviceAdmin>, fn: (admin: DeviceAdmin) => Promise<number>): Promise<number> {
  return startupGuard(io, async () => {
    const admin = await open();
    try {
      return await fn(admin);
    } catch (err) {
      if (!(err instanceof DeviceAdminError)) throw err;
      io.err(`error: ${err.message}\n`);
      return 1;
    } finally {
      await admin.close();
    }
  });
}

/** A collector that cannot start says why and what to do, in one line, with exit code 1. */
async function startupGuard(io: CliIo, start: () => Promise<number>): Promise<number> {
  try {
    return await start();
  } catch (err) {
    if (!(err instanceof StartupError || err instanceof StoredSettingsError)) throw err;
    io.err(`error: ${err.message}\n`);
    return 1;
  }
}
