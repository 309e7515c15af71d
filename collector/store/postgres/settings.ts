import { fieldErrors, formatFieldErrors, settingsSchema, type Settings } from '../../../contract/settings.js';
import { StoredSettingsError, type SettingsStore, type StoredSettings } from '../store.js';
import { iso, type PgDatabase } from './database.js';

export class PgSettings implements SettingsStore {
  constructor(private readonly db: PgDatabase) {}

  async get(): Promise<StoredSettings | null> {
    const { rows } = await this.db.query<{ json: string; updated_at: number }>('SELECT json, updated_at FROM settings WHERE id = 1');
    if (rows.length === 0) return null;
    const parsed = settingsSchema.safeParse(JSON.parse(rows[0].json));
    if (!parsed.success) {
      throw new StoredSettingsError(
        `the settings stored in the database are not valid for this collector version (${formatFieldErrors(fieldErrors(parsed.error))}); ` +
          'save the data source in Grafana again (PUT /api/v1/settings) to replace them',
      );
    }
    return { settings: parsed.data, updatedAt: iso(rows[0].updated_at) };
  }

  async save(settings: Settings, apply?: (updatedAt: string) => void): Promise<string> {
    const now = this.db.now();
    await this.db.tx(async (client) => {
      await client.query(
        `INSERT INTO settings (id, json, updated_at) VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET json = EXCLUDED.json, updated_at = EXCLUDED.updated_at`,
        [JSON.stringify(settings), now],
      );
      apply?.(iso(now));
    });
    return iso(now);
  }
}
