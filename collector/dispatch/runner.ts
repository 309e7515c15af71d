/**
 * Runs devices: the server registry (one lock per iperf3 server), the one dispatcher that the
 * schedule, "run now" and the `run` command share, and what each run needs, resolved when it
 * starts (the settings in effect, the device's pool, the iperf3 secrets).
 */
import type { Logger } from 'pino';
import type { ServerInfo } from '../../contract/api.js';
import { poolServerList } from '../../contract/settings.js';
import type { EffectiveSettings } from '../config/effectiveSettings.js';
import type { LoadedConfig } from '../config/load.js';
import { DevicesBusyError } from '../errors.js';
import type { Inventory } from '../inventory/inventory.js';
import { serverKey, type DeviceConnector, type ServerAddress } from '../model.js';
import { RoundClaimedError, StoreUnavailableError, type Store } from '../store/store.js';
import { runTcpThenUdp, type RunSummary, type RunTelemetry } from './deviceRun.js';
import { AlreadyQueuedError, Dispatcher, type DispatchJob } from './dispatcher.js';
import { RunProgressBoard } from './runProgress.js';
import { RegistryStoppedError, ServerRegistry } from './serverRegistry.js';

export interface RunnerTelemetry extends RunTelemetry {
  setQueueLength(n: number): void;
  /** a lease on a server ended after holding it `seconds` */
  addServerBusySeconds(key: string, seconds: number): void;
  setServerBusy(key: string, busy: boolean): void;
}

export interface RunnerDeps {
  loaded: LoadedConfig;
  store: Pick<Store, 'runs' | 'serverLocks'> & { rounds: Pick<Store['rounds'], 'devicesDone' | 'onProgress'> };
  /** shared store: how long to wait before looking again for devices of a round left by a collector that died (default 2000 ms) */
  roundRecheckMs?: number;
  /** shared store: a round whose remaining devices make no progress for this long is left (default 10 min) */
  roundStallMs?: number;
  connector: DeviceConnector;
  settings: EffectiveSettings;
  inventory: Inventory;
  logger: Logger;
  telemetry: RunnerTelemetry;
  clock: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

/** A queued device was removed from the inventory before its run started: it is not tested. */
export class DeviceLeftError extends Error {
  constructor(readonly device: string) {
    super(`device ${device} left the inventory before its run started: not tested`);
    this.name = 'DeviceLeftError';
  }
}

export class Runner {
  readonly registry: ServerRegistry;
  /** the test each running run of this collector is in */
  readonly progress = new RunProgressBoard();
  private readonly dispatcher: Dispatcher<RunSummary>;
  private stopped = false;

  constructor(private readonly deps: RunnerDeps) {
    const { telemetry, settings } = deps;
    this.registry = new ServerRegistry(() => deps.clock().getTime(), {
      serverUsage: (key, busy, seconds) => {
        telemetry.setServerBusy(key, busy);
        if (!busy) telemetry.addServerBusySeconds(key, seconds);
      },
    }, deps.store.serverLocks);
    this.dispatcher = new Dispatcher<RunSummary>({
      runDevice: (job) => this.run(job),
      poolSize: (pool) => settings.poolServers(pool).length,
      onQueueLength: (n) => telemetry.setQueueLength(n),
      onError: (job, err) => {
        // another collector has (or had) this device in this round: nothing to do here
        if (err instanceof RoundClaimedError) deps.logger.debug({ device: job.device, roundId: job.roundId }, err.message);
        else if (err instanceof DeviceLeftError) deps.logger.info({ device: job.device }, err.message);
        else if (err instanceof RegistryStoppedError) deps.logger.info({ device: job.device }, 'stopping while the run waited for a server: it will be recorded interrupted');
        // the database is away: the device is claimed again when it is back (no stack: nothing is broken here)
        else if (err instanceof StoreUnavailableError) deps.logger.warn({ device: job.device, roundId: job.roundId, reason: err.message }, 'database unreachable: run not started');
        else deps.logger.error({ device: job.device, err }, 'run crashed');
      },
    });
  }

  get running(): boolean {
    return this.dispatcher.running;
  }

  get queueLength(): number {
    return this.dispatcher.queueLength;
  }

  /**
   * Runs the devices of a round that are not queued or running already. On a store shared by
   * several collectors, stays with the round until every device is done: a device whose
   * collector died mid-run is taken over (its run was marked interrupted by the claim).
   */
  async runRound(roundId: number, ids: string[]): Promise<void> {
    const free = ids.filter((id) => !this.dispatcher.isPending(id));
    await this.dispatcher.enqueue(this.jobsFor(free, 'schedule', roundId));
    if (!this.deps.store.serverLocks) return;
    const recheckMs = this.deps.roundRecheckMs ?? 2000;
    const stallMs = this.deps.roundStallMs ?? 600_000;
    const sleep = this.deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    // A run of this round ending on any collector wakes the wait at once (NOTIFY). The timer stays
    // for a collector that died: PostgreSQL ends its session without notifying anyone.
    let wake: () => void = () => {};
    const unsubscribe = await this.deps.store.rounds.onProgress?.((id) => {
      if (id === null || id === roundId) wake();
    });
    const wait = () => Promise.race([sleep(recheckMs), new Promise<void>((resolve) => (wake = resolve))]);
    // devices that stay claimed elsewhere without progress for stallMs are given up (e.g. our own run could not be stored)
    let lastLeft = Infinity;
    let progressAt = this.deps.clock().getTime();
    try {
      while (!this.stopped) {
        let done: Set<string>;
        try {
          done = new Set(await this.deps.store.rounds.devicesDone(roundId));
        } catch (err) {
          // the database is away: the round is not given up, it is looked at again
          this.deps.logger.warn({ roundId, err: String(err) }, 'cannot read the round: looking again');
          await wait();
          continue;
        }
        // a device removed from the inventory meanwhile is not waited for
        const left = ids.filter((id) => !done.has(id) && !this.dispatcher.isPending(id) && this.deps.inventory.get(id) !== undefined);
        if (left.length === 0) return;
        const now = this.deps.clock().getTime();
        if (left.length < lastLeft) progressAt = now;
        lastLeft = left.length;
        if (now - progressAt > stallMs) {
          this.deps.logger.warn({ roundId, devices: left }, 'devices of the round still claimed elsewhere: leaving them');
          return;
        }
        await wait();
        await this.dispatcher.enqueue(this.jobsFor(left, 'schedule', roundId));
      }
    } finally {
      unsubscribe?.();
    }
  }

  /** Queues a manual run ahead of the schedule; returns at once. */
  runNow(ids: string[]): { queued: string[] } {
    this.deps.inventory.check(ids);
    const unique = [...new Set(ids)];
    try {
      void this.dispatcher.enqueue(this.jobsFor(unique, 'manual', null), { front: true });
    } catch (err) {
      throw new DevicesBusyError((err as AlreadyQueuedError).devices);
    }
    return { queued: unique };
  }

  /** Runs devices now through the same queue and waits for their results (the `run` command). */
  async runAndWait(ids: string[]): Promise<RunSummary[]> {
    this.deps.inventory.check(ids);
    const unique = [...new Set(ids)];
    let results: (RunSummary | undefined)[];
    try {
      results = await this.dispatcher.enqueue(this.jobsFor(unique, 'manual', null), { front: true });
    } catch (err) {
      throw new DevicesBusyError((err as AlreadyQueuedError).devices);
    }
    const byDevice = new Map(results.filter((r): r is RunSummary => r !== undefined).map((r) => [r.device, r]));
    return ids.flatMap((id) => byDevice.get(id) ?? []);
  }

  servers(): ServerInfo[] {
    const current = this.deps.settings.current;
    const pools: [string | null, ServerAddress[]][] = [[null, current.servers], ...Object.entries(current.pools).map(([name, pool]): [string, ServerAddress[]] => [name, poolServerList(pool)])];
    return pools.flatMap(([pool, servers]) =>
      (servers as typeof current.servers).map((s) => {
        const key = serverKey(s);
        return { host: s.host, port: s.port, label: s.label, key, pool, busy: this.registry.isBusy(key), busySeconds: this.registry.busySeconds(key) };
      }),
    );
  }

  /** Drops queued devices and waits for running ones (each test has its own deadline). */
  stop(): Promise<void> {
    this.stopped = true;
    this.registry.stop();
    return this.dispatcher.stop();
  }

  private jobsFor(ids: string[], trigger: DispatchJob['trigger'], roundId: number | null): DispatchJob[] {
    return ids.map((id) => ({ device: id, pool: this.deps.inventory.poolOf(id), trigger, roundId }));
  }

  private run(job: DispatchJob): Promise<RunSummary> {
    const { deps } = this;
    // the device as it is when its run starts; a change later does not touch this run
    const device = deps.inventory.get(job.device);
    if (!device) throw new DeviceLeftError(job.device);
    const auth = deps.settings.authSecrets();
    // a password (SSH or iperf3) must not reach a key nobody checked, unless the operator opted in
    const passwordSent = device.target.password !== undefined || auth !== null;
    return runTcpThenUdp(
      {
        store: deps.store,
        connector: deps.connector,
        registry: this.registry,
        logger: deps.logger,
        clock: deps.clock,
        sleep: deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
        busyRetry: deps.loaded.config.busyRetry,
        telemetry: deps.telemetry,
        progress: this.progress,
      },
      {
        device: device.target,
        servers: deps.settings.poolServers(job.pool),
        options: deps.settings.current.clientOptions,
        auth,
        trigger: job.trigger,
        roundId: job.roundId,
        trustOnFirstUse: deps.loaded.config.ssh.trustOnFirstUse || !passwordSent,
      },
    );
  }
}
