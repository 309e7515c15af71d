/**
 * Field-level validation of the settings page with the shared zod schemas (one definition
 * for the editor, the plugin backend and the collector).
 */
import { collectorUrlSchema, fieldErrors, jsonDataSettingsSchema } from '../../../contract/settings.js';
import type { Iperf3DataSourceOptions } from '../../types.js';

/** dotted field path (`servers.0.host`, `clientOptions.time`, `collectorUrl`) -> message */
export type FieldErrorMap = Record<string, string>;

export function validateJsonData(jsonData: Iperf3DataSourceOptions): FieldErrorMap {
  const errors: FieldErrorMap = {};
  const add = (field: string, message: string) => {
    // the first message of a field is the most specific one
    if (!(field in errors)) errors[field] = message;
  };
  const url = collectorUrlSchema.safeParse(jsonData.collectorUrl);
  if (!url.success) add('collectorUrl', url.error.issues[0].message);
  const settings = jsonDataSettingsSchema.safeParse(jsonData);
  if (!settings.success) for (const e of fieldErrors(settings.error)) add(e.field, e.message);
  return errors;
}

/** Turns what the user typed into a number field into the stored value: empty = default. */
export function parseNumberInput(text: string): number | string | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  // keep what is not a number as typed, so the schema names the problem at the field
  return /^-?\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : trimmed;
}
