/**
 * Starting the plugin as Grafana does (hashicorp/go-plugin): check the magic cookie and the
 * protocol version, listen on 127.0.0.1 within PLUGIN_MIN_PORT..PLUGIN_MAX_PORT, print the
 * handshake line on stdout (and nothing else ever), stop on Shutdown or SIGTERM.
 */
import { createPluginLogger, type PluginLogger } from './logger.js';
import { APP_PROTOCOL_VERSION, PluginServer } from './pluginServer.js';

export const MAGIC_COOKIE_KEY = 'grafana_plugin_type';
export const MAGIC_COOKIE_VALUE = 'datasource';

export interface PluginProcess {
  env: NodeJS.ProcessEnv;
  stdout: { write(line: string): unknown };
  stderr: { write(line: string): unknown };
  on(signal: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
  exit(code: number): void;
}

export interface StartedPlugin {
  server: PluginServer;
  /** resolves when the plugin has stopped (the process then exits) */
  stopped: Promise<number>;
}

function parsePort(name: string, value: string | undefined): number {
  if (value === undefined || value === '') return 0;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${name} must be a port number, got "${value}"`);
  return port;
}

/** Returns null (after exit(1)) when the environment is not Grafana's. */
export async function runPlugin(proc: PluginProcess, logger: PluginLogger = createPluginLogger()): Promise<StartedPlugin | null> {
  if (proc.env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    proc.stderr.write(
      'This binary is a Grafana data source plugin (iperf3). It is not meant to be run directly:\n' +
        'install it in Grafana\'s plugin directory and Grafana starts it.\n',
    );
    proc.exit(1);
    return null;
  }
  const versions = (proc.env.PLUGIN_PROTOCOL_VERSIONS ?? String(APP_PROTOCOL_VERSION)).split(',').map((v) => v.trim());
  if (!versions.includes(String(APP_PROTOCOL_VERSION))) {
    logger.error({ offered: versions }, `Grafana offers plugin protocol versions ${versions.join(',')}; this plugin speaks ${APP_PROTOCOL_VERSION}`);
    proc.exit(1);
    return null;
  }
  let resolveStopped: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((resolve) => (resolveStopped = resolve));
  const stop = (reason: string): void => {
    logger.info({ reason }, 'stopping');
    void server.stop().then(() => {
      logger.info('stopped');
      resolveStopped(0);
      proc.exit(0);
    });
  };
  const server = new PluginServer({ logger, onShutdownRequest: () => stop('GRPCController/Shutdown') });
  try {
    const minPort = parsePort('PLUGIN_MIN_PORT', proc.env.PLUGIN_MIN_PORT);
    const maxPort = parsePort('PLUGIN_MAX_PORT', proc.env.PLUGIN_MAX_PORT);
    await server.listen('127.0.0.1', minPort, maxPort);
  } catch (error) {
    logger.error({ error: (error as Error).message }, 'cannot start the plugin server');
    proc.exit(1);
    return null;
  }
  proc.on('SIGTERM', () => stop('SIGTERM'));
  // go-plugin plugins ignore SIGINT: Ctrl-C in Grafana's terminal reaches the whole process
  // group, and Grafana itself decides when its plugins stop.
  proc.on('SIGINT', () => logger.debug('ignoring SIGINT; Grafana stops plugins with Shutdown or SIGTERM'));
  // execArgv: the Node flags the executable was built with (scripts/build-backend.mjs)
  logger.info({ port: server.port, grafanaVersion: proc.env.GF_VERSION ?? 'unknown', pid: process.pid, execArgv: process.execArgv }, 'plugin listening');
  proc.stdout.write(`${server.handshakeLine()}\n`);
  return { server, stopped };
}
