/**
 * What Grafana's alerting does with the frames of a data source query before a Threshold: each
 * frame of a multi-frame response becomes one series (timeseries-multi) or one number
 * (numeric-multi), identified by the labels of its value field; Reduce `last` with mode dropNN
 * takes the last value that is not NaN, ±Inf or null. Only what the provisioned rules use.
 * Whether the frames are valid series and numbers, and that no two share their labels ("duplicate
 * results with labels"), is judged before, by Grafana's Go SDK in tests/grafana-host.
 */
import { FieldType, type DataFrame } from '@grafana/data';

export interface AlertItem {
  labels: Record<string, string>;
  /** the series' values, or the single number */
  values: number[];
  kind: 'series' | 'number';
}

export function labelKey(labels: Record<string, string>): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
}

/** Frames as @grafana/data reads the SDK's JSON (tests/support/grafanaHost.ts). */
export function alertItems(frames: DataFrame[]): AlertItem[] {
  return frames
    .filter((frame) => frame.fields.length > 0) // an empty frame: "no data"
    .map((frame) => {
      const value = frame.fields.find((f) => f.type === FieldType.number);
      const type = frame.meta?.type;
      if (!value || (type !== 'timeseries-multi' && type !== 'numeric-multi')) throw new Error(`frame ${frame.name}: not a series or a number`);
      const values = [...value.values].map((v: unknown) => (v === null || v === undefined ? Number.NaN : Number(v)));
      return { labels: value.labels ?? {}, values, kind: type === 'timeseries-multi' ? 'series' : 'number' };
    });
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
