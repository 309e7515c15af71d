/**
 * The collector's storage, as the core and the API see it. One interface per concern; an
 * implementation (SQLite by default) provides all of them. Every method is asynchronous so that
 * a networked database can stand behind the same interface; only the composition root
 * (service.ts) names an implementation.
 */
import type { IntervalPoint, LatestParams, LatestValue, RunRecord, RunStatus, Series, SeriesParams } from '../../contract/api.js';
import type { DeviceConfig } from '../../contract/devices.js';
import type { SeriesBlock } from '../../contract/seriesBlock.js';
import type { Settings } from '../../contract/settings.js';
import type { HostKeyStore, RunOutcome, RunStart } from '../model.js';
import type { GroupCommitStats } from './groupCommit.js';

export type { HostKeyStore } from '../model.js';

export type RoundStatus = 'running' | 'done' | 'interrupted';

export interface RoundRecord {
  id: number;
  plannedAt: Date;
  startedAt: Date;
  endedAt: Date | null;
  status: RoundStatus;
}

export interface RunQuery {
  devices?: string[];
  status?: RunStatus[];
  /** runs started at or after this time */
  fromMs?: number;
  /** runs started at or before this time */
  toMs?: number;
  /** default 100 */
  limit?: number;
}

export type SeriesQuery = Omit<SeriesParams, 'devices'> & { devices: string[] | 'all' };

export type LatestQuery = Omit<LatestParams, 'devices' | 'fromMs' | 'toMs'> & {
  devices: string[] | 'all';
  /** only points at or after this time (default: no bound) */
  afterMs?: number;
  /** the latest point at or before this time (default: no bound) */
  beforeMs?: number;
};

export interface StoredSettings {
  settings: Settings;
  /** ISO time of the last save */
  updatedAt: string;
  /** a password was stored but cannot be decrypted (the API token changed): it is missing from `settings` */
  secretLost?: boolean;
}

/** The stored settings do not parse with this collector's schema. */
export class StoredSettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoredSettingsError';
  }
}

/** Scheduled rounds: one per planned time of the cron. */
export interface RoundStore {
  start(plannedAt: Date): Promise<number>;
  finish(id: number): Promise<void>;
  /** Puts an interrupted round back to `running`, to resume it after a restart. */
  reopen(id: number): Promise<void>;
  /** The round planned last (null before the first round). */
  last(): Promise<RoundRecord | null>;
  /**
   * Devices that finished a run (ok, failed or skipped) in the round; devices whose run was
   * interrupted or is still running are not done and run again when the round resumes.
   */
  devicesDone(roundId: number): Promise<string[]>;
  /**
   * Shared stores: calls `listener` when a run of a round ends on any collector (with the round's
   * id), or with null when anything may have changed unseen (the store reconnected). Resolves to
   * a function that removes the listener.
   */
  onProgress?(listener: (roundId: number | null) => void): Promise<() => void>;
}

/** A shared store's database cannot be reached right now (the store reconnects by itself). */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * A scheduled run of a device in a round that is done already, or running on another collector
 * (stores shared by several collectors refuse a second one; a run whose collector is gone is
 * marked interrupted and taken over).
 */
export class RoundClaimedError extends Error {
  constructor(
    readonly device: string,
    readonly roundId: number,
  ) {
    super(`device ${device} is done or running elsewhere in round ${roundId}`);
    this.name = 'RoundClaimedError';
  }
}

/** What the group commit of runs.start and runs.finish did so far (collector/store/groupCommit.ts). */
export interface RunWriteStats {
  starts: GroupCommitStats;
  finishes: GroupCommitStats;
}

/**
 * Runs of devices, each with its tests and their per-second intervals. Starts and finishes are
 * group-committed: those that arrive together share one transaction, and each promise resolves
 * only once its transaction has committed (a reader on another connection sees the write then).
 * A write that fails fails alone: the others of its transaction are stored.
 */
export interface RunStore {
  /** Throws RoundClaimedError (shared stores only) for a device already claimed in the round. Ids follow the order of the calls. */
  start(start: RunStart): Promise<number>;
  /**
   * Stores everything a run produced: the final status, every test with its raw JSON, the tests'
   * metrics (time = run start), their intervals and the extra metrics of the outcome, all or
   * nothing. On any error nothing of this run is written and it stays `running`.
   */
  finish(runId: number, outcome: RunOutcome): Promise<void>;
  /** Writes and transactions of start and finish so far. */
  readonly writeStats: RunWriteStats;
  /** Runs, newest first, with their tests. */
  list(query?: RunQuery): Promise<RunRecord[]>;
  get(id: number): Promise<RunRecord | null>;
  /** The newest run of each device that has one. */
  lastOf(devices: string[]): Promise<Map<string, RunRecord>>;
  /** Per-second data of a run's tests, in test order. */
  intervals(runId: number): Promise<IntervalPoint[]>;
}

/** Metrics of finished runs, as series and latest values. */
export interface MetricStore {
  /**
   * Time series, one per device+metric+direction (+server when `splitByServer`), points sorted
   * by time and reduced to at most `maxPoints`. Ordered by device, metric, direction (null
   * first), server.
   */
  series(query: SeriesQuery): Promise<Series[]>;
  /** The same series as one block of columns (no object per point). */
  seriesBlock(query: SeriesQuery): Promise<SeriesBlock>;
  /** The latest point of each device+metric+direction, ordered by device, metric, direction. */
  latest(query: LatestQuery): Promise<LatestValue[]>;
}

/** Settings pushed by the Grafana data source. */
export interface SettingsStore {
  /** The settings last saved through the API, or null when none were. Throws StoredSettingsError. */
  get(): Promise<StoredSettings | null>;
  /**
   * Saves the settings and returns the ISO time of the save. `apply` runs inside the same
   * transaction: when it throws, the previous settings stay stored.
   */
  save(settings: Settings, apply?: (updatedAt: string) => void): Promise<string>;
}

/**
 * Server exclusivity shared by every collector on the store (PostgreSQL). A store for one
 * collector (SQLite) has none: the in-process mutexes of the server registry suffice.
 */
export interface ServerLocks {
  /** Takes the server for this collector; false when another collector holds it. */
  tryLock(key: string): Promise<boolean>;
  unlock(key: string): Promise<void>;
  /** `listener(key)` when another collector frees a server; `listener(null)` when any may have been freed unseen. */
  onFreed(listener: (key: string | null) => void): Promise<void>;
}

/** The source of the devices added through the API (and `devices import`). */
export const API_SOURCE = 'api';

/**
 * The source of the devices a collector's configuration file lists: one per collector group
 * (`file:` for collectors without a group), so that collectors of different groups sharing a
 * PostgreSQL database each keep their own file's devices.
 */
export function fileSource(group: string | undefined): string {
  return `file:${group ?? ''}`;
}

export interface StoredDevice {
  /** API_SOURCE, or fileSource(group) */
  source: string;
  device: DeviceConfig;
  /** ISO time of the last change */
  updatedAt: string;
}

/** What replaceSource changed: device ids added, changed and removed. */
export interface SourceChanges {
  added: string[];
  changed: string[];
  removed: string[];
}

/** A device id is taken already (by the API or by a configuration file). */
export class DeviceExistsError extends Error {
  constructor(readonly existing: StoredDevice) {
    super(`device ${existing.device.id} exists already`);
    this.name = 'DeviceExistsError';
  }
}

/**
 * The inventory: devices by source. A device id is unique within a source; the API refuses an
 * id that any source holds, while configuration files may repeat ids (collectors of different
 * groups share devices through their files).
 */
export interface DeviceStore {
  /** The devices of these sources, ordered by id, then source. */
  list(sources: string[]): Promise<StoredDevice[]>;
  /** Every source's entry for this id. */
  find(id: string): Promise<StoredDevice[]>;
  /** Adds an API device; throws DeviceExistsError (with an entry holding the id) when any source has it. */
  add(device: DeviceConfig): Promise<StoredDevice>;
  /** Replaces an API device; null when the API has no device with that id. */
  update(device: DeviceConfig): Promise<StoredDevice | null>;
  /**
   * Removes an API device. Its runs (and so its series and latest values) stay unless
   * `deleteHistory`, which also deletes its runs, metrics and recorded host key in the same
   * transaction. false when the API has no device with that id.
   */
  remove(id: string, deleteHistory: boolean): Promise<boolean>;
  /** Makes `source` hold exactly `devices` (one transaction); unchanged devices keep their time. */
  replaceSource(source: string, devices: DeviceConfig[]): Promise<SourceChanges>;
  /**
   * Calls `listener` when any collector of the database has added, changed or removed an API
   * device (PostgreSQL: a NOTIFY sent on commit; also after the session reconnects, when
   * notifications may have been lost). Absent on SQLite, where only this process changes them.
   */
  onChange?(listener: () => void): Promise<() => void>;
}

export interface Store {
  readonly devices: DeviceStore;
  readonly rounds: RoundStore;
  readonly runs: RunStore;
  readonly metrics: MetricStore;
  readonly hostKeys: HostKeyStore;
  readonly settings: SettingsStore;
  readonly serverLocks?: ServerLocks;
  /** At start-up: runs and rounds left `running` by a crash become `interrupted`. Returns the runs changed. */
  markInterrupted(): Promise<number>;
  /** Deletes finished runs started before `olderThan` (with their data) and finished rounds planned before it. Returns the runs deleted. */
  applyRetention(olderThan: Date): Promise<number>;
  close(): Promise<void>;
}

