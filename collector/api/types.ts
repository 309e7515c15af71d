import type { FastifyBaseLogger } from 'fastify';
import type { CurrentTest, DeviceInfo, ServerInfo } from '../../contract/api.js';
import type { DeviceConfig, DevicePatch, DeviceRecord } from '../../contract/devices.js';
import type { Settings } from '../../contract/settings.js';
import type { CollectorStatus } from '../collector.js';
import type { ServerCheck } from '../dispatch/serverProbe.js';
import type { DeviceSummary } from '../inventory/inventory.js';
import type { Store } from '../store/store.js';
import type { Telemetry } from '../telemetry.js';
import type { ApiLimits } from '../../contract/apiParams.js';

export type { CollectorStatus, DeviceSummary, ServerCheck };

/** What the composition root gives the API to control the collector (the Collector implements it). */
export interface CollectorControl {
  /** The devices, ordered by id; iterated once per request (made one at a time by the Collector). */
  devices(): Iterable<DeviceSummary>;
  /** Devices with their configuration (no secrets). */
  deviceRecords(): DeviceRecord[];
  /** Throws DeviceRejectedError (400) or DeviceIdTakenError (409). */
  addDevice(device: DeviceConfig): Promise<DeviceRecord>;
  /** Throws UnknownDevicesError (404), DeviceManagedByFileError (409) or DeviceRejectedError (400). */
  updateDevice(id: string, patch: DevicePatch): Promise<DeviceRecord>;
  /** Throws UnknownDevicesError (404) or DeviceManagedByFileError (409). */
  removeDevice(id: string, deleteHistory: boolean): Promise<void>;
  servers(): ServerInfo[];
  status(): Promise<CollectorStatus>;
  /**
   * Queues manual runs ahead of the schedule and returns at once.
   * Throws UnknownDevicesError (404) or DevicesBusyError (409) from ../errors.js, queuing nothing.
   */
  runNow(devices: string[]): { queued: string[] };
  /**
   * Makes validated settings effective. Runs inside the store transaction that saves them:
   * when it throws (SettingsRejectedError for a 400, anything else for a 500) nothing is stored.
   */
  applySettings(settings: Settings, updatedAt: string): void;
  /** The effective settings; `updatedAt` null when they come from the file. */
  currentSettings(): { settings: Settings; source: 'file' | 'api'; updatedAt: string | null };
  /** The test a run of this collector is in while it runs; undefined for any other run. */
  currentTest?(runId: number): CurrentTest | undefined;
  /** A TCP connection to an iperf3 server from the collector, given up after `timeoutMs`. */
  checkServer(host: string, port: number, timeoutMs: number): Promise<ServerCheck>;
}

export interface ApiDeps {
  store: Store;
  telemetry: Telemetry;
  /** the bearer token every route but /healthz requires */
  token: string;
  version: string;
  control: CollectorControl;
  /** a pino logger (fastify's own type); without one the API does not log */
  logger?: FastifyBaseLogger;
  /** reported by GET /api/v1/health (default: when buildApi was called) */
  startedAt?: Date;
  limits?: Partial<ApiLimits>;
}

export interface DevicesResponse {
  devices: DeviceInfo[];
}

export interface ServersResponse {
  servers: ServerInfo[];
}
