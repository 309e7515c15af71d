/**
 * A device of the collector's inventory, as the configuration file's `devices:` list, the API
 * (POST/PATCH /api/v1/devices) and `collector devices import` give it. Credentials are file
 * paths, never the secrets themselves.
 */
import { z } from 'zod';
import { hostSchema, portSchema } from './settings.js';

export const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
const GROUP = /^[A-Za-z0-9_.-]+$/;

export const deviceIdSchema = z.string().regex(DEVICE_ID, 'use 1-128 letters, digits, or . _ : - (starting with a letter or digit)');
export const hostKeySchema = z
  .string()
  .trim()
  .regex(FINGERPRINT, 'use the SHA256 fingerprint as printed by `ssh-keygen -lf <key>.pub`, e.g. SHA256:abc...');
export const deviceLabelsSchema = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'label names use letters, digits and _'), z.string());
export const groupSchema = z.string().regex(GROUP, 'group names use letters, digits, . _ -');
const fileSchema = z.string().min(1, 'give a file name, or leave the field out');

/** Every field but `id`, without defaults: the fields PATCH may change. */
export const deviceFields = {
  host: hostSchema,
  port: portSchema,
  username: z.string().trim().min(1, 'the SSH user is required, e.g. root'),
  privateKeyFile: fileSchema,
  passphraseFile: fileSchema,
  passwordFile: fileSchema,
  hostKey: hostKeySchema,
  labels: deviceLabelsSchema,
  pool: z.string().min(1, 'give a pool name, or leave the field out for the default servers'),
  /** pinned to a collector group: only collectors of that group test it on schedule */
  group: groupSchema,
  enabled: z.boolean(),
};

const CREDENTIALS_MESSAGE = 'set privateKeyFile (recommended) or passwordFile for SSH authentication';

export const deviceConfigSchema = z
  .strictObject({
    id: deviceIdSchema,
    host: deviceFields.host,
    port: deviceFields.port.default(22),
    username: deviceFields.username,
    privateKeyFile: deviceFields.privateKeyFile.optional(),
    passphraseFile: deviceFields.passphraseFile.optional(),
    passwordFile: deviceFields.passwordFile.optional(),
    hostKey: deviceFields.hostKey.optional(),
    labels: deviceFields.labels.default({}),
    pool: deviceFields.pool.optional(),
    group: deviceFields.group.optional(),
    enabled: deviceFields.enabled.default(true),
  })
  .refine((d) => d.privateKeyFile !== undefined || d.passwordFile !== undefined, { message: CREDENTIALS_MESSAGE, path: ['privateKeyFile'] });
export type DeviceConfig = z.infer<typeof deviceConfigSchema>;
export type DeviceConfigInput = z.input<typeof deviceConfigSchema>;

/** Who manages a device: the configuration file (changed by editing it) or the API. */
export type ManagedBy = 'file' | 'api';

/** A device with everything but secrets, as GET /api/v1/devices/export answers. */
export interface DeviceRecord {
  device: DeviceConfig;
  managedBy: ManagedBy;
}

/**
 * PATCH /api/v1/devices/{id}: the fields to change; null removes an optional one.
 * `resetHostKey` forgets the recorded host key (after a device was re-keyed).
 */
export const devicePatchSchema = z
  .strictObject({
    host: deviceFields.host.optional(),
    port: deviceFields.port.optional(),
    username: deviceFields.username.optional(),
    privateKeyFile: deviceFields.privateKeyFile.nullable().optional(),
    passphraseFile: deviceFields.passphraseFile.nullable().optional(),
    passwordFile: deviceFields.passwordFile.nullable().optional(),
    hostKey: deviceFields.hostKey.nullable().optional(),
    labels: deviceFields.labels.optional(),
    pool: deviceFields.pool.nullable().optional(),
    group: deviceFields.group.nullable().optional(),
    enabled: deviceFields.enabled.optional(),
    resetHostKey: z.literal(true, { error: 'use true to forget the recorded host key, or leave the field out' }).optional(),
  })
  .refine((p) => Object.keys(p).length > 0, { message: 'name at least one field to change' });
export type DevicePatch = z.infer<typeof devicePatchSchema>;

/** Applies a patch to a device; the result still has to pass deviceConfigSchema. */
export function patchDevice(device: DeviceConfig, patch: DevicePatch): DeviceConfigInput {
  const { resetHostKey: _reset, ...fields } = patch;
  const next: Record<string, unknown> = { ...device };
  for (const [key, value] of Object.entries(fields)) {
    if (value === null) delete next[key];
    else next[key] = value;
  }
  return next as DeviceConfigInput;
}
