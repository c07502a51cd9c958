/**
 * The VFIO type1 plugin: keeps a type1 container's DMA mappings equal to the
 * region's DMA view (shared and plugged), one mapping per granule, because
 * type1 cannot unmap part of a mapping. That is QEMU's behaviour
 * (hw/vfio/listener.c `vfio_ram_discard_notify_populate`: one map per
 * granularity chunk), and why a 4 KiB granule spends one of the container's
 * `dma_entry_limit` entries (default 65,535) per shared page. A discard is
 * ONE `VFIO_IOMMU_UNMAP_DMA` over the whole section, which removes every
 * mapping inside it (`vfio_ram_discard_notify_discard`). A failed map is
 * undone with that same one unmap of the section; under the QEMU policies even
 * when the first granule failed and nothing was mapped, as
 * `vfio_ram_discard_notify_populate` does (see _granules.ts).
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

import type { Section } from "../bus/listener.ts";
import type { Region } from "../bus/region.ts";
import type { Type1Container } from "../hw/backend.ts";
import { vmmRules } from "../settings/vmm.ts";
import { mapGranules } from "./_granules.ts";
import { CapacityError, checkPluginName, type DmaPlugin } from "./plugin.ts";
import { checkGranularity, dmaPlugin } from "./_dma_plugin.ts";
import type { PluginContext } from "./define.ts";
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
export function vfioType1(options: VfioType1Options): DmaPlugin {
  const name = checkPluginName(options.name ?? "vfio", "vfioType1");
  const who = `vfioType1 ${name}`;
  if (typeof options.container?.map !== "function") {
    throw new TypeError(`${who}: container must be a Type1Container`);
  }
  const container = options.container;
  const warnings: string[] = [];
  return dmaPlugin<{ g: number }>({
    name,
    kind: "vfio-type1",
    priority: options.priority ?? 10,
    warnings,
    setup(region, r) {
      const g = checkGranularity(who, options.granularity ?? region.granularity, region);
      const section: BudgetSection = {
        name: region.name,
        start: region.base + r.offset,
        size: r.size,
        granularity: g,
      };
      if (options.checkBudget ?? true) {
        const budget = containerBudget(container, region, section);
        if (budget.exceeded) {
          const message = describeBudget(budget, who, region.vmm);
          if (budget.action === "refuse") {
            throw new CapacityError(message, budget.needed, budget.limit);
          }
          warnings.push(message);
        }
      }
      let sections = followed.get(container);
      if (!sections) followed.set(container, sections = new Map());
      sections.set(region, section);
      return { g };
    },
    granularity: ({ g }) => g,
    populate(s: Section, { g }, { counters }) {
      const base = s.region.base, host = s.region.hostAddress;
      const map = (off: number) => {
        counters.call("map", () => container.map(base + off, host + off, g));
        counters.mapped(1, g);
      };
      const undo = (off: number, size: number) => unmapRange(counters, base, off, size, g);
      mapGranules(name, s.region, s.offset, s.size, g, map, undo);
    },
    discard(s: Section, { g }, { counters }) {
      unmapRange(counters, s.region.base, s.offset, s.size, g);
    },
    teardown(region) {
      followed.get(container)?.delete(region);
    },
    hardwareMappings: () => container.mappings(),
    hardwareStats() {
      const c = container as Type1Container & { peakTablePages?: number };
      return {
        mappingLimit: c.dmaEntryLimit,
        ...(c.tableBytes === undefined ? {} : { tableBytes: c.tableBytes }),
        ...(c.peakTablePages === undefined ? {} : { peakTableBytes: c.peakTablePages * 4096 }),
      };
    },
  });

  /** One VFIO_IOMMU_UNMAP_DMA over the section: it removes every granule mapping inside it. */
  function unmapRange(
    counters: PluginContext["counters"],
    base: number,
    off: number,
    size: number,
    g: number,
  ): void {
    const bytes = counters.call("unmap", () => container.unmap(base + off, size));
    counters.mapped(-bytes / g, -bytes);
  }
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
