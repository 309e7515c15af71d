/**
 * The collector's YAML configuration (docs/configuration.md documents every key).
 * The iperf3 servers, client options and schedule use the shared schemas, because the Grafana
 * data source can push the same keys over the API.
 */
import { z } from 'zod';
import { deviceConfigSchema, groupSchema, type DeviceConfig } from '../../contract/devices.js';
import { clientOptionsSchema, DEFAULT_CLIENT_OPTIONS, poolGroup, poolsSchema, scheduleSchema, serverSchema } from '../../contract/settings.js';

export const listenSchema = z
  .string()
  .trim()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'use host:port, e.g. 127.0.0.1:8686 or [::1]:8686');

export const deviceSchema = deviceConfigSchema;
export type { DeviceConfig };

export const collectorConfigSchema = z
  .strictObject({
    listen: listenSchema.default('127.0.0.1:8686'),
    /** a SQLite file path, or a postgres:// URL (without the password) for several collectors */
    database: z.string().min(1).default('./data/iperf3.db'),
    /** the PostgreSQL password (else the PGPASSWORD environment variable) */
    databasePasswordFile: z.string().min(1).optional(),
    /** this collector's group (e.g. a region): with PostgreSQL, it tests unpinned devices and those pinned to it */
    group: groupSchema.optional(),
    /**
     * The folder holding the SSH keys and password files of devices added through the API or
     * `devices import`: their credential fields name files in it (no other file can be named).
     */
    deviceCredentialsDir: z.string().min(1).optional(),
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
      const pinned = d.pool === undefined ? undefined : poolGroup(cfg.pools[d.pool]);
      if (pinned !== undefined && d.group !== undefined && d.group !== pinned) {
        ctx.addIssue({
          code: 'custom',
          path: ['devices', i, 'group'],
          message: `the device's pool "${d.pool}" is pinned to group "${pinned}"; remove the device's group or make it "${pinned}"`,
        });
      }
    });
  });
export type CollectorConfigInput = z.input<typeof collectorConfigSchema>;
export type CollectorConfig = z.infer<typeof collectorConfigSchema>;
