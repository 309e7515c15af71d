/**
 * The nightly schedule, fired by croner in the configured time zone (the same engine computes
 * the next run that the API and the config editor show). Each fire is a stored "round"; on
 * start-up an interrupted round that is still inside its window is resumed for the devices it
 * had not finished, so a restart at 03:00 does not test devices twice nor skip the rest of the
 * night.
 */
import { Cron } from 'croner';
import type { Logger } from 'pino';
import { nextRuns, type Schedule } from '../../contract/settings.js';
import type { RoundStore } from '../store/store.js';

/** How long after its planned time an interrupted round may still be resumed. */
export const RESUME_WINDOW_MS = 6 * 60 * 60 * 1000;

export interface SchedulerDeps {
  rounds: RoundStore;
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
  private job: Cron | null = null;
  private schedule: Schedule | null = null;
  private current: Promise<void> | null = null;

  constructor(private readonly deps: SchedulerDeps) {}

  start(schedule: Schedule): void {
    this.stop();
    this.schedule = schedule;
    this.job = new Cron(schedule.cron, { timezone: schedule.timezone }, (self: Cron) => {
      // the planned time, not the moment the timer woke up (croner sets it before calling the job)
      void this.fire(self.currentRun() as Date);
    });
    this.deps.logger.info({ cron: schedule.cron, timezone: schedule.timezone, nextRun: this.nextRun()?.toISOString() }, 'schedule started');
  }

  nextRun(): Date | null {
    if (!this.schedule) return null;
    return nextRuns(this.schedule.cron, this.schedule.timezone, 1, this.deps.clock())[0] ?? null;
  }

  async lastRun(): Promise<Date | null> {
    return (await this.deps.rounds.last())?.plannedAt ?? null;
  }

  /** Starts a round now (a cron fire, or `runAtStart`). A fire during a running round is skipped. */
  fire(plannedAt: Date): Promise<void> {
    if (this.current) {
      this.deps.logger.warn({ plannedAt: plannedAt.toISOString() }, 'previous round still running: this fire is skipped (the schedule is tighter than a round)');
      return this.current;
    }
    return this.track(async () => {
      const id = await this.deps.rounds.start(plannedAt);
      this.deps.logger.info({ round: id, plannedAt: plannedAt.toISOString() }, 'round started');
      return { id, complete: await this.deps.runRound(id) };
    });
  }

  /**
   * Resumes the last round if the collector stopped in the middle of it and its window is still
   * open (before the next fire and within RESUME_WINDOW_MS). Returns the resumed round's id.
   */
  async resumeInterrupted(schedule: Schedule): Promise<number | null> {
    const last = await this.deps.rounds.last();
    if (!last || last.status === 'done') return null;
    const now = this.deps.clock();
    const nextAfterPlanned = nextRuns(schedule.cron, schedule.timezone, 1, last.plannedAt)[0];
    const windowEnd = Math.min(nextAfterPlanned?.getTime() ?? Infinity, last.plannedAt.getTime() + RESUME_WINDOW_MS);
    if (now.getTime() >= windowEnd) {
      this.deps.logger.info({ round: last.id }, 'last round was interrupted and its window has passed: not resumed');
      return null;
    }
    await this.track(async () => {
      const done = new Set(await this.deps.rounds.devicesDone(last.id));
      const remaining = this.deps.enabledDevices().filter((d) => !done.has(d));
      await this.deps.rounds.reopen(last.id);
      this.deps.logger.info({ round: last.id, remaining: remaining.length, done: done.size }, 'resuming the interrupted round');
      return { id: last.id, complete: await this.deps.runRound(last.id, remaining) };
    });
    return last.id;
  }

  /** Runs one round at a time; `current` is set before the first await, so fires cannot overlap. */
  private track(round: () => Promise<{ id: number; complete: boolean }>): Promise<void> {
    this.current = round()
      .then(async ({ id, complete }) => {
        if (!complete) {
          this.deps.logger.warn({ round: id }, 'round cut short by shutdown: it will be resumed at the next start if still in its window');
          return;
        }
        await this.deps.rounds.finish(id);
        this.deps.logger.info({ round: id }, 'round finished');
      })
      .catch((err: unknown) => this.deps.logger.error({ err }, 'round failed'))
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
    this.job?.stop();
    this.job = null;
  }
}
