/**
 * `collector devices import` and `export`: devices as CSV (a spreadsheet, an OpenWISP or NetBox
 * export mapped to our columns) or YAML (the configuration file's devices: list).
 * docs/configuration.md documents the columns.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { deviceConfigSchema, type DeviceConfig, type DevicePatch, type DeviceRecord } from '../../contract/devices.js';
import { fieldErrors } from '../../contract/settings.js';

export type DeviceFileFormat = 'csv' | 'yaml';

/** The CSV columns, in order; labels are `labels.<name>` columns. */
export const CSV_COLUMNS = ['id', 'host', 'port', 'username', 'privateKeyFile', 'passphraseFile', 'passwordFile', 'hostKey', 'pool', 'group', 'enabled'] as const;
const LABEL_PREFIX = 'labels.';

/** A problem with one row of an import file (`row` is the CSV line, or the YAML list item from 1). */
export interface RowError {
  row: number;
  field: string;
  message: string;
}

export interface ParsedRow {
  row: number;
  device: DeviceConfig;
}

export function formatOf(file: string): DeviceFileFormat | null {
  if (/\.csv$/i.test(file)) return 'csv';
  if (/\.ya?ml$/i.test(file)) return 'yaml';
  return null;
}

export function formatRowErrors(errors: RowError[]): string {
  return errors.map((e) => `row ${e.row}, ${e.field}: ${e.message}`).join('\n');
}

const TRUE = new Set(['true', 'yes', '1', 'y']);
const FALSE = new Set(['false', 'no', '0', 'n']);

/** One CSV record as the object deviceConfigSchema parses; empty cells are left out. */
function csvDevice(record: Record<string, string>, row: number, errors: RowError[]): Record<string, unknown> {
  const device: Record<string, unknown> = {};
  const labels: Record<string, string> = {};
  for (const [column, raw] of Object.entries(record)) {
    const value = raw.trim();
    if (value === '') continue;
    if (column.startsWith(LABEL_PREFIX)) labels[column.slice(LABEL_PREFIX.length)] = value;
    else if (column === 'port') device.port = /^\d+$/.test(value) ? Number(value) : value;
    else if (column === 'enabled') {
      const v = value.toLowerCase();
      if (TRUE.has(v)) device.enabled = true;
      else if (FALSE.has(v)) device.enabled = false;
      else errors.push({ row, field: 'enabled', message: `"${value}" is not true or false (also yes/no, 1/0)` });
    } else device[column] = value;
  }
  device.labels = labels;
  return device;
}

/** Parses an import file; every bad row and field is reported, with the row it is on. */
export function parseDeviceFile(text: string, format: DeviceFileFormat): { rows: ParsedRow[]; errors: RowError[] } {
  const errors: RowError[] = [];
  let items: { row: number; raw: unknown }[];
  if (format === 'csv') {
    let records: { record: Record<string, string>; info: { lines: number } }[];
    try {
      records = parseCsv(text, { columns: true, skip_empty_lines: true, bom: true, info: true, trim: true }) as typeof records;
    } catch (err) {
      // csv-parse's errors carry the line they are on
      const e = err as Error & { lines: number };
      return { rows: [], errors: [{ row: e.lines, field: '(csv)', message: e.message }] };
    }
    const header = records[0] ? Object.keys(records[0].record) : [];
    for (const column of header) {
      if (!(CSV_COLUMNS as readonly string[]).includes(column) && !column.startsWith(LABEL_PREFIX)) {
        errors.push({ row: 1, field: column, message: `unknown column; use ${CSV_COLUMNS.join(', ')}, or labels.<name> for a label` });
      }
    }
    if (errors.length > 0) return { rows: [], errors };
    items = records.map(({ record, info }) => ({ row: info.lines, raw: csvDevice(record, info.lines, errors) }));
  } else {
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (err) {
      return { rows: [], errors: [{ row: 1, field: '(yaml)', message: (err as Error).message.split('\n')[0] }] };
    }
    const list = Array.isArray(doc) ? doc : (doc as { devices?: unknown } | null)?.devices;
    if (!Array.isArray(list)) return { rows: [], errors: [{ row: 1, field: '(yaml)', message: 'give a list of devices, or a devices: list as in the configuration file' }] };
    items = list.map((raw, i) => ({ row: i + 1, raw }));
  }
  const rows: ParsedRow[] = [];
  const seen = new Map<string, number>();
  for (const { row, raw } of items) {
    const parsed = deviceConfigSchema.safeParse(raw);
    if (!parsed.success) {
      errors.push(...fieldErrors(parsed.error).map((f) => ({ row, field: f.field, message: f.message })));
      continue;
    }
    const first = seen.get(parsed.data.id);
    if (first !== undefined) errors.push({ row, field: 'id', message: `duplicate id "${parsed.data.id}" (also row ${first})` });
    else seen.set(parsed.data.id, row);
    rows.push({ row, device: parsed.data });
  }
  return { rows, errors };
}

/** Devices as CSV (one labels.<name> column per label name used) or as a YAML devices: list. */
export function formatDevices(devices: DeviceConfig[], format: DeviceFileFormat): string {
  if (format === 'yaml') return stringifyYaml({ devices });
  const labelNames = [...new Set(devices.flatMap((d) => Object.keys(d.labels)))].sort();
  const columns = [...CSV_COLUMNS, ...labelNames.map((n) => `${LABEL_PREFIX}${n}`)];
  const records = devices.map((d) => {
    const row: Record<string, string> = {};
    for (const c of CSV_COLUMNS) row[c] = d[c] === undefined ? '' : String(d[c]);
    for (const n of labelNames) row[`${LABEL_PREFIX}${n}`] = d.labels[n] ?? '';
    return row;
  });
  return stringifyCsv(records, { header: true, columns });
}

/** The patch that turns an API device into `device` (fields it lacks are removed). */
export function patchTo(device: DeviceConfig): DevicePatch {
  const { id: _id, ...fields } = device;
  return { privateKeyFile: null, passphraseFile: null, passwordFile: null, hostKey: null, pool: null, group: null, ...fields };
}

/** Where the rows of an import go: the daemon's API, or the store when no daemon owns it. */
export interface DeviceAdmin {
  records(): Promise<DeviceRecord[]>;
  add(device: DeviceConfig): Promise<void>;
  update(id: string, patch: DevicePatch): Promise<void>;
  close(): Promise<void>;
}

/** An error of the API or the catalog, with the fields it names. */
export class DeviceAdminError extends Error {
  constructor(
    message: string,
    readonly fields: { field: string; message: string }[] = [],
  ) {
    super(message);
    this.name = 'DeviceAdminError';
  }
}

export interface ImportReport {
  added: string[];
  updated: string[];
  unchanged: string[];
  errors: RowError[];
}

const same = (a: DeviceConfig, b: DeviceConfig) => JSON.stringify(a) === JSON.stringify(deviceConfigSchema.parse(b));

/**
 * Adds the rows' devices that are new, changes the API devices that differ, and leaves the
 * others. A device of the configuration file is refused unless the row matches it. Devices
 * not in the file stay.
 */
export async function importDevices(admin: DeviceAdmin, rows: ParsedRow[]): Promise<ImportReport> {
  const report: ImportReport = { added: [], updated: [], unchanged: [], errors: [] };
  const existing = new Map((await admin.records()).map((r) => [r.device.id, r]));
  for (const { row, device } of rows) {
    const current = existing.get(device.id);
    try {
      if (current && same(current.device, device)) report.unchanged.push(device.id);
      else if (current?.managedBy === 'file') {
        report.errors.push({ row, field: 'id', message: `device ${device.id} is managed by the configuration file; change it there` });
      } else if (current) {
        await admin.update(device.id, patchTo(device));
        report.updated.push(device.id);
      } else {
        await admin.add(device);
        report.added.push(device.id);
      }
    } catch (err) {
      if (!(err instanceof DeviceAdminError)) throw err;
      if (err.fields.length === 0) report.errors.push({ row, field: 'id', message: err.message });
      else report.errors.push(...err.fields.map((f) => ({ row, field: f.field, message: f.message })));
    }
  }
  return report;
}
