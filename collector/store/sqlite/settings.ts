import type { Settings } from '../../../contract/settings.js';
import { sealSettings, unsealSettings, type SecretBox } from '../secretBox.js';
import type { SettingsStore, StoredSettings } from '../store.js';
import { iso, type SqliteDatabase } from './database.js';

/** The settings row holds no secret: the iperf3 password is sealed in its own column. */
export class SqliteSettings implements SettingsStore {
  constructor(
    private readonly sql: SqliteDatabase,
    private readonly secrets: SecretBox,
  ) {}

  async get(): Promise<StoredSettings | null> {
    const row = this.sql.stmt('SELECT json, secret, updated_at FROM settings WHERE id = 1').get() as
      | { json: string; secret: string | null; updated_at: number }
      | undefined;
    return row ? unsealSettings(row.json, row.secret, iso(row.updated_at), this.secrets) : null;
  }

  async save(settings: Settings, apply?: (updatedAt: string) => void): Promise<string> {
    const now = this.sql.now();
    const { json, secret } = sealSettings(settings, this.secrets);
    this.sql.write(() => {
      this.sql
        .stmt(
          `INSERT INTO settings (id, json, secret, updated_at) VALUES (1, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET json = excluded.json, secret = excluded.secret, updated_at = excluded.updated_at`,
        )
        .run(json, secret, now);
      apply?.(iso(now));
    });
    return iso(now);
  }
}
