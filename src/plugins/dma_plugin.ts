/**
 * What the DMA plugins (VFIO type1, iommufd) share: one listener per attached
 * region on the DMA view, the stats shape, and `verify`, which compares the
 * IOMMU's mappings with the region's plugged-and-shared memory. Each plugin
 * supplies only how it maps (its listener) and what its hardware holds.
 *
 * @module
 */

import type { Listener, Range } from "../bus/listener.ts";
import type { Region } from "../bus/region.ts";
import { DMA_VIEW } from "../bus/view.ts";
import type { DmaMapping } from "../hw/backend.ts";
import { type Plugin, PluginCounters, type PluginStats, resolveRange } from "./plugin.ts";
import { describeDifferences, populatedSpans, type Span } from "./verify.ts";

/** Base of the DMA plugins; see the module documentation. */
export abstract class DmaPlugin implements Plugin {
  /** The plugin's name. */
  readonly name: string;
  /** The plugin's kind. */
  abstract readonly kind: string;
  /** Calls, failures and mappings, for `stats()`. */
  protected readonly counters: PluginCounters = new PluginCounters();
  /** How errors name this plugin, e.g. `"vfioType1 nic0"`. */
  protected readonly who: string;
  /** Problems the policy only warns about, reported in `stats().warnings`. */
  protected readonly warnings: string[] = [];
  #attached = new Map<Region, { listener: Listener; range: Range }>();

  /** `factory` is the name users call (`"vfioType1"`), for messages. */
  constructor(factory: string, name: string) {
    this.name = name;
    this.who = `${factory} ${name}`;
  }

  /** Registers this plugin's listener on `range` of `region` (replaying what is populated). */
  attach(region: Region, range?: Range): void {
    if (this.#attached.has(region)) {
      throw new RangeError(`${this.who}: already attached to region ${region.name}`);
    }
    const r = resolveRange(region, range, this.who);
    const listener = this.createListener(region, r);
    try {
      region.register(listener, r);
    } catch (e) {
      // QEMU 11.1 keeps a listener whose replay failed (ReplayError): so do we.
      if ((e as { registered?: boolean })?.registered === true) {
        this.#attached.set(region, { listener, range: r });
      } else this.detached(region);
      throw e;
    }
    this.#attached.set(region, { listener, range: r });
  }

  /** Unregisters from `region`, which discards (unmaps) everything mapped there. */
  detach(region: Region): void {
    const entry = this.#attached.get(region);
    if (!entry) throw new RangeError(`${this.who}: not attached to region ${region.name}`);
    this.#attached.delete(region);
    this.detached(region);
    region.unregister(entry.listener);
  }

  /** Current statistics, with what the hardware reports about its limit and page tables. */
  stats(): PluginStats {
    const stats = this.counters.snapshot(this.name, this.kind);
    Object.assign(stats, this.hardwareStats());
    if (this.warnings.length > 0) stats.warnings = [...this.warnings];
    return stats;
  }

  /** The regions this plugin follows, with their ranges. */
  protected attachedRanges(): [Region, Range][] {
    return [...this.#attached].map(([region, { range }]) => [region, range]);
  }

  /** Called when `region` is detached, before its listener unregisters. */
  protected detached(_region: Region): void {}

  /** The hardware's limit and page-table memory, for `stats()`. */
  protected hardwareStats(): Pick<PluginStats, "mappingLimit" | "tableBytes" | "peakTableBytes"> {
    return {};
  }

  /** The IOMMU's mappings inside the attached range against the region's DMA view. */
  verify(region: Region): string[] {
    const entry = this.#attached.get(region);
    if (!entry) return [];
    const lo = region.base + entry.range.offset, hi = lo + entry.range.size;
    const mapped: Span[] = this.hardwareMappings()
      .filter((m) => m.iova < hi && m.iova + m.size > lo)
      .map((m) => [m.iova - region.base, m.iova + m.size - region.base]);
    const populated = populatedSpans(region, entry.range, DMA_VIEW);
    return describeDifferences(this.name, populated, mapped, region.base);
  }

  /** The listener that keeps `range` of `region` mapped (validation included). */
  protected abstract createListener(region: Region, range: Range): Listener;

  /** Every mapping the plugin's IOMMU holds, sorted by iova. */
  protected abstract hardwareMappings(): DmaMapping[];

  /** Checks a mapping granularity: a positive multiple of the region's page size. */
  protected checkGranularity(g: number, region: Region): number {
    if (!Number.isSafeInteger(g) || g <= 0 || g % region.pageSize !== 0) {
      throw new RangeError(
        `${this.who}: granularity must be a positive multiple of ${region.pageSize}, got ${g}`,
      );
    }
    return g;
  }
}
