import { roundRecord, type RoundRow } from '../rows.js';
import type { RoundRecord, RoundStore } from '../store.js';
import type { SqliteDatabase } from './database.js';


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
    return roundRecord(row);
  }

  async devicesDone(roundId: number): Promise<string[]> {
    return this.sql
      .stmt("SELECT DISTINCT device FROM runs WHERE round_id = ? AND status IN ('ok', 'failed', 'skipped') ORDER BY device")
      .pluck()
      .all(roundId) as string[];
  }
}
