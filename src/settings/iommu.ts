/**
 * The IOMMU setting: whose IO page table the host's VFIO type1 containers and
 * iommufd IOASes map into. `intel-vt-d` (the default) and `amd-v1` (AMD-Vi's
 * v1 host page table, the driver's default: drivers/iommu/amd/init.c
 * `amd_iommu_pgtable = PD_MODE_V1`) differ in what an IO page table costs: when
 * a table page is freed and how many levels the table starts with. The rules
 * per kernel are {@link IoPageTableRules}.
 *
 * @module
 */

import { DEFAULT_KERNEL, type KernelSetting } from "./kernel.ts";
import { describeValue } from "../util/text.ts";

/** An IOMMU setting name. */
export type IommuSetting = "intel-vt-d" | "amd-v1";

/** Every {@link IommuSetting}, default first. */
export const IOMMU_SETTINGS: readonly IommuSetting[] = ["intel-vt-d", "amd-v1"];

/** The default IOMMU. */
export const DEFAULT_IOMMU: IommuSetting = "intel-vt-d";

/** How an IOMMU's page table spends table pages on a kernel; each field names its source. */
export interface IoPageTableRules {
  /** The IOMMU. */
  readonly iommu: IommuSetting;
  /** The kernel. */
  readonly kernel: KernelSetting;
  /**
   * An unmap call frees a table page whose whole span it covers. Intel VT-d on
   * 6.18: drivers/iommu/intel/iommu.c `dma_pte_clear_level` ("If range covers
   * entire pagetable, free it"); the generic page table of the `proposed`
   * setting, for either IOMMU: drivers/iommu/generic_pt/iommu_pt.h
   * `__unmap_range`. AMD v1 on 6.18 never does: drivers/iommu/amd/io_pgtable.c
   * `iommu_v1_unmap_pages` only clears PTEs; a table goes when a larger page is
   * mapped over it (`iommu_v1_map_pages` -> `free_clear_pte`) or with the domain
   * (`v1_free_pgtable`).
   */
  readonly unmapFreesTables: boolean;
  /**
   * Levels of a new table, or `undefined` for the table's full depth from the
   * start (VT-d). AMD v1 starts at 3 levels (amd/io_pgtable.c `v1_alloc_pgtable`:
   * `PAGE_MODE_3_LEVEL`; generic_pt: amd/iommu.c
   * `amd_iommu_domain_alloc_paging_v1` sets `starting_level = 2` with
   * `PT_FEAT_DYNAMIC_TOP`) and adds a root above the old one when a map reaches
   * past its span (amd/io_pgtable.c `increase_address_space`, generic_pt
   * iommu_pt.h `increase_top`); the old root stays as the table of the first
   * span of its level, and the table never shrinks.
   */
  readonly startingLevels: 3 | undefined;
}

/**
 * The page-table rules of `iommu` on `kernel` (defaults: Intel VT-d, Linux
 * 6.18). AMD v1 under `proposed` is the generic page table's AMD v1 format
 * (drivers/iommu/generic_pt/fmt/amdv1.h; "iommu/amd: Use the generic iommu page
 * table", merged for 6.19 with the generic page table): it frees on unmap like
 * generic_pt and grows its top as 6.18 does. Throws a `RangeError` naming the
 * known settings for anything else.
 */
export function ioPageTableRules(
  iommu: IommuSetting | undefined,
  kernel?: KernelSetting,
): IoPageTableRules {
  const name = checkIommu(iommu);
  const k = kernel ?? DEFAULT_KERNEL;
  const amd = name === "amd-v1";
  return {
    iommu: name,
    kernel: k,
    unmapFreesTables: !amd || k !== "linux-6.18",
    startingLevels: amd ? 3 : undefined,
  };
}

/** `iommu`, or the default when undefined; a `RangeError` naming the known settings otherwise. */
export function checkIommu(iommu: IommuSetting | undefined): IommuSetting {
  const name = iommu ?? DEFAULT_IOMMU;
  if (!IOMMU_SETTINGS.includes(name)) {
    throw new RangeError(
      `iommu: must be one of ${IOMMU_SETTINGS.join(", ")}, got ${describeValue(iommu)}`,
    );
  }
  return name;
}

/** An IOVA range an IOMMU reserves: no DMA mapping may touch it. */
export interface ReservedIova {
  /** First address. */
  start: number;
  /** First address after it. */
  end: number;
  /** What it is, for messages. */
  what: string;
  /** How a configuration keeps clear of it, for messages. */
  fix: string;
  /** Where the kernel reserves it (file and function). */
  source: string;
}

/**
 * The IOVA ranges `iommu` reserves for every device, which VFIO type1 leaves
 * out of a container's usable IOVA (drivers/vfio/vfio_iommu_type1.c
 * `vfio_iommu_resv_exclude`, so a MAP there is EINVAL from
 * `vfio_iommu_iova_dma_valid`) and iommufd reserves in the IOAS
 * (drivers/iommu/iommufd/io_pagetable.c `iopt_table_enforce_dev_resv_regions`).
 * Both vendors reserve the x86 interrupt window 0xfee00000-0xfeefffff
 * (drivers/iommu/intel/iommu.c `intel_iommu_get_resv_regions`:
 * IOAPIC_RANGE_START..END; drivers/iommu/amd/iommu.c
 * `amd_iommu_get_resv_regions`: MSI_RANGE_START..END); AMD also the
 * HyperTransport range 0xfd00000000-0xffffffffff (HT_RANGE_START..END), which
 * is why QEMU puts the RAM above 4 GiB of an AMD guest at 1 TiB when it would
 * reach it (hw/i386/pc.c `pc_memory_init`: "The HyperTransport range close to
 * the 1T boundary is unique to AMD hosts with IOMMUs enabled").
 */
export function reservedIova(iommu: IommuSetting | undefined): ReservedIova[] {
  const name = checkIommu(iommu);
  const msi = {
    start: 0xfee0_0000,
    end: 0xfef0_0000,
    what: "the interrupt (MSI) window",
    fix: "end the region at or below 0xfee00000, as QEMU's RAM below 4 GiB does",
    source: name === "amd-v1"
      ? "drivers/iommu/amd/iommu.c amd_iommu_get_resv_regions"
      : "drivers/iommu/intel/iommu.c intel_iommu_get_resv_regions",
  };
  if (name !== "amd-v1") return [msi];
  return [msi, {
    start: 0xfd_0000_0000,
    end: 0x100_0000_0000,
    what: "the HyperTransport range",
    fix: "end the region at 0xfd00000000 or start it at 0x10000000000 (1 TiB), as QEMU does " +
      "on AMD (hw/i386/pc.c pc_memory_init)",
    source: "drivers/iommu/amd/iommu.c amd_iommu_get_resv_regions",
  }];
}
