/**
 * A dashboard panel replayed with Grafana's own frontend code (@grafana/data 13.2): the frames
 * /api/ds/query sent (already read with dataFrameFromJSON) go through the panel's
 * transformations (`transformDataFrame`, every standard transformer registered), then its field
 * config defaults and overrides (`applyFieldOverrides`). Every step is judged, and what a
 * transformer only writes to the console counts as a problem too: transformers pass the data
 * on unchanged when a field they name is missing.
 *
 * See /docs/provisioning.md ("Panels through @grafana/data") for what is checked and why.
 */
import {
  FieldConfigOptionsRegistry,
  FieldType,
  applyFieldOverrides,
  createTheme,
  dataLinksOverrideProcessor,
  displayNameOverrideProcessor,
  fieldMatchers,
  getFieldDisplayName,
  getValueFormats,
  identityOverrideProcessor,
  numberOverrideProcessor,
  standardTransformers,
  standardTransformersRegistry,
  thresholdsOverrideProcessor,
  transformDataFrame,
  unitOverrideProcessor,
  valueMappingsOverrideProcessor,
  type DataFrame,
  type DataTransformerConfig,
  type DataTransformerInfo,
  type Field,
  type FieldConfigPropertyItem,
  type FieldConfigSource,
  type TransformerRegistryItem,
} from '@grafana/data';
import { lastValueFrom } from 'rxjs';

// After @grafana/data is loaded (react-use takes an early `window` for a browser):
// transformDataFrame reads window.__grafanaSceneContext, unit formatters read navigator.language.
const g = globalThis as unknown as { window?: unknown };
g.window ??= globalThis;
if (!Array.isArray((globalThis.navigator as { languages?: unknown } | undefined)?.languages)) {
  Object.defineProperty(globalThis, 'navigator', { value: { language: 'en-US', languages: ['en-US'] }, configurable: true });
}

let registered = false;
/** The standard transformers, each id once (13.2 lists joinByField twice), loaded lazily as Grafana does. */
export function registerStandardTransformers(): void {
  if (registered) return;
  const seen = new Set<string>();
  const items: TransformerRegistryItem[] = [];
  for (const t of Object.values(standardTransformers) as DataTransformerInfo[]) {
    if (seen.has(t.id)) continue;
    seen.add(t.id);
    items.push({ id: t.id, aliasIds: t.aliasIds, name: t.name, description: t.description, editor: () => null, transformation: () => t } as unknown as TransformerRegistryItem);
  }
  standardTransformersRegistry.setInit(() => items);
  registered = true;
}

export interface PanelJson {
  id?: number;
  type: string;
  title: string;
  targets?: Array<Record<string, unknown> & { refId: string }>;
  transformations?: DataTransformerConfig[];
  fieldConfig?: FieldConfigSource;
  options?: Record<string, unknown>;
}

export interface PanelReplay {
  /** after the transformations, before the overrides */
  transformed: DataFrame[];
  /** as the panel draws them */
  frames: DataFrame[];
  problems: string[];
}

const CONSOLE_METHODS = ['log', 'info', 'warn', 'error', 'debug'] as const;

/** Runs `fn` with everything written to the console collected instead of printed. */
export async function collectConsole<T>(fn: () => Promise<T>): Promise<{ result: T; messages: string[] }> {
  const messages: string[] = [];
  const terminal = globalThis.console;
  const saved = CONSOLE_METHODS.map((m) => [m, terminal[m]] as const);
  for (const m of CONSOLE_METHODS) {
    terminal[m] = (...args: unknown[]) => messages.push(`console.${m}: ${args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ')}`);
  }
  try {
    return { result: await fn(), messages };
  } finally {
    for (const [m, f] of saved) terminal[m] = f;
  }
}

const displayNames = (frames: DataFrame[]) => frames.flatMap((frame) => frame.fields.map((f) => getFieldDisplayName(f, frame, frames)));
const rawNames = (frames: DataFrame[]) => frames.flatMap((frame) => frame.fields.map((f) => f.name));

/** The fields a transformation names, and how it looks them up (all by display name, except groupBy). */
function fieldsNamedBy(t: DataTransformerConfig): { names: string[]; rawAllowed: boolean; labels?: string[] } {
  const o = (t.options ?? {}) as Record<string, unknown>;
  switch (t.id) {
    case 'formatTime':
      return { names: [String(o.timeField)], rawAllowed: false };
    case 'groupBy':
      return {
        names: Object.entries((o.fields ?? {}) as Record<string, { operation?: string | null }>)
          .filter(([, v]) => v.operation)
          .map(([k]) => k),
        rawAllowed: true,
      };
    case 'groupingToMatrix':
      return { names: [o.columnField, o.rowField, o.valueField].filter((v): v is string => typeof v === 'string'), rawAllowed: false };
    case 'filterByValue':
      return { names: ((o.filters ?? []) as { fieldName: string }[]).map((f) => f.fieldName), rawAllowed: false };
    case 'sortBy':
      return { names: ((o.sort ?? []) as { field: string }[]).map((s) => s.field), rawAllowed: false };
    case 'organize':
      return {
        names: [...new Set(['indexByName', 'renameByName', 'excludeByName'].flatMap((k) => Object.keys((o[k] ?? {}) as object)))],
        rawAllowed: false,
      };
    case 'labelsToFields':
      return { names: [], rawAllowed: false, labels: [o.valueLabel, ...((o.keepLabels ?? []) as unknown[])].filter((v): v is string => typeof v === 'string') };
    case 'merge':
      return { names: [], rawAllowed: false };
    case 'joinByLabels':
      return { names: [], rawAllowed: false, labels: [o.value, ...((o.join ?? []) as unknown[])].filter((v): v is string => typeof v === 'string') };
    default:
      throw new Error(`the panel replay does not know which fields transformer ${t.id} reads: add it to fieldsNamedBy`);
  }
}

function isValidUnit(unit: string): boolean {
  if (/^(suffix|prefix|si|count|currency|time|bool):./.test(unit)) return true;
  return getValueFormats().some((category) => (category.submenu ?? []).some((u) => u.value === unit));
}

/** The field config items a dashboard of this project uses; custom.* items are made for the ids the panel names. */
function fieldConfigRegistry(fieldConfig: FieldConfigSource): FieldConfigOptionsRegistry {
  const item = (id: string, process: FieldConfigPropertyItem['process'], isCustom = false): FieldConfigPropertyItem =>
    ({ id, path: isCustom ? id.slice('custom.'.length) : id, name: id, isCustom, process, override: () => null, editor: () => null, shouldApply: () => true }) as unknown as FieldConfigPropertyItem;
  const items: FieldConfigPropertyItem[] = [
    item('unit', unitOverrideProcessor),
    item('displayName', displayNameOverrideProcessor),
    item('min', numberOverrideProcessor),
    item('max', numberOverrideProcessor),
    item('decimals', numberOverrideProcessor),
    item('thresholds', thresholdsOverrideProcessor),
    item('mappings', valueMappingsOverrideProcessor),
    item('links', dataLinksOverrideProcessor),
    item('color', identityOverrideProcessor),
    item('noValue', identityOverrideProcessor),
  ];
  const customIds = new Set(fieldConfig.overrides.flatMap((o) => o.properties.map((p) => p.id)).filter((id) => id.startsWith('custom.')));
  for (const id of customIds) items.push(item(id, identityOverrideProcessor, true));
  const registry = new FieldConfigOptionsRegistry(() => items);
  return registry;
}

const RAW_ID = /^[a-z][a-z0-9]*(_[a-z0-9]+)+$|^[a-z]+[A-Z][A-Za-z]*$|\((count|sum|mean|max|min)\)$/;

export interface PanelContext {
  /** the query model of each refId after interpolation */
  queries: Record<string, Record<string, unknown>>;
  /** devices whose rows a table must show */
  devices: string[];
  /**
   * Field names an override may name although the lab's data never has them (a run status the
   * lab does not produce, e.g. `skipped`); any other override must match a field.
   */
  absentNames?: string[];
}

/** Transformations, overrides and the panel type's needs, judged; returns what the panel draws. */
export async function replayPanel(panel: PanelJson, input: DataFrame[], context: PanelContext): Promise<PanelReplay> {
  registerStandardTransformers();
  const problems: string[] = [];
  let frames = input;
  for (const [index, t] of (panel.transformations ?? []).entries()) {
    const step = `transformation ${index + 1} (${t.id})`;
    // Grafana's own transformers outside @grafana/data (joinByLabels, ...) cannot be judged here: the dashboards use the others
    if (!standardTransformersRegistry.getIfExists(t.id)) {
      problems.push(`${step} is not one of @grafana/data's standard transformers, so this replay cannot check it`);
      break;
    }
    const named = fieldsNamedBy(t);
    const shown = new Set(displayNames(frames));
    const raw = new Set(rawNames(frames));
    for (const name of named.names) {
      if (!shown.has(name) && !(named.rawAllowed && raw.has(name))) {
        problems.push(`${step} names field "${name}", which its input does not show (fields: ${[...shown].join(', ')})`);
      }
    }
    for (const label of named.labels ?? []) {
      if (!frames.some((f) => f.fields.some((field) => field.labels?.[label] !== undefined))) problems.push(`${step} names label "${label}", which no field carries`);
    }
    const { result, messages } = await collectConsole(() => lastValueFrom(transformDataFrame([t], frames)));
    problems.push(...messages.map((m) => `${step}: ${m}`));
    if (result.length === 0 || result.every((f) => f.fields.length === 0)) problems.push(`${step} left no fields`);
    frames = result;
  }
  const transformed = frames;

  const fieldConfig: FieldConfigSource = { defaults: panel.fieldConfig?.defaults ?? {}, overrides: panel.fieldConfig?.overrides ?? [] };
  for (const [index, override] of fieldConfig.overrides.entries()) {
    const matcher = fieldMatchers.get(override.matcher.id).get(override.matcher.options);
    const matched = frames.flatMap((frame) => frame.fields.filter((f) => matcher(f, frame, frames)));
    const absent = override.matcher.id === 'byName' && (context.absentNames ?? []).includes(String(override.matcher.options));
    if (matched.length === 0 && !absent) {
      problems.push(`override ${index + 1} (${override.matcher.id} ${JSON.stringify(override.matcher.options)}) matches no field (fields: ${displayNames(frames).join(', ')})`);
    }
  }
  const { result: drawn, messages } = await collectConsole(async () =>
    applyFieldOverrides({
      data: frames,
      fieldConfig,
      fieldConfigRegistry: fieldConfigRegistry(fieldConfig),
      replaceVariables: (v: string) => v,
      theme: createTheme(),
      timeZone: 'utc',
    }),
  );
  problems.push(...messages.map((m) => `field overrides: ${m}`));

  // display names: every displayName override shows, no raw id shows, no two columns alike
  const shown = (frame: DataFrame) => frame.fields.map((f) => f.state?.displayName ?? getFieldDisplayName(f, frame, drawn));
  const wanted = fieldConfig.overrides.flatMap((o) => o.properties.filter((p) => p.id === 'displayName').map((p) => String(p.value)));
  for (const name of wanted) {
    if (!drawn.some((frame) => shown(frame).includes(name))) problems.push(`display name "${name}" set by an override does not show`);
  }
  for (const frame of drawn) {
    const names = shown(frame);
    for (const name of names) if (RAW_ID.test(name)) problems.push(`field shows the raw name "${name}"`);
    const dup = names.filter((n, i) => names.indexOf(n) !== i);
    if (dup.length > 0) problems.push(`frame ${frame.refId ?? ''} shows the same name twice: ${[...new Set(dup)].join(', ')}`);
    for (const field of frame.fields) {
      const unit = field.config.unit;
      if (unit !== undefined && !isValidUnit(unit)) problems.push(`field "${getFieldDisplayName(field, frame, drawn)}" has unknown unit "${unit}"`);
    }
  }
  if (fieldConfig.defaults.unit !== undefined && !isValidUnit(fieldConfig.defaults.unit)) problems.push(`default unit "${fieldConfig.defaults.unit}" is unknown`);

  problems.push(...panelTypeProblems(panel, drawn, context));
  return { transformed, frames: drawn, problems };
}

const typed = (frame: DataFrame, type: FieldType): Field[] => frame.fields.filter((f) => f.type === type);

/** What each panel type needs to draw something. */
function panelTypeProblems(panel: PanelJson, frames: DataFrame[], context: PanelContext): string[] {
  const problems: string[] = [];
  const withRows = frames.filter((f) => f.length > 0);
  if (withRows.length === 0) return [`${panel.type} panel gets no rows`];
  switch (panel.type) {
    case 'timeseries':
      for (const frame of withRows) {
        const [time] = typed(frame, FieldType.time);
        if (!time) problems.push(`time series frame ${frame.name ?? ''} has no time field`);
        if (typed(frame, FieldType.number).length === 0) problems.push(`time series frame ${frame.name ?? ''} has no number field`);
        const times = time ? [...time.values].map(Number) : [];
        const repeated = times.filter((t, i) => i > 0 && t <= times[i - 1]);
        if (repeated.length > 0) {
          problems.push(
            `time series frame ${frame.name ?? ''} (${JSON.stringify(frame.fields[1]?.labels ?? {})}): time not strictly increasing, ${repeated.length} of ${times.length} points repeat or go back (e.g. ${new Date(repeated[0]).toISOString()})`,
          );
        }
      }
      break;
    case 'barchart': {
      if (frames.length !== 1) problems.push(`bar chart gets ${frames.length} frames; it draws the first only`);
      const [frame] = withRows;
      const xField = panel.options?.xField as string | undefined;
      const x = xField ? frame.fields.find((f) => getFieldDisplayName(f, frame, frames) === xField) : typed(frame, FieldType.string)[0];
      if (!x) problems.push(`bar chart x field ${xField ? `"${xField}"` : '(first string field)'} is not among ${displayNames([frame]).join(', ')}`);
      else if (x.type !== FieldType.string) problems.push(`bar chart x field "${xField}" is ${x.type}, not string`);
      if (typed(frame, FieldType.number).length === 0) problems.push('bar chart gets no number field');
      break;
    }
    case 'table': {
      const refIds = new Set(frames.map((f) => f.refId));
      if (frames.length > refIds.size) problems.push(`table gets ${frames.length} frames for ${refIds.size} queries: Grafana shows one at a time behind a selector`);
      const latest = Object.values(context.queries).some((q) => q.queryType === 'latest');
      if (latest) {
        const [frame] = frames;
        const device = frame.fields.find((f) => f.name === 'device' || f.labels?.device === undefined && getFieldDisplayName(f, frame) === 'Device');
        if (!device) {
          problems.push(`latest-value table has no device column (${displayNames([frame]).join(', ')})`);
          break;
        }
        const direction = frame.fields.find((f) => f.name === 'direction');
        const keys = [...device.values].map((d, i) => `${String(d)}/${String(direction?.values[i] ?? '')}`);
        const dup = keys.filter((k, i) => keys.indexOf(k) !== i);
        if (dup.length > 0) problems.push(`table repeats rows for ${[...new Set(dup)].join(', ')}`);
        const missing = context.devices.filter((d) => ![...device.values].includes(d));
        if (missing.length > 0) problems.push(`table has no row for ${missing.join(', ')}`);
        if (typed(frame, FieldType.number).length === 0) problems.push('latest-value table has no number column');
      }
      break;
    }
    case 'stat':
    case 'bargauge':
    case 'histogram':
      if (!withRows.some((f) => typed(f, FieldType.number).length > 0)) problems.push(`${panel.type} panel gets no number field`);
      break;
    default:
      break;
  }
  return problems;
}
