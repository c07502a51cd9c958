/**
 * A simulated iommufd IO address space (IOAS) with an IO page-table cost
 * model and the proposed `cut_mapping` split.
 *
 * Rules (iommufd as of late 2025, plus the proposed cut_mapping):
 *
 * - MAP at a fixed iova (IOMMU_IOAS_MAP with IOMMU_IOAS_MAP_FIXED_IOVA), on an IOAS
 *   whose domain's smallest IO page is 4 KiB (`iova_alignment` 4 KiB), checks a call in
 *   the order Linux 6.18 does, so a call that breaks two rules gets the kernel's errno:
 *   1. iova or size of U64_MAX `EOVERFLOW` (ioas.c `iommufd_ioas_map`);
 *   2. vaddr + size reaching 2^64 `EOVERFLOW` (pages.c `iopt_alloc_user_pages`, via
 *      `iopt_map_user_pages`);
 *   3. size 0 or above SIZE_MAX - PAGE_SIZE `EINVAL` (pages.c `iopt_alloc_pages`);
 *   4. size not 4 KiB aligned `EINVAL` (io_pagetable.c `iopt_alloc_area_pages`, reached
 *      through `iopt_map_common` and `iopt_map_pages`);
 *   5. io_pagetable.c `iopt_check_iova`, called by `iopt_alloc_area_pages` for a fixed
 *      iova only: iova not 4 KiB aligned `EINVAL`; iova range wrapping past 2^64
 *      `EOVERFLOW`; touching a reserved range or lying beyond the page table's reach
 *      (2^48 with 4 levels, 2^57 with 5; the kernel reserves what lies outside a domain's
 *      aperture, `iopt_table_add_domain`) `EINVAL`; overlapping an area `EEXIST`;
 *   6. vaddr not 4 KiB aligned `EINVAL` (io_pagetable.c `iopt_insert_area`, the area's
 *      page offset), so only after the overlap check;
 *   7. pages.c `iopt_area_fill_domains`: host memory that cannot be pinned `EFAULT`
 *      (`pfn_reader_next`), then needing more table pages than `tablePageLimit` `ENOMEM`
 *      (`batch_to_domain`), then RLIMIT_MEMLOCK `ENOMEM` (`pfn_reader_update_pinned`,
 *      once every page is pinned and mapped).
 *   All-or-nothing. Without FIXED_IOVA the kernel picks the iova (`iopt_alloc_iova`
 *   instead of `iopt_check_iova`); that path is not modelled. Read from the stored
 *   torvalds/linux sources of the 6.13-6.18 shape: before 6.13 (`iopt_alloc_user_pages`
 *   came with MAP_FILE) `iopt_alloc_pages` checked size 0 before the vaddr wrap. Step 7
 *   runs per pfn batch on the kernel (pin a batch, map it, then the next); the
 *   simulator pins the whole range before counting table pages, which is the kernel's
 *   order for a map it pins in one batch (`batch_init`, at most `TEMP_MEMORY_LIMIT`
 *   64 KiB of batch): in a larger map a table page can run out in an earlier batch
 *   than the page that cannot be pinned, and the kernel then answers `ENOMEM`.
 *   With `compat: "type1"` the kernel's VFIO_IOMMU_MAP_DMA (vfio_compat.c
 *   `iommufd_vfio_map_dma`) has no step 1: an iova or size of U64_MAX gets `EINVAL` there
 *   (unaligned, or above SIZE_MAX - PAGE_SIZE); the simulator, whose numbers cannot hold
 *   2^64 - 1 apart from 2^64, answers `EOVERFLOW` on both paths.
 * - UNMAP: (iova 0, size >= U64_MAX) unmaps everything and succeeds even when
 *   empty. Otherwise iova or size of U64_MAX `EOVERFLOW`, size 0 `EINVAL`,
 *   wrapping `EOVERFLOW`; then areas inside the range are removed in
 *   ascending order, and the first area that sticks out of the range stops the
 *   call with `ENOENT`: areas already removed by that call STAY removed (as in
 *   the kernel). A range holding no area is `ENOENT` on the native interface
 *   and 0 bytes on the type1-compat one.
 * - Pinning charges the user's locked memory (`user->locked_vm`,
 *   drivers/iommu/iommufd/pages.c `incr_user_locked_vm`; `mm->locked_vm` with
 *   `compat: "type1"`, the VFIO compat path): `ENOMEM` past RLIMIT_MEMLOCK.
 * - cut_mapping exists only on the `proposed` kernel; on `linux-6.18` it is
 *   `EOPNOTSUPP` (mainline splits areas only for the type1-v1 compat path,
 *   drivers/iommu/iommufd/io_pagetable.c `iopt_cut_iova`).
 * - cut_mapping(iova): unaligned `EINVAL`; no area at or ending at iova
 *   `ENOENT`; at an area boundary nothing to do; otherwise the area becomes
 *   two and page-table entries crossing iova are split, allocating table pages
 *   (`ENOMEM` beyond `tablePageLimit`), or `EOPNOTSUPP` when the format cannot
 *   split (`splittable: false`) and an entry crosses iova. Unchanged on failure.
 *
 * Areas live in a {@link SortedMap} keyed by iova; each area's page-table footprint is
 * computed in closed form ({@link IoPageTable}, whose rules follow the host's IOMMU,
 * the `iommu` option), so a 1 TiB guest with thousands of areas is cheap.
 *
 * @module
 */

import { HwError } from "../errors.ts";
import { checkMapAlignment } from "./_dma_map_args.ts";
import type { DmaMapping, IommufdIoas } from "../backend.ts";
import type { FaultInjector } from "./faults.ts";
import type { SimHost } from "./host_memory.ts";
import {
  type AreaFootprint,
  checkBackingPageSize,
  contiguousRunCalls,
  type EntryCounts,
  IO_PAGE_4K,
  IoPageTable,
} from "./io_page_table.ts";
import { addWrapsU64, checkU64, hex, isAligned, U64_MAX, wrapsU64 } from "../u64.ts";
import { SortedMap } from "../../util/sorted_map.ts";
import { kernelFeatures, type KernelSetting } from "../../settings/kernel.ts";
import type { IommuSetting } from "../../settings/iommu.ts";
import { describeValue } from "../../util/text.ts";

export { U64_MAX } from "../u64.ts";

/**
 * Physically contiguous runs one iommufd unmap call covers at most: the pfn batch
 * that drivers/iommu/iommufd/pages.c `iopt_area_unpin_domain` reads from the domain
 * before each `iopt_area_unmap_domain_range` holds `TEMP_MEMORY_LIMIT` (64 KiB) of
 * runs at 12 bytes a run (`__batch_init`: an unsigned long pfn and a u32 count).
 */
export const IOMMUFD_UNMAP_BATCH_RUNS = Math.floor(65536 / 12);

/** A reserved IOVA range (MSI window, holes of the IOMMU aperture). */
export interface ReservedRange {
  /** First IOVA of the range. */
  iova: number;
  /** Length in bytes (> 0). */
  size: number;
}

/** Options of {@link SimIoas}. */
export interface SimIoasOptions {
  /** Host whose pages each area pins (default: pins are not tracked). */
  host?: SimHost;
  /** Fault injection. */
  faults?: FaultInjector;
  /** IOVA ranges MAP must not touch (`EINVAL`). */
  reserved?: ReservedRange[];
  /** `"native"` (default): empty UNMAP is `ENOENT`; `"type1"`: it is 0 bytes. */
  compat?: "native" | "type1";
  /** Whether the page-table format can split large entries (default true). */
  splittable?: boolean;
  /** Most table pages the page table may hold, root included (default Infinity). */
  tablePageLimit?: number;
  /** IOVA width: 48 (4-level table, default) or up to 57 (5-level). */
  iovaBits?: number;
  /** The kernel (default `"linux-6.18"`): cut_mapping needs `"proposed"`. */
  kernel?: KernelSetting;
  /**
   * The physical page size behind every vaddr when there is no `host` (default 4 KiB,
   * a memfd's folios): entries are no larger, and unmap calls follow its runs.
   */
  backingPageSize?: number;
  /**
   * The host's IOMMU (default `"intel-vt-d"`): whose page table the domain uses, which
   * decides when its table pages are freed ({@link IoPageTable}).
   */
  iommu?: IommuSetting;
}

/** Counters for plugin statistics. */
export interface SimIoasStats {
  /** Successful MAP calls. */
  mapCalls: number;
  /** UNMAP calls that removed something or succeeded. */
  unmapCalls: number;
  /** Successful cut_mapping calls that split an area. */
  cuts: number;
  /** Cuts that had to split a large page-table entry. */
  entrySplits: number;
  /** Bytes mapped by successful MAP calls. */
  mappedBytes: number;
  /** Bytes removed by UNMAP calls (partial ones included). */
  unmappedBytes: number;
}

interface Area extends DmaMapping {
  footprint: AreaFootprint;
}

/** A simulated iommufd IOAS. */
export class SimIoas implements IommufdIoas {
  /** Which UNMAP flavour this IOAS follows. */
  readonly compat: "native" | "type1";
  /** Whether large entries can be split. */
  readonly splittable: boolean;
  /** Most table pages allowed. */
  readonly tablePageLimit: number;
  /** IOVA width. */
  readonly iovaBits: number;
  /** The kernel this IOAS models. */
  readonly kernel: KernelSetting;
  /** The IOMMU whose page table the IOAS's domain uses. */
  readonly iommu: IommuSetting;
  /** Whether {@link SimIoas.cutMapping} exists (the proposed kernel). */
  readonly cutMappingSupported: boolean;
  readonly #host?: SimHost;
  readonly #faults?: FaultInjector;
  readonly #reserved: ReservedRange[];
  readonly #backingPageSize: number;
  readonly #table: IoPageTable;
  #tree = new SortedMap<Area>();
  #peakAreas = 0;
  #peakTablePages: number;
  #stats: SimIoasStats = {
    mapCalls: 0,
    unmapCalls: 0,
    cuts: 0,
    entrySplits: 0,
    mappedBytes: 0,
    unmappedBytes: 0,
  };

  /** Creates an empty IOAS. */
  constructor(options: SimIoasOptions = {}) {
    const bits = options.iovaBits ?? 48;
    if (!Number.isInteger(bits) || bits < 21 || bits > 57) {
      throw new RangeError(`iovaBits: must be an integer in [21, 57], got ${bits}`);
    }
    const limit = options.tablePageLimit ?? Infinity;
    if (typeof limit !== "number" || !(limit >= 1)) {
      throw new RangeError(`tablePageLimit: must be a number >= 1, got ${limit}`);
    }
    const compat = options.compat ?? "native";
    if (compat !== "native" && compat !== "type1") {
      throw new RangeError(`compat: must be "native" or "type1", got ${describeValue(compat)}`);
    }
    this.#reserved = (options.reserved ?? []).map((r, i) => {
      if (
        !Number.isSafeInteger(r?.iova) || !Number.isSafeInteger(r?.size) || r.iova < 0 ||
        r.size <= 0
      ) {
        throw new RangeError(
          `reserved[${i}]: iova and size must be integers >= 0 and > 0, got ${describeValue(r)}`,
        );
      }
      return { iova: r.iova, size: r.size };
    });
    this.iovaBits = bits;
    const kernel = kernelFeatures(options.kernel);
    this.kernel = kernel.name;
    this.cutMappingSupported = kernel.cutMapping;
    this.tablePageLimit = limit;
    this.compat = compat;
    this.splittable = options.splittable ?? true;
    this.#host = options.host;
    this.#faults = options.faults;
    this.#backingPageSize = checkBackingPageSize(options.backingPageSize);
    this.#table = new IoPageTable(bits <= 48 ? 4 : 5, {
      iommu: options.iommu,
      kernel: this.kernel,
    });
    this.iommu = this.#table.rules.iommu;
    this.#peakTablePages = this.#table.tablePages;
  }

  /** IOMMU_IOAS_MAP at a fixed iova; all-or-nothing; rules in the module doc's order. */
  map(iova: number, vaddr: number, size: number): void {
    const op = "ioas.map";
    this.#faults?.check(op);
    checkU64(op, "iova", iova);
    checkU64(op, "vaddr", vaddr);
    checkU64(op, "size", size);
    // 1. ioas.c iommufd_ioas_map: iova and length below U64_MAX.
    if (iova >= U64_MAX || size >= U64_MAX) {
      throw new HwError(op, "EOVERFLOW", "iova and size must be below U64_MAX");
    }
    // 2. pages.c iopt_alloc_user_pages: vaddr + size must not overflow; the kernel adds
    // size itself, not size - 1, so a range ending exactly at 2^64 is refused too.
    if (addWrapsU64(vaddr, size)) {
      throw new HwError(
        op,
        "EOVERFLOW",
        `vaddr ${hex(vaddr)} + size ${hex(size)} reaches 2^64`,
      );
    }
    // 3. pages.c iopt_alloc_pages: size 0, or above SIZE_MAX - PAGE_SIZE, that is 2^64 - 4096
    // and up (a bound a double holds exactly).
    if (size === 0) throw new HwError(op, "EINVAL", "size must not be 0");
    if (size >= 2 ** 64 - IO_PAGE_4K) {
      throw new HwError(op, "EINVAL", `size ${hex(size)} is above SIZE_MAX - PAGE_SIZE`);
    }
    // 4. io_pagetable.c iopt_alloc_area_pages: size a multiple of iova_alignment.
    checkMapAlignment(op, "size", size);
    // 5. io_pagetable.c iopt_check_iova (fixed iova only): iova aligned, no wrap, no
    // reserved IOVA, then no existing area.
    checkMapAlignment(op, "iova", iova);
    if (wrapsU64(iova, size)) {
      throw new HwError(op, "EOVERFLOW", `iova ${hex(iova)} + size ${hex(size)} wraps past 2^64`);
    }
    const end = iova + size;
    // Beyond the table's reach: reserved IOVA too, as io_pagetable.c iopt_table_add_domain
    // reserves everything outside the domain's aperture.
    const limit = Math.min(2 ** this.iovaBits, this.#table.addressLimit);
    if (end > limit) {
      throw new HwError(
        op,
        "EINVAL",
        `${hex(iova)}+${hex(size)} is beyond the ${this.iovaBits}-bit IOVA space`,
      );
    }
    for (const r of this.#reserved) {
      if (r.iova < end && iova < r.iova + r.size) {
        throw new HwError(
          op,
          "EINVAL",
          `${hex(iova)}+${hex(size)} touches the reserved range ${hex(r.iova)}+${hex(r.size)}`,
        );
      }
    }
    // iopt_check_iova's last check: no area in the range.
    const c = this.#tree.below(end);
    if (c !== undefined && c.iova + c.size > iova) {
      throw new HwError(
        op,
        "EEXIST",
        `${hex(iova)}+${hex(size)} overlaps the area ${hex(c.iova)}+${hex(c.size)}`,
      );
    }
    // 6. io_pagetable.c iopt_insert_area: the vaddr's page offset aligned, after the overlap.
    checkMapAlignment(op, "vaddr", vaddr);
    // 7. pages.c iopt_area_fill_domains: pin (EFAULT), map into the domain (table pages),
    // then charge the pinned pages to the locked-memory counter.
    this.#host?.pin(vaddr, size, op);
    let footprint: AreaFootprint;
    try {
      footprint = this.#table.footprint({ iova, size, vaddr }, this.#pageSizeAt(vaddr));
      this.#checkTablePages(op, [], [footprint]);
      this.#host?.lock(this.#counter, size, op);
    } catch (e) {
      this.#host?.unpin(vaddr, size);
      throw e;
    }
    this.#insert({ iova, size, vaddr, footprint });
    this.#stats.mapCalls++;
    this.#stats.mappedBytes += size;
  }

  /**
   * IOMMU_IOAS_UNMAP: removes the areas inside `[iova, iova + size)` and
   * returns the bytes unmapped; see the module doc for the partial `ENOENT` case.
   */
  unmap(iova: number, size: number): number {
    const op = "ioas.unmap";
    this.#faults?.check(op);
    checkU64(op, "iova", iova);
    checkU64(op, "size", size);
    if (iova === 0 && size >= U64_MAX) {
      const bytes = this.#removeAreas(this.#tree.values());
      this.#stats.unmapCalls++;
      return bytes;
    }
    if (iova >= U64_MAX || size >= U64_MAX) {
      throw new HwError(op, "EOVERFLOW", "iova and size must be below U64_MAX");
    }
    if (size === 0) throw new HwError(op, "EINVAL", "size must not be 0");
    if (wrapsU64(iova, size)) {
      throw new HwError(op, "EOVERFLOW", `${hex(iova)}+${hex(size)} wraps past 2^64`);
    }
    const end = iova + size;
    let unmapped = 0;
    let area = this.#firstIntersecting(iova, end);
    while (area !== undefined) {
      if (area.iova < iova || area.iova + area.size > end) {
        throw new HwError(
          op,
          "ENOENT",
          `${hex(iova)}+${hex(size)} cuts through the area ${hex(area.iova)}+${hex(area.size)}${
            unmapped > 0
              ? ` (${hex(unmapped)} bytes before it were unmapped and stay unmapped)`
              : ""
          }`,
        );
      }
      // Areas do not overlap, so one that reaches `end` is the last in range:
      // the usual unmap (one whole area) needs no look for a next one.
      const next = area.iova + area.size < end ? this.#tree.above(area.iova) : undefined;
      unmapped += this.#removeAreas([area]);
      area = next !== undefined && next.iova < end ? next : undefined;
    }
    if (unmapped === 0 && this.compat === "native") {
      throw new HwError(op, "ENOENT", `no area in ${hex(iova)}+${hex(size)}`);
    }
    this.#stats.unmapCalls++;
    return unmapped;
  }

  /** cut_mapping (proposed): make `iova` an area boundary; see the module doc. */
  cutMapping(iova: number): void {
    const op = "ioas.cutMapping";
    this.#faults?.check(op);
    checkU64(op, "iova", iova);
    if (!this.cutMappingSupported) {
      throw new HwError(
        op,
        "EOPNOTSUPP",
        `cut_mapping is not in ${this.kernel} (it is part of the proposed generic IOMMU ` +
          `page-table series)`,
      );
    }
    if (!isAligned(iova, IO_PAGE_4K)) {
      throw new HwError(op, "EINVAL", `iova ${hex(iova)} must be 4 KiB aligned`);
    }
    const area = this.#tree.atOrBelow(iova);
    if (area === undefined || area.iova + area.size < iova) {
      throw new HwError(op, "ENOENT", `nothing is mapped at ${hex(iova)}`);
    }
    if (area.iova === iova || area.iova + area.size === iova) return; // already a boundary
    const pageSize = this.#pageSizeAt(area.vaddr);
    const left = this.#table.footprint(
      { iova: area.iova, size: iova - area.iova, vaddr: area.vaddr },
      pageSize,
    );
    const rightVaddr = area.vaddr + (iova - area.iova);
    const rightSize = area.iova + area.size - iova;
    const right = this.#table.footprint({ iova, size: rightSize, vaddr: rightVaddr }, pageSize);
    const entrySplit = entryTotal(left) + entryTotal(right) !== entryTotal(area.footprint);
    if (entrySplit && !this.splittable) {
      throw new HwError(
        op,
        "EOPNOTSUPP",
        `a large entry crosses ${hex(iova)} and the page-table format cannot split it`,
      );
    }
    this.#checkTablePages(op, [area.footprint], [left, right]);
    this.#table.releaseForSplit(area.footprint);
    this.#tree.delete(area.iova);
    this.#insert({ iova: area.iova, size: iova - area.iova, vaddr: area.vaddr, footprint: left });
    this.#insert({ iova, size: rightSize, vaddr: rightVaddr, footprint: right });
    this.#stats.cuts++;
    if (entrySplit) this.#stats.entrySplits++;
  }

  /** Current areas, sorted by iova (copies). */
  areas(): DmaMapping[] {
    return this.#tree.values().map(({ iova, size, vaddr }) => ({ iova, size, vaddr }));
  }

  /** Number of live areas. */
  get areaCount(): number {
    return this.#tree.size;
  }

  /** The most areas that were live at once. */
  get peakAreaCount(): number {
    return this.#peakAreas;
  }

  /**
   * Bytes of IO page-table memory allocated (4 KiB per table page, the root and
   * retained pages included: see {@link IoPageTable}).
   */
  get tableBytes(): number {
    return this.#table.tablePages * IO_PAGE_4K;
  }

  /** Table pages allocated, the root and retained pages included. */
  get tablePages(): number {
    return this.#table.tablePages;
  }

  /** Table pages allocated that no live area needs (freed only with the IOAS). */
  get retainedTablePages(): number {
    return this.#table.retainedTablePages;
  }

  /**
   * The IOMMU domain goes with the IOAS's last device: its retained IO
   * page-table pages are freed (QEMU hw/vfio/iommufd.c `iommufd_cdev_detach`:
   * `iommufd_cdev_detach_container` frees the hardware page table the device
   * leaves empty and `iommufd_cdev_container_destroy` the IOAS left without a
   * device; the kernel frees the domain with the hwpt object). Call it when
   * the device detaches; the peak stays.
   */
  freeDomain(): void {
    this.#table.dropRetained();
  }

  /**
   * The IOAS goes (its last device detached and QEMU destroyed it,
   * hw/vfio/iommufd.c `iommufd_cdev_container_destroy`): every area left is
   * unmapped and unpinned (drivers/iommu/iommufd/ioas.c `iommufd_ioas_destroy`
   * -> `iopt_unmap_all`; counted as one unmap call when there were any), and
   * the domain's table pages are freed ({@link freeDomain}).
   */
  release(): void {
    if (this.#tree.size > 0) this.#removeAreas([...this.#tree.values()]);
    this.freeDomain();
  }

  /** The most table pages allocated at once. */
  get peakTablePages(): number {
    return this.#peakTablePages;
  }

  /** Page-table entries in use by size. */
  entryCounts(): EntryCounts {
    return this.#table.counts;
  }

  /** 4 KiB entries in use. */
  get entries4k(): number {
    return this.#table.counts.entries4k;
  }

  /** 2 MiB entries in use. */
  get entries2m(): number {
    return this.#table.counts.entries2m;
  }

  /** 1 GiB entries in use. */
  get entries1g(): number {
    return this.#table.counts.entries1g;
  }

  /** Counters for statistics (a copy). */
  get stats(): SimIoasStats {
    return { ...this.#stats };
  }

  /** Which locked-memory counter pins charge: the user's, or the mm's on the compat path. */
  get #counter(): "mm" | "user" {
    return this.compat === "type1" ? "mm" : "user";
  }

  /**
   * The physical page size behind `vaddr`: the host's backing page size, or,
   * without a host, the `backingPageSize` option (drivers/iommu/iommu.c
   * `iommu_pgsize` sizes entries by `iova | paddr`, and a 4 KiB memfd is not
   * physically contiguous).
   */
  #pageSizeAt(vaddr: number): number {
    return this.#host?.pageSizeAt(vaddr) ?? this.#backingPageSize;
  }

  #checkTablePages(op: string, removed: AreaFootprint[], added: AreaFootprint[]): void {
    const after = this.#table.tablePagesAfter(removed, added);
    if (after > this.tablePageLimit) {
      throw new HwError(
        op,
        "ENOMEM",
        `needs ${
          after - this.#table.tablePages
        } more IO page-table pages; limit ${this.tablePageLimit} (in use ${this.#table.tablePages})`,
      );
    }
  }

  #insert(area: Area): void {
    this.#tree.set(area.iova, area);
    this.#table.add(area.footprint);
    if (this.#tree.size > this.#peakAreas) this.#peakAreas = this.#tree.size;
    if (this.#table.tablePages > this.#peakTablePages) {
      this.#peakTablePages = this.#table.tablePages;
    }
  }

  #removeAreas(areas: Area[]): number {
    let bytes = 0;
    for (const a of areas) {
      this.#tree.delete(a.iova);
      // pages.c iopt_area_unfill_domains -> iopt_area_unpin_domain: one unmap call per
      // batch of physically contiguous runs of the area, never across areas.
      this.#table.remove(a.footprint, contiguousRunCalls(a.footprint, IOMMUFD_UNMAP_BATCH_RUNS));
      this.#host?.unpin(a.vaddr, a.size);
      this.#host?.unlock(this.#counter, a.size);
      bytes += a.size;
    }
    this.#stats.unmappedBytes += bytes;
    return bytes;
  }

  #firstIntersecting(start: number, end: number): Area | undefined {
    const below = this.#tree.atOrBelow(start);
    if (below !== undefined && below.iova + below.size > start) return below;
    const above = this.#tree.atOrAbove(start);
    return above !== undefined && above.iova < end ? above : undefined;
  }
}

function entryTotal(c: EntryCounts): number {
  return c.entries4k + c.entries2m + c.entries1g;
}
