/**
 * The data source's query model: one definition for the frontend editors and the plugin
 * backend, which validates every incoming query with `querySchema`.
 * Saved queries carry `pluginVersion` so that old ones can be migrated later.
 */
import { RE2JS } from 're2js';
import { z } from 'zod';
import { DERIVED_METRIC_NAMES, DIRECTIONS, isDerivedMetric, METRIC_NAMES } from './metrics.js';
import { runsLimitSchema, runStatusSchema } from './api.js';

/** A device entry of `*` selects every device. */
export const ALL_DEVICES = '*';

/** As in Prometheus: equal, not equal, anchored regex match, anchored regex non-match. */
export const LABEL_MATCHER_OPS = ['=', '!=', '=~', '!~'] as const;

/** A regular expression of a label matcher: RE2 syntax (as Prometheus), matched in linear time. */
export function compileLabelRegex(pattern: string): RE2JS {
  return RE2JS.compile(pattern);
}

export const labelMatcherSchema = z
  .strictObject({
    label: z.string().min(1, 'label name is required').max(200, 'a label name has at most 200 characters'),
    op: z.enum(LABEL_MATCHER_OPS).default('='),
    value: z.string().max(1000, 'a matcher value has at most 1000 characters'),
  })
  .superRefine((m, ctx) => {
    if (m.op !== '=~' && m.op !== '!~') return;
    try {
      compileLabelRegex(m.value);
    } catch (err) {
      ctx.addIssue({
        code: 'custom',
        path: ['value'],
        message: `not a valid regular expression (RE2 syntax, as in Prometheus: no look-arounds or back-references): ${(err as Error).message}`,
      });
    }
  });
export type LabelMatcher = z.infer<typeof labelMatcherSchema>;

const QUERY_METRIC_NAMES = [...METRIC_NAMES, ...DERIVED_METRIC_NAMES];

/** Stored metrics only: derived metrics are named as such, so the message says where they work. */
const storedMetricSchema = z.enum(METRIC_NAMES, {
  error: (issue) =>
    isDerivedMetric(String(issue.input))
      ? `metric ${String(issue.input)} is only available in "latest" queries`
      : `unknown metric "${String(issue.input)}"; use one of ${METRIC_NAMES.join(', ')}`,
});
/** Stored and derived metrics ("latest" queries). */
const queryMetricSchema = z.enum(QUERY_METRIC_NAMES, {
  error: (issue) => `unknown metric "${String(issue.input)}"; use one of ${QUERY_METRIC_NAMES.join(', ')}`,
});

const baseQuery = {
  refId: z.string().default('A'),
  pluginVersion: z.string().optional(),
  hide: z.boolean().optional(),
  /** device ids (template variables already interpolated; `*` = all devices) */
  devices: z.array(z.string().min(1)).default([ALL_DEVICES]),
  /** narrow the device set by collector labels, e.g. site = hq */
  labelMatchers: z.array(labelMatcherSchema).default([]),
};

const metricFilter = {
  /** `host:port` of one iperf3 server */
  server: z.string().optional(),
  direction: z.enum(DIRECTIONS).optional(),
  splitByServer: z.boolean().default(false),
};
/** What a new metric query shows. */
export const DEFAULT_METRICS = ['tcp_received_bps' as const];
const PICK_A_METRIC = 'pick at least one metric';

export const timeSeriesQuerySchema = z.object({
  ...baseQuery,
  queryType: z.literal('timeseries'),
  metrics: z.array(storedMetricSchema).min(1, PICK_A_METRIC).default(() => [...DEFAULT_METRICS]),
  ...metricFilter,
});
export const latestQuerySchema = z.object({
  ...baseQuery,
  queryType: z.literal('latest'),
  metrics: z.array(queryMetricSchema).min(1, PICK_A_METRIC).default(() => [...DEFAULT_METRICS]),
  ...metricFilter,
});
export const DEFAULT_RUNS_LIMIT = 500;
export const runsQuerySchema = z.object({
  ...baseQuery,
  queryType: z.literal('runs'),
  status: z.array(runStatusSchema).default([]),
  /** a run log is read on a screen: more rows than one request's default */
  limit: runsLimitSchema.default(DEFAULT_RUNS_LIMIT),
});
export const intervalsQuerySchema = z.object({
  ...baseQuery,
  queryType: z.literal('intervals'),
  /** a run id; when absent, the latest finished run of the first selected device */
  runId: z.number().int().positive().optional(),
});

export const querySchema = z.discriminatedUnion('queryType', [
  timeSeriesQuerySchema,
  latestQuerySchema,
  runsQuerySchema,
  intervalsQuerySchema,
]);

export type TimeSeriesQuery = z.infer<typeof timeSeriesQuerySchema>;
export type LatestQuery = z.infer<typeof latestQuerySchema>;
export type RunsQuery = z.infer<typeof runsQuerySchema>;
export type IntervalsQuery = z.infer<typeof intervalsQuerySchema>;
export type Iperf3Query = z.infer<typeof querySchema>;
export type Iperf3QueryInput = z.input<typeof querySchema>;

/** Each query type's model as a saved query may hold it: fields with a default may be missing. */
export interface QueryInputs {
  timeseries: z.input<typeof timeSeriesQuerySchema>;
  latest: z.input<typeof latestQuerySchema>;
  runs: z.input<typeof runsQuerySchema>;
  intervals: z.input<typeof intervalsQuerySchema>;
}

export const DEFAULT_QUERY: QueryInputs['timeseries'] = {
  queryType: 'timeseries',
  devices: [ALL_DEVICES],
  metrics: [...DEFAULT_METRICS],
};

/** Variable queries (CustomVariableSupport): list devices, label values or servers. */
export const variableQuerySchema = z.strictObject({
  kind: z.enum(['devices', 'labelValues', 'servers']).default('devices'),
  /** for labelValues: which label (e.g. site) */
  label: z.string().optional(),
  labelMatchers: z.array(labelMatcherSchema).default([]),
});
export type VariableQuery = z.infer<typeof variableQuerySchema>;
export type VariableQueryInput = z.input<typeof variableQuerySchema>;

/**
 * A filter passing devices whose labels satisfy every matcher. Regexes are anchored, as in
 * Prometheus, and run on RE2 (linear time): a hostile pattern such as `(?:.|.|.)*Z` cannot stall
 * the process that evaluates it. Each regex is compiled once per filter. Throws on an invalid regex.
 */
export function labelFilter(matchers: LabelMatcher[]): (labels: Record<string, string>) => boolean {
  const tests = matchers.map((m): ((v: string) => boolean) => {
    switch (m.op) {
      case '=':
        return (v) => v === m.value;
      case '!=':
        return (v) => v !== m.value;
      case '=~': {
        const re = compileLabelRegex(m.value);
        return (v) => re.matches(v);
      }
      case '!~': {
        const re = compileLabelRegex(m.value);
        return (v) => !re.matches(v);
      }
    }
  });
  return (labels) => matchers.every((m, i) => tests[i](labels[m.label] ?? ''));
}
