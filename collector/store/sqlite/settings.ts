import { fieldErrors, formatFieldErrors, settingsSchema, type Settings } from '../../../contract/settings.js';
import { StoredSettingsError, type SettingsStore, type StoredSettings } from '../store.js';
import { iso, type SqliteDatabase } from './database.js';

export class SqliteSettings implements SettingsStore {
  constructor(private readonly sql: SqliteDatabase) {}

  async get(): Promise<StoredSettings | null> {
    const row = this.sql.stmt('SELECT json, updated_at FROM settings WHERE id = 1').get() as { json: string; updated_at: number } | undefined;
    if (!row) return null;
    const parsed = settingsSchema.safeParse(JSON.parse(row.json));
    if (!parsed.success) {
      throw new StoredSettingsError(
        `the settings stored in the database are not valid for this collector version (${formatFieldErrors(fieldErrors(parsed.error))}); ` +
          'save the data source in Grafana again (PUT /api/v1/settings) to replace them',
      );
    }
    return { settings: parsed.data, updatedAt: iso(row.updated_at) };
  }

  async save(settings: Settings, apply?: (updatedAt: string) => void): Promise<string> {
    const now = this.sql.now();
    this.sql.write(() => {
      this.sql
        .stmt(
          `INSERT INTO settings (id, json, updated_at) VALUES (1, ?, ?)
           ON CONFLICT (id) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at`,
        )
        .run(JSON.stringify(settings), now);
      apply?.(iso(now));
    });
    return iso(now);
  }
}
