/**
 * Reads the demo stack's provisioning and dashboards as Grafana does: YAML with environment
 * variables expanded where Grafana expands them (pkg/services/provisioning/values: `$VAR`,
 * `${VAR}`, `$$` for a literal `$`), dashboard JSON, panel and annotation targets, and
 * template variables replaced in a query the way the data source's frontend sends it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../support/pluginProcess.js';

export const PROVISIONING_DIR = join(REPO_ROOT, 'provisioning');
export const DASHBOARDS_DIR = join(REPO_ROOT, 'dashboards');

export function readYaml(path: string): unknown {
  return parse(readFileSync(path, 'utf8'));
}

/** Go's os.ExpandEnv after Grafana's `$$` split: unset variables become empty strings. */
export function expandEnv(value: string, env: Record<string, string | undefined>): string {
  return value
    .split('$$')
    .map((part) => part.replace(/\$\{([^}]*)\}|\$([A-Za-z0-9_]+)/g, (_m, braced: string | undefined, bare: string | undefined) => env[braced ?? bare ?? ''] ?? ''))
    .join('$');
}

/** Expands every string inside a value (what values.JSONValue / StringMapValue do). */
export function expandEnvDeep<T>(value: T, env: Record<string, string | undefined>): T {
  if (typeof value === 'string') return expandEnv(value, env) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => expandEnvDeep(v, env)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandEnvDeep(v, env)])) as T;
  }
  return value;
}

function filesUnder(dir: string, test: (name: string) => boolean): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && test(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** Files Grafana reads from a provisioning folder: *.yaml, *.yml, *.json. */
export function provisioningFiles(kind: 'datasources' | 'dashboards' | 'alerting'): string[] {
  return filesUnder(join(PROVISIONING_DIR, kind), (n) => /\.(ya?ml|json)$/.test(n));
}

export interface DashboardFile {
  path: string;
  /** relative to dashboards/, e.g. iperf3/fleet-overview.json */
  name: string;
  json: Record<string, unknown>;
}

export function dashboardFiles(): DashboardFile[] {
  return filesUnder(DASHBOARDS_DIR, (n) => n.endsWith('.json')).map((path) => ({
    path,
    name: relative(DASHBOARDS_DIR, path),
    json: JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>,
  }));
}

export interface DatasourceRef {
  type?: string;
  uid?: string;
}

export interface DashboardTarget {
  dashboard: string;
  /** panel title, or `annotation: <name>` */
  where: string;
  target: Record<string, unknown> & { refId: string; datasource?: DatasourceRef };
  panelDatasource?: DatasourceRef;
}

interface PanelLike {
  title?: string;
  datasource?: DatasourceRef;
  targets?: DashboardTarget['target'][];
  panels?: PanelLike[];
}

/** Every query target of every panel (rows included) and every annotation query. */
export function dashboardTargets(file: DashboardFile): DashboardTarget[] {
  const out: DashboardTarget[] = [];
  const visit = (panels: PanelLike[] | undefined) => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? []) {
        out.push({ dashboard: file.name, where: panel.title ?? '(untitled)', target, panelDatasource: panel.datasource });
      }
      visit(panel.panels);
    }
  };
  visit(file.json.panels as PanelLike[]);
  const annotations = (file.json.annotations as { list?: { name: string; builtIn?: number; datasource?: DatasourceRef; target?: DashboardTarget['target'] }[] })?.list ?? [];
  for (const a of annotations) {
    if (a.builtIn || !a.target) continue;
    out.push({ dashboard: file.name, where: `annotation: ${a.name}`, target: a.target, panelDatasource: a.datasource });
  }
  return out;
}

export interface TemplateVariable {
  name: string;
  type: string;
  datasource?: DatasourceRef;
  query?: unknown;
  multi?: boolean;
  includeAll?: boolean;
}

export function templateVariables(file: DashboardFile): TemplateVariable[] {
  return ((file.json.templating as { list?: TemplateVariable[] })?.list ?? []) as TemplateVariable[];
}

/** `$name`, `${name}`, `${name:format}`, `[[name]]` in any string of a target. */
export function variablesUsed(value: unknown): string[] {
  const text = JSON.stringify(value);
  const names = new Set<string>();
  for (const m of text.matchAll(/\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)\]\]/g)) {
    names.add(m[1] ?? m[2] ?? m[3]);
  }
  return [...names];
}

/**
 * What the data source's frontend (applyTemplateVariables) sends for a target: each variable
 * in `devices` replaced by its value(s), a multi-value entry split into its values, "All"
 * (`$__all`) sent as `*`.
 */
export function interpolateTarget<T extends Record<string, unknown>>(target: T, values: Record<string, string[] | '$__all'>): T {
  const replace = (entry: string): string[] => {
    const m = /^\$\{?([A-Za-z0-9_]+)(?::[^}]*)?\}?$|^\[\[([A-Za-z0-9_]+)\]\]$/.exec(entry);
    const name = m?.[1] ?? m?.[2];
    if (name === undefined) return [entry];
    const value = values[name];
    if (value === undefined) throw new Error(`variable $${name} has no value`);
    return value === '$__all' ? ['*'] : value;
  };
  const out: Record<string, unknown> = { ...target };
  if (Array.isArray(target.devices)) {
    const devices = new Set((target.devices as string[]).flatMap(replace));
    out.devices = devices.has('*') ? ['*'] : [...devices];
  }
  const left = variablesUsed(out).filter((n) => !n.startsWith('__'));
  if (left.length > 0) throw new Error(`uninterpolated variables ${left.join(', ')} in ${JSON.stringify(out)}`);
  return out as T;
}
