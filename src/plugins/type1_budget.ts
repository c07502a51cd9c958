/**
 * VFIO type1's mapping budget: how many DMA entries a container may need for
 * the sections it follows, against its `dma_entry_limit`. One function serves
 * the plugin's attach check and the host configuration's start-up check, so
 * the two can never disagree.
 *
 * QEMU counts at registration (hw/vfio/listener.c
 * `vfio_ram_discard_register_listener`): over every section the container
 * follows, `(ROUND_UP(end, g) - ALIGN_DOWN(start, g)) / g` at the section's
 * RamDiscardManager minimum granularity `g` (4 KiB whenever guest_memfd is a
 * source, even beside virtio-mem's 2 MiB blocks), plus `kvm_get_max_memslots()`
 * minus the number of sections as headroom for ordinary memory sections, and
 * compares with the container's `dma_max_mappings` (VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL:
 * the module's `dma_entry_limit`, default 65535). QEMU 10.1 only warns; later
 * QEMU, and memstate, refuse. The memstate policy counts the sections without
 * QEMU's memslot headroom: its regions are all the container maps.
 *
 * @module
 */

import { KVM_MAX_MEMSLOTS } from "../settings/kernel.ts";
import type { VmmRules } from "../settings/vmm.ts";
import { formatSize } from "../util/bytes.ts";

/** One section a type1 container follows. */
export interface BudgetSection {
  /** A name for messages (the region's). */
  name: string;
  /** Guest physical address of the section. */
  start: number;
  /** Its length in bytes. */
  size: number;
  /** The granularity it is mapped at, in bytes. */
  granularity: number;
}

/** The worst-case DMA entries of one container. */
export interface Type1Budget {
  /** Entries per section, in the order given. */
  sections: (BudgetSection & { mappings: number })[];
  /** QEMU's headroom: `kvm_get_max_memslots()` minus the number of sections; 0 under memstate. */
  headroom: number;
  /** Sum of the sections' entries plus the headroom. */
  needed: number;
  /** The container's `dma_entry_limit`. */
  limit: number;
  /** True when `needed > limit`. */
  exceeded: boolean;
  /** What the policy does when exceeded: warn (QEMU 10.1) or refuse. */
  action: "warn" | "refuse";
}

/** Computes the budget of `sections` against `limit` under `rules`. */
export function type1Budget(
  sections: readonly BudgetSection[],
  limit: number,
  rules: VmmRules,
): Type1Budget {
  const counted = sections.map((s) => {
    const g = s.granularity;
    const first = Math.floor(s.start / g) * g;
    const end = Math.ceil((s.start + s.size) / g) * g;
    return { ...s, mappings: (end - first) / g };
  });
  const headroom = rules.memslotHeadroom ? KVM_MAX_MEMSLOTS - sections.length : 0;
  const needed = counted.reduce((n, s) => n + s.mappings, 0) + headroom;
  return {
    sections: counted,
    headroom,
    needed,
    limit,
    exceeded: needed > limit,
    action: rules.budgetExceeded,
  };
}

/** One line that names the numbers behind `budget` and the fix. */
export function describeBudget(budget: Type1Budget, who: string, vmm: string): string {
  const parts = budget.sections.map((s) =>
    `${s.name}: ${formatSize(s.size)} / ${formatSize(s.granularity)} = ${s.mappings}`
  );
  if (budget.headroom > 0) {
    parts.push(
      `headroom: ${KVM_MAX_MEMSLOTS} memslots - ${budget.sections.length} sections = ` +
        `${budget.headroom}`,
    );
  }
  const fix = budget.needed <= 0xffff_ffff
    ? `raise the limit to at least ${budget.needed} (modprobe vfio_iommu_type1 ` +
      `dma_entry_limit=${budget.needed}, or "dmaEntryLimit" in the host configuration)`
    : `dma_entry_limit is 32 bits, so no limit fits`;
  // QEMU's own words where QEMU is the policy (its warn_report / error_setg text); memstate's
  // refusal is its own rule and does not quote them.
  const qemu = vmm === "memstate" ? "" : ` (QEMU: "possibly running out of DMA mappings")`;
  return `${who}: VFIO type1 may need ${budget.needed} DMA mappings under ${vmm} ` +
    `(${parts.join(", ")}) but dma_entry_limit is ${budget.limit}${qemu}; ${fix}, or use ` +
    `iommufd, which has no such limit`;
}
