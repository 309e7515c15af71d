/**
 * Reading the shared run log of collectors on one PostgreSQL database, for the tests that run
 * several of them: the runs of a round with the session that owned each, and the check that no
 * iperf3 server ever ran two stored tests at once.
 */
import type pg from 'pg';
import { expect } from 'vitest';

export interface RunRow {
  id: number;
  device: string;
  status: string;
  /** the PostgreSQL backend pid of the collector session that ran it */
  owner_pid: number;
}

export async function roundRuns(db: pg.ClientBase, roundId: number): Promise<RunRow[]> {
  return (await db.query<RunRow>('SELECT id, device, status, owner_pid FROM runs WHERE round_id = $1 ORDER BY id', [roundId])).rows;
}

/** Every stored test, by server and start: each starts at or after the end of the one before it on its server. Answers the servers seen. */
export async function expectNoOverlapPerServer(db: pg.ClientBase): Promise<Set<string>> {
  const { rows } = await db.query<{ server: string; started_at: number; ended_at: number; run_id: number }>(
    'SELECT server, started_at, ended_at, run_id FROM tests ORDER BY server, started_at',
  );
  for (let i = 1; i < rows.length; i++) {
    if (rows[i].server === rows[i - 1].server) {
      expect(rows[i].started_at, JSON.stringify([rows[i - 1], rows[i]])).toBeGreaterThanOrEqual(rows[i - 1].ended_at);
    }
  }
  return new Set(rows.map((r) => r.server));
}
