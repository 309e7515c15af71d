/**
 * The collector's core as the API and the CLI see it: the inventory, the settings in effect,
 * the runner and the schedule, built by the composition root (service.ts) and wired here.
 * It knows nothing of HTTP: the API maps its typed errors (errors.ts) to answers.
 */
import type { Logger } from 'pino';
import type { CurrentTest, ServerInfo } from '../contract/api.js';
import type { Settings } from '../contract/settings.js';
import { EffectiveSettings, type SettingsSource } from './config/effectiveSettings.js';
import type { DeviceConfig, DevicePatch, DeviceRecord } from '../contract/devices.js';
import { loadConfigFile, type LoadedConfig } from './config/load.js';
import type { RunSummary } from './dispatch/deviceRun.js';
import { Runner, type RunnerTelemetry } from './dispatch/runner.js';
import { probeServer, type ServerCheck } from './dispatch/serverProbe.js';
import { DeviceCatalog } from './inventory/catalog.js';
import { Inventory, type DeviceSummary } from './inventory/inventory.js';
import type { DeviceConnector } from './model.js';
import { Scheduler } from './schedule/scheduler.js';
import type { Store } from './store/store.js';

export interface CollectorOptions {
  loaded: LoadedConfig;
  store: Store;
  connector: DeviceConnector;
  logger: Logger;
  telemetry: RunnerTelemetry;
  clock?: () => Date;
  sleep?: (ms: number) => Promise<void>;
  /** shared store: how often the end of a round looks for devices left by a collector that died */
  roundRecheckMs?: number;
  roundStallMs?: number;
  /** reads the configuration file again on reload (default loadConfigFile) */
  readConfig?: (path: string) => LoadedConfig;
}

export interface CollectorStatus {
  /** a test is running right now */
  running: boolean;
  /** devices waiting for a free server */
  queueLength: number;
  /** null when the schedule is off */
  nextRun: Date | null;
  lastScheduledRun: Date | null;
  settingsSource: SettingsSource;
}

export class Collector {
  readonly runner: Runner;
  readonly scheduler: Scheduler;
  private readonly clock: () => Date;
  private readonly log: Logger;
  private shuttingDown = false;
  private scheduleStarted = false;

  private constructor(
    private readonly opts: CollectorOptions,
    private readonly inventory: Inventory,
    private readonly settings: EffectiveSettings,
    /** the inventory in the store: the file's devices and the API's */
    readonly catalog: DeviceCatalog,
    private readonly following: { stop(): Promise<void> },
  ) {
    this.clock = opts.clock ?? (() => new Date());
    this.log = opts.logger;
    this.runner = new Runner({ ...opts, settings, inventory, clock: this.clock });
    this.scheduler = new Scheduler({
      rounds: opts.store.rounds,
      runRound: (roundId, devices) => this.runRound(roundId, devices),
      enabledDevices: () => this.scheduledIds(),
      clock: this.clock,
      logger: this.log,
    });
  }

  /** Builds the core on a store: the settings in effect are those stored, else the file's. */
  static async open(opts: CollectorOptions): Promise<Collector> {
    const inventory = new Inventory();
    const settings = await EffectiveSettings.load(opts.loaded, opts.store.settings, inventory);
    const catalog = new DeviceCatalog({
      store: opts.store,
      loaded: opts.loaded,
      inventory,
      pools: () => Object.keys(settings.current.pools),
      logger: opts.logger,
      readConfig: opts.readConfig ?? loadConfigFile,
    });
    await catalog.start();
    const following = await catalog.follow();
    if (settings.secretLost) {
      opts.logger.warn(
        'the iperf3 password saved with the pushed settings was encrypted with another API token and cannot be read: authenticated tests fail until the data source is saved again in Grafana (Save & test)',
      );
    }
    return new Collector(opts, inventory, settings, catalog, following);
  }

  private async runRound(roundId: number, devices?: string[]): Promise<boolean> {
    // devices added or removed through another collector's API (shared store) since the last round
    await this.catalog.refresh().catch((err: unknown) => this.log.warn({ err: String(err) }, 'cannot read the inventory: the round uses the devices known'));
    await this.runner.runRound(roundId, devices ?? this.scheduledIds());
    await this.applyRetention();
    return !this.shuttingDown;
  }

  /** Enabled devices that this collector tests on schedule: unpinned ones and those of its group (by the device or its pool). */
  private scheduledIds(): string[] {
    const group = this.opts.loaded.config.group;
    return this.inventory.enabledIds().filter((id) => {
      // pinned by the device, or by its pool
      const pinned = this.settings.groupOf(this.inventory.get(id));
      return pinned === undefined || pinned === group;
    });
  }

  async applyRetention(): Promise<number> {
    const cutoff = new Date(this.clock().getTime() - this.opts.loaded.config.retention.days * 86_400_000);
    const removed = await this.opts.store.applyRetention(cutoff);
    if (removed > 0) this.log.info({ removed, before: cutoff.toISOString() }, 'retention: old runs deleted');
    return removed;
  }

  /** Queues a manual run ahead of the schedule; returns at once. */
  runNow(ids: string[]): { queued: string[] } {
    return this.runner.runNow(ids);
  }

  /** The test a run of this collector is in while it runs. */
  currentTest(runId: number): CurrentTest | undefined {
    return this.runner.progress.get(runId);
  }

  /** Runs devices now and waits for their results (the `run` command). */
  runDevices(ids: string[]): Promise<RunSummary[]> {
    return this.runner.runAndWait(ids);
  }

  /** The devices as the API lists them, made one at a time (the inventory can hold 100,000). */
  devices(): Iterable<DeviceSummary> {
    return this.inventory.summaries();
  }

  get deviceCount(): number {
    return this.inventory.size;
  }

  /** Devices with their configuration (no secrets), for `devices export`. */
  deviceRecords(): DeviceRecord[] {
    return this.catalog.records();
  }

  addDevice(device: DeviceConfig): Promise<DeviceRecord> {
    return this.catalog.add(device);
  }

  updateDevice(id: string, patch: DevicePatch): Promise<DeviceRecord> {
    return this.catalog.update(id, patch);
  }

  removeDevice(id: string, deleteHistory: boolean): Promise<void> {
    return this.catalog.remove(id, deleteHistory);
  }

  /** Reads the configuration file again and applies its devices (file watcher, SIGHUP). */
  reloadConfig(): Promise<boolean> {
    return this.catalog.reloadFile();
  }

  servers(): ServerInfo[] {
    return this.runner.servers();
  }

  async status(): Promise<CollectorStatus> {
    return {
      running: this.runner.running,
      queueLength: this.runner.queueLength,
      nextRun: this.scheduler.nextRun(),
      lastScheduledRun: await this.scheduler.lastRun(),
      settingsSource: this.settings.source,
    };
  }

  /** The effective settings (the API masks the iperf3 password before answering). */
  currentSettings(): { settings: Settings; source: SettingsSource; updatedAt: string | null } {
    return { settings: this.settings.current, source: this.settings.source, updatedAt: this.settings.updatedAt };
  }

  /**
   * Called when the API stores new settings: new runs use them; the schedule restarts if it
   * changed. Throws SettingsRejectedError (nothing applied) when they cannot work.
   */
  applySettings(settings: Settings, updatedAt: string = this.clock().toISOString()): void {
    const { scheduleChanged } = this.settings.apply(settings, updatedAt);
    this.log.info({ servers: settings.servers.length, pools: Object.keys(settings.pools).length, scheduleChanged }, 'settings applied');
    if (scheduleChanged && this.scheduleStarted) this.scheduler.start(settings.schedule);
  }

  checkServer(host: string, port: number, timeoutMs?: number): Promise<ServerCheck> {
    return probeServer(host, port, timeoutMs);
  }

  /** Starts the schedule, resumes an interrupted round, and runs one round now when asked. */
  async startSchedule(): Promise<void> {
    this.scheduleStarted = true;
    const schedule = this.settings.current.schedule;
    this.scheduler.start(schedule);
    const resumed = await this.scheduler.resumeInterrupted(schedule);
    if (resumed === null && schedule.runAtStart) await this.scheduler.fire(this.startPlannedAt());
  }

  /**
   * The planned time of the round run at start. On a shared store it is the start's minute, so
   * that collectors started together (a deployment, a restart of the fleet) join one round, as
   * they do for a cron time, instead of each testing the fleet in a round of its own.
   */
  private startPlannedAt(): Date {
    const now = this.clock();
    if (!this.opts.store.serverLocks) return now;
    return new Date(Math.floor(now.getTime() / 60_000) * 60_000);
  }

  /** Idempotent: stops the schedule, drops queued devices, lets running tests finish. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    this.scheduler.stop();
    await this.following.stop();
    await this.runner.stop();
    await this.scheduler.idle();
  }
}
