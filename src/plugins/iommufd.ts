/**
 * The iommufd plugin: keeps an IOAS's areas equal to the region's DMA view.
 *
 * With `cut: true` (default) it maps each populated run as one area, so the
 * area count follows the number of shared extents, not shared pages. A discard
 * that cuts through an area first splits it with `cut_mapping` (hitless: the
 * pages either side stay mapped), then unmaps whole areas; a failed split
 * changes nothing and refuses the change, which the bus rolls back. With
 * `cut: false` it maps one area per granule, like type1, so the two can be
 * compared on the same workload.
 *
 * @example One area for a 2 MiB shared run, split when 4 KiB of it goes private
 * ```ts
 * import { iommufd, Region, SimIoas } from "@cvm/memstate";
 *
 * const region = new Region({ name: "ram", size: 2 ** 30 });
 * const ioas = new SimIoas();
 * const gpu = iommufd({ name: "gpu0", ioas });
 * gpu.attach(region);
 * region.convert(0, 0x200000, "shared"); // one area
 * region.convert(0x1000, 0x1000, "private"); // cut twice, unmap the middle
 * console.log(ioas.areaCount); // 2
 * ```
 *
 * @module
 */

import type { Listener, Range, Section } from "../bus/listener.ts";
import type { Region } from "../bus/region.ts";
import { DMA_VIEW } from "../bus/view.ts";
import type { DmaMapping, IommufdIoas } from "../hw/backend.ts";
import { mapGranules, unmapGranules } from "./granules.ts";
import { checkPluginName, type Plugin } from "./plugin.ts";
import { DmaPlugin } from "./dma_plugin.ts";
import { SortedMap } from "../util/sorted_map.ts";

/** An area this plugin mapped; its start offset is its key in the plugin's index. */
interface MappedArea {
  /** One past the area's last byte, as a region offset (a cut lowers it). */
  end: number;
}

/** Options for {@link iommufd}. */
export interface IommufdOptions {
  /** The IO address space to map into. */
  ioas: IommufdIoas;
  /** Map runs as areas and split with cut_mapping (default true); false = one area per granule. */
  cut?: boolean;
  /** Bytes per area when `cut` is false (default: the region's page size). */
  granularity?: number;
  /** Plugin name (default `"iommufd"`). */
  name?: string;
  /** Listener priority (default 10). */
  priority?: number;
}

/** Creates the iommufd plugin; call `attach(region)` for each region. */
export function iommufd(options: IommufdOptions): Plugin {
  return new Iommufd(options);
}

class Iommufd extends DmaPlugin {
  readonly kind = "iommufd";
  #options: IommufdOptions;

  constructor(options: IommufdOptions) {
    super("iommufd", checkPluginName(options.name ?? "iommufd", "iommufd"));
    if (typeof options.ioas?.cutMapping !== "function") {
      throw new TypeError(`${this.who}: ioas must be an IommufdIoas`);
    }
    this.#options = options;
  }

  protected createListener(region: Region, _range: Range): Listener {
    const ioas = this.#options.ioas;
    const c = this.counters;
    const iova = (off: number) => region.base + off;
    const vaddr = (off: number) => region.hostAddress + off;
    let populate: (s: Section) => void;
    let discard: (s: Section) => void;
    let granularity: number | undefined;
    if (this.#options.cut ?? true) {
      // Our own index of the areas we mapped in this region, by start offset.
      const areas = new SortedMap<MappedArea>();
      /** Splits the area that crosses `cut`, if one does (hitless: both halves stay mapped). */
      const cutAt = (cut: number) => {
        const area = areas.below(cut);
        if (area === undefined || area.end <= cut) return;
        c.call("cutMapping", () => ioas.cutMapping(iova(cut)));
        areas.set(cut, { end: area.end });
        area.end = cut;
        c.mapped(1, 0);
      };
      populate = (s) => {
        c.call("map", () => ioas.map(iova(s.offset), vaddr(s.offset), s.size));
        areas.set(s.offset, { end: s.offset + s.size });
        c.mapped(1, s.size);
      };
      discard = (s) => {
        const end = s.offset + s.size;
        cutAt(s.offset);
        cutAt(end);
        c.call("unmap", () => ioas.unmap(iova(s.offset), s.size));
        // After the cuts the areas starting inside the section are exactly the ones unmapped.
        c.mapped(-areas.deleteRange(s.offset, end), -s.size);
      };
    } else {
      const g = this.checkGranularity(this.#options.granularity ?? region.pageSize, region);
      granularity = g;
      const map = (off: number) => {
        c.call("map", () => ioas.map(iova(off), vaddr(off), g));
        c.mapped(1, g);
      };
      const unmap = (off: number) => {
        c.call("unmap", () => ioas.unmap(iova(off), g));
        c.mapped(-1, -g);
      };
      populate = (s) => mapGranules(s.offset, s.size, g, map, unmap);
      discard = (s) => unmapGranules(s.offset, s.size, g, map, unmap);
    }
    return {
      name: this.name,
      priority: this.#options.priority ?? 10,
      view: DMA_VIEW,
      granularity,
      populate,
      discard,
    };
  }

  protected hardwareMappings(): DmaMapping[] {
    return this.#options.ioas.areas();
  }
}
