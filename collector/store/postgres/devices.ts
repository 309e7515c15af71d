import type pg from 'pg';
import type { DeviceConfig } from '../../../contract/devices.js';
import { deviceJson, sourceChanges, storedDevice, type DeviceRow } from '../deviceRows.js';
import { API_SOURCE, DeviceExistsError, type DeviceStore, type SourceChanges, type StoredDevice } from '../store.js';
import type { PgDatabase } from './database.js';

/** Advisory lock class (int4) under which adding a device id is serialised across collectors. */
const DEVICE_ID_LOCK = 0x69706634;

const COLUMNS = 'source, id, json, updated_at';

/** NOTIFY channel: an API device was added, changed or removed (payload: its id), sent when its transaction commits. */
export const DEVICES_CHANNEL = 'iperf3_devices';

const notify = (client: pg.ClientBase, id: string) => client.query('SELECT pg_notify($1, $2)', [DEVICES_CHANNEL, id]);

/** The inventory is shared: API devices are seen by every collector, file devices by their group's. */
export class PgDevices implements DeviceStore {
  private readonly listeners = new Set<() => void>();
  private listening: Promise<void> | null = null;

  constructor(private readonly db: PgDatabase) {}

  async onChange(listener: () => void): Promise<() => void> {
    this.listeners.add(listener);
    // a LISTEN that fails now (database away) is made again by the session when it reconnects
    this.listening ??= this.db.listen(DEVICES_CHANNEL, () => this.listeners.forEach((l) => l())).catch(() => {});
    await this.listening;
    return () => this.listeners.delete(listener);
  }

  async list(sources: string[]): Promise<StoredDevice[]> {
    const { rows } = await this.db.query<DeviceRow>(`SELECT ${COLUMNS} FROM devices WHERE source = ANY($1) ORDER BY id, source`, [sources]);
    return rows.map(storedDevice);
  }

  async find(id: string, client?: pg.ClientBase): Promise<StoredDevice[]> {
    const text = `SELECT ${COLUMNS} FROM devices WHERE id = $1 ORDER BY source`;
    const { rows } = client ? await client.query<DeviceRow>(text, [id]) : await this.db.query<DeviceRow>(text, [id]);
    return rows.map(storedDevice);
  }

  async add(device: DeviceConfig): Promise<StoredDevice> {
    const now = this.db.now();
    return this.db.tx(async (client) => {
      // two collectors adding the same id at once: the second waits, then finds the first's
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [DEVICE_ID_LOCK, device.id]);
      const existing = await this.find(device.id, client);
      if (existing.length > 0) throw new DeviceExistsError(existing[0]);
      await client.query(`INSERT INTO devices (${COLUMNS}) VALUES ($1, $2, $3, $4)`, [API_SOURCE, device.id, deviceJson(device), now]);
      await notify(client, device.id);
      return storedDevice({ source: API_SOURCE, id: device.id, json: deviceJson(device), updated_at: now });
    });
  }

  async update(device: DeviceConfig): Promise<StoredDevice | null> {
    const now = this.db.now();
    return this.db.tx(async (client) => {
      const { rowCount } = await client.query('UPDATE devices SET json = $1, updated_at = $2 WHERE source = $3 AND id = $4', [deviceJson(device), now, API_SOURCE, device.id]);
      if (rowCount === 0) return null;
      await notify(client, device.id);
      return storedDevice({ source: API_SOURCE, id: device.id, json: deviceJson(device), updated_at: now });
    });
  }

  async remove(id: string, deleteHistory: boolean): Promise<boolean> {
    return this.db.tx(async (client) => {
      const removed = (await client.query('DELETE FROM devices WHERE source = $1 AND id = $2', [API_SOURCE, id])).rowCount === 1;
      if (removed) await notify(client, id);
      if (removed && deleteHistory) {
        // tests, metrics and intervals go with their runs (ON DELETE CASCADE)
        await client.query("DELETE FROM runs WHERE device = $1 AND status <> 'running'", [id]);
        await client.query('DELETE FROM host_keys WHERE device = $1', [id]);
      }
      return removed;
    });
  }

  async replaceSource(source: string, devices: DeviceConfig[]): Promise<SourceChanges> {
    const now = this.db.now();
    return this.db.tx(async (client) => {
      const { rows } = await client.query<{ id: string; json: string }>('SELECT id, json FROM devices WHERE source = $1 FOR UPDATE', [source]);
      const { write, ...changes } = sourceChanges(new Map(rows.map((r) => [r.id, r.json])), devices);
      for (const d of write) {
        await client.query(
          `INSERT INTO devices (${COLUMNS}) VALUES ($1, $2, $3, $4)
           ON CONFLICT (source, id) DO UPDATE SET json = EXCLUDED.json, updated_at = EXCLUDED.updated_at`,
          [source, d.id, deviceJson(d), now],
        );
      }
      if (changes.removed.length > 0) await client.query('DELETE FROM devices WHERE source = $1 AND id = ANY($2)', [source, changes.removed]);
      return changes;
    });
  }
}
