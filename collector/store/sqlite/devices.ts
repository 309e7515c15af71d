import type { DeviceConfig } from '../../../contract/devices.js';
import { deviceJson, sourceChanges, storedDevice, type DeviceRow } from '../deviceRows.js';
import { API_SOURCE, DeviceExistsError, type DeviceStore, type SourceChanges, type StoredDevice } from '../store.js';
import type { SqliteDatabase } from './database.js';

export class SqliteDevices implements DeviceStore {
  constructor(private readonly sql: SqliteDatabase) {}

  async list(sources: string[]): Promise<StoredDevice[]> {
    const rows = this.sql
      .stmt('SELECT source, id, json, updated_at FROM devices WHERE source IN (SELECT value FROM json_each(?)) ORDER BY id, source')
      .all(JSON.stringify(sources)) as DeviceRow[];
    return rows.map(storedDevice);
  }

  async find(id: string): Promise<StoredDevice[]> {
    return this.findSync(id);
  }

  private findSync(id: string): StoredDevice[] {
    return (this.sql.stmt('SELECT source, id, json, updated_at FROM devices WHERE id = ? ORDER BY source').all(id) as DeviceRow[]).map(storedDevice);
  }

  async add(device: DeviceConfig): Promise<StoredDevice> {
    const now = this.sql.now();
    return this.sql.write(() => {
      const existing = this.findSync(device.id);
      if (existing.length > 0) throw new DeviceExistsError(existing[0]);
      this.sql.stmt('INSERT INTO devices (source, id, json, updated_at) VALUES (?, ?, ?, ?)').run(API_SOURCE, device.id, deviceJson(device), now);
      return storedDevice({ source: API_SOURCE, id: device.id, json: deviceJson(device), updated_at: now });
    });
  }

  async update(device: DeviceConfig): Promise<StoredDevice | null> {
    const now = this.sql.now();
    const changed = this.sql.stmt('UPDATE devices SET json = ?, updated_at = ? WHERE source = ? AND id = ?').run(deviceJson(device), now, API_SOURCE, device.id).changes;
    return changed === 0 ? null : storedDevice({ source: API_SOURCE, id: device.id, json: deviceJson(device), updated_at: now });
  }

  async remove(id: string, deleteHistory: boolean): Promise<boolean> {
    return this.sql.write(() => {
      const removed = this.sql.stmt('DELETE FROM devices WHERE source = ? AND id = ?').run(API_SOURCE, id).changes === 1;
      if (removed && deleteHistory) {
        // tests, metrics and intervals go with their runs (ON DELETE CASCADE)
        this.sql.stmt("DELETE FROM runs WHERE device = ? AND status <> 'running'").run(id);
        this.sql.stmt('DELETE FROM host_keys WHERE device = ?').run(id);
      }
      return removed;
    });
  }

  async replaceSource(source: string, devices: DeviceConfig[]): Promise<SourceChanges> {
    const now = this.sql.now();
    return this.sql.write(() => {
      const rows = this.sql.stmt('SELECT id, json FROM devices WHERE source = ?').all(source) as { id: string; json: string }[];
      const { write, ...changes } = sourceChanges(new Map(rows.map((r) => [r.id, r.json])), devices);
      const upsert = this.sql.stmt(
        `INSERT INTO devices (source, id, json, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (source, id) DO UPDATE SET json = excluded.json, updated_at = excluded.updated_at`,
      );
      for (const d of write) upsert.run(source, d.id, deviceJson(d), now);
      const del = this.sql.stmt('DELETE FROM devices WHERE source = ? AND id = ?');
      for (const id of changes.removed) del.run(source, id);
      return changes;
    });
  }
}
