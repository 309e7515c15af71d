/**
 * Which test each run of this collector is in, in memory: GET /api/v1/runs adds it to running
 * runs, so that "Run now" in Grafana can say "running: TCP download (2 of 4)". A run of another
 * collector sharing the store has none.
 */
import type { CurrentTest } from '../../contract/api.js';
import type { PlannedTest, RunProgress } from './deviceRun.js';

export class RunProgressBoard implements RunProgress {
  private readonly current = new Map<number, CurrentTest>();

  testStarted(runId: number, test: PlannedTest, index: number, of: number, at: Date): void {
    this.current.set(runId, { protocol: test.protocol, direction: test.direction, index, of, startedAt: at.toISOString() });
  }

  runEnded(runId: number): void {
    this.current.delete(runId);
  }

  get(runId: number): CurrentTest | undefined {
    return this.current.get(runId);
  }

  get size(): number {
    return this.current.size;
  }
}
