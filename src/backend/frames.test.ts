/**
 * Our Arrow frames as Grafana reads them: decoded by Grafana's Go SDK (tests/grafana-host
 * `decode`: data.UnmarshalArrowFrames, Arrow Timestamp unit and time zone, the data types'
 * contracts), marshalled to the JSON of /api/ds/query and read back by @grafana/data.
 */
import { describe, expect, it } from 'vitest';
import { encodeFrame, epochMsToNanoseconds, nanosecondColumn, type DataFrame } from './frames.js';
import { GrafanaHostRejection, judgeFrames } from '../../tests/support/grafanaHost.js';
import { decodeFrame } from '../../tests/support/pluginClient.js';
import { sortedColumns } from './queryData.js';

/** every kind of field, with nulls and a sub-millisecond time */
const TABLE: DataFrame = {
  refId: 'A',
  name: 'runs',
  meta: { preferredVisualisationType: 'table' },
  fields: [
    { name: 'time', kind: 'time', values: [1_700_000_000_000, 1_700_000_000_000.125, null] },
    { name: 'value', kind: 'number', values: [1.5, null, 3], labels: { device: 'r1' }, config: { unit: 'bps', custom: { insertNulls: 1000 } } },
    { name: 'device', kind: 'string', values: ['r1', null, 'r3'] },
    { name: 'ok', kind: 'boolean', values: [true, false, null] },
  ],
};

function series(device: string, times: number[]): DataFrame {
  return {
    refId: 'A',
    name: 'tcp_received_bps',
    meta: { type: 'timeseries-multi', typeVersion: [0, 1] },
    fields: [
      { name: 'time', kind: 'time', values: times },
      { name: 'tcp_received_bps', kind: 'number', values: times.map((_, i) => i * 1e6), labels: { device } },
    ],
  };
}

describe('Arrow frames, read by Grafana\'s Go SDK', () => {
  it('carry every field kind, nulls, labels, config, meta and sub-millisecond times into the SDK', () => {
    const { frames, json } = judgeFrames([encodeFrame(TABLE)]);
    expect(json[0].schema).toMatchObject({ name: 'runs', refId: 'A', meta: { preferredVisualisationType: 'table' } });
    // typeInfo: the Go type the SDK decoded each field into
    const fields = (json[0].schema?.fields ?? []) as { name: string; type?: string; typeInfo?: { frame: string; nullable?: boolean } }[];
    expect(fields.map((f) => [f.name, f.type, f.typeInfo?.frame, f.typeInfo?.nullable])).toEqual([
      ['time', 'time', 'time.Time', true],
      ['value', 'number', 'float64', true],
      ['device', 'string', 'string', true],
      ['ok', 'boolean', 'bool', true],
    ]);
    // the SDK's JSON keeps the nanoseconds below the millisecond apart
    expect(json[0].data?.values[0]).toEqual([1_700_000_000_000, 1_700_000_000_000, null]);
    expect(json[0].data?.nanos?.[0]).toEqual([0, 125_000, 0]);
    const [frame] = frames;
    expect(frame.fields.map((f) => [...f.values])).toEqual([[1_700_000_000_000, 1_700_000_000_000, null], [1.5, null, 3], ['r1', null, 'r3'], [true, false, null]]);
    expect(frame.fields[1]).toMatchObject({ labels: { device: 'r1' }, config: { unit: 'bps', custom: { insertNulls: 1000 } } });
  });

  it('are time series and numbers the dataplane readers take, and the SDK judge refuses broken ones', () => {
    const ok = judgeFrames([encodeFrame(series('r1', [1000, 2000])), encodeFrame(series('r2', [1500]))], { fromAlert: true });
    expect(ok.frames.map((f) => f.fields[1].labels)).toEqual([{ device: 'r1' }, { device: 'r2' }]);
    const number = (device: string): DataFrame => ({
      refId: 'A',
      name: 'result',
      meta: { type: 'numeric-multi', typeVersion: [0, 1] },
      fields: [{ name: 'result', kind: 'number', values: [1], labels: { device } }],
    });
    expect(judgeFrames([encodeFrame(number('r1')), encodeFrame(number('r2'))], { fromAlert: true }).frames).toHaveLength(2);
    // what the judge refuses: unsorted time, a null time in a series, the same series twice
    const refused = (frames: DataFrame[]): string[] => {
      try {
        judgeFrames(frames.map(encodeFrame));
      } catch (error) {
        if (error instanceof GrafanaHostRejection) return error.problems;
        throw error;
      }
      return [];
    };
    expect(refused([series('r1', [2000, 1000])]).join()).toContain('time is not sorted');
    const nullTime = series('r1', [1000, 2000]);
    nullTime.fields[0].values[1] = null;
    expect(refused([nullTime]).join()).toContain('no []time.Time field');
    expect(refused([series('r1', [1000]), series('r1', [2000])]).join()).toContain('the same series');
  });

  it('writes non-nullable fields without a validity bitmap, and frames without meta or name', () => {
    const frame = decodeFrame(encodeFrame({ refId: 'B', fields: [{ name: 'time', kind: 'time', values: [1, 2] }] }));
    expect(frame.table.schema.fields[0].nullable).toBe(false);
    expect(frame.meta).toBeUndefined();
    expect(frame.name).toBe('');
    expect([...frame.table.schema.fields[0].metadata.keys()]).toEqual(['tstype']);
  });

  it('encodes a frame without fields (no data)', () => {
    const frame = decodeFrame(encodeFrame({ refId: 'C', name: 'C', meta: { type: 'numeric-multi', typeVersion: [0, 1] }, fields: [] }));
    expect(frame.table.numCols).toBe(0);
    expect(frame.meta).toEqual({ type: 'numeric-multi', typeVersion: [0, 1] });
  });

  it('refuses fields of different lengths', () => {
    expect(() =>
      encodeFrame({
        refId: 'D',
        fields: [
          { name: 'time', kind: 'time', values: [1, 2] },
          { name: 'v', kind: 'number', values: [1] },
        ],
      }),
    ).toThrow('frame "D": field "v" has 1 values, expected 2');
  });

  it('converts epoch milliseconds to nanoseconds exactly', () => {
    expect(epochMsToNanoseconds(1_738_375_200_000)).toBe(1_738_375_200_000_000_000n);
    expect(epochMsToNanoseconds(0.001)).toBe(1000n);
  });
});

describe('typed columns', () => {
  it('converts epoch ms to nanoseconds exactly as the BigInt path does', () => {
    const times = [0, 1, 1_700_000_000_000, 1_700_000_000_000.125, 1_700_000_000_000.001, 4_294_967.296, 4_102_444_800_000, 8_000_000_000_000.5, -1, -1_700_000_000_000.5, 1e13];
    // as stored in an int64 column (1e13 ms is past year 2262: it wraps on both paths)
    expect([...nanosecondColumn(Float64Array.from(times))]).toEqual(times.map((t) => BigInt.asIntN(64, epochMsToNanoseconds(t))));
  });

  it('writes the same Arrow bytes from Float64Arrays as from arrays of numbers', () => {
    const times = [1_700_000_000_000, 1_700_000_086_400.5, 1_700_000_172_800];
    const plain = series('r1', times);
    const typed: DataFrame = {
      ...plain,
      fields: plain.fields.map((f) => ({ ...f, values: Float64Array.from(f.values as number[]) })),
    };
    expect(Buffer.from(encodeFrame(typed)).equals(Buffer.from(encodeFrame(plain)))).toBe(true);
    expect(() => encodeFrame({ refId: 'A', fields: [{ name: 's', kind: 'string', values: new Float64Array(1) }] })).toThrow('a string field cannot hold a Float64Array');
  });
});

describe('series columns in time order', () => {
  it('keeps sorted columns and sorts an unsorted answer by time', () => {
    expect(sortedColumns({ times: [1, 2, 3], values: [10, 20, 30] })).toEqual({ times: Float64Array.from([1, 2, 3]), values: Float64Array.from([10, 20, 30]) });
    expect(sortedColumns({ times: [3, 1, 2], values: [30, 10, 20] })).toEqual({ times: Float64Array.from([1, 2, 3]), values: Float64Array.from([10, 20, 30]) });
  });
});
