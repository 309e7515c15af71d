import type { HostKeyStore } from '../store.js';
import type { PgDatabase } from './database.js';

/** Host keys are shared by every collector: a key recorded on first use by one is pinned for all. */
export class PgHostKeys implements HostKeyStore {
  constructor(private readonly db: PgDatabase) {}

  async get(deviceId: string): Promise<string | undefined> {
    const { rows } = await this.db.query<{ fingerprint: string }>('SELECT fingerprint FROM host_keys WHERE device = $1', [deviceId]);
    return rows[0]?.fingerprint;
  }

  async record(deviceId: string, fingerprint: string): Promise<void> {
    await this.db.query(
      `INSERT INTO host_keys (device, fingerprint, recorded_at) VALUES ($1, $2, $3)
       ON CONFLICT (device) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, recorded_at = EXCLUDED.recorded_at`,
      [deviceId, fingerprint, this.db.now()],
    );
  }

  async forget(deviceId: string): Promise<boolean> {
    return (await this.db.query('DELETE FROM host_keys WHERE device = $1', [deviceId])).rowCount === 1;
  }
}
