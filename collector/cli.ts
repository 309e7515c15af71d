/**
 * Command line: `serve`, `run <device-id>...`, `check-config`. Exit codes: 0 success,
 * 1 a run did not succeed or the service failed, 2 invalid configuration or usage.
 */
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { ConfigError, loadConfigFile, type LoadedConfig } from './config/load.js';
import { StartupError } from './errors.js';
import { createLogger } from './logging.js';
import { StoredSettingsError } from './store/store.js';
import type { RunSummary } from './dispatch/deviceRun.js';
import { COLLECTOR_VERSION } from './version.js';

export const USAGE = `iperf3 collector ${COLLECTOR_VERSION}

Usage:
  collector serve --config <file>            run the schedule and the HTTP API
  collector run <device-id>... --config <file>  test devices now, store and print the results
  collector check-config --config <file>     validate the configuration and exit
  collector forget-host-key <device-id> --config <file>
                                             forget the SSH host key recorded for a device
                                             (after it was re-keyed); the next connection records it again

Options:
  -c, --config <file>   configuration file (default: $COLLECTOR_CONFIG or ./collector.yaml)
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
  /** true when a key was recorded and is now forgotten */
  forgetHostKey(loaded: LoadedConfig, device: string): Promise<boolean>;
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
  if (!['serve', 'run', 'check-config', 'forget-host-key'].includes(command)) {
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
    if (rest.length !== 1 || !loaded.devices.some((d) => d.config.id === device)) {
      io.err(`forget-host-key needs one device id of the configuration, e.g. \`collector forget-host-key ap-lobby --config collector.yaml\`\n`);
      return 2;
    }
    return startupGuard(io, async () => {
      if (!(await runtime.forgetHostKey(loaded, device))) {
        io.err(`no host key is recorded for ${device}: nothing to forget\n`);
        return 1;
      }
      io.out(`forgot the SSH host key recorded for ${device}; the next connection records the key the device presents (pin hostKey to check it instead)\n`);
      return 0;
    });
  }

  const logger = createLogger({ level: values['log-level'] });
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
  const known = new Set(loaded.devices.map((d) => d.config.id));
  const unknown = rest.filter((id) => !known.has(id));
  if (unknown.length > 0) {
    io.err(`unknown device id(s): ${unknown.join(', ')}; known: ${[...known].join(', ') || '(none)'}\n`);
    return 2;
  }
  return startupGuard(io, async () => {
    const results = await runtime.run(loaded, logger, rest);
    io.out(formatSummary(results));
    return results.every((r) => r.status === 'ok') ? 0 : 1;
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
