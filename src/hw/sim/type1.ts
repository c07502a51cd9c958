/**
 * A simulated VFIO type1 (v2) IOMMU container.
 *
 * Rules, in the order vfio_dma_do_map / vfio_dma_do_unmap apply them:
 *
 * - MAP: size 0 `EINVAL`; an iova or vaddr range wrapping past 2^64
 *   `EOVERFLOW`; size, iova and vaddr not aligned to the smallest IOMMU page
 *   (4 KiB) `EINVAL` (the 2025 overflow fixes, "vfio/type1: sanitize for
 *   overflow using check_*_overflow()", merged for Linux 6.18-rc4, so on both
 *   kernel settings); any overlap with an existing mapping `EEXIST`; no DMA entry left
 *   under `dma_entry_limit` `ENOSPC` (drivers/vfio/vfio_iommu_type1.c
 *   `vfio_dma_do_map`, `dma_avail`); outside the IOMMU aperture (`iovaBits`)
 *   `EINVAL`; pinning host memory that cannot be pinned `EFAULT` (see
 *   {@link SimHost.pin}) or beyond RLIMIT_MEMLOCK `ENOMEM` (the process's
 *   `mm->locked_vm`, shared by every container: `vfio_lock_acct`), whichever
 *   comes first in page order (`vfio_pin_pages_remote` pins a batch, then
 *   accounts its pages): `EFAULT` when every page before the unpinnable one
 *   fits under the limit. A map is all-or-nothing.
 * - The IO page table behind the container is modelled as for iommufd
 *   ({@link IoPageTable}): its memory follows physical contiguity, and when its
 *   table pages are freed follows the host's IOMMU (`iommu`: Intel VT-d or AMD v1).
 * - UNMAP: iova unaligned `EINVAL`; with `all`, iova and size must be 0
 *   (`EINVAL`) and everything goes; otherwise size 0 or unaligned `EINVAL`, a
 *   wrapping range `EOVERFLOW`, a range that bisects a mapping (holds its start
 *   or its end but not both) `EINVAL`; a range holding no mapping succeeds with
 *   0 bytes. Returns the bytes unmapped.
 *
 * Mappings live in a {@link SortedMap} keyed by iova, so each call is O(log n) and 65,535
 * single-page mappings are cheap. Locked memory is accounted per mapping, as
 * type1 does for each pin.
 *
 * @module
 */

import { HwError } from "../errors.ts";
import { checkDmaMapAlignment } from "./_dma_map_args.ts";
import type { DmaMapping, Type1Container } from "../backend.ts";
import type { FaultInjector } from "./faults.ts";
import type { SimHost } from "./host_memory.ts";
import { checkU64, hex, isAligned, wrapsU64 } from "../u64.ts";
import { SortedMap } from "../../util/sorted_map.ts";
import { kernelFeatures, type KernelSetting } from "../../settings/kernel.ts";
import type { IommuSetting } from "../../settings/iommu.ts";
import {
  type AreaFootprint,
  checkBackingPageSize,
  contiguousRunCalls,
  IO_PAGE_4K,
  IoPageTable,
} from "./io_page_table.ts";

/** The smallest IOMMU page: every address and size must be a multiple of it. */
export const TYPE1_PAGE_SIZE = 4096;
/** VFIO type1's default `dma_entry_limit` module parameter. */
export const DEFAULT_DMA_ENTRY_LIMIT = 65535;

/** Options of {@link SimType1Container}. */
export interface SimType1Options {
  /** Maximum live mappings (default 65535, the module parameter's default). */
  dmaEntryLimit?: number;
  /** Host whose pages each mapping pins (default: pins are not tracked). */
  host?: SimHost;
  /**
   * RLIMIT_MEMLOCK in bytes for a container without a `host` (default
   * Infinity); with a host, the host's limit and counter apply.
   */
  memlockLimit?: number;
  /**
   * The kernel (default `"linux-6.18"`), named by the container: type1's rules
   * are the same on both settings (the overflow fixes are in 6.18).
   */
  kernel?: KernelSetting;
  /** Fault injection. */
  faults?: FaultInjector;
  /** IOMMU address width: mappings must end at or below 2^iovaBits (default 64: no limit). */
  iovaBits?: number;
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
export interface SimType1Stats {
  /** Successful MAP calls. */
  mapCalls: number;
  /** Successful UNMAP calls. */
  unmapCalls: number;
  /** Bytes mapped by successful MAP calls. */
  mappedBytes: number;
  /** Bytes removed by successful UNMAP calls. */
  unmappedBytes: number;
}

/** A mapping as the container keeps it: with its IO page-table footprint. */
interface Mapping extends DmaMapping {
  footprint: AreaFootprint;
}

/**
 * The MAP argument checks since the 2025 overflow fixes ("vfio/type1:
 * sanitize for overflow using check_*_overflow()", commit 6012379ede6a,
 * listed in Linus's Linux 6.18-rc4 announcement, so in 6.18): size 0
 * `EINVAL`, then a wrapping iova or vaddr `EOVERFLOW`, both before the
 * alignment check (`EINVAL`). Before them a wrap was `EINVAL`, after the
 * alignment check; no kernel setting models that.
 */
function checkMapArguments(
  op: string,
  iova: number,
  vaddr: number,
  size: number,
): void {
  if (size === 0) throw new HwError(op, "EINVAL", "size must not be 0");
  if (wrapsU64(iova, size) || wrapsU64(vaddr, size)) {
    throw new HwError(
      op,
      "EOVERFLOW",
      `iova ${hex(iova)} or vaddr ${hex(vaddr)} + size ${hex(size)} wraps past 2^64`,
    );
  }
  checkDmaMapAlignment(op, iova, vaddr, size);
}

/** A simulated VFIO type1 v2 container with `dma_entry_limit`, memlock and pinning. */
export class SimType1Container implements Type1Container {
  /** The `dma_entry_limit` this container was created with. */
  readonly dmaEntryLimit: number;
  /** RLIMIT_MEMLOCK in bytes. */
  readonly memlockLimit: number;
  /** IOMMU address width. */
  readonly iovaBits: number;
  /** The kernel this container models. */
  readonly kernel: KernelSetting;
  /** The IOMMU whose page table the container's domain uses. */
  readonly iommu: IommuSetting;
  readonly #host?: SimHost;
  readonly #faults?: FaultInjector;
  readonly #backingPageSize: number;
  #tree = new SortedMap<Mapping>();
  readonly #table: IoPageTable;
  #peak = 0;
  #peakTablePages = 1;
  #locked = 0;
  #stats: SimType1Stats = { mapCalls: 0, unmapCalls: 0, mappedBytes: 0, unmappedBytes: 0 };

  /** Creates an empty container. */
  constructor(options: SimType1Options = {}) {
    const limit = options.dmaEntryLimit ?? DEFAULT_DMA_ENTRY_LIMIT;
    if (!Number.isInteger(limit) || limit < 0 || limit > 0xffffffff) {
      throw new RangeError(`dmaEntryLimit: must be an integer in [0, 2^32 - 1], got ${limit}`);
    }
    const memlock = options.memlockLimit ?? Infinity;
    if (typeof memlock !== "number" || !(memlock >= 0)) {
      throw new RangeError(`memlockLimit: must be a number >= 0, got ${memlock}`);
    }
    const bits = options.iovaBits ?? 64;
    if (!Number.isInteger(bits) || bits < 12 || bits > 64) {
      throw new RangeError(`iovaBits: must be an integer in [12, 64], got ${bits}`);
    }
    this.dmaEntryLimit = limit;
    this.memlockLimit = options.host?.memlockLimit ?? memlock;
    const kernel = kernelFeatures(options.kernel);
    this.kernel = kernel.name;
    this.iovaBits = bits;
    this.#host = options.host;
    this.#faults = options.faults;
    this.#backingPageSize = checkBackingPageSize(options.backingPageSize);
    this.#table = new IoPageTable(4, { iommu: options.iommu, kernel: this.kernel });
    this.iommu = this.#table.rules.iommu;
  }

  /** VFIO_IOMMU_MAP_DMA: maps `[iova, iova + size)` to host `vaddr`; all-or-nothing. */
  map(iova: number, vaddr: number, size: number): void {
    const op = "type1.map";
    this.#faults?.check(op);
    checkU64(op, "iova", iova);
    checkU64(op, "vaddr", vaddr);
    checkU64(op, "size", size);
    checkMapArguments(op, iova, vaddr, size);
    const end = iova + size; // exact: aligned values up to 2^64
    const c = this.#tree.below(end);
    if (c !== undefined && c.iova + c.size > iova) {
      throw new HwError(
        op,
        "EEXIST",
        `${hex(iova)}+${hex(size)} overlaps the mapping ${hex(c.iova)}+${hex(c.size)}`,
      );
    }
    if (this.#tree.size >= this.dmaEntryLimit) {
      throw new HwError(
        op,
        "ENOSPC",
        `no DMA entries left: ${this.#tree.size} of dma_entry_limit ${this.dmaEntryLimit} in use`,
      );
    }
    if (this.iovaBits < 64 && end > 2 ** this.iovaBits) {
      throw new HwError(
        op,
        "EINVAL",
        `${hex(iova)}+${hex(size)} is outside the ${this.iovaBits}-bit IOMMU aperture`,
      );
    }
    const host = this.#host;
    if (host) {
      // Linux 6.18 drivers/vfio/vfio_iommu_type1.c vfio_pin_pages_remote pins a batch
      // (vaddr_get_pfns: EFAULT at a page that cannot be pinned), then accounts its pages
      // against RLIMIT_MEMLOCK (ENOMEM): the first failure in page order wins, so ENOMEM
      // only when the pages before the unpinnable one do not all fit under the limit.
      const bad = host.unpinnableAt(vaddr, size);
      const room = host.memlockLimit - host.lockedBytes("mm");
      if (bad !== undefined && bad - vaddr > room) host.lock("mm", size, op); // ENOMEM
      host.pin(vaddr, size, op);
      try {
        host.lock("mm", size, op);
      } catch (e) {
        host.unpin(vaddr, size);
        throw e;
      }
    } else if (this.#locked + size > this.memlockLimit) {
      throw new HwError(
        op,
        "ENOMEM",
        `pinning ${
          hex(size)
        } more bytes exceeds RLIMIT_MEMLOCK ${this.memlockLimit} (locked ${this.#locked})`,
      );
    }
    const footprint = this.#table.footprint(
      { iova, size, vaddr },
      // Without a host, the backingPageSize option (drivers/iommu/iommu.c iommu_pgsize
      // sizes entries by iova | paddr: a 4 KiB memfd is not physically contiguous).
      this.#host?.pageSizeAt(vaddr) ?? this.#backingPageSize,
    );
    this.#table.add(footprint);
    this.#tree.set(iova, { iova, size, vaddr, footprint });
    this.#locked += size;
    if (this.#tree.size > this.#peak) this.#peak = this.#tree.size;
    if (this.#table.tablePages > this.#peakTablePages) {
      this.#peakTablePages = this.#table.tablePages;
    }
    this.#stats.mapCalls++;
    this.#stats.mappedBytes += size;
  }

  /**
   * VFIO_IOMMU_UNMAP_DMA: removes the mappings inside `[iova, iova + size)`
   * (or all of them with `{ all: true }`, iova 0 and size 0); returns the bytes
   * unmapped. A failed call removes nothing.
   */
  unmap(iova: number, size: number, opts: { all?: boolean } = {}): number {
    const op = "type1.unmap";
    this.#faults?.check(op);
    checkU64(op, "iova", iova);
    checkU64(op, "size", size);
    if (!isAligned(iova, TYPE1_PAGE_SIZE)) {
      throw new HwError(op, "EINVAL", `iova ${hex(iova)} must be 4 KiB aligned`);
    }
    if (opts.all === true) {
      if (iova !== 0 || size !== 0) {
        throw new HwError(
          op,
          "EINVAL",
          `VFIO_DMA_UNMAP_FLAG_ALL needs iova 0 and size 0, got ${hex(iova)}, ${hex(size)}`,
        );
      }
      return this.#removeRange(0, Infinity);
    }
    if (size === 0 || !isAligned(size, TYPE1_PAGE_SIZE)) {
      throw new HwError(op, "EINVAL", `size ${hex(size)} must be > 0 and 4 KiB aligned`);
    }
    if (wrapsU64(iova, size)) {
      throw new HwError(op, "EOVERFLOW", `${hex(iova)}+${hex(size)} wraps past 2^64`);
    }
    const end = iova + size;
    const head = this.#tree.atOrBelow(iova);
    // The usual unmap names exactly one mapping (QEMU unmaps what it mapped):
    // no other mapping can start inside it, so the edges hold and it is all.
    if (head !== undefined && head.iova === iova && head.size === size) {
      return this.#remove([head]);
    }
    if (head !== undefined && head.iova < iova && head.iova + head.size > iova) {
      throw new HwError(op, "EINVAL", this.#bisects(iova, size, head));
    }
    const tail = this.#tree.below(end);
    if (tail !== undefined && tail.iova + tail.size > end && tail.iova < end) {
      throw new HwError(op, "EINVAL", this.#bisects(iova, size, tail));
    }
    return this.#removeRange(iova, end);
  }

  /** DMA entries still available under `dma_entry_limit`. */
  remainingEntries(): number {
    return this.dmaEntryLimit - this.#tree.size;
  }

  /** Current mappings, sorted by iova (copies). */
  mappings(): DmaMapping[] {
    return this.#tree.values().map(({ iova, size, vaddr }) => ({ iova, size, vaddr }));
  }

  /**
   * Bytes of IO page-table memory allocated (4 KiB per table page, the root and
   * retained pages included: see {@link IoPageTable}).
   */
  get tableBytes(): number {
    return this.#table.tablePages * IO_PAGE_4K;
  }

  /** Table pages allocated that no live mapping needs (freed only with the container). */
  get retainedTablePages(): number {
    return this.#table.retainedTablePages;
  }

  /**
   * The IOMMU domain goes with the container's last device: its retained IO
   * page-table pages are freed (drivers/vfio/vfio_iommu_type1.c
   * `vfio_iommu_type1_detach_group`: `iommu_domain_free` once a domain has no
   * group). Call it when the device detaches; the peak stays.
   */
  freeDomain(): void {
    this.#table.dropRetained();
  }

  /**
   * The container goes (its last group detached, its file closed): every
   * mapping left is unmapped and unpinned (drivers/vfio/vfio_iommu_type1.c
   * `vfio_iommu_type1_detach_group` and `vfio_iommu_type1_release` ->
   * `vfio_iommu_unmap_unpin_all`; counted as one unmap call when there were
   * any), and the domain's table pages are freed ({@link freeDomain}).
   */
  release(): void {
    if (this.#tree.size > 0) this.#removeRange(0, Infinity);
    this.freeDomain();
  }

  /** The most IO page-table pages allocated at once. */
  get peakTablePages(): number {
    return this.#peakTablePages;
  }

  /** Number of live mappings. */
  get mappingCount(): number {
    return this.#tree.size;
  }

  /** The most mappings that were live at once. */
  get peakMappingCount(): number {
    return this.#peak;
  }

  /** Bytes currently locked (pinned) by this container's mappings. */
  get lockedBytes(): number {
    return this.#locked;
  }

  /** Counters for statistics (a copy). */
  get stats(): SimType1Stats {
    return { ...this.#stats };
  }

  /** The mapping at `iova` exactly, if any. */
  mappingAt(iova: number): DmaMapping | undefined {
    const d = this.#tree.get(iova);
    return d === undefined ? undefined : { iova: d.iova, size: d.size, vaddr: d.vaddr };
  }

  #bisects(iova: number, size: number, d: Mapping): string {
    return `${hex(iova)}+${hex(size)} bisects the mapping ${hex(d.iova)}+${
      hex(d.size)
    } (type1 v2 cannot unmap part of a mapping)`;
  }

  /** Removes every mapping whose start lies in `[start, end)`; the caller checked the edges. */
  #removeRange(start: number, end: number): number {
    return this.#remove(this.#tree.valuesInRange(start, end));
  }

  /** Removes `doomed` (live mappings), unpinning their pages; counts one UNMAP call. */
  #remove(doomed: Mapping[]): number {
    let bytes = 0;
    for (const d of doomed) {
      this.#tree.delete(d.iova);
      // vfio_iommu_type1.c vfio_unmap_unpin: one unmap call per physically contiguous run.
      this.#table.remove(d.footprint, contiguousRunCalls(d.footprint, 1));
      this.#host?.unpin(d.vaddr, d.size);
      this.#host?.unlock("mm", d.size);
      this.#locked -= d.size;
      bytes += d.size;
    }
    this.#stats.unmapCalls++;
    this.#stats.unmappedBytes += bytes;
    return bytes;
  }
}
