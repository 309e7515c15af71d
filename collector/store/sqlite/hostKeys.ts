import type { HostKeyStore } from '../store.js';
import type { SqliteDatabase } from './database.js';

export class SqliteHostKeys implements HostKeyStore {
  constructor(private readonly sql: SqliteDatabase) {}

  async get(deviceId: string): Promise<string | undefined> {
    return this.sql.stmt('SELECT fingerprint FROM host_keys WHERE device = ?').pluck().get(deviceId) as string | undefined;
  }

  async record(deviceId: string, fingerprint: string): Promise<void> {
    this.sql
      .stmt(
        `INSERT INTO host_keys (device, fingerprint, recorded_at) VALUES (?, ?, ?)
         ON CONFLICT (device) DO UPDATE SET fingerprint = excluded.fingerprint, recorded_at = excluded.recorded_at`,
      )
      .run(deviceId, fingerprint, this.sql.now());
  }

  async forget(deviceId: string): Promise<boolean> {
    return this.sql.stmt('DELETE FROM host_keys WHERE device = ?').run(deviceId).changes === 1;
  }
}
