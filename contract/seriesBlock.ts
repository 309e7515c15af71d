/**
 * Series as one block of columns: every point of every series of an answer in three typed
 * arrays (times, values, failed), each series a contiguous slice of them. The stores build it
 * without an object per point; GET /api/v1/series writes it as `format=columns` (JSON) or
 * `format=binary` (the same arrays as little-endian bytes, docs/api.md "Binary series"), and
 * the plugin reads the binary form back without parsing a number.
 */
import { z } from 'zod';
import { MAX_POINTS_PER_SERIES, type Series, type SeriesColumns, type SeriesColumnsResponse, type SeriesPoint } from './api.js';
import { seriesHeadShape, seriesIdentityShape } from './apiResponses.js';
import type { Direction, MetricName } from './metrics.js';

/** One series of a block: what it is, and where its points lie in the block's columns. */
export interface BlockSeries {
  device: string;
  metric: MetricName;
  server: string | null;
  direction: Direction | null;
  /** index of its first point in times/values/failed */
  start: number;
  /** its number of points */
  length: number;
}

/** Series ordered by device, metric, direction (null first), server (null first); points by time within each. */
export interface SeriesBlock {
  series: BlockSeries[];
  /** epoch ms */
  times: Float64Array;
  values: Float64Array;
  /** 1 where the point was written for a failed test */
  failed: Uint8Array;
}

/** A metric row's identity as the stores read it: device, metric, direction, server. */
export type MetricKey = [device: string, name: string, direction: string | null, server: string | null];

/**
 * A block from packed rows: `keys` the distinct series, `data` four numbers per row (index
 * into keys, time, value, failed), rows in any order. Series are ordered as SeriesBlock says;
 * the points of a series keep the rows' order among equal times.
 *
 * Self-contained (no reference outside its body): the SQLite read workers evaluate its source
 * (readPool.ts), so the stores and the workers run this one definition.
 */
export function packSeries(keys: MetricKey[], data: Float64Array): SeriesBlock {
  const rows = data.length / 4;
  const counts = new Array<number>(keys.length).fill(0);
  for (let i = 0; i < data.length; i += 4) counts[data[i]]++;
  // the same order as sorting `device NUL metric NUL direction NUL server` strings (null as '')
  const sortKeys = keys.map(([device, name, direction, server]) => `${device}\u0000${name}\u0000${direction ?? ''}\u0000${server ?? ''}`);
  const order = keys.map((_, i) => i).sort((a, b) => (sortKeys[a] < sortKeys[b] ? -1 : sortKeys[a] > sortKeys[b] ? 1 : 0));
  const starts = new Array<number>(keys.length);
  let at = 0;
  for (const k of order) {
    starts[k] = at;
    at += counts[k];
  }
  const times = new Float64Array(rows);
  const values = new Float64Array(rows);
  const failed = new Uint8Array(rows);
  const next = starts.slice();
  for (let i = 0; i < data.length; i += 4) {
    const p = next[data[i]]++;
    times[p] = data[i + 1];
    values[p] = data[i + 2];
    failed[p] = data[i + 3];
  }
  for (const k of order) {
    const start = starts[k];
    const end = start + counts[k];
    let sorted = true;
    for (let p = start + 1; p < end && sorted; p++) sorted = times[p - 1] <= times[p];
    if (sorted) continue;
    // a stable sort of the slice by time (Array.prototype.sort is stable)
    const idx = Array.from({ length: end - start }, (_, j) => start + j).sort((a, b) => times[a] - times[b]);
    const t = idx.map((j) => times[j]);
    const v = idx.map((j) => values[j]);
    const f = idx.map((j) => failed[j]);
    times.set(t, start);
    values.set(v, start);
    failed.set(f, start);
  }
  return {
    series: order.map((k) => ({
      device: keys[k][0],
      metric: keys[k][1] as MetricName,
      server: keys[k][3],
      direction: keys[k][2] as Direction | null,
      start: starts[k],
      length: counts[k],
    })),
    times,
    values,
    failed,
  };
}

/** Rows in the stores' array form (device, metric, direction, server, time, value, failed) as a block. */
export function blockFromRows(rows: Iterable<[string, string, string | null, string | null, number, number, number]>): SeriesBlock {
  const index = new Map<string, number>();
  const keys: MetricKey[] = [];
  const data: number[] = [];
  for (const [device, name, direction, server, time, value, failed] of rows) {
    const key = `${device}\u0000${name}\u0000${direction ?? '\u0001'}\u0000${server ?? '\u0001'}`;
    let k = index.get(key);
    if (k === undefined) {
      k = keys.length;
      index.set(key, k);
      keys.push([device, name, direction, server]);
    }
    data.push(k, time, value, failed);
  }
  return packSeries(keys, Float64Array.from(data));
}

/** The block's series with a [time, value, failed] triple per point (GET /series?format=points). */
export function blockToSeries({ series, times, values, failed }: SeriesBlock): Series[] {
  return series.map(({ device, metric, server, direction, start, length }) => {
    const points = new Array<SeriesPoint>(length);
    for (let i = 0; i < length; i++) points[i] = [times[start + i], values[start + i], failed[start + i] as 0 | 1];
    return { device, metric, server, direction, points };
  });
}

/**
 * The answer of GET /series?format=columns as JSON text, written from the block's arrays
 * (numbers as JSON.stringify writes them; a value that is not finite as null, as it would).
 */
export function blockToColumnsJson(head: { fromMs: number; toMs: number; maxPoints: number }, block: SeriesBlock): string {
  const column = (a: Float64Array | Uint8Array, start: number, length: number): string => {
    const slice = a.subarray(start, start + length);
    for (const v of slice) if (!Number.isFinite(v)) return JSON.stringify(Array.from(slice));
    return `[${slice.join(',')}]`;
  };
  const parts = block.series.map(
    ({ device, metric, server, direction, start, length }) =>
      `${JSON.stringify({ device, metric, server, direction }).slice(0, -1)},"times":${column(block.times, start, length)},"values":${column(block.values, start, length)},"failed":${column(block.failed, start, length)}}`,
  );
  return `{"fromMs":${JSON.stringify(head.fromMs)},"toMs":${JSON.stringify(head.toMs)},"maxPoints":${JSON.stringify(head.maxPoints)},"format":"columns","series":[${parts.join(',')}]}`;
}

/** Media type of GET /series?format=binary. */
export const SERIES_BINARY_TYPE = 'application/vnd.iperf3-grafana.series';
/** The first 4 bytes of a binary answer, then its version (uint32 LE). */
export const SERIES_BINARY_MAGIC = 'IPS1';
export const SERIES_BINARY_VERSION = 1;

/** The JSON header of a binary answer. */
export interface SeriesBinaryHeader {
  fromMs: number;
  toMs: number;
  maxPoints: number;
  /** in answer order; their points follow one another in the columns */
  series: { device: string; metric: MetricName; server: string | null; direction: Direction | null; points: number }[];
}

const headerSchema: z.ZodType<SeriesBinaryHeader> = z.object({
  ...seriesHeadShape,
  series: z.array(
    z.object({
      ...seriesIdentityShape,
      points: z.number().int().min(0).max(MAX_POINTS_PER_SERIES),
    }),
  ),
});

/** Whether this machine stores numbers little-endian (every platform Node runs on but s390x). */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * GET /series?format=binary: "IPS1", version (uint32 LE), header length H (uint32 LE), H bytes
 * of JSON header (SeriesBinaryHeader), zero bytes up to a multiple of 8, then the P points of
 * all series (P = the sum of their `points`): P times (float64 LE), P values (float64 LE),
 * P failed flags (uint8).
 */
export function encodeSeriesBinary(head: { fromMs: number; toMs: number; maxPoints: number }, block: SeriesBlock, littleEndianHost = HOST_LITTLE_ENDIAN): Uint8Array {
  const header: SeriesBinaryHeader = {
    ...head,
    series: block.series.map(({ device, metric, server, direction, length }) => ({ device, metric, server, direction, points: length })),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const columnsAt = Math.ceil((12 + json.length) / 8) * 8;
  const points = block.series.reduce((n, s) => n + s.length, 0);
  const out = new Uint8Array(columnsAt + points * 17);
  const view = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) out[i] = SERIES_BINARY_MAGIC.charCodeAt(i);
  view.setUint32(4, SERIES_BINARY_VERSION, true);
  view.setUint32(8, json.length, true);
  out.set(json, 12);
  let at = columnsAt;
  for (const column of [block.times, block.values]) {
    for (const s of block.series) {
      const slice = column.subarray(s.start, s.start + s.length);
      if (littleEndianHost) out.set(new Uint8Array(slice.buffer, slice.byteOffset, slice.byteLength), at);
      else for (let i = 0; i < slice.length; i++) view.setFloat64(at + i * 8, slice[i], true);
      at += slice.byteLength;
    }
  }
  for (const s of block.series) {
    out.set(block.failed.subarray(s.start, s.start + s.length), at);
    at += s.length;
  }
  return out;
}

/** A binary answer that cannot be read: what is wrong with it. */
export class SeriesBinaryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SeriesBinaryError';
  }
}

/**
 * A binary answer back as columns: times and values are Float64Array views of `bytes` (no
 * copy on a little-endian machine), failed a Uint8Array. Checks the layout, the header, that
 * every number is finite and every flag 0 or 1; throws SeriesBinaryError naming the fault.
 */
export function decodeSeriesBinary(bytes: ArrayBuffer, littleEndianHost = HOST_LITTLE_ENDIAN): SeriesColumnsResponse {
  const view = new DataView(bytes);
  const magic = bytes.byteLength >= 12 ? String.fromCharCode(...new Uint8Array(bytes, 0, 4)) : '';
  if (magic !== SERIES_BINARY_MAGIC) throw new SeriesBinaryError(`not a binary series answer (it does not start with ${SERIES_BINARY_MAGIC})`);
  const version = view.getUint32(4, true);
  if (version !== SERIES_BINARY_VERSION) throw new SeriesBinaryError(`binary series version ${version}; this plugin reads version ${SERIES_BINARY_VERSION}`);
  const headerLength = view.getUint32(8, true);
  if (12 + headerLength > bytes.byteLength) throw new SeriesBinaryError('the header is longer than the answer');
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(new Uint8Array(bytes, 12, headerLength)));
  } catch {
    throw new SeriesBinaryError('the header is not JSON');
  }
  const parsed = headerSchema.safeParse(json);
  if (!parsed.success) throw new SeriesBinaryError(`the header does not match this plugin's contract: ${parsed.error.issues[0].path.join('.')}: ${parsed.error.issues[0].message}`);
  const header = parsed.data;
  const points = header.series.reduce((n, s) => n + s.points, 0);
  const columnsAt = Math.ceil((12 + headerLength) / 8) * 8;
  if (bytes.byteLength !== columnsAt + points * 17) {
    throw new SeriesBinaryError(`${bytes.byteLength} bytes where the header's ${points} points need ${columnsAt + points * 17}`);
  }
  const float64 = (at: number): Float64Array => {
    if (littleEndianHost) return new Float64Array(bytes, at, points);
    const out = new Float64Array(points);
    for (let i = 0; i < points; i++) out[i] = view.getFloat64(at + i * 8, true);
    return out;
  };
  const times = float64(columnsAt);
  const values = float64(columnsAt + points * 8);
  const failed = new Uint8Array(bytes, columnsAt + points * 16, points);
  for (let i = 0; i < points; i++) {
    if (!Number.isFinite(times[i]) || !Number.isFinite(values[i])) throw new SeriesBinaryError(`point ${i} is not a finite number`);
    if (failed[i] > 1) throw new SeriesBinaryError(`point ${i}: failed flag ${failed[i]} is neither 0 nor 1`);
  }
  let start = 0;
  const series = header.series.map(({ device, metric, server, direction, points: length }): SeriesColumns => {
    const s = {
      device,
      metric,
      server,
      direction,
      times: times.subarray(start, start + length),
      values: values.subarray(start, start + length),
      failed: failed.subarray(start, start + length),
    };
    start += length;
    return s;
  });
  return { fromMs: header.fromMs, toMs: header.toMs, maxPoints: header.maxPoints, format: 'columns', series };
}
