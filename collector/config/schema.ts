/**
 * The collector's YAML configuration (docs/configuration.md documents every key).
 * The iperf3 servers, client options and schedule use the shared schemas, because the Grafana
 * data source can push the same keys over the API.
 */
import { z } from 'zod';
import { clientOptionsSchema, DEFAULT_CLIENT_OPTIONS, hostSchema, poolsSchema, portSchema, scheduleSchema, serverSchema } from '../../contract/settings.js';

const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

export const listenSchema = z
  .string()
  .trim()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'use host:port, e.g. 127.0.0.1:8686 or [::1]:8686');

export const deviceSchema = z
  .strictObject({
    id: z.string().regex(DEVICE_ID, 'use 1-128 letters, digits, or . _ : - (starting with a letter or digit)'),
    host: hostSchema,
    port: portSchema.default(22),
    username: z.string().trim().min(1, 'the SSH user is required, e.g. root'),
    privateKeyFile: z.string().min(1).optional(),
    passphraseFile: z.string().min(1).optional(),
    passwordFile: z.string().min(1).optional(),
    hostKey: z
      .string()
      .trim()
      .regex(FINGERPRINT, 'use the SHA256 fingerprint as printed by `ssh-keygen -lf <key>.pub`, e.g. SHA256:abc...')
      .optional(),
    labels: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'label names use letters, digits and _'), z.string()).default({}),
    pool: z.string().min(1).optional(),
    /** pinned to a collector group: only collectors of that group test it on schedule */
    group: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'group names use letters, digits, . _ -').optional(),
    enabled: z.boolean().default(true),
  })
  .refine((d) => d.privateKeyFile !== undefined || d.passwordFile !== undefined, {
    message: 'set privateKeyFile (recommended) or passwordFile for SSH authentication',
    path: ['privateKeyFile'],
  });
export type DeviceConfig = z.infer<typeof deviceSchema>;

export const collectorConfigSchema = z
  .strictObject({
    listen: listenSchema.default('127.0.0.1:8686'),
    /** a SQLite file path, or a postgres:// URL (without the password) for several collectors */
    database: z.string().min(1).default('./data/iperf3.db'),
    /** the PostgreSQL password (else the PGPASSWORD environment variable) */
    databasePasswordFile: z.string().min(1).optional(),
    /** this collector's group (e.g. a region): with PostgreSQL, it tests unpinned devices and those pinned to it */
    group: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'group names use letters, digits, . _ -').optional(),
    apiTokenFile: z.string().min(1, 'a file holding the API bearer token is required'),
    schedule: scheduleSchema.default(scheduleSchema.parse({})),
    servers: z.array(serverSchema).default([]),
    pools: poolsSchema,
    clientOptions: clientOptionsSchema.default(DEFAULT_CLIENT_OPTIONS),
    ssh: z
      .strictObject({
        connectTimeoutMs: z.number().int().min(500).max(120000).default(10000),
        /**
         * Record an unknown device's host key at the first connection even when a password (SSH
         * or iperf3) would then be sent: a man-in-the-middle at that first connection would get it.
         * Off by default: such devices need a pinned hostKey.
         */
        trustOnFirstUse: z.boolean().default(false),
      })
      .default({ connectTimeoutMs: 10000, trustOnFirstUse: false }),
    /** a busy server (another client outside our control): other servers, then retries with backoff */
    busyRetry: z
      .strictObject({
        attempts: z.number().int().min(1).max(20).default(4),
        backoffMs: z.number().int().min(0).max(600000).default(15000),
      })
      .default({ attempts: 4, backoffMs: 15000 }),
    retention: z
      .strictObject({ days: z.number().int().min(1, 'keep at least 1 day').max(36500).default(400) })
      .default({ days: 400 }),
    devices: z.array(deviceSchema).default([]),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Map<string, number>();
    cfg.devices.forEach((d, i) => {
      const first = seen.get(d.id);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['devices', i, 'id'], message: `duplicate device id "${d.id}" (also devices.${first}.id)` });
      } else seen.set(d.id, i);
      if (d.pool !== undefined && !(d.pool in cfg.pools)) {
        ctx.addIssue({
          code: 'custom',
          path: ['devices', i, 'pool'],
          message: `unknown pool "${d.pool}"; define it under pools: or remove the key to use the default servers`,
        });
      }
    });
  });
export type CollectorConfigInput = z.input<typeof collectorConfigSchema>;
export type CollectorConfig = z.infer<typeof collectorConfigSchema>;
