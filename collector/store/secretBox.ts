/**
 * Encryption of the secrets a store keeps (the iperf3 password pushed by Grafana): AES-256-GCM
 * with a key derived (HKDF-SHA256) from the collector's API token, which lives in a secret file,
 * never in the database. A database file copied elsewhere does not reveal the password; a new
 * API token makes the stored one unreadable, and the data source must be saved again.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { fieldErrors, formatFieldErrors, settingsSchema, type Settings } from '../../contract/settings.js';
import { StoredSettingsError, type StoredSettings } from './store.js';

const VERSION = 'v1';

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /** The key of a collector, from its API token. */
  static fromToken(token: string): SecretBox {
    return new SecretBox(Buffer.from(hkdfSync('sha256', token, 'iperf3-collector', 'settings secrets v1', 32)));
  }

  /** A key for this process only (stores opened by tests and tools that never restart). */
  static ephemeral(): SecretBox {
    return new SecretBox(randomBytes(32));
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64'), cipher.getAuthTag().toString('base64'), data.toString('base64')].join(':');
  }

  /** The plain text, or null when it was sealed with another key (or is damaged). */
  open(sealed: string): string | null {
    const [version, iv, tag, data] = sealed.split(':');
    if (version !== VERSION || !iv || !tag || data === undefined) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64'));
      decipher.setAuthTag(Buffer.from(tag, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      return null;
    }
  }
}

/** The settings row a store writes: the JSON without the password, and the sealed password. */
export function sealSettings(settings: Settings, box: SecretBox): { json: string; secret: string | null } {
  const auth = settings.clientOptions.auth;
  if (auth?.password === undefined) return { json: JSON.stringify(settings), secret: null };
  const withoutSecret = { ...settings, clientOptions: { ...settings.clientOptions, auth: { ...auth, password: undefined } } };
  return { json: JSON.stringify(withoutSecret), secret: box.seal(auth.password) };
}

/** The settings a store read back: validated, with the password unsealed where it belongs. */
export function unsealSettings(json: string, secret: string | null, updatedAt: string, box: SecretBox): StoredSettings {
  const parsed = settingsSchema.safeParse(JSON.parse(json));
  if (!parsed.success) {
    throw new StoredSettingsError(
      `the settings stored in the database are not valid for this collector version (${formatFieldErrors(fieldErrors(parsed.error))}); ` +
        'save the data source in Grafana again (PUT /api/v1/settings) to replace them',
    );
  }
  const password = secret === null ? null : box.open(secret);
  const auth = parsed.data.clientOptions.auth;
  // parsed again so that the password sits where the schema puts it (equal settings compare equal)
  const settings =
    password !== null && auth ? settingsSchema.parse({ ...parsed.data, clientOptions: { ...parsed.data.clientOptions, auth: { ...auth, password } } }) : parsed.data;
  return { settings, updatedAt, ...(secret !== null && password === null ? { secretLost: true } : {}) };
}
