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

/** 400: the settings are well-formed but cannot work (e.g. a pool that devices use is gone). */
export class SettingsRejectedError extends Error {
  constructor(readonly fields: FieldError[]) {
    super(`settings rejected: ${formatFieldErrors(fields)}`);
    this.name = 'SettingsRejectedError';
  }
}
