/**
 * Grafana data frames and their Arrow encoding, written the way grafana-plugin-sdk-go's
 * `data/arrow.go` writes them: one Arrow IPC *file* per frame, schema metadata `name`,
 * `refId` and `meta` (JSON), field metadata `tstype`, `labels` (JSON) and `config` (JSON),
 * time as Timestamp(nanosecond) without a time zone.
 */
import {
  Bool,
  type Data,
  Field,
  Float64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableToIPC,
  TimestampNanosecond,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';

export type FieldKind = 'time' | 'number' | 'string' | 'boolean';

/** The subset of Grafana's FieldConfig this plugin sets. */
export interface FieldConfig {
  unit?: string;
  displayName?: string;
  displayNameFromDS?: string;
  decimals?: number;
  min?: number;
  max?: number;
  description?: string;
  custom?: Record<string, unknown>;
}

export interface FrameField {
  name: string;
  kind: FieldKind;
  /**
   * time: epoch milliseconds (fractions keep sub-millisecond precision). A Float64Array (time
   * and number fields, no nulls) becomes the Arrow column without an object per value.
   */
  values: (number | string | boolean | null)[] | Float64Array;
  labels?: Record<string, string>;
  config?: FieldConfig;
}

export interface FrameMeta {
  type?: 'timeseries-multi' | 'numeric-multi' | 'table';
  typeVersion?: [number, number];
  preferredVisualisationType?: 'graph' | 'table' | 'logs' | 'trace' | 'nodeGraph';
  executedQueryString?: string;
  notices?: { severity: 'info' | 'warning' | 'error'; text: string }[];
  custom?: Record<string, unknown>;
}

export interface DataFrame {
  name?: string;
  refId: string;
  meta?: FrameMeta;
  fields: FrameField[];
}

const TSTYPE: Record<FieldKind, string> = { time: 'time', number: 'number', string: 'string', boolean: 'boolean' };

export function epochMsToNanoseconds(ms: number): bigint {
  // Whole microseconds first: exact for any realistic time, then scale to ns without floats.
  return BigInt(Math.round(ms * 1000)) * 1000n;
}

const TWO_32 = 2 ** 32;

/**
 * Epoch ms to Timestamp(ns) values without a BigInt per value: whole microseconds (exact as a
 * double below 2^53) times 1000, carried across the two 32-bit halves of each int64. Same
 * result as epochMsToNanoseconds for 0 <= µs < 2^53; other values take that path.
 */
export function nanosecondColumn(ms: Float64Array): BigInt64Array {
  const out = new BigInt64Array(ms.length);
  const halves = new Uint32Array(out.buffer);
  for (let i = 0; i < ms.length; i++) {
    const us = Math.round(ms[i] * 1000);
    if (!(us >= 0 && us <= Number.MAX_SAFE_INTEGER)) {
      out[i] = epochMsToNanoseconds(ms[i]);
      continue;
    }
    const high = Math.floor(us / TWO_32);
    const low = (us - high * TWO_32) * 1000;
    const carry = Math.floor(low / TWO_32);
    halves[2 * i] = low - carry * TWO_32; // little-endian: low word first
    halves[2 * i + 1] = high * 1000 + carry;
  }
  return out;
}

function nullBitmap(values: readonly unknown[]): { bitmap: Uint8Array; nullCount: number } {
  const bitmap = new Uint8Array(Math.ceil(values.length / 8));
  let nullCount = 0;
  values.forEach((v, i) => {
    if (v === null) nullCount++;
    else bitmap[i >> 3] |= 1 << (i & 7);
  });
  return { bitmap, nullCount };
}

function columnData(field: FrameField): { type: Field['type']; data: Data; nullable: boolean } {
  if (field.values instanceof Float64Array) return typedColumnData(field.kind, field.values);
  const nullable = field.values.some((v) => v === null);
  switch (field.kind) {
    case 'time': {
      const type = new TimestampNanosecond();
      const { bitmap, nullCount } = nullBitmap(field.values);
      const values = BigInt64Array.from(field.values, (v) => (v === null ? 0n : epochMsToNanoseconds(Number(v))));
      const data = makeData({ type, length: values.length, nullCount, nullBitmap: nullCount > 0 ? bitmap : undefined, data: values });
      return { type, data, nullable };
    }
    case 'number': {
      const type = new Float64();
      return { type, data: vectorFromArray(field.values.map((v) => (v === null ? null : Number(v))), type).data[0], nullable };
    }
    case 'string': {
      const type = new Utf8();
      return { type, data: vectorFromArray(field.values.map((v) => (v === null ? null : String(v))), type).data[0], nullable };
    }
    case 'boolean': {
      const type = new Bool();
      return { type, data: vectorFromArray(field.values.map((v) => (v === null ? null : Boolean(v))), type).data[0], nullable };
    }
  }
}

function typedColumnData(kind: FieldKind, values: Float64Array): { type: Field['type']; data: Data; nullable: boolean } {
  if (kind === 'time') {
    const type = new TimestampNanosecond();
    return { type, data: makeData({ type, length: values.length, nullCount: 0, data: nanosecondColumn(values) }), nullable: false };
  }
  if (kind !== 'number') throw new Error(`a ${kind} field cannot hold a Float64Array`);
  const type = new Float64();
  return { type, data: makeData({ type, length: values.length, nullCount: 0, data: values }), nullable: false };
}

/** Encodes one frame as an Arrow IPC file, the bytes that go into `DataResponse.frames`. */
export function encodeFrame(frame: DataFrame): Uint8Array {
  const length = frame.fields[0]?.values.length ?? 0;
  const columns = frame.fields.map((field) => {
    if (field.values.length !== length) {
      throw new Error(`frame "${frame.name ?? frame.refId}": field "${field.name}" has ${field.values.length} values, expected ${length}`);
    }
    const { type, data, nullable } = columnData(field);
    const metadata = new Map<string, string>([['tstype', TSTYPE[field.kind]]]);
    if (field.labels) metadata.set('labels', JSON.stringify(field.labels));
    if (field.config) metadata.set('config', JSON.stringify(field.config));
    return { arrowField: new Field(field.name, type, nullable, metadata), data };
  });
  const schemaMetadata = new Map<string, string>([
    ['name', frame.name ?? ''],
    ['refId', frame.refId],
  ]);
  if (frame.meta) schemaMetadata.set('meta', JSON.stringify(frame.meta));
  const fields = columns.map((c) => c.arrowField);
  const schema = new Schema(fields, schemaMetadata);
  if (columns.length === 0) return tableToIPC(new Table(schema), 'file');
  const struct = makeData({ type: new Struct(fields), length, nullCount: 0, children: columns.map((c) => c.data) });
  return tableToIPC(new Table(schema, [new RecordBatch(schema, struct)]), 'file');
}
