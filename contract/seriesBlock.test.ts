import { describe, expect, it } from 'vitest';
import { seriesToColumns, type Series } from './api.js';
import {
  blockFromRows,
  blockToColumnsJson,
  blockToSeries,
  decodeSeriesBinary,
  encodeSeriesBinary,
  SeriesBinaryError,
  type SeriesBlock,
} from './seriesBlock.js';

type Row = [string, string, string | null, string | null, number, number, 0 | 1];

/** Rows in no order: two devices, a null direction, a split server, equal times in one series. */
const ROWS: Row[] = [
  ['b', 'tcp_received_bps', 'upload', null, 30, 3.5, 0],
  ['a', 'tcp_received_bps', 'upload', null, 20, 2, 0],
  ['a', 'result', null, null, 10, 1, 0],
  ['a', 'tcp_received_bps', 'download', null, 10, 10, 1],
  ['a', 'tcp_received_bps', 'upload', null, 10, 1, 1],
  ['a', 'tcp_received_bps', 'upload', null, 20, 7, 0],
  ['b', 'tcp_received_bps', 'upload', 's:1', 5, 0.1, 0],
  ['a', 'result', null, null, 5, 0, 1],
];

const HEAD = { fromMs: 0, toMs: 100, maxPoints: 1000 };

/** The same rows grouped the obvious way: by key, keys sorted, points sorted by time (stable). */
function reference(rows: Row[]): Series[] {
  const groups = new Map<string, Series>();
  for (const [device, metric, direction, server, t, v, f] of rows) {
    const key = `${device}\u0000${metric}\u0000${direction ?? ''}\u0000${server ?? ''}`;
    const s = groups.get(key) ?? ({ device, metric, direction, server, points: [] } as unknown as Series);
    s.points.push([t, v, f]);
    groups.set(key, s);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([, s]) => ({ ...s, points: [...s.points].sort((x, y) => x[0] - y[0]) }));
}

describe('series blocks', () => {
  it('groups rows in any order into series ordered by device, metric, direction, server, points by time', () => {
    const block = blockFromRows(ROWS);
    expect(blockToSeries(block)).toEqual(reference(ROWS));
    expect(block.series.map((s) => [s.device, s.metric, s.direction, s.server, s.start, s.length])).toEqual([
      ['a', 'result', null, null, 0, 2],
      ['a', 'tcp_received_bps', 'download', null, 2, 1],
      ['a', 'tcp_received_bps', 'upload', null, 3, 3],
      ['b', 'tcp_received_bps', 'upload', null, 6, 1],
      ['b', 'tcp_received_bps', 'upload', 's:1', 7, 1],
    ]);
    // equal times keep the rows' order
    expect(blockToSeries(block)[2].points).toEqual([[10, 1, 1], [20, 2, 0], [20, 7, 0]]);
    expect(blockToSeries(blockFromRows([]))).toEqual([]);
  });

  it('writes format=columns JSON as JSON.stringify writes the same columns', () => {
    const block = blockFromRows(ROWS);
    const want = { ...HEAD, format: 'columns', series: reference(ROWS).map(seriesToColumns) };
    expect(blockToColumnsJson(HEAD, block)).toBe(JSON.stringify(want));
    // a number JSON cannot hold becomes null, as JSON.stringify writes it
    const odd = blockFromRows([['a', 'result', null, null, 1, Number.POSITIVE_INFINITY, 0]]);
    expect(JSON.parse(blockToColumnsJson(HEAD, odd)).series[0].values).toEqual([null]);
  });

  it.each([
    ['little-endian', true],
    ['big-endian (byte by byte)', false],
  ])('reads back what it writes as bytes, %s', (_label, littleEndian) => {
    const block = blockFromRows(ROWS);
    const bytes = encodeSeriesBinary(HEAD, block, littleEndian);
    // the same bytes whichever way the host stores numbers
    expect(Buffer.from(bytes).equals(Buffer.from(encodeSeriesBinary(HEAD, block, !littleEndian)))).toBe(true);
    expect(Buffer.from(bytes.subarray(0, 4)).toString('latin1')).toBe('IPS1');
    const decoded = decodeSeriesBinary(bytes.buffer as ArrayBuffer, littleEndian);
    expect(decoded).toMatchObject(HEAD);
    expect(decoded.series.map((s) => ({ ...s, times: Array.from(s.times), values: Array.from(s.values), failed: Array.from(s.failed) }))).toEqual(
      reference(ROWS).map(seriesToColumns),
    );
    const view = new DataView(bytes.buffer);
    const columnsAt = bytes.length - 8 * 17;
    // times, then values (float64 LE), then the flags
    expect(view.getFloat64(columnsAt, true)).toBe(5);
    expect(view.getFloat64(columnsAt + 8 * 8, true)).toBe(0);
    expect(bytes[columnsAt + 16 * 8]).toBe(1);
  });

  describe('refuses bytes it cannot read, naming what is wrong', () => {
    const good = (): Uint8Array => encodeSeriesBinary(HEAD, blockFromRows(ROWS));
    const fault = (bytes: Uint8Array): string => {
      try {
        decodeSeriesBinary(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
      } catch (err) {
        expect(err).toBeInstanceOf(SeriesBinaryError);
        return (err as Error).message;
      }
      return 'accepted';
    };
    const edit = (change: (bytes: Uint8Array, view: DataView) => void): Uint8Array => {
      const bytes = good();
      change(bytes, new DataView(bytes.buffer));
      return bytes;
    };
    const header = (json: string): Uint8Array => {
      const text = new TextEncoder().encode(json);
      const bytes = new Uint8Array(Math.ceil((12 + text.length) / 8) * 8);
      bytes.set(new TextEncoder().encode('IPS1'));
      new DataView(bytes.buffer).setUint32(4, 1, true);
      new DataView(bytes.buffer).setUint32(8, text.length, true);
      bytes.set(text, 12);
      return bytes;
    };
    const block = (length: number, values: number[], failed: number[]): Uint8Array =>
      encodeSeriesBinary(HEAD, {
        series: [{ device: 'a', metric: 'result', server: null, direction: null, start: 0, length }],
        times: Float64Array.from(values, (_, i) => i),
        values: Float64Array.from(values),
        failed: Uint8Array.from(failed),
      } satisfies SeriesBlock);

    it.each<[string, () => Uint8Array, string]>([
      ['JSON', () => new TextEncoder().encode('{"series": []}'), 'not a binary series answer (it does not start with IPS1)'],
      ['too short', () => good().subarray(0, 8), 'not a binary series answer (it does not start with IPS1)'],
      ['another version', () => edit((_, v) => v.setUint32(4, 2, true)), 'binary series version 2; this plugin reads version 1'],
      ['a header past the end', () => edit((_, v) => v.setUint32(8, 1 << 30, true)), 'the header is longer than the answer'],
      ['a header that is not JSON', () => header('{"series": ['), 'the header is not JSON'],
      ['a header off the contract', () => header('{"fromMs":0,"toMs":1,"maxPoints":1,"series":[{"device":"a","metric":"nope","server":null,"direction":null,"points":0}]}'), 'the header does not match this plugin\'s contract: series.0.metric'],
      ['a point missing', () => good().subarray(0, -1), "bytes where the header's 8 points need"],
      ['a value that is not a number', () => block(2, [1, Number.NaN], [0, 0]), 'point 1 is not a finite number'],
      ['a flag that is not 0 or 1', () => block(2, [1, 2], [0, 2]), 'point 1: failed flag 2 is neither 0 nor 1'],
    ])('%s', (_label, bytes, message) => {
      expect(fault(bytes())).toContain(message);
    });
  });
});
