/**
 * What the DMA plugins (VFIO type1, iommufd) share, on {@link definePlugin}:
 * the DMA view, priority 10, double discards accepted (an unmap of nothing
 * is success on both), the plugin's own call counters, and `verify`, which
 * compares the IOMMU's mappings with the region's plugged-and-shared memory.
 * Each plugin supplies only how it maps and what its hardware holds.
 *
 * @module
 */

import type { Range, Section } from "../bus/listener.ts";
import type { Region } from "../bus/region.ts";
import { DMA_VIEW } from "../bus/view.ts";
import type { DmaMapping } from "../hw/backend.ts";
import { definePlugin, type PluginContext } from "./define.ts";
import type { DmaPlugin, PluginStats } from "./plugin.ts";
import { describeDifferences, populatedSpans, type Span } from "./_spans.ts";

/** How one DMA plugin maps; `S` is what it keeps per region. */
export interface DmaPluginSpec<S> {
  /** The plugin's name. */
  name: string;
  /** Its kind, e.g. `"iommufd"`. */
  kind: string;
  /** Listener priority (10 unless the user chose another). */
  priority: number;
  /** Sets up a region (may refuse with a `CapacityError`); returns its state. */
  setup(region: Region, range: Range, ctx: PluginContext): S;
  /** The listener's granularity for the region, if it maps granules. */
  granularity(state: S): number | undefined;
  /** Maps a populated section. */
  populate(section: Section, state: S, ctx: PluginContext): void;
  /** Unmaps a discarded section. */
  discard(section: Section, state: S, ctx: PluginContext): void;
  /** After the region is detached. */
  teardown?(region: Region, state: S): void;
  /** Every mapping the plugin's IOMMU holds, sorted by iova. */
  hardwareMappings(): DmaMapping[];
  /** The hardware's limit and page-table memory, for `stats()`. */
  hardwareStats(): Pick<PluginStats, "mappingLimit" | "tableBytes" | "peakTableBytes">;
  /** Problems the policy only warns about (filled by `setup`), reported in `stats().warnings`. */
  warnings: string[];
}

/** A DMA plugin made from `spec`; see the module documentation. */
export function dmaPlugin<S>(spec: DmaPluginSpec<S>): DmaPlugin {
  /** The plugin's context, the same for every region (kept for `containerReleased`). */
  let context: PluginContext | undefined;
  const plugin = definePlugin<S>({
    name: spec.name,
    kind: spec.kind,
    priority: spec.priority,
    view: DMA_VIEW,
    // An unmap of nothing succeeds on type1, and iommufd's ENOENT is taken as 0 bytes,
    // so one discard of a whole section is safe: QEMU's double_discard_supported.
    acceptsDoubleDiscard: true,
    standardStats: false,
    granularity: (_region, state) => spec.granularity(state),
    setup: (region, range, ctx) => {
      context = ctx;
      return spec.setup(region, range, ctx);
    },
    populate: (s, state, ctx) => spec.populate(s, state, ctx),
    discard: (s, state, ctx) => spec.discard(s, state, ctx),
    teardown: (region, state) => spec.teardown?.(region, state),
    verify(region, _state, range) {
      const lo = region.base + range.offset, hi = lo + range.size;
      const mapped: Span[] = spec.hardwareMappings()
        .filter((m) => m.iova < hi && m.iova + m.size > lo)
        .map((m) => [m.iova - region.base, m.iova + m.size - region.base]);
      const populated = populatedSpans(region, range, DMA_VIEW);
      return describeDifferences(spec.name, populated, mapped, region.base);
    },
    stats: () => ({
      ...spec.hardwareStats(),
      ...(spec.warnings.length > 0 ? { warnings: [...spec.warnings] } : {}),
    }),
  });
  return Object.assign(plugin, {
    containerReleased(): void {
      const c = context?.counters;
      if (c) c.mapped(-c.mappings, -c.mappedBytes);
    },
  });
}

/** Checks a mapping granularity: a positive multiple of the region's page size. */
export function checkGranularity(who: string, g: number, region: Region): number {
  if (!Number.isSafeInteger(g) || g <= 0 || g % region.pageSize !== 0) {
    throw new RangeError(
      `${who}: granularity must be a positive multiple of ${region.pageSize}, got ${g}`,
    );
  }
  return g;
}
