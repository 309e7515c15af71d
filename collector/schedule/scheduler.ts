/**
 * The nightly schedule (node-cron, in the configured time zone). Each fire is a stored
 * "round"; on start-up an interrupted round that is still inside its window is resumed for
 * the devices it had not finished, so a restart at 03:00 does not test devices twice nor skip
 * the rest of the night.
 */
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import { nextRuns, type Schedule } from '../../contract/settings.js';

/** How long after its planned time an interrupted round may still be resumed. */
export const RESUME_WINDOW_MS = 6 * 60 * 60 * 1000;

export interface RoundInfo {
  id: number;
  plannedAt: Date;
  status: 'running' | 'done' | 'interrupted';
}

export interface RoundPort {
  start(plannedAt: Date): number;
  finish(id: number): void;
  reopen(id: number): void;
  last(): RoundInfo | null;
  doneDevices(id: number): string[];
}

export interface SchedulerDeps {
  rounds: RoundPort;
  /**
   * Runs the devices (all enabled ones when `devices` is undefined) as part of round `roundId`;
   * resolves false when shutdown cut the round short (it stays open, to be resumed).
   */
  runRound(roundId: number, devices?: string[]): Promise<boolean>;
  enabledDevices(): string[];
  clock: () => Date;
  logger: Logger;
}

export class Scheduler {
  private task: ScheduledTask | null = null;
  private schedule: Schedule | null = null;
  private current: Promise<void> | null = null;

  constructor(private readonly deps: SchedulerDeps) {}

  start(schedule: Schedule): void {
    this.stop();
    this.schedule = schedule;
    this.task = cron.schedule(schedule.cron, (ctx) => this.fire(ctx.date), {
      timezone: schedule.timezone,
      name: 'iperf3-round',
    });
    this.deps.logger.info({ cron: schedule.cron, timezone: schedule.timezone, nextRun: this.nextRun()?.toISOString() }, 'schedule started');
  }

  nextRun(): Date | null {
    if (!this.schedule) return null;
    return nextRuns(this.schedule.cron, this.schedule.timezone, 1, this.deps.clock())[0];
  }

  lastRun(): Date | null {
    return this.deps.rounds.last()?.plannedAt ?? null;
  }

  get busy(): boolean {
    return this.current !== null;
  }

  /** Starts a round now (a cron fire, or `runAtStart`). A fire during a running round is skipped. */
  fire(plannedAt: Date): Promise<void> {
    if (this.current) {
      this.deps.logger.warn({ plannedAt: plannedAt.toISOString() }, 'previous round still running: this fire is skipped (the schedule is tighter than a round)');
      return this.current;
    }
    const id = this.deps.rounds.start(plannedAt);
    this.deps.logger.info({ round: id, plannedAt: plannedAt.toISOString() }, 'round started');
    return this.track(id, this.deps.runRound(id));
  }

  /**
   * Resumes the last round if the collector stopped in the middle of it and its window is still
   * open (before the next fire and within RESUME_WINDOW_MS). Returns the resumed round's id.
   */
  async resumeInterrupted(schedule: Schedule): Promise<number | null> {
    const last = this.deps.rounds.last();
    if (!last || last.status === 'done') return null;
    const now = this.deps.clock();
    const nextAfterPlanned = nextRuns(schedule.cron, schedule.timezone, 1, last.plannedAt)[0];
    const windowEnd = Math.min(nextAfterPlanned.getTime(), last.plannedAt.getTime() + RESUME_WINDOW_MS);
    if (now.getTime() >= windowEnd) {
      this.deps.logger.info({ round: last.id }, 'last round was interrupted and its window has passed: not resumed');
      return null;
    }
    const done = new Set(this.deps.rounds.doneDevices(last.id));
    const remaining = this.deps.enabledDevices().filter((d) => !done.has(d));
    this.deps.rounds.reopen(last.id);
    this.deps.logger.info({ round: last.id, remaining: remaining.length, done: done.size }, 'resuming the interrupted round');
    await this.track(last.id, this.deps.runRound(last.id, remaining));
    return last.id;
  }

  private track(id: number, run: Promise<boolean>): Promise<void> {
    this.current = run
      .then((complete) => {
        if (!complete) {
          this.deps.logger.warn({ round: id }, 'round cut short by shutdown: it will be resumed at the next start if still in its window');
          return;
        }
        this.deps.rounds.finish(id);
        this.deps.logger.info({ round: id }, 'round finished');
      })
      .catch((err: unknown) => this.deps.logger.error({ round: id, err }, 'round failed'))
      .finally(() => {
        this.current = null;
      });
    return this.current;
  }

  /** Waits for a running round (used by shutdown after the dispatcher was stopped). */
  async idle(): Promise<void> {
    await this.current;
  }

  stop(): void {
    if (this.task) {
      void this.task.destroy();
      this.task = null;
    }
  }
}
