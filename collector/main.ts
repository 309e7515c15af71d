/** Entry point of `npm run collector -- <command>` and of the container image. */
import { runCli } from './cli.js';
import { forgetHostKey, openDeviceAdmin, runOnce, startService } from './service.js';

const exitCode = await runCli(
  process.argv.slice(2),
  { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t), env: process.env },
  {
    run: (loaded, logger, devices) => runOnce(loaded, logger, devices),
    forgetHostKey: (loaded, device) => forgetHostKey(loaded, device),
    deviceAdmin: (loaded, logger) => openDeviceAdmin(loaded, logger),
    serve: async (loaded, logger) => {
      const service = await startService(loaded, logger);
      return new Promise<number>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'stopping: running tests finish first');
          service.close().then(
            () => resolve(0),
            (err: unknown) => {
              logger.error({ err }, 'shutdown failed');
              resolve(1);
            },
          );
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        // the configuration file's devices are reloaded (also when the file changes); other keys need a restart
        process.on('SIGHUP', () => {
          logger.info('SIGHUP: reloading the configuration file');
          void service.reload();
        });
      });
    },
  },
);
process.exitCode = exitCode;
