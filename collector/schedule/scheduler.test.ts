import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SqliteStore } from '../store/sqlite/sqliteStore.js';
import { okOutcome } from '../../tests/support/storeFixtures.js';
import { RESUME_WINDOW_MS, Scheduler, type SchedulerDeps } from './scheduler.js';

const logger = pino({ level: 'silent' });
const NIGHTLY = { cron: '0 2 * * *', timezone: 'Europe/Rome', runAtStart: false };
const DEVICES = ['a', 'b', 'c', 'd'];

let store: SqliteStore;
let now: Date;
let calls: { roundId: number; devices: string[] | undefined }[];

function scheduler(overrides: Partial<SchedulerDeps> = {}): Scheduler {
  return new Scheduler({
    rounds: store.rounds,
    runRound: async (roundId, devices) => {
      calls.push({ roundId, devices });
      return true;
    },
    enabledDevices: () => DEVICES,
    clock: () => now,
    logger,
    ...overrides,
  });
}

/** A round planned at 02:00 Rome (01:00Z) in which a and b finished and c was cut off by a crash. */
async function crashedRound(): Promise<number> {
  const planned = new Date('2026-11-20T01:00:00Z');
  const id = await store.rounds.start(planned);
  for (const device of ['a', 'b']) {
    const runId = await store.runs.start({ device, trigger: 'schedule', roundId: id, startedAt: planned });
    await store.runs.finish(runId, okOutcome(planned.getTime(), 1e7, 2e7));
  }
  await store.runs.start({ device: 'c', trigger: 'schedule', roundId: id, startedAt: planned });
  expect(await store.markInterrupted()).toBe(1); // what serve does at start-up
  return id;
}

beforeEach(() => {
  store = SqliteStore.open(join(mkdtempSync(join(tmpdir(), 'sched-')), 'db.sqlite'));
  now = new Date('2026-11-20T00:00:00Z');
  calls = [];
});
afterEach(() => store.close());

describe('Scheduler', () => {
  it('reports the next fire in the schedule time zone and nothing before start', () => {
    const s = scheduler();
    expect(s.nextRun()).toBeNull();
    s.start(NIGHTLY);
    expect(s.nextRun()?.toISOString()).toBe('2026-11-20T01:00:00.000Z'); // 02:00 in Rome (CET)
    s.stop();
    s.stop();
  });

  it('stores a round per fire, runs every enabled device, and remembers the last run', async () => {
    const s = scheduler();
    expect(await s.lastRun()).toBeNull();
    await s.fire(new Date('2026-11-20T01:00:00Z'));
    expect(calls).toEqual([{ roundId: 1, devices: undefined }]);
    expect(await store.rounds.last()).toMatchObject({ id: 1, status: 'done' });
    expect((await s.lastRun())?.toISOString()).toBe('2026-11-20T01:00:00.000Z');
  });

  it('skips a fire while the previous round still runs', async () => {
    let release: () => void = () => undefined;
    const s = scheduler({
      runRound: (roundId) => {
        calls.push({ roundId, devices: undefined });
        return calls.length === 1 ? new Promise((r) => (release = () => r(true))) : Promise.resolve(true);
      },
    });
    const first = s.fire(new Date('2026-11-20T01:00:00Z'));
    const second = s.fire(new Date('2026-11-21T01:00:00Z'));
    expect(second).toBe(first); // the second fire waits for the running round instead of starting one
    await vi.waitFor(() => expect(calls).toHaveLength(1));
    release();
    await Promise.all([first, second, s.idle()]);
    expect(calls).toHaveLength(1);
    expect((await store.rounds.last())?.plannedAt.toISOString()).toBe('2026-11-20T01:00:00.000Z');
    await s.fire(new Date('2026-11-22T01:00:00Z')); // free again
    expect(calls).toHaveLength(2);
  });

  it('leaves a round cut short by shutdown open, and logs a failed round without finishing it', async () => {
    const s = scheduler({ runRound: async () => false });
    await s.fire(new Date('2026-11-20T01:00:00Z'));
    expect((await store.rounds.last())?.status).toBe('running');
    const t = scheduler({ runRound: async () => Promise.reject(new Error('disk full')) });
    await t.fire(new Date('2026-11-21T01:00:00Z'));
    expect((await store.rounds.last())?.status).toBe('running');
  });

  it('resumes an interrupted round inside its window with the devices it had not finished', async () => {
    const id = await crashedRound();
    now = new Date('2026-11-20T03:00:00Z');
    const resumed = await scheduler().resumeInterrupted(NIGHTLY);
    expect(resumed).toBe(id);
    expect(calls).toEqual([{ roundId: id, devices: ['c', 'd'] }]);
    expect((await store.rounds.last())?.status).toBe('done');
  });

  it('does not resume once the window has passed, nor when the last round finished', async () => {
    await crashedRound();
    now = new Date(new Date('2026-11-20T01:00:00Z').getTime() + RESUME_WINDOW_MS + 1);
    expect(await scheduler().resumeInterrupted(NIGHTLY)).toBeNull();
    // a schedule tighter than the window: the next fire closes it
    now = new Date('2026-11-20T01:30:00Z');
    expect(await scheduler().resumeInterrupted({ ...NIGHTLY, cron: '*/15 * * * *' })).toBeNull();
    expect(calls).toEqual([]);
    expect(await scheduler().resumeInterrupted(NIGHTLY)).not.toBeNull();
    expect(await scheduler().resumeInterrupted(NIGHTLY)).toBeNull(); // done now
    await store.close();
    store = SqliteStore.open(join(mkdtempSync(join(tmpdir(), 'sched-')), 'db.sqlite'));
    expect(await scheduler().resumeInterrupted(NIGHTLY)).toBeNull(); // no round at all
  });

  it('has no next run for a cron that never fires, and then resumes within the window alone', async () => {
    const never = { ...NIGHTLY, cron: '0 2 30 2 *' }; // 30 February
    const s = scheduler();
    s.start(never);
    expect(s.nextRun()).toBeNull();
    s.stop();
    const id = await crashedRound();
    now = new Date('2026-11-20T06:59:00Z'); // 5 h 59 min after the planned time
    expect(await scheduler().resumeInterrupted(never)).toBe(id);
  });

  it('fires from croner on the real clock', async () => {
    let fired!: () => void;
    const firedOnce = new Promise<void>((r) => (fired = r));
    const s = scheduler({
      clock: () => new Date(),
      runRound: async (roundId) => {
        calls.push({ roundId, devices: undefined });
        fired();
        return true;
      },
    });
    s.start({ cron: '* * * * * *', timezone: 'UTC', runAtStart: false });
    await firedOnce;
    s.stop();
    await s.idle();
    expect(calls.length).toBeGreaterThanOrEqual(1);
    expect((await store.rounds.last())?.status).toBe('done');
  });
});
