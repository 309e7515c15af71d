/**
 * What Grafana's alerting does with the frames of a data source query before a Threshold: each
 * frame of a multi-frame response becomes one series (timeseries-multi) or one number
 * (numeric-multi), identified by the labels of its value field; two items with the same
 * labels are an error (Grafana refuses "duplicate results with labels"); Reduce `last` with
 * mode dropNN takes the last value that is not NaN, ±Inf or null. Only what the provisioned rules use.
 */
import { Type } from 'apache-arrow';
import { fieldLabels, type DecodedFrame } from '../support/pluginClient.js';

export interface AlertItem {
  labels: Record<string, string>;
  /** the series' values, or the single number */
  values: number[];
  kind: 'series' | 'number';
}

export function labelKey(labels: Record<string, string>): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
}

export function alertItems(frames: DecodedFrame[]): AlertItem[] {
  const items: AlertItem[] = [];
  for (const frame of frames) {
    const fields = frame.table.schema.fields;
    if (fields.length === 0) continue; // an empty frame: "no data"
    const type = (frame.meta?.type as string | undefined) ?? '';
    const numberIndexes = fields.map((f, i) => ({ f, i })).filter(({ f }) => [Type.Float, Type.Int].includes(f.type.typeId as Type));
    if (numberIndexes.length !== 1) throw new Error(`frame ${frame.name}: ${numberIndexes.length} number fields; alerting needs exactly one per frame`);
    const { f, i } = numberIndexes[0];
    const column = frame.table.getChildAt(i);
    const values = Array.from({ length: frame.table.numRows }, (_, row) => {
      const v: unknown = column?.get(row);
      return v === null || v === undefined ? Number.NaN : Number(v);
    });
    if (type === 'timeseries-multi') {
      if (!fields.some((x) => x.type.typeId === Type.Timestamp)) throw new Error(`frame ${frame.name}: a series without a time field`);
      items.push({ labels: fieldLabels(frame, i) ?? {}, values, kind: 'series' });
    } else if (type === 'numeric-multi') {
      if (values.length !== 1) throw new Error(`frame ${frame.name}: a numeric frame with ${values.length} rows`);
      items.push({ labels: fieldLabels(frame, i) ?? {}, values, kind: 'number' });
    } else {
      throw new Error(`frame ${frame.name} (${f.name}): meta.type "${type}" is not a kind alerting reads`);
    }
  }
  const keys = items.map((it) => labelKey(it.labels));
  const duplicate = keys.find((k, idx) => keys.indexOf(k) !== idx);
  if (duplicate) throw new Error(`duplicate results with labels ${duplicate}`);
  return items;
}

export function reduceLastDropNN(item: AlertItem): number | null {
  for (let i = item.values.length - 1; i >= 0; i--) if (Number.isFinite(item.values[i])) return item.values[i];
  return null;
}

export function threshold(value: number, evaluator: { type: string; params: number[] }): boolean {
  const [p] = evaluator.params;
  switch (evaluator.type) {
    case 'gt':
      return value > p;
    case 'lt':
      return value < p;
    default:
      throw new Error(`evaluator ${evaluator.type} is not used by the provisioned rules`);
  }
}
