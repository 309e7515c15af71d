/**
 * Watches the configuration file for changes. Editors save by writing a new file and renaming it
 * over the old one, which ends a watch on the file itself; the folder is watched instead, and
 * events for the file's name are debounced into one reload.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';

export interface ConfigWatch {
  close(): void;
}

export function watchConfigFile(path: string, onChange: () => void, logger: Logger, debounceMs = 300): ConfigWatch {
  const name = basename(path);
  let timer: NodeJS.Timeout | null = null;
  let watcher: FSWatcher;
  try {
    watcher = watch(dirname(resolve(path)), (_event, file) => {
      // some platforms do not name the file: any change in the folder may be ours
      if (file !== null && file !== name) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        onChange();
      }, debounceMs);
    });
  } catch (err) {
    logger.warn({ file: path, err: String(err) }, 'cannot watch the configuration file: send SIGHUP to reload its devices');
    return { close: () => {} };
  }
  watcher.on('error', (err) => logger.warn({ file: path, err: String(err) }, 'watching the configuration file stopped: send SIGHUP to reload its devices'));
  return {
    close: () => {
      if (timer) clearTimeout(timer);
      watcher.close();
    },
  };
}
