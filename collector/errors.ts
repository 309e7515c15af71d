/**
 * The collector's typed errors. The core throws them; the API maps them to HTTP answers
 * (api/errorHandler.ts), so neither needs to know the other.
 */
import { formatFieldErrors, type FieldError } from '../contract/settings.js';

/** 404: some of the requested devices are not in the inventory. */
export class UnknownDevicesError extends Error {
  constructor(readonly devices: string[]) {
    super(`unknown device${devices.length > 1 ? 's' : ''}: ${devices.join(', ')}; GET /api/v1/devices lists the inventory`);
    this.name = 'UnknownDevicesError';
  }
}

/** 409: some of the requested devices are already queued or running. */
export class DevicesBusyError extends Error {
  constructor(readonly devices: string[]) {
    super(`already queued or running: ${devices.join(', ')}; wait for the current run to finish`);
    this.name = 'DevicesBusyError';
  }
}

/** 503: too many metric queries are running or waiting; the client should retry shortly. */
export class StoreBusyError extends Error {
  constructor(detail: string) {
    super(`the collector is busy: ${detail}; retry in a few seconds, or ask for fewer devices or a shorter range`);
    this.name = 'StoreBusyError';
  }
}

/** 400: the settings are well-formed but cannot work (e.g. a pool that devices use is gone). */
export class SettingsRejectedError extends Error {
  constructor(readonly fields: FieldError[]) {
    super(`settings rejected: ${formatFieldErrors(fields)}`);
    this.name = 'SettingsRejectedError';
  }
}

/** The collector cannot start; the message names the file or setting and what to do. */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}

/** Another collector process owns the SQLite database (one process per database file). */
export class DatabaseInUseError extends StartupError {
  constructor(readonly path: string) {
    super(
      `database ${path} is in use by another collector process (\`serve\`, or a \`run\` in progress); ` +
        'one process owns a database file. While `serve` runs, start runs through its API (POST /api/v1/runs, or Run now in Grafana), ' +
        'or stop it first; to test with a separate history, point this command at another database file',
    );
    this.name = 'DatabaseInUseError';
  }
}

/** 409: the device is listed in a configuration file: it is changed by editing that file, not through the API. */
export class DeviceManagedByFileError extends Error {
  constructor(
    readonly device: string,
    /** the file, when it is this collector's; else the group of the collectors whose file lists it (null: no group) */
    readonly file: { path: string } | { group: string | null },
  ) {
    super(
      'path' in file
        ? `device ${device} is managed by the configuration file ${file.path} (its devices: list): edit the file there; the collector reloads it when it is saved`
        : `device ${device} is managed by the configuration file of the collectors ${file.group === null ? 'without a group' : `of group "${file.group}"`} (their devices: list): edit it there`,
    );
    this.name = 'DeviceManagedByFileError';
  }
}

/** 409: a device with this id exists already. */
export class DeviceIdTakenError extends Error {
  constructor(
    readonly device: string,
    managedBy: 'file' | 'api',
  ) {
    super(
      managedBy === 'api'
        ? `device ${device} exists already; change it with PATCH /api/v1/devices/${device}, or choose another id`
        : `device ${device} exists already in a configuration file's devices: list; choose another id, or change it in the file`,
    );
    this.name = 'DeviceIdTakenError';
  }
}

/** 400: the device is well-formed but cannot work here (unknown pool, credential file missing or outside deviceCredentialsDir). */
export class DeviceRejectedError extends Error {
  constructor(readonly fields: FieldError[]) {
    super(`device rejected: ${formatFieldErrors(fields)}`);
    this.name = 'DeviceRejectedError';
  }
}
