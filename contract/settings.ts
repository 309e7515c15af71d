/**
 * Settings shared by the collector (YAML file, PUT /api/v1/settings), the plugin backend
 * (jsonData of the data source) and the frontend (config editor). One zod schema each,
 * validated at every boundary; `fieldErrors` turns a failure into field-level messages.
 */
import { z } from 'zod';
import { Cron } from 'croner';
import { DIRECTIONS } from './metrics.js';

const HOSTNAME = /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** True for an IPv4 address, an IPv6 address or a DNS name. */
export function isValidHost(host: string): boolean {
  if (IPV4.test(host)) return true;
  if (host.includes(':')) return z.ipv6().safeParse(host).success;
  // A name made only of digits and dots that is not a valid IPv4 address is a typo.
  if (/^[\d.]+$/.test(host)) return false;
  return HOSTNAME.test(host);
}

export const hostSchema = z
  .string()
  .trim()
  .min(1, 'host is required')
  .refine(isValidHost, { message: 'must be an IPv4 address, an IPv6 address or a DNS name' });

export const portSchema = z
  .number({ error: 'must be a whole number from 1 to 65535' })
  .int('must be a whole number from 1 to 65535')
  .min(1, 'must be a whole number from 1 to 65535')
  .max(65535, 'must be a whole number from 1 to 65535');

/** iperf3's own default port. */
export const DEFAULT_IPERF3_PORT = 5201;

export const serverSchema = z.strictObject({
  host: hostSchema,
  port: portSchema.default(DEFAULT_IPERF3_PORT),
  label: z.string().trim().max(64, 'at most 64 characters').optional(),
});
export type Iperf3Server = z.infer<typeof serverSchema>;

/** iperf3 rate/size syntax: a number with an optional K/M/G/T suffix (e.g. 0, 30M, 128K, 1.5G). */
const IPERF_QUANTITY = /^\d+(\.\d+)?[KMGTkmgt]?$/;
const bitrateSchema = z
  .string()
  .trim()
  .regex(IPERF_QUANTITY, 'use iperf3 syntax: a number with an optional K, M, G or T suffix, e.g. 30M (0 = unlimited)');
const sizeSchema = z
  .string()
  .trim()
  .regex(IPERF_QUANTITY, 'use iperf3 syntax: a number with an optional K, M or G suffix, e.g. 128K');

export const authSchema = z.strictObject({
  username: z.string().trim().min(1, 'username is required for iperf3 authentication'),
  /** collector: file holding the password (never inline in YAML) */
  passwordFile: z.string().min(1).optional(),
  /** collector: file holding the server's RSA public key (PEM) */
  rsaPublicKeyFile: z.string().min(1).optional(),
  /** plugin push: the PEM itself */
  rsaPublicKey: z.string().min(1).optional(),
  /** plugin push: the password from the data source's secure settings; never returned by the API */
  password: z.string().min(1).optional(),
  /** peers older than iperf3 3.17 need PKCS#1 v1.5 padding (--use-pkcs1-padding) */
  pkcs1Padding: z.boolean().default(false),
});
export type Iperf3Auth = z.infer<typeof authSchema>;

export const clientOptionsSchema = z.strictObject({
  time: z.number().int('must be whole seconds').min(1, 'must be at least 1 s').max(1800, 'must be at most 1800 s').default(10),
  connectTimeout: z
    .number()
    .int('must be whole milliseconds')
    .min(100, 'must be at least 100 ms (1 ms makes every test fail)')
    .max(60000, 'must be at most 60000 ms')
    .default(1000),
  parallel: z.number().int().min(1, 'must be from 1 to 128').max(128, 'must be from 1 to 128').default(1),
  window: sizeSchema.nullable().default(null),
  bytes: sizeSchema.nullable().default(null),
  blockcount: sizeSchema.nullable().default(null),
  omit: z.number().int().min(0, 'must be from 0 to 60 s').max(60, 'must be from 0 to 60 s').default(0),
  directions: z
    .array(z.enum(DIRECTIONS))
    .min(1, 'pick at least one direction: upload, download')
    .refine((d) => new Set(d).size === d.length, 'list each direction once')
    .default(() => [...DIRECTIONS]),
  // prefault: a missing object is parsed as {}, so its defaults are the inner ones (written once)
  tcp: z.strictObject({ bitrate: bitrateSchema.default('0'), length: sizeSchema.nullable().default('128K') }).prefault({}),
  udp: z
    .strictObject({
      enabled: z.boolean().default(true),
      bitrate: bitrateSchema.default('30M'),
      length: sizeSchema.nullable().default(null),
    })
    .prefault({}),
  auth: authSchema.nullable().default(null),
});
export type ClientOptions = z.infer<typeof clientOptionsSchema>;

/** The defaults, derived from the schema (one definition). */
export const DEFAULT_CLIENT_OPTIONS: ClientOptions = clientOptionsSchema.parse({});

export function isValidTimezone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * The one cron engine of every runtime (croner): the collector fires the schedule with it, and
 * the config editor and the API show the next runs it computes, so they cannot disagree.
 * Five fields (minute precision) or a nickname such as @daily; seconds are not accepted: a
 * round of tests lasts minutes.
 */
export function isValidCron(expr: string): boolean {
  const text = expr.trim();
  if (!text.startsWith('@') && text.split(/\s+/).length !== 5) return false;
  try {
    new Cron(text, { paused: true });
    return true;
  } catch {
    return false;
  }
}

/** The next `count` fire times of a cron expression in a time zone, after `from`. */
export function nextRuns(cron: string, timezone: string, count: number, from: Date = new Date()): Date[] {
  return new Cron(cron.trim(), { timezone, paused: true }).nextRuns(count, from);
}

/**
 * Bounds of the settings: each server is probed and locked, so their number is a cost; a round
 * tests every device, so rounds closer together than a few minutes would only skip each other.
 */
export const SETTINGS_LIMITS = { serversPerList: 256, pools: 64, cronMinIntervalMinutes: 5 } as const;

/** The shortest gap, in minutes, between the next fires of a valid cron expression. */
export function shortestCronGapMinutes(cron: string): number {
  const runs = nextRuns(cron, 'UTC', 48, new Date(Date.UTC(2026, 0, 1)));
  let gap = Infinity;
  for (let i = 1; i < runs.length; i++) gap = Math.min(gap, (runs[i].getTime() - runs[i - 1].getTime()) / 60_000);
  return gap;
}

export const scheduleSchema = z.strictObject({
  cron: z
    .string()
    .trim()
    .refine(isValidCron, { message: 'not a valid cron expression: use five fields (minute hour day-of-month month day-of-week), e.g. "0 2 * * *" (02:00 every night)' })
    .refine((cron) => !isValidCron(cron) || shortestCronGapMinutes(cron) >= SETTINGS_LIMITS.cronMinIntervalMinutes, {
      message: `fires more often than every ${SETTINGS_LIMITS.cronMinIntervalMinutes} minutes: a round tests every device and a new fire during a round is skipped; use e.g. "0 */6 * * *" (every 6 hours)`,
    })
    .default('0 2 * * *'),
  timezone: z
    .string()
    .trim()
    .refine(isValidTimezone, { message: 'not an IANA time zone, e.g. "Europe/Rome" or "UTC"' })
    .default('UTC'),
  /** run the schedule once at start-up too (the demo stack uses it) */
  runAtStart: z.boolean().default(false),
});
export type Schedule = z.infer<typeof scheduleSchema>;

/** A list of servers: at least one, at most SETTINGS_LIMITS.serversPerList, each host:port once. */
const serverListSchema = (empty: string) =>
  z
    .array(serverSchema)
    .min(1, empty)
    .max(SETTINGS_LIMITS.serversPerList, `at most ${SETTINGS_LIMITS.serversPerList} servers per list; split them into pools`)
    .superRefine((servers, ctx) => {
      const seen = new Set<string>();
      servers.forEach((s, i) => {
        const key = `${s.host.toLowerCase()}:${s.port}`;
        if (seen.has(key)) ctx.addIssue({ code: 'custom', path: [i, 'host'], message: `${key} is listed twice; list each server once` });
        seen.add(key);
      });
    });

export const poolNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]+$/, 'pool names use letters, digits, . _ -')
  .max(64, 'pool names have at most 64 characters');
/** A collector group (e.g. a region): devices and pools pinned to it are tested by its collectors only. */
export const groupNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]+$/, 'group names use letters, digits, . _ -')
  .max(64, 'group names have at most 64 characters');

const poolServerListSchema = serverListSchema('a pool needs at least one server');
/** A pool pinned to a collector group: its devices are tested only by collectors of that group. */
const pinnedPoolSchema = z.strictObject({
  group: z
    .string({ error: (iss) => (iss.input === undefined ? 'name the collector group the pool is pinned to, or give an unpinned pool as a plain list of servers' : undefined) })
    .pipe(groupNameSchema),
  servers: poolServerListSchema,
});

/**
 * A pool: its list of servers, or `{ group, servers }` to pin it to a collector group. When both
 * shapes fail, the error is the one of the shape the value has (a list, or an object).
 */
export const poolSchema = z.union([poolServerListSchema, pinnedPoolSchema], {
  error: (issue) => {
    if (issue.code !== 'invalid_union') return undefined;
    const input = issue.input;
    if (typeof input !== 'object' || input === null) return 'a pool is a list of servers, or { group, servers } to pin it to a collector group';
    // both shapes failed: the first issue of the shape the value has
    const first = issue.errors[Array.isArray(input) ? 0 : 1][0];
    const at = first.path.map(String).join('.');
    return at ? `${at}: ${first.message}` : first.message;
  },
});
export type Pool = z.infer<typeof poolSchema>;

/** The servers of a pool, pinned or not. */
export function poolServerList(pool: Pool): z.infer<typeof serverSchema>[] {
  return Array.isArray(pool) ? pool : pool.servers;
}

/** The group a pool is pinned to; undefined for an unpinned pool. */
export function poolGroup(pool: Pool | undefined): string | undefined {
  return pool === undefined || Array.isArray(pool) ? undefined : pool.group;
}

/** Named server pools: devices of a pool are tested against its servers only. */
export const poolsSchema = z
  .record(poolNameSchema, poolSchema, {
    // zod reports a bad record key as "Invalid key in record": pass on what the name schema said
    error: (issue) => (issue.code === 'invalid_key' ? issue.issues?.[0]?.message : undefined),
  })
  .refine((pools) => Object.keys(pools).length <= SETTINGS_LIMITS.pools, `at most ${SETTINGS_LIMITS.pools} pools`)
  .default({});

/** What the Grafana data source owns and pushes to the collector (PUT /api/v1/settings). */
export const settingsSchema = z.strictObject({
  servers: serverListSchema('add at least one iperf3 server'),
  pools: poolsSchema,
  clientOptions: clientOptionsSchema.prefault({}),
  schedule: scheduleSchema.prefault({}),
});
export type Settings = z.infer<typeof settingsSchema>;
export type SettingsInput = z.input<typeof settingsSchema>;

/**
 * The settings inside a data source's jsonData (frontend and plugin backend): the other keys
 * of jsonData (collectorUrl, Grafana's own) are left out, and missing servers are reported as
 * "add at least one iperf3 server".
 */
export const jsonDataSettingsSchema = z
  .object({ ...settingsSchema.shape, servers: settingsSchema.shape.servers.prefault([]) })
  .superRefine((settings, ctx) => {
    const auth = settings.clientOptions.auth;
    // jsonData is readable by every Viewer of the data source: secrets belong in secureJsonData
    if (auth?.password !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['clientOptions', 'auth', 'password'],
        message: 'a password in jsonData is readable by every Viewer: remove it and enter it in the secure field (secureJsonData.iperf3Password)',
      });
    }
    for (const key of ['passwordFile', 'rsaPublicKeyFile'] as const) {
      if (auth?.[key] !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['clientOptions', 'auth', key], message: 'file paths belong to the collector configuration, not to the data source' });
      }
    }
  });

/** jsonData.collectorUrl: where the plugin backend reaches the collector's HTTP API. */
export const collectorUrlSchema = z
  .string({ error: "is required: the collector's address, e.g. http://collector:8080" })
  .trim()
  .min(1, "is required: the collector's address, e.g. http://collector:8080")
  .superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be an http:// or https:// URL, e.g. http://collector:8080' });
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', message: 'must be an http:// or https:// URL, e.g. http://collector:8080' });
    } else if (url.username || url.password) {
      // the API token goes in its own secure field; a user name would also hide the real host (http://good@evil)
      ctx.addIssue({ code: 'custom', message: 'must not contain a user name or password: put the API token in its secure field' });
    } else if (value.includes('?') || value.includes('#')) {
      // the plugin appends API paths: a ? or # would send every call, with the token, to the same place
      ctx.addIssue({ code: 'custom', message: "must not contain a query (?) or fragment (#): give the collector's base address, e.g. http://collector:8080" });
    }
  });

/**
 * The API token as a data source stores it (`secureJsonData.apiToken`): the origin of the
 * collector URL it was entered for, one space, the token, e.g. `http://collector:8686 3f9c…`.
 * secureJsonData is write-only, so whoever changes the URL of a saved data source cannot move
 * the token along: the plugin sends a token only to the origin it is bound to.
 */
export function bindApiToken(collectorUrl: string | undefined, token: string): string {
  return `${urlOrigin(collectorUrl) ?? 'unbound'} ${token.trim()}`;
}

/** `scheme://host[:port]` of an http(s) URL (default port omitted, host lower-cased), or null. */
export function urlOrigin(url: string | undefined): string | null {
  try {
    const parsed = new URL((url ?? '').trim());
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.origin : null;
  } catch {
    return null;
  }
}

/** The parts of a stored API token; `origin` is null for a bare token (saved before binding, or provisioned without it). */
export function parseBoundApiToken(stored: string): { origin: string | null; token: string } {
  const value = stored.trim();
  if (value.startsWith('unbound ')) return { origin: null, token: value.slice('unbound '.length).trim() };
  const space = value.indexOf(' ');
  const origin = space > 0 ? urlOrigin(value.slice(0, space)) : null;
  return origin === null ? { origin: null, token: value } : { origin, token: value.slice(space + 1).trim() };
}

export interface FieldError {
  /** dotted path, e.g. `servers.1.host` */
  field: string;
  message: string;
}

export function fieldErrors(error: z.ZodError, prefix = ''): FieldError[] {
  return error.issues.map((issue) => ({
    field: [prefix, ...issue.path.map(String)].filter((p) => p !== '').join('.') || '(root)',
    message: issue.message,
  }));
}

export function formatFieldErrors(errors: FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join('; ');
}
