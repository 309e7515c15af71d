import type { Settings } from '../../../contract/settings.js';
import { sealSettings, unsealSettings, type SecretBox } from '../secretBox.js';
import type { SettingsStore, StoredSettings } from '../store.js';
import { iso, type PgDatabase } from './database.js';

/** The settings row holds no secret: the iperf3 password is sealed in its own column. */
export class PgSettings implements SettingsStore {
  constructor(
    private readonly db: PgDatabase,
    private readonly secrets: SecretBox,
  ) {}

  async get(): Promise<StoredSettings | null> {
    const { rows } = await this.db.query<{ json: string; secret: string | null; updated_at: number }>('SELECT json, secret, updated_at FROM settings WHERE id = 1');
    return rows.length === 0 ? null : unsealSettings(rows[0].json, rows[0].secret, iso(rows[0].updated_at), this.secrets);
  }

  async save(settings: Settings, apply?: (updatedAt: string) => void): Promise<string> {
    const now = this.db.now();
    const { json, secret } = sealSettings(settings, this.secrets);
    await this.db.tx(async (client) => {
      await client.query(
        `INSERT INTO settings (id, json, secret, updated_at) VALUES (1, $1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET json = EXCLUDED.json, secret = EXCLUDED.secret, updated_at = EXCLUDED.updated_at`,
        [json, secret, now],
      );
      apply?.(iso(now));
    });
    return iso(now);
  }
}
