import { fieldErrors, formatFieldErrors, settingsSchema, type Settings } from '../../../contract/settings.js';
import type { SecretBox } from '../secretBox.js';
import { StoredSettingsError, type SettingsStore, type StoredSettings } from '../store.js';
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
    if (!row) return null;
    const parsed = settingsSchema.safeParse(JSON.parse(row.json));
    if (!parsed.success) {
      throw new StoredSettingsError(
        `the settings stored in the database are not valid for this collector version (${formatFieldErrors(fieldErrors(parsed.error))}); ` +
          'save the data source in Grafana again (PUT /api/v1/settings) to replace them',
      );
    }
    const password = row.secret === null ? null : this.secrets.open(row.secret);
    const auth = parsed.data.clientOptions.auth;
    // parsed again so that the password sits where the schema puts it (equal settings compare equal)
    const settings = password !== null && auth ? settingsSchema.parse({ ...parsed.data, clientOptions: { ...parsed.data.clientOptions, auth: { ...auth, password } } }) : parsed.data;
    return { settings, updatedAt: iso(row.updated_at), ...(row.secret !== null && password === null ? { secretLost: true } : {}) };
  }

  async save(settings: Settings, apply?: (updatedAt: string) => void): Promise<string> {
    const now = this.sql.now();
    const auth = settings.clientOptions.auth;
    const withoutSecret: Settings = auth?.password === undefined ? settings : { ...settings, clientOptions: { ...settings.clientOptions, auth: { ...auth, password: undefined } } };
    const secret = auth?.password === undefined ? null : this.secrets.seal(auth.password);
    this.sql.write(() => {
      this.sql
        .stmt(
          `INSERT INTO settings (id, json, secret, updated_at) VALUES (1, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET json = excluded.json, secret = excluded.secret, updated_at = excluded.updated_at`,
        )
        .run(JSON.stringify(withoutSecret), secret, now);
      apply?.(iso(now));
    });
    return iso(now);
  }
}
