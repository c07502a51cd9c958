/**
 * The VFIO type1 plugin: keeps a type1 container's DMA mappings equal to the
 * region's DMA view (shared and plugged), one mapping per granule, because
 * type1 cannot unmap part of a mapping. That is QEMU's behaviour
 * (hw/vfio/listener.c `vfio_ram_discard_notify_populate`: one map per
 * granularity chunk), and why a 4 KiB granule spends one of the container's
 * `dma_entry_limit` entries (default 65,535) per shared page. A discard is
 * ONE `VFIO_IOMMU_UNMAP_DMA` over the whole section, which removes every
 * mapping inside it (`vfio_ram_discard_notify_discard`).
 *
 * At attach it checks the container's whole budget (every section it follows,
 * see type1_budget.ts) and, as the region's policy says, refuses with a
 * {@link CapacityError} that says how to raise the limit, or warns (QEMU 10.1).
 *
 * @example Attach a NIC's container to a region
 * ```ts
 * import assert from "node:assert/strict";
 * import { CapacityError, Region, vfioType1 } from "@cvm/memstate";
 * import { SimType1Container } from "@cvm/memstate/sim";
 *
 * const region = new Region({ name: "ram", size: 2 ** 28 }); // 256 MiB
 * const nic = vfioType1({ name: "nic0", container: new SimType1Container() });
 * // 65,536 pages > 65,535 entries: refused, with the numbers and the fix.
 * assert.throws(() => nic.attach(region), CapacityError);
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
import { vmmRules } from "../settings/vmm.ts";
import { mapGranules } from "./granules.ts";
import { CapacityError, checkPluginName, type Plugin, type PluginStats } from "./plugin.ts";
import { DmaPlugin } from "./dma_plugin.ts";
import {
  type BudgetSection,
  describeBudget,
  type Type1Budget,
  type1Budget,
} from "./type1_budget.ts";

/** Options for {@link vfioType1}. */
export interface VfioType1Options {
  /** The container to map into. */
  container: Type1Container;
  /**
   * Bytes per mapping (default: the region's granularity, the minimum over its
   * state sources, as QEMU's `ram_discard_manager_get_min_granularity`).
   */
  granularity?: number;
  /** Plugin name (default `"vfio"`). */
  name?: string;
  /** Listener priority (default 10: maps after KVM, unmaps before it). */
  priority?: number;
  /** Check the container's mapping budget at attach (default true, as QEMU does). */
  checkBudget?: boolean;
}

/** Creates the VFIO type1 plugin; call `attach(region)` for each region. */
export function vfioType1(options: VfioType1Options): Plugin {
  return new VfioType1(options);
}

/**
 * The sections every container follows, across plugins: QEMU's check sums over
 * the container's whole listener list (`bcontainer->vrdl_list`).
 */
const followed = new WeakMap<Type1Container, Map<Region, BudgetSection>>();

/** The budget `container` would have with `extra` added to what it follows. */
export function containerBudget(
  container: Type1Container,
  region: Region,
  extra?: BudgetSection,
): Type1Budget {
  const sections = [...(followed.get(container)?.values() ?? [])];
  if (extra) sections.push(extra);
  return type1Budget(sections, container.dmaEntryLimit, vmmRules(region.vmm));
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
    const g = this.checkGranularity(this.#options.granularity ?? region.granularity, region);
    const container = this.#options.container;
    const section: BudgetSection = {
      name: region.name,
      start: region.base + r.offset,
      size: r.size,
      granularity: g,
    };
    if (this.#options.checkBudget ?? true) {
      const budget = containerBudget(container, region, section);
      if (budget.exceeded) {
        const message = describeBudget(budget, this.who, region.vmm);
        if (budget.action === "refuse") {
          throw new CapacityError(message, budget.needed, budget.limit);
        }
        this.warnings.push(message);
      }
    }
    let sections = followed.get(container);
    if (!sections) followed.set(container, sections = new Map());
    sections.set(region, section);
    const base = region.base;
    const map = (off: number) => {
      this.counters.call("map", () => container.map(base + off, region.hostAddress + off, g));
      this.counters.mapped(1, g);
    };
    const unmapRange = (off: number, size: number) => {
      const bytes = this.counters.call("unmap", () => container.unmap(base + off, size));
      this.counters.mapped(-bytes / g, -bytes);
    };
    return {
      name: this.name,
      priority: this.#options.priority ?? 10,
      view: DMA_VIEW,
      granularity: g,
      // Unmapping a range with nothing mapped succeeds on type1, so QEMU's
      // listener accepts double discards (ram_discard_listener_init(..., true)).
      acceptsDoubleDiscard: true,
      populate: (s: Section) => mapGranules(s.offset, s.size, g, map, unmapRange),
      discard: (s: Section) => unmapRange(s.offset, s.size),
    };
  }

  protected override detached(region: Region): void {
    followed.get(this.#options.container)?.delete(region);
  }

  protected hardwareMappings(): DmaMapping[] {
    return this.#options.container.mappings();
  }

  protected override hardwareStats(): Pick<
    PluginStats,
    "mappingLimit" | "tableBytes" | "peakTableBytes"
  > {
    const c = this.#options.container as Type1Container & { peakTablePages?: number };
    return {
      mappingLimit: c.dmaEntryLimit,
      ...(c.tableBytes === undefined ? {} : { tableBytes: c.tableBytes }),
      ...(c.peakTablePages === undefined ? {} : { peakTableBytes: c.peakTablePages * 4096 }),
    };
  }
}
