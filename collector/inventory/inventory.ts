/** The devices the collector tests, by id, as loaded from its configuration. */
import type { DeviceInfo } from '../../contract/api.js';
import type { LoadedDevice } from '../config/load.js';
import { UnknownDevicesError } from '../errors.js';

/** A device as the API lists it: no credentials; `lastRun` is added from the store. */
export type DeviceSummary = Omit<DeviceInfo, 'lastRun'>;

export class Inventory {
  private readonly byId: Map<string, LoadedDevice>;

  constructor(devices: LoadedDevice[]) {
    this.byId = new Map(devices.map((d) => [d.config.id, d]));
  }

  get(id: string): LoadedDevice | undefined {
    return this.byId.get(id);
  }

  all(): IterableIterator<LoadedDevice> {
    return this.byId.values();
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

  summaries(): DeviceSummary[] {
    return [...this.byId.values()].map(({ config: d }) => ({
      id: d.id,
      host: d.host,
      port: d.port,
      labels: d.labels,
      pool: d.pool ?? null,
      enabled: d.enabled,
    }));
  }
}
