/**
 * The shapes Grafana's provisioning code reads, as zod schemas (from grafana/grafana
 * pkg/services/provisioning: datasources/types.go upsertDataSourceFromConfigV1,
 * dashboards/types.go, alerting/rules_types.go AlertRuleV1/QueryV1, contact_point_types.go,
 * notification_policy_types.go; states from ngalert models NoDataState/ExecutionErrorState).
 * Grafana ignores unknown keys; these schemas are strict so that a misspelt key (json_data,
 * noDataStat, ...) fails here instead of being silently dropped.
 */
import { z } from 'zod';

/** Prometheus-style durations as model.ParseDuration accepts them: 30s, 5m, 1h30m, 0s. */
export const durationSchema = z.string().regex(/^(\d+(ms|s|m|h|d|w|y))+$/, 'a duration such as 30s, 5m or 1h');

const uidSchema = z.string().regex(/^[a-zA-Z0-9\-_]{1,40}$/, 'Grafana uids: 1-40 of a-z A-Z 0-9 - _');

export const datasourcesFileSchema = z.strictObject({
  apiVersion: z.literal(1),
  deleteDatasources: z.array(z.strictObject({ name: z.string().min(1), orgId: z.number().int().optional() })).optional(),
  datasources: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        type: z.string().min(1),
        uid: uidSchema,
        orgId: z.number().int().optional(),
        access: z.enum(['proxy', 'direct']).optional(),
        url: z.string().optional(),
        user: z.string().optional(),
        database: z.string().optional(),
        basicAuth: z.boolean().optional(),
        basicAuthUser: z.string().optional(),
        withCredentials: z.boolean().optional(),
        isDefault: z.boolean().optional(),
        editable: z.boolean().optional(),
        version: z.number().int().optional(),
        jsonData: z.record(z.string(), z.unknown()).optional(),
        secureJsonData: z.record(z.string(), z.string()).optional(),
      }),
    )
    .min(1),
});

export const dashboardProvidersFileSchema = z.strictObject({
  apiVersion: z.literal(1),
  providers: z
    .array(
      z
        .strictObject({
          name: z.string().min(1),
          orgId: z.number().int().optional(),
          type: z.literal('file'),
          folder: z.string().optional(),
          folderUid: z.string().optional(),
          disableDeletion: z.boolean().optional(),
          allowUiUpdates: z.boolean().optional(),
          updateIntervalSeconds: z.number().int().min(0).optional(),
          options: z.strictObject({ path: z.string().startsWith('/'), foldersFromFilesStructure: z.boolean().optional() }),
        })
        .refine((p) => !(p.options.foldersFromFilesStructure && (p.folder || p.folderUid)), {
          message: 'Grafana refuses folder/folderUid together with foldersFromFilesStructure',
        }),
    )
    .min(1),
});

const relativeTimeRangeSchema = z
  .strictObject({ from: z.number().int().min(0), to: z.number().int().min(0) })
  .refine((r) => r.from >= r.to, { message: 'relativeTimeRange.from (seconds back) must be >= to' });

const reduceModel = z.looseObject({
  type: z.literal('reduce'),
  expression: z.string().min(1),
  reducer: z.enum(['last', 'mean', 'min', 'max', 'sum', 'count', 'median']),
  settings: z.strictObject({ mode: z.enum(['dropNN', 'replaceNN', '']), replaceWithValue: z.number().optional() }).optional(),
});
const thresholdModel = z.looseObject({
  type: z.literal('threshold'),
  expression: z.string().min(1),
  conditions: z
    .array(
      z.looseObject({
        evaluator: z.strictObject({
          type: z.enum(['gt', 'lt', 'eq', 'ne', 'gte', 'lte', 'within_range', 'outside_range', 'within_range_included', 'outside_range_included']),
          params: z.array(z.number()).min(1),
        }),
      }),
    )
    .length(1),
});
export const expressionModelSchema = z.discriminatedUnion('type', [reduceModel, thresholdModel]);

export const alertQuerySchema = z.strictObject({
  refId: z.string().min(1),
  queryType: z.string().optional(),
  relativeTimeRange: relativeTimeRangeSchema.optional(),
  datasourceUid: z.string().min(1),
  model: z.record(z.string(), z.unknown()),
});

export const alertRuleSchema = z
  .strictObject({
    uid: uidSchema,
    title: z.string().min(1),
    condition: z.string().min(1),
    data: z.array(alertQuerySchema).min(1),
    dashboardUid: z.string().optional(),
    panelId: z.number().int().optional(),
    noDataState: z.enum(['Alerting', 'NoData', 'OK', 'KeepLast']),
    execErrState: z.enum(['Alerting', 'Error', 'OK', 'KeepLast']),
    for: durationSchema,
    keepFiringFor: durationSchema.optional(),
    annotations: z.record(z.string(), z.string()),
    labels: z.record(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/), z.string()),
    isPaused: z.boolean().optional(),
  })
  .superRefine((rule, ctx) => {
    const refIds = rule.data.map((d) => d.refId);
    if (new Set(refIds).size !== refIds.length) ctx.addIssue({ code: 'custom', path: ['data'], message: 'refIds must be unique' });
    if (!refIds.includes(rule.condition)) ctx.addIssue({ code: 'custom', path: ['condition'], message: `condition ${rule.condition} is not a refId of data` });
    rule.data.forEach((d, i) => {
      if (d.datasourceUid !== '__expr__') {
        if (!d.relativeTimeRange) ctx.addIssue({ code: 'custom', path: ['data', i, 'relativeTimeRange'], message: 'a data source query needs a relativeTimeRange' });
        return;
      }
      const model = expressionModelSchema.safeParse(d.model);
      if (!model.success) {
        for (const issue of model.error.issues) ctx.addIssue({ ...issue, path: ['data', i, 'model', ...issue.path] } as never);
      } else if (!refIds.slice(0, i).includes(model.data.expression)) {
        ctx.addIssue({ code: 'custom', path: ['data', i, 'model', 'expression'], message: `expression ${model.data.expression} is not an earlier refId` });
      }
    });
  });

export const alertingFileSchema = z.strictObject({
  apiVersion: z.literal(1),
  groups: z
    .array(
      z.strictObject({
        orgId: z.number().int().optional(),
        name: z.string().min(1),
        folder: z.string().min(1),
        interval: durationSchema,
        rules: z.array(alertRuleSchema).min(1),
      }),
    )
    .optional(),
  deleteRules: z.array(z.strictObject({ orgId: z.number().int().optional(), uid: uidSchema })).optional(),
  contactPoints: z
    .array(
      z.strictObject({
        orgId: z.number().int().optional(),
        name: z.string().min(1),
        receivers: z
          .array(
            z.strictObject({
              uid: uidSchema,
              type: z.string().min(1),
              disableResolveMessage: z.boolean().optional(),
              settings: z.record(z.string(), z.unknown()),
            }),
          )
          .min(1),
      }),
    )
    .optional(),
  policies: z
    .array(
      z.looseObject({
        orgId: z.number().int().optional(),
        receiver: z.string().min(1),
        group_by: z.array(z.string()).optional(),
        routes: z.array(z.looseObject({ receiver: z.string().optional(), object_matchers: z.array(z.tuple([z.string(), z.enum(['=', '!=', '=~', '!~']), z.string()])).optional() })).optional(),
      }),
    )
    .optional(),
});

const gridPosSchema = z
  .strictObject({ x: z.number().int().min(0), y: z.number().int().min(0), w: z.number().int().min(1).max(24), h: z.number().int().min(1) })
  .refine((g) => g.x + g.w <= 24, { message: 'x + w must be at most 24' });

const datasourceRefSchema = z.strictObject({ type: z.string().min(1), uid: z.string().min(1) });

const panelSchema = z.looseObject({
  id: z.number().int().positive(),
  type: z.string().min(1),
  title: z.string().min(1),
  gridPos: gridPosSchema,
  datasource: datasourceRefSchema.optional(),
  targets: z.array(z.looseObject({ refId: z.string().min(1), datasource: datasourceRefSchema })).optional(),
  fieldConfig: z.looseObject({ defaults: z.record(z.string(), z.unknown()), overrides: z.array(z.unknown()) }).optional(),
  options: z.record(z.string(), z.unknown()).optional(),
  transformations: z.array(z.looseObject({ id: z.string().min(1), options: z.record(z.string(), z.unknown()) })).optional(),
});

/** The dashboard JSON model as Grafana 12/13 writes it (schemaVersion 41+). */
export const dashboardSchema = z
  .looseObject({
    uid: uidSchema,
    title: z.string().min(1),
    schemaVersion: z.number().int().min(41),
    version: z.number().int().optional(),
    editable: z.boolean(),
    tags: z.array(z.string()),
    time: z.strictObject({ from: z.string(), to: z.string() }),
    refresh: z.string().optional(),
    panels: z.array(panelSchema).min(1),
    templating: z.strictObject({
      list: z.array(
        z.looseObject({
          name: z.string().regex(/^[A-Za-z0-9_]+$/),
          type: z.enum(['query', 'custom', 'constant', 'datasource', 'interval', 'textbox', 'adhoc']),
          datasource: datasourceRefSchema.optional(),
          query: z.unknown(),
        }),
      ),
    }),
    annotations: z.strictObject({
      list: z.array(
        z.looseObject({
          name: z.string().min(1),
          enable: z.boolean(),
          iconColor: z.string(),
          datasource: z.looseObject({ type: z.string(), uid: z.string() }),
          builtIn: z.number().optional(),
          target: z.looseObject({ refId: z.string().min(1) }).optional(),
        }),
      ),
    }),
  })
  .superRefine((d, ctx) => {
    const ids = d.panels.map((p) => p.id);
    if (new Set(ids).size !== ids.length) ctx.addIssue({ code: 'custom', path: ['panels'], message: 'panel ids must be unique' });
  });
