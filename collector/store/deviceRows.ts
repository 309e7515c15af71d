/** Device rows as both stores keep them: the device as JSON, its source and the time of the last change. */
import type { DeviceConfig } from '../../contract/devices.js';
import type { SourceChanges, StoredDevice } from './store.js';

export interface DeviceRow {
  source: string;
  id: string;
  json: string;
  updated_at: number;
}

export const deviceJson = (device: DeviceConfig): string => JSON.stringify(device);

export function storedDevice(row: DeviceRow): StoredDevice {
  return { source: row.source, device: JSON.parse(row.json) as DeviceConfig, updatedAt: new Date(row.updated_at).toISOString() };
}

/** What turns the rows of a source (`current`, id -> JSON) into `devices`. */
export function sourceChanges(current: Map<string, string>, devices: DeviceConfig[]): SourceChanges & { write: DeviceConfig[] } {
  const wanted = new Map(devices.map((d) => [d.id, d]));
  const added: string[] = [];
  const changed: string[] = [];
  const write: DeviceConfig[] = [];
  for (const [id, device] of wanted) {
    const json = current.get(id);
    if (json === deviceJson(device)) continue;
    (json === undefined ? added : changed).push(id);
    write.push(device);
  }
  const removed = [...current.keys()].filter((id) => !wanted.has(id));
  return { added, changed, removed, write };
}
