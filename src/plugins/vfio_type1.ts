/**
 * The VFIO type1 plugin: keeps a type1 container's DMA mappings equal to the
 * region's DMA view (shared and plugged), one mapping per granule, because
 * type1 cannot unmap part of a mapping. That is QEMU's behaviour, and why a
 * 4 KiB granule spends one of the container's `dma_entry_limit` entries
 * (default 65,535) per shared page. At attach it checks the worst case against
 * the entries left and refuses with a message that says how to raise the limit.
 *
 * @example Attach a NIC's container to a region
 * ```ts
 * import { CapacityError, Region, SimType1Container, vfioType1 } from "@cvm/memstate";
 *
 * const region = new Region({ name: "ram", size: 2 ** 28 }); // 256 MiB
 * const nic = vfioType1({ name: "nic0", container: new SimType1Container() });
 * try {
 *   nic.attach(region); // 65,536 pages > 65,535 entries
 * } catch (e) {
 *   if (!(e instanceof CapacityError)) throw e;
 *   console.log(e.message); // says how many entries are needed and how to raise the limit
 * }
 * vfioType1({ name: "nic1", container: new SimType1Container({ dmaEntryLimit: 1 << 20 }) })
 *   .attach(region); // fits
 * ```
 *
 * @module
 */

import type { Listener, Range, Section } from "../bus/listener.ts";
import type { Region } from "../bus/region.ts";
import { DMA_VIEW } from "../bus/view.ts";
import type { DmaMapping, Type1Container } from "../hw/backend.ts";
import { mapGranules, unmapGranules } from "./granules.ts";
import { CapacityError, checkPluginName, type Plugin } from "./plugin.ts";
import { DmaPlugin } from "./dma_plugin.ts";
import { formatSize } from "../util/bytes.ts";

/** Options for {@link vfioType1}. */
export interface VfioType1Options {
  /** The container to map into. */
  container: Type1Container;
  /** Bytes per mapping (default: the region's page size; a virtio-mem block size for virtio-mem). */
  granularity?: number;
  /** Plugin name (default `"vfio"`). */
  name?: string;
  /** Listener priority (default 10: maps after KVM, unmaps before it). */
  priority?: number;
  /** Check the worst-case mapping count at attach (default true, as QEMU now does). */
  checkBudget?: boolean;
}

/** Creates the VFIO type1 plugin; call `attach(region)` for each region. */
export function vfioType1(options: VfioType1Options): Plugin {
  return new VfioType1(options);
}

class VfioType1 extends DmaPlugin {
  readonly kind = "vfio-type1";
  #options: VfioType1Options;

  constructor(options: VfioType1Options) {
    super("vfioType1", checkPluginName(options.name ?? "vfio", "vfioType1"));
    if (typeof options.container?.map !== "function") {
      throw new TypeError(`${this.who}: container must be a Type1Container`);
    }
    this.#options = options;
  }

  protected createListener(region: Region, r: Range): Listener {
    const g = this.checkGranularity(this.#options.granularity ?? region.pageSize, region);
    const container = this.#options.container;
    if (this.#options.checkBudget ?? true) {
      const needed = Math.ceil(r.size / g);
      const available = container.remainingEntries();
      if (needed > available) {
        throw new CapacityError(
          `${this.who}: region ${region.name} may need up to ${needed} DMA mappings ` +
            `(${formatSize(r.size)} at ${formatSize(g)} granularity) but the type1 container ` +
            `has ${available} of dma_entry_limit ${container.dmaEntryLimit} left (possibly running ` +
            `out of DMA mappings). Raise the limit (modprobe vfio_iommu_type1 ` +
            `dma_entry_limit=${needed + container.dmaEntryLimit - available}, or dmaEntryLimit ` +
            `in the host configuration), use a larger granularity, or use iommufd with cut_mapping`,
          needed,
          available,
        );
      }
    }
    const base = region.base;
    const map = (off: number) => {
      this.counters.call("map", () => container.map(base + off, region.hostAddress + off, g));
      this.counters.mapped(1, g);
    };
    const unmap = (off: number) => {
      this.counters.call("unmap", () => container.unmap(base + off, g));
      this.counters.mapped(-1, -g);
    };
    return {
      name: this.name,
      priority: this.#options.priority ?? 10,
      view: DMA_VIEW,
      granularity: g,
      populate: (s: Section) => mapGranules(s.offset, s.size, g, map, unmap),
      discard: (s: Section) => unmapGranules(s.offset, s.size, g, map, unmap),
    };
  }

  protected hardwareMappings(): DmaMapping[] {
    return this.#options.container.mappings();
  }
}
