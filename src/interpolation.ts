/**
 * Template-variable interpolation of the query model: device lists and label matchers, with
 * multi-value variables and the "All" value as Grafana's Scenes dashboards pass them.
 */
import type { ScopedVars } from '@grafana/data';
import type { TemplateSrv } from '@grafana/runtime';
import { ALL_DEVICES, type LabelMatcher } from '../contract/query.js';

/** Separates the values of a multi-value variable while interpolating; never part of a device id. */
const MULTI_VALUE_SEPARATOR = '\u001f';

/*
 * No "All" detection here. Grafana 12/13 dashboards are Scenes: a format function gets the
 * value(s) and a variable without `current`. "All" arrives as the values the variable lists
 * (exactly the devices a narrowed variable offers), and a custom all value (such as `*`, every
 * device) arrives as it is, without calling the format function.
 */
function joinMultiValue(value: unknown): string {
  return Array.isArray(value) ? value.map(String).join(MULTI_VALUE_SEPARATOR) : String(value);
}

const escapeRegex = (v: string) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function regexMultiValue(value: unknown): string {
  const escaped = (Array.isArray(value) ? value.map(String) : [String(value)]).map(escapeRegex);
  return escaped.length === 1 ? escaped[0] : `(${escaped.join('|')})`;
}

/** Marks where a multi-value variable stood in an equality matcher's value; never in a label value. */
const SLOT = '\u0000';

/**
 * An equality matcher (`=`, `!=`) whose value holds a multi-value variable: any (none) of the
 * values, as the regex matcher `=~` (`!~`) with the fixed text around the variable escaped.
 * A single value stays an equality, so a label value with a comma is never split.
 */
function interpolateEquality(templateSrv: TemplateSrv, m: { label: string; op: '=' | '!='; value: string }, scopedVars: ScopedVars): LabelMatcher {
  const groups: string[] = [];
  const value = templateSrv.replace(m.value, scopedVars, (v: unknown) => {
    if (!Array.isArray(v) || v.length === 1) return String(Array.isArray(v) ? v[0] : v);
    groups.push(regexMultiValue(v));
    return `${SLOT}${groups.length - 1}${SLOT}`;
  });
  const negate = m.op === '!=';
  // `*` (All as the custom all value `*`, which skips the format function) means any value
  if (value === ALL_DEVICES && m.value !== ALL_DEVICES) return { label: m.label, op: negate ? '!~' : '=~', value: '.*' };
  if (groups.length === 0) return { label: m.label, op: m.op, value };
  const regex = value
    .split(SLOT)
    .map((part, i) => (i % 2 === 1 ? groups[Number(part)] : escapeRegex(part)))
    .join('');
  return { label: m.label, op: negate ? '!~' : '=~', value: regex };
}

/**
 * Interpolates a list whose entries may be multi-value variables: each entry is replaced and
 * split into its values; `*` (All) swallows the rest; duplicates are dropped.
 */
export function interpolateList(templateSrv: TemplateSrv, entries: string[], scopedVars: ScopedVars): string[] {
  const out = new Set<string>();
  for (const entry of entries) {
    for (const value of templateSrv.replace(entry, scopedVars, joinMultiValue).split(MULTI_VALUE_SEPARATOR)) {
      const trimmed = value.trim();
      if (trimmed !== '') out.add(trimmed);
    }
  }
  return out.has(ALL_DEVICES) ? [ALL_DEVICES] : [...out];
}

export function interpolateMatchers(
  templateSrv: TemplateSrv,
  matchers: Array<LabelMatcher | (Omit<LabelMatcher, 'op'> & { op?: LabelMatcher['op'] })>,
  scopedVars: ScopedVars,
): LabelMatcher[] {
  return matchers.map((m) => {
    const op = m.op ?? '=';
    if (op === '=' || op === '!=') return { ...m, ...interpolateEquality(templateSrv, { label: m.label, op, value: m.value }, scopedVars) };
    const value = templateSrv.replace(m.value, scopedVars, regexMultiValue);
    // `*` (All as the custom all value `*`, which skips the format function) means any value
    return { ...m, op, value: value === ALL_DEVICES ? '.*' : value };
  });
}
