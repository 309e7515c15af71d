import { roundRecord, type RoundRow } from '../rows.js';
import type { RoundRecord, RoundStore } from '../store.js';
import type { PgDatabase } from './database.js';


/** NOTIFY channel: a run of a round ended (payload: the round id), sent when its transaction commits. */
export const ROUND_PROGRESS_CHANNEL = 'iperf3_round_progress';

export class PgRounds implements RoundStore {
  private readonly listeners = new Set<(roundId: number | null) => void>();
  private listening: Promise<void> | null = null;

  constructor(private readonly db: PgDatabase) {}

  async onProgress(listener: (roundId: number | null) => void): Promise<() => void> {
    this.listeners.add(listener);
    // a LISTEN that fails now (database away) is made again by the session when it reconnects
    this.listening ??= this.db
      .listen(ROUND_PROGRESS_CHANNEL, (payload) => this.listeners.forEach((l) => l(payload === null ? null : Number(payload))))
      .catch(() => {});
    await this.listening;
    return () => this.listeners.delete(listener);
  }

  /** One round per planned time: a collector firing the same cron time joins the round already created. */
  async start(plannedAt: Date): Promise<number> {
    const { rows } = await this.db.query<{ id: number }>(
      `INSERT INTO rounds (planned_at, started_at, status) VALUES ($1, $2, 'running')
       ON CONFLICT (planned_at) DO UPDATE SET planned_at = EXCLUDED.planned_at RETURNING id`,
      [plannedAt.getTime(), this.db.now()],
    );
    return rows[0].id;
  }

  async finish(id: number): Promise<void> {
    await this.db.query("UPDATE rounds SET status = 'done', ended_at = $1 WHERE id = $2", [this.db.now(), id]);
  }

  async reopen(id: number): Promise<void> {
    await this.db.query("UPDATE rounds SET status = 'running', ended_at = NULL WHERE id = $1", [id]);
  }

  async last(): Promise<RoundRecord | null> {
    const { rows } = await this.db.query<RoundRow>('SELECT * FROM rounds ORDER BY planned_at DESC, id DESC LIMIT 1');
    if (rows.length === 0) return null;
    return roundRecord(rows[0]);
  }

  async devicesDone(roundId: number): Promise<string[]> {
    const { rows } = await this.db.query<{ device: string }>(
      "SELECT DISTINCT device FROM runs WHERE round_id = $1 AND status IN ('ok', 'failed', 'skipped') ORDER BY device",
      [roundId],
    );
    return rows.map((r) => r.device);
  }
}
