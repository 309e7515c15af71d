/**
 * Giving memory back after a large answer. V8 grows its young generation (up to 128 MiB
 * committed here) and its old generation while a large QueryData answer is built, and keeps
 * what it grew: the plugin idles with its peak for good (issue 16). Once the plugin has been
 * quiet for a moment after an answer of at least `thresholdBytes` of frames, one
 * memory-reducing full GC (V8's "last resort" collection: it shrinks the young generation and
 * compacts the old) gives the memory back. Small answers (a dashboard's usual panels) never
 * trigger it, and it never runs while a query is in flight.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's gc() (the `--expose-gc` extension), with the options V8 13 accepts. */
export type GcFunction = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => unknown;

/** Answers with at least this many bytes of Arrow frames count as large. */
export const LARGE_ANSWER_BYTES = 4 * 1024 * 1024;
/** Quiet time after a large answer before the collection runs (queries in a row share one). */
export const RELEASE_DELAY_MS = 1_000;

let exposed: GcFunction | null = null;

/**
 * V8's gc() without `--expose-gc` on the command line (Grafana starts the executable with no
 * arguments): the flag set at run time makes a new context carry the extension.
 */
export function exposeGc(): GcFunction {
  if (!exposed) {
    setFlagsFromString('--expose-gc');
    exposed = runInNewContext('gc') as GcFunction;
  }
  return exposed;
}

export interface HeapReleaseOptions {
  thresholdBytes?: number;
  delayMs?: number;
  gc?: GcFunction;
  /** told after each collection: how long it took, seconds */
  onRelease?: (seconds: number) => void;
}

export class HeapRelease {
  private readonly thresholdBytes: number;
  private readonly delayMs: number;
  /** V8's own gc(), exposed at the first collection (a plugin that never answers large never sets the flag) */
  private gc: GcFunction | null;
  private readonly onRelease: (seconds: number) => void;
  private timer: NodeJS.Timeout | null = null;
  private inFlight = 0;

  constructor(options: HeapReleaseOptions = {}) {
    this.thresholdBytes = options.thresholdBytes ?? LARGE_ANSWER_BYTES;
    this.delayMs = options.delayMs ?? RELEASE_DELAY_MS;
    this.gc = options.gc ?? null;
    this.onRelease = options.onRelease ?? (() => undefined);
  }

  /** A QueryData request started: no collection until it has been answered. */
  started(): void {
    this.inFlight++;
  }

  /** A QueryData request was answered with `bytes` of frames. */
  answered(bytes: number): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (bytes >= this.thresholdBytes || this.timer) this.arm();
  }

  /** Whether a collection is waiting for the quiet time to pass. */
  get pending(): boolean {
    return this.timer !== null;
  }

  /** Cancels a waiting collection (the server is stopping). */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(): void {
    this.cancel();
    this.timer = setTimeout(() => this.fire(), this.delayMs);
    // a pending collection never keeps the process alive
    this.timer.unref();
  }

  private fire(): void {
    this.timer = null;
    if (this.inFlight > 0) {
      // not while a query is being answered: again after the quiet time
      this.arm();
      return;
    }
    const started = performance.now();
    this.gc ??= exposeGc();
    this.gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    this.onRelease((performance.now() - started) / 1000);
  }
}
