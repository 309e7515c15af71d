/**
 * Our Arrow frames against the golden frame written by Grafana's Go SDK (a copy of its
 * data/testdata/all_types.golden.arrow in ./testdata): same metadata keys, same Arrow types for
 * the same kinds of fields.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tableFromIPC, Type, type Field } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { encodeFrame, epochMsToNanoseconds, type DataFrame } from './frames.js';
import { decodeFrame, timeNanos } from '../../tests/support/pluginClient.js';

const GOLDEN = fileURLToPath(new URL('./testdata/grafana-golden/all_types.golden.arrow', import.meta.url));

const SAMPLE: DataFrame = {
  refId: 'A',
  name: 'tcp_received_bps',
  meta: { type: 'timeseries-multi', typeVersion: [0, 1] },
  fields: [
    { name: 'time', kind: 'time', values: [1_700_000_000_000, 1_700_000_000_000.125, null] },
    { name: 'value', kind: 'number', values: [1.5, null, 3], labels: { device: 'r1' }, config: { unit: 'bps' } },
    { name: 'device', kind: 'string', values: ['r1', null, 'r3'] },
    { name: 'ok', kind: 'boolean', values: [true, false, null] },
  ],
};

function byType(fields: Field[], predicate: (f: Field) => boolean): Field {
  const found = fields.find(predicate);
  if (!found) throw new Error('no such field in the golden frame');
  return found;
}

describe('Arrow frames', () => {
  it('use the metadata keys and Arrow types of the Go SDK golden frame', () => {
    expect(existsSync(GOLDEN), `golden file ${GOLDEN}`).toBe(true);
    const golden = tableFromIPC(readFileSync(GOLDEN));
    const ours = tableFromIPC(encodeFrame(SAMPLE));
    // schema metadata: the same keys
    expect([...ours.schema.metadata.keys()].sort()).toEqual([...golden.schema.metadata.keys()].sort());
    const goldenFieldKeys = new Set(golden.schema.fields.flatMap((f) => [...f.metadata.keys()]));
    for (const f of ours.schema.fields) for (const key of f.metadata.keys()) expect(goldenFieldKeys).toContain(key);

    const gTime = byType(golden.schema.fields, (f) => f.type.typeId === Type.Timestamp);
    const oTime = ours.schema.fields[0];
    expect(oTime.type.typeId).toBe(gTime.type.typeId);
    expect(String(oTime.type)).toBe(String(gTime.type));
    expect((oTime.type as { unit: number }).unit).toBe((gTime.type as { unit: number }).unit);
    expect((oTime.type as { timezone: string | null }).timezone ?? null).toBe((gTime.type as { timezone: string | null }).timezone ?? null);
    expect(oTime.metadata.get('tstype')).toBe(gTime.metadata.get('tstype'));

    const gFloat = byType(golden.schema.fields, (f) => f.name === 'nullable_float64_values');
    expect(String(ours.schema.fields[1].type)).toBe(String(gFloat.type));
    expect(ours.schema.fields[1].nullable).toBe(gFloat.nullable);
    expect(ours.schema.fields[1].metadata.get('tstype')).toBe(gFloat.metadata.get('tstype'));

    const gString = byType(golden.schema.fields, (f) => f.name === 'nullable_string_values');
    expect(String(ours.schema.fields[2].type)).toBe(String(gString.type));
    expect(ours.schema.fields[2].metadata.get('tstype')).toBe(gString.metadata.get('tstype'));

    const gBool = byType(golden.schema.fields, (f) => f.name === 'nullable_bool_values');
    expect(String(ours.schema.fields[3].type)).toBe(String(gBool.type));
    expect(ours.schema.fields[3].metadata.get('tstype')).toBe(gBool.metadata.get('tstype'));

    // labels and config are JSON, as in the golden frame
    expect(JSON.parse(ours.schema.fields[1].metadata.get('labels') as string)).toEqual({ device: 'r1' });
    expect(JSON.parse(ours.schema.fields[1].metadata.get('config') as string)).toEqual({ unit: 'bps' });
    expect(() => JSON.parse(golden.schema.fields[0].metadata.get('labels') as string)).not.toThrow();
  });

  it('is an Arrow IPC file with nanosecond times, nulls and schema metadata', () => {
    const bytes = encodeFrame(SAMPLE);
    expect(Buffer.from(bytes.subarray(0, 6)).toString()).toBe('ARROW1');
    expect(Buffer.from(bytes.subarray(bytes.length - 6)).toString()).toBe('ARROW1');
    const frame = decodeFrame(bytes);
    expect(frame).toMatchObject({ name: 'tcp_received_bps', refId: 'A', meta: { type: 'timeseries-multi', typeVersion: [0, 1] } });
    expect(timeNanos(frame).slice(0, 2)).toEqual([1_700_000_000_000_000_000n, 1_700_000_000_000_125_000n]);
    expect(frame.table.getChild('time')?.get(2)).toBeNull();
    expect(frame.table.getChild('value')?.toJSON()).toEqual([1.5, null, 3]);
    expect(frame.table.getChild('device')?.toJSON()).toEqual(['r1', null, 'r3']);
    expect(frame.table.getChild('ok')?.toJSON()).toEqual([true, false, null]);
    expect(frame.table.schema.fields[0].nullable).toBe(true);
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
