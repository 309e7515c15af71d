import type { RoundRecord, RoundStatus, RoundStore } from '../store.js';
import type { SqliteDatabase } from './database.js';

interface RoundRow {
  id: number;
  planned_at: number;
  started_at: number;
  ended_at: number | null;
  status: RoundStatus;
}

export class SqliteRounds implements RoundStore {
  constructor(private readonly sql: SqliteDatabase) {}

  async start(plannedAt: Date): Promise<number> {
    const info = this.sql
      .stmt('INSERT INTO rounds (planned_at, started_at, status) VALUES (?, ?, ?)')
      .run(plannedAt.getTime(), this.sql.now(), 'running');
    return Number(info.lastInsertRowid);
  }

  async finish(id: number): Promise<void> {
    this.sql.stmt("UPDATE rounds SET status = 'done', ended_at = ? WHERE id = ?").run(this.sql.now(), id);
  }

  async reopen(id: number): Promise<void> {
    this.sql.stmt("UPDATE rounds SET status = 'running', ended_at = NULL WHERE id = ?").run(id);
  }

  async last(): Promise<RoundRecord | null> {
    const row = this.sql.stmt('SELECT * FROM rounds ORDER BY planned_at DESC, id DESC LIMIT 1').get() as RoundRow | undefined;
    if (!row) return null;
    return {
      id: row.id,
      plannedAt: new Date(row.planned_at),
      startedAt: new Date(row.started_at),
      endedAt: row.ended_at === null ? null : new Date(row.ended_at),
      status: row.status,
    };
  }

  async devicesDone(roundId: number): Promise<string[]> {
    return this.sql
      .stmt("SELECT DISTINCT device FROM runs WHERE round_id = ? AND status IN ('ok', 'failed', 'skipped') ORDER BY device")
      .pluck()
      .all(roundId) as string[];
  }
}
