/**
 * The iommufd plugin: keeps an IOAS's areas equal to the region's DMA view.
 *
 * With `cut: true` (the default where the IOAS supports cut_mapping, i.e. on
 * the proposed kernel) it maps each populated run as one area, so the area
 * count follows the populates that made the shared extents, not shared pages:
 * the kernel never merges areas (drivers/iommu/iommufd/io_pagetable.c
 * `iopt_alloc_area_pages`: one new area per IOMMU_IOAS_MAP), so an extent
 * shared in 32 steps of 2 MiB holds 32 areas, one shared at once holds one. A discard
 * that cuts through an area first splits it with `cut_mapping` (hitless: the
 * pages either side stay mapped), then unmaps whole areas; a failed split
 * changes nothing and refuses the change, which the bus rolls back. Without
 * cut_mapping (`linux-6.18`, or `cut: false`) it maps one area per granule and
 * unmaps a discarded section with one call, exactly as QEMU does on iommufd
 * today (hw/vfio/listener.c is shared by both backends); `cut: true` there is
 * refused.
 *
 * An unmap that finds nothing is `ENOENT` on the native interface; like
 * QEMU's backends/iommufd.c `iommufd_backend_unmap_dma` the plugin takes it as
 * success (which is why a discarded section must never cut an area: the kernel's
 * ENOENT for that case would be hidden too, and `verify` would find the leftover).
 *
 * @example One area for a 2 MiB shared run, split when 4 KiB of it goes private
 * ```ts
 * import assert from "node:assert/strict";
 * import { iommufd, Region } from "@cvm/memstate";
 * import { SimIoas } from "@cvm/memstate/sim";
 *
 * const region = new Region({ name: "ram", size: 2 ** 30 });
 * const ioas = new SimIoas({ kernel: "proposed" }); // cut_mapping is not in mainline
 * const gpu = iommufd({ name: "gpu0", ioas });
 * gpu.attach(region);
 * region.convert(0, 0x200000, "shared"); // one area
 * region.convert(0x1000, 0x1000, "private"); // cut twice, unmap the middle
 * assert.equal(ioas.areaCount, 2);
 * ```
 *
 * @module
 */

import type { IommufdIoas } from "../hw/backend.ts";
import { HwError } from "../hw/errors.ts";
import { needsProposed } from "../settings/kernel.ts";
import { mapGranules } from "./_granules.ts";
import { checkPluginName, type DmaPlugin } from "./plugin.ts";
import { checkGranularity, dmaPlugin } from "./_dma_plugin.ts";
import { SortedMap } from "../util/sorted_map.ts";
import { describeValue } from "../util/text.ts";

/** An area this plugin mapped; its start offset is its key in the plugin's index. */
interface MappedArea {
  /** One past the area's last byte, as a region offset (a cut lowers it). */
  end: number;
}

/** Options for {@link iommufd}. */
export interface IommufdOptions {
  /** The IO address space to map into. */
  ioas: IommufdIoas;
  /**
   * Map runs as areas and split with cut_mapping (default: whether the IOAS
   * supports it, i.e. the proposed kernel, unless a `granularity` is given);
   * false = one area per granule.
   */
  cut?: boolean;
  /**
   * Bytes per area when `cut` is false (default: the region's granularity).
   * Giving one asks for granules: `cut` then defaults to false, and `cut: true`
   * with a granularity is refused (an area follows each populated run there).
   */
  granularity?: number;
  /** Plugin name (default `"iommufd"`). */
  name?: string;
  /** Listener priority (default 10). */
  priority?: number;
}

/** Creates the iommufd plugin; call `attach(region)` for each region. */
export function iommufd(options: IommufdOptions): DmaPlugin {
  const name = checkPluginName(options.name ?? "iommufd", "iommufd");
  const who = `iommufd ${name}`;
  if (typeof options.ioas?.cutMapping !== "function") {
    throw new TypeError(`${who}: ioas must be an IommufdIoas, got ${describeValue(options.ioas)}`);
  }
  if (options.cut === true && !options.ioas.cutMappingSupported) {
    const kernel = (options.ioas as { kernel?: string }).kernel ?? "this kernel";
    throw new RangeError(
      `${who}: ${needsProposed("cut: true (iommufd cut_mapping)", kernel as "linux-6.18")}`,
    );
  }
  const ioas = options.ioas;
  // A granularity asks for granules, on any kernel: the same options map alike on both.
  const cut = options.cut ?? (options.granularity === undefined && ioas.cutMappingSupported);
  // With cut_mapping an area follows each populated run: a granularity would be ignored.
  if (cut && options.granularity !== undefined) {
    throw new RangeError(
      `${who}: granularity is for cut: false (with cut_mapping an area follows each populated run), ` +
        `got ${describeValue(options.granularity)}; ` +
        `give cut: false to map granules`,
    );
  }
  /** Per region: our own index of the areas mapped (cut), or the granule (no cut). */
  type State = { areas: SortedMap<MappedArea> } | { g: number };
  return dmaPlugin<State>({
    name,
    kind: "iommufd",
    priority: options.priority ?? 10,
    warnings: [],
    setup: (region) =>
      cut
        ? { areas: new SortedMap<MappedArea>() }
        : { g: checkGranularity(who, options.granularity ?? region.granularity, region) },
    granularity: (state) => ("g" in state ? state.g : undefined),
    populate(s, state, { counters: c }) {
      const iova = s.region.base + s.offset, vaddr = s.region.hostAddress + s.offset;
      if ("g" in state) {
        const g = state.g;
        mapGranules(name, s.region, s.offset, s.size, g, (off) => {
          c.call("map", () => ioas.map(s.region.base + off, s.region.hostAddress + off, g));
          c.mapped(1, g);
        }, (off, size) => {
          const bytes = c.call("unmap", () => unmapTolerant(ioas, s.region.base + off, size));
          c.mapped(-bytes / g, -bytes);
        });
        return;
      }
      c.call("map", () => ioas.map(iova, vaddr, s.size));
      state.areas.set(s.offset, { end: s.offset + s.size });
      c.mapped(1, s.size);
    },
    discard(s, state, { counters: c }) {
      const base = s.region.base;
      if ("g" in state) {
        const bytes = c.call("unmap", () => unmapTolerant(ioas, base + s.offset, s.size));
        c.mapped(-bytes / state.g, -bytes);
        return;
      }
      const areas = state.areas;
      /** Splits the area that crosses `at`, if one does (hitless: both halves stay mapped). */
      const cutAt = (at: number) => {
        const area = areas.below(at);
        if (area === undefined || area.end <= at) return;
        c.call("cutMapping", () => ioas.cutMapping(base + at));
        areas.set(at, { end: area.end });
        area.end = at;
        c.mapped(1, 0);
      };
      const end = s.offset + s.size;
      cutAt(s.offset);
      cutAt(end);
      const bytes = c.call("unmap", () => unmapTolerant(ioas, base + s.offset, s.size));
      // After the cuts the areas starting inside the section are exactly the ones unmapped.
      c.mapped(-areas.deleteRange(s.offset, end), -bytes);
    },
    hardwareMappings: () => ioas.areas(),
    hardwareStats() {
      const io = ioas as IommufdIoas & { peakTablePages?: number };
      return {
        ...(io.tableBytes === undefined ? {} : { tableBytes: io.tableBytes }),
        ...(io.peakTablePages === undefined ? {} : { peakTableBytes: io.peakTablePages * 4096 }),
      };
    },
  });
}

/**
 * IOMMU_IOAS_UNMAP with ENOENT taken as 0 bytes, as QEMU's backends/iommufd.c
 * `iommufd_backend_unmap_dma` takes it (iommufd says ENOENT where type1 says
 * "nothing to unmap").
 */
function unmapTolerant(ioas: IommufdIoas, iova: number, size: number): number {
  try {
    return ioas.unmap(iova, size);
  } catch (e) {
    if (e instanceof HwError && e.errno === "ENOENT") return 0;
    throw e;
  }
}
