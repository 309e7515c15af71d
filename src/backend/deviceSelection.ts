/**
 * Which devices a query means: ids (template variables already interpolated, possibly as
 * `a,b` or `{a,b}` inside one entry), `*` for all, narrowed by label matchers.
 */
import type { DeviceEntry } from '../../contract/api.js';
import { ALL_DEVICES, labelFilter, type LabelMatcher } from '../../contract/query.js';
import { QueryError } from './queryErrors.js';

/** At most this many devices per query: bounds the work of one request. */
export const MAX_DEVICES_PER_QUERY = 5000;

/** Splits `{a,b}` and `a,b` entries (Grafana's multi-value formats) into single ids. */
export function expandDeviceEntries(entries: readonly string[]): string[] {
  const ids = entries.flatMap((entry) => {
    const trimmed = entry.trim();
    const inner = trimmed.startsWith('{') && trimmed.endsWith('}') ? trimmed.slice(1, -1) : trimmed;
    return inner.split(',').map((id) => id.trim());
  });
  return [...new Set(ids.filter((id) => id !== ''))];
}

export interface DeviceSelection<D extends DeviceEntry = DeviceEntry> {
  /** every device the query selects, in inventory order */
  devices: D[];
  /** true when the query asked for `*` without label matchers (the whole fleet) */
  all: boolean;
}

export function selectDevices<D extends DeviceEntry>(entries: readonly string[], matchers: LabelMatcher[], inventory: D[]): DeviceSelection<D> {
  const ids = expandDeviceEntries(entries);
  if (ids.length === 0) throw new QueryError(400, 'select at least one device, or * for all devices');
  const wantsAll = ids.includes(ALL_DEVICES);
  let devices: D[];
  if (wantsAll) {
    devices = inventory;
  } else {
    const known = new Map(inventory.map((d) => [d.id, d]));
    const unknown = ids.filter((id) => !known.has(id));
    if (unknown.length > 0) {
      throw new QueryError(
        404,
        `unknown device${unknown.length > 1 ? 's' : ''} ${unknown.map((id) => `"${id}"`).join(', ')}: ` +
          'the collector has no such device; pick devices from its inventory',
      );
    }
    devices = ids.map((id) => known.get(id) as D);
  }
  if (matchers.length > 0) {
    // the query schema has compiled every regex already (contract/query.ts)
    const passes = labelFilter(matchers);
    devices = devices.filter((d) => passes(d.labels));
  }
  if (devices.length > MAX_DEVICES_PER_QUERY) {
    throw new QueryError(
      400,
      `the query selects ${devices.length} devices; the limit is ${MAX_DEVICES_PER_QUERY}: narrow it with label matchers`,
    );
  }
  return { devices, all: wantsAll && matchers.length === 0 };
}
