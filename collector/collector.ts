/**
 * The collector's core, wired by main.ts: effective settings (the YAML file, replaced by what
 * the Grafana data source pushed), the server registry, the dispatcher and the schedule. It is
 * what the HTTP API controls.
 */
import { connect as tcpConnect } from 'node:net';
import type { Logger } from 'pino';
import type { ServerInfo } from '../contract/api.js';
import type { FieldError, Settings } from '../contract/settings.js';
import { DevicesBusyError, SettingsRejectedError, UnknownDevicesError } from './api/errors.js';
import type { CollectorControl, DeviceSummary } from './api/types.js';
import type { LoadedConfig, LoadedDevice } from './config/load.js';
import { runTcpThenUdp, type Iperf3AuthSecrets, type RunSummary, type RunTelemetry } from './dispatch/deviceRun.js';
import { AlreadyQueuedError, Dispatcher, type DispatchJob } from './dispatch/dispatcher.js';
import { ServerRegistry } from './dispatch/serverRegistry.js';
import { serverKey, type DeviceConnector, type ServerAddress } from './model.js';
import { Scheduler } from './schedule/scheduler.js';
import type { SqliteStore } from './store/sqlite-store.js';

export interface CollectorTelemetry extends RunTelemetry {
  setQueueLength(n: number): void;
  serverBusy(key: string, seconds: number): void;
  setServerBusy(key: string, busy: boolean): void;
}

export interface CollectorOptions {
  loaded: LoadedConfig;
  store: SqliteStore;
  connector: DeviceConnector;
  logger: Logger;
  telemetry: CollectorTelemetry;
  clock?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

export class Collector implements CollectorControl {
  readonly registry: ServerRegistry;
  readonly dispatcher: Dispatcher;
  readonly scheduler: Scheduler;
  private settings: Settings;
  private settingsSource: 'file' | 'api';
  private settingsUpdatedAt: string | null;
  private readonly devicesById: Map<string, LoadedDevice>;
  private readonly clock: () => Date;
  private readonly log: Logger;
  private shuttingDown = false;

  constructor(private readonly opts: CollectorOptions) {
    this.clock = opts.clock ?? (() => new Date());
    this.log = opts.logger;
    const { config } = opts.loaded;
    const fileSettings: Settings = { servers: config.servers, pools: config.pools, clientOptions: config.clientOptions, schedule: config.schedule };
    const stored = opts.store.getSettings();
    this.settings = stored?.settings ?? fileSettings;
    this.settingsSource = stored ? 'api' : 'file';
    this.settingsUpdatedAt = stored?.updatedAt ?? null;
    this.devicesById = new Map(opts.loaded.devices.map((d) => [d.config.id, d]));
    const telemetry = opts.telemetry;
    this.registry = new ServerRegistry(() => this.clock().getTime(), {
      serverBusy: (key, busy, seconds) => {
        telemetry.setServerBusy(key, busy);
        if (!busy) telemetry.serverBusy(key, seconds);
      },
    });
    this.dispatcher = new Dispatcher({
      runDevice: (job) => this.runJob(job).then(() => undefined),
      poolSize: (pool) => this.poolServers(pool).length,
      onQueueLength: (n) => telemetry.setQueueLength(n),
      onError: (job, err) => this.log.error({ device: job.device, err }, 'run crashed'),
    });
    this.scheduler = new Scheduler({
      rounds: {
        start: (plannedAt) => opts.store.startRound(plannedAt),
        finish: (id) => opts.store.finishRound(id),
        reopen: (id) => opts.store.reopenRound(id),
        last: () => opts.store.lastRound(),
        doneDevices: (id) => opts.store.devicesDoneInRound(id),
      },
      runRound: (roundId, devices) => this.runRound(roundId, devices),
      enabledDevices: () => this.enabledDeviceIds(),
      clock: this.clock,
      logger: this.log,
    });
  }

  private enabledDeviceIds(): string[] {
    return [...this.devicesById.values()].filter((d) => d.config.enabled).map((d) => d.config.id);
  }

  private poolServers(pool: string | null): ServerAddress[] {
    return pool === null ? this.settings.servers : (this.settings.pools[pool] ?? []);
  }

  /** Everything a run of `device` needs, resolved at the time it starts. */
  private async runJob(job: DispatchJob): Promise<RunSummary> {
    const device = this.devicesById.get(job.device) as LoadedDevice;
    const options = this.settings.clientOptions;
    return runTcpThenUdp(
      {
        store: this.opts.store,
        connector: this.opts.connector,
        registry: this.registry,
        logger: this.log,
        clock: this.clock,
        sleep: this.opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
        busyRetry: this.opts.loaded.config.busyRetry,
        telemetry: this.opts.telemetry,
      },
      {
        device: device.target,
        servers: this.poolServers(job.pool),
        options,
        auth: this.authSecrets(),
        trigger: job.trigger,
        roundId: job.roundId,
      },
    );
  }

  /**
   * iperf3 auth: pushed values win over the files of the YAML configuration. Settings are only
   * accepted when this resolves (see `settingsErrors`), so a run never lacks a secret.
   */
  private authSecrets(settings: Settings = this.settings): Iperf3AuthSecrets | null {
    const auth = settings.clientOptions.auth;
    if (!auth) return null;
    return {
      username: auth.username,
      password: auth.password ?? this.opts.loaded.iperf3Password ?? '',
      rsaPublicKey: auth.rsaPublicKey ?? this.opts.loaded.iperf3RsaPublicKey ?? '',
    };
  }

  /** Field errors that the schema cannot see: secrets that must come from somewhere. */
  settingsErrors(settings: Settings): FieldError[] {
    const errors: FieldError[] = [];
    const secrets = this.authSecrets(settings);
    if (secrets && secrets.password === '') {
      errors.push({ field: 'clientOptions.auth.password', message: 'iperf3 authentication needs a password: set it in the data source (secure field) or passwordFile in the collector configuration' });
    }
    if (secrets && secrets.rsaPublicKey === '') {
      errors.push({ field: 'clientOptions.auth.rsaPublicKey', message: "iperf3 authentication needs the server's RSA public key (PEM)" });
    }
    const pools = new Set(Object.keys(settings.pools));
    for (const d of this.devicesById.values()) {
      if (d.config.pool !== undefined && !pools.has(d.config.pool)) {
        errors.push({ field: 'pools', message: `device ${d.config.id} uses pool "${d.config.pool}", which these settings do not define` });
      }
    }
    return errors;
  }

  private jobsFor(ids: string[], trigger: DispatchJob['trigger'], roundId: number | null): DispatchJob[] {
    return ids.map((id) => ({ device: id, pool: this.devicesById.get(id)?.config.pool ?? null, trigger, roundId }));
  }

  private async runRound(roundId: number, devices?: string[]): Promise<boolean> {
    const ids = devices ?? this.enabledDeviceIds();
    const free = ids.filter((id) => !this.dispatcher.isPending(id));
    await this.dispatcher.enqueue(this.jobsFor(free, 'schedule', roundId));
    this.applyRetention();
    return !this.shuttingDown;
  }

  applyRetention(): number {
    const cutoff = new Date(this.clock().getTime() - this.opts.loaded.config.retention.days * 86_400_000);
    const removed = this.opts.store.applyRetention(cutoff);
    if (removed > 0) this.log.info({ removed, before: cutoff.toISOString() }, 'retention: old runs deleted');
    return removed;
  }

  private checkDevices(ids: string[]): void {
    const unknown = ids.filter((id) => !this.devicesById.has(id));
    if (unknown.length > 0) throw new UnknownDevicesError(unknown);
  }

  /** Queues a manual run ahead of the schedule; returns at once. */
  runNow(ids: string[]): { queued: string[] } {
    this.checkDevices(ids);
    const unique = [...new Set(ids)];
    try {
      void this.dispatcher.enqueue(this.jobsFor(unique, 'manual', null), { front: true });
    } catch (err) {
      throw new DevicesBusyError((err as AlreadyQueuedError).devices);
    }
    return { queued: unique };
  }

  /** Runs devices now and waits for their results (the `run` command). */
  async runDevices(ids: string[]): Promise<RunSummary[]> {
    this.checkDevices(ids);
    const results: RunSummary[] = [];
    const jobs = this.jobsFor([...new Set(ids)], 'manual', null);
    const dispatcher = new Dispatcher({
      runDevice: async (job) => {
        results.push(await this.runJob(job));
      },
      poolSize: (pool) => this.poolServers(pool).length,
    });
    await dispatcher.enqueue(jobs);
    return ids.map((id) => results.find((r) => r.device === id) as RunSummary);
  }

  devices(): DeviceSummary[] {
    return [...this.devicesById.values()].map(({ config: d }) => ({
      id: d.id,
      host: d.host,
      port: d.port,
      labels: d.labels,
      pool: d.pool ?? null,
      enabled: d.enabled,
    }));
  }

  servers(): ServerInfo[] {
    const pools: [string | null, ServerAddress[]][] = [[null, this.settings.servers], ...Object.entries(this.settings.pools)];
    return pools.flatMap(([pool, servers]) =>
      (servers as Settings['servers']).map((s) => {
        const key = serverKey(s);
        return { host: s.host, port: s.port, label: s.label, key, pool, busy: this.registry.isBusy(key), busySeconds: this.registry.busySeconds(key) };
      }),
    );
  }

  status(): { running: boolean; queueLength: number; nextRun: Date | null; lastScheduledRun: Date | null; settingsSource: 'file' | 'api' } {
    return {
      running: this.dispatcher.running,
      queueLength: this.dispatcher.queueLength,
      nextRun: this.scheduler.nextRun(),
      lastScheduledRun: this.scheduler.lastRun(),
      settingsSource: this.settingsSource,
    };
  }

  currentSettings(): { settings: Settings; source: 'file' | 'api'; updatedAt: string | null } {
    // the API masks the iperf3 password before answering
    return { settings: this.settings, source: this.settingsSource, updatedAt: this.settingsUpdatedAt };
  }

  /**
   * Called when the API stores new settings: new runs use them; the schedule restarts if it
   * changed. Throws SettingsRejectedError (nothing applied) when they cannot work.
   */
  applySettings(settings: Settings, updatedAt: string = this.clock().toISOString()): void {
    const errors = this.settingsErrors(settings);
    if (errors.length > 0) throw new SettingsRejectedError(errors);
    const scheduleChanged = JSON.stringify(settings.schedule) !== JSON.stringify(this.settings.schedule);
    this.settings = settings;
    this.settingsSource = 'api';
    this.settingsUpdatedAt = updatedAt;
    this.log.info({ servers: settings.servers.length, pools: Object.keys(settings.pools).length, scheduleChanged }, 'settings applied');
    if (scheduleChanged && this.scheduleStarted) this.scheduler.start(settings.schedule);
  }

  /** A TCP connection to the iperf3 port from the collector (a hint: devices connect from elsewhere). */
  checkServer(host: string, port: number, timeoutMs = 2000): Promise<{ reachable: boolean; error?: string }> {
    return new Promise((resolve) => {
      const socket = tcpConnect({ host, port, timeout: timeoutMs });
      const done = (result: { reachable: boolean; error?: string }) => {
        socket.destroy();
        resolve(result);
      };
      socket.once('connect', () => done({ reachable: true }));
      socket.once('timeout', () => done({ reachable: false, error: `no answer within ${timeoutMs} ms` }));
      socket.once('error', (err: NodeJS.ErrnoException) => done({ reachable: false, error: err.code ?? err.message }));
    });
  }

  private scheduleStarted = false;

  /** Starts the schedule, resumes an interrupted round, and runs one round now when asked. */
  async startSchedule(): Promise<void> {
    this.scheduleStarted = true;
    this.scheduler.start(this.settings.schedule);
    const resumed = await this.scheduler.resumeInterrupted(this.settings.schedule);
    if (resumed === null && this.settings.schedule.runAtStart) await this.scheduler.fire(this.clock());
  }

  /** Idempotent: stops the schedule, drops queued devices, lets running tests finish. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    this.scheduler.stop();
    await this.dispatcher.stop();
    await this.scheduler.idle();
  }
}
