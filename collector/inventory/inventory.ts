/**
 * The devices this collector tests, by id: a snapshot of the store's inventory (this collector's
 * configuration file and the API), replaced as a whole when it changes. Readers (the scheduler,
 * the dispatcher, the API) look devices up when they need them; a run holds the device it
 * started with, so a change never interrupts a running test.
 */
import type { DeviceInfo } from '../../contract/api.js';
import type { ManagedBy } from '../../contract/devices.js';
import type { LoadedDevice } from '../config/load.js';
import { UnknownDevicesError } from '../errors.js';

/** A device as the API lists it: no credentials; `lastRun` is added from the store. */
export type DeviceSummary = Omit<DeviceInfo, 'lastRun'>;

export interface InventoryDevice extends LoadedDevice {
  managedBy: ManagedBy;
}

export class Inventory {
  private byId: Map<string, InventoryDevice>;
  /** each device's summary, made at the first listing and kept while the device is unchanged */
  private readonly summaryOf = new WeakMap<InventoryDevice, DeviceSummary>();

  constructor(devices: LoadedDevice[] = [], managedBy: ManagedBy = 'file') {
    this.byId = new Map(devices.map((d) => [d.config.id, { ...d, managedBy }]));
  }

  /** Makes `devices` the inventory (ordered by id). */
  replace(devices: InventoryDevice[]): void {
    this.byId = new Map([...devices].sort((a, b) => (a.config.id < b.config.id ? -1 : 1)).map((d) => [d.config.id, d]));
  }

  get(id: string): InventoryDevice | undefined {
    return this.byId.get(id);
  }

  all(): IterableIterator<InventoryDevice> {
    return this.byId.values();
  }

  get size(): number {
    return this.byId.size;
  }

  enabledIds(): string[] {
    return [...this.byId.values()].filter((d) => d.config.enabled).map((d) => d.config.id);
  }

  /** The named pool of a device, or null for the default pool. */
  poolOf(id: string): string | null {
    return this.byId.get(id)?.config.pool ?? null;
  }

  /** Throws UnknownDevicesError naming every id that is not in the inventory. */
  check(ids: string[]): void {
    const unknown = ids.filter((id) => !this.byId.has(id));
    if (unknown.length > 0) throw new UnknownDevicesError(unknown);
  }

  /**
   * Every device as the API lists it, ordered by id. The same object each time for a device
   * that did not change (the API caches each device's checked JSON by it).
   */
  *summaries(): Generator<DeviceSummary> {
    for (const device of this.byId.values()) {
      let summary = this.summaryOf.get(device);
      if (!summary) {
        const { config: d, managedBy } = device;
        summary = { id: d.id, host: d.host, port: d.port, labels: d.labels, pool: d.pool ?? null, enabled: d.enabled, managedBy };
        this.summaryOf.set(device, summary);
      }
      yield summary;
    }
  }
}
