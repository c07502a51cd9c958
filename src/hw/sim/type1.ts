/**
 * A simulated VFIO type1 (v2) IOMMU container.
 *
 * Rules, in the order vfio_dma_do_map / vfio_dma_do_unmap apply them:
 *
 * - MAP: size, iova and vaddr aligned to the smallest IOMMU page (4 KiB) and
 *   size > 0, else `EINVAL`; iova or vaddr range wrapping past 2^64
 *   `EOVERFLOW`; any overlap with an existing mapping `EEXIST`; no DMA entry
 *   left under `dma_entry_limit` `ENOSPC`; outside the IOMMU aperture
 *   (`iovaBits`) `EINVAL`; pinning beyond RLIMIT_MEMLOCK `ENOMEM`; pinning host
 *   memory that cannot be pinned `EFAULT` (see {@link SimHost.pin}). A map is
 *   all-or-nothing.
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
import { checkDmaMapArguments } from "./dma_map_args.ts";
import type { DmaMapping, Type1Container } from "../backend.ts";
import type { FaultInjector } from "./faults.ts";
import type { SimHost } from "./host_memory.ts";
import { checkU64, hex, isAligned, wrapsU64 } from "./u64.ts";
import { SortedMap } from "../../util/sorted_map.ts";

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
  /** RLIMIT_MEMLOCK in bytes (default Infinity). */
  memlockLimit?: number;
  /** Fault injection. */
  faults?: FaultInjector;
  /** IOMMU address width: mappings must end at or below 2^iovaBits (default 64: no limit). */
  iovaBits?: number;
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

/** A simulated VFIO type1 v2 container with `dma_entry_limit`, memlock and pinning. */
export class SimType1Container implements Type1Container {
  /** The `dma_entry_limit` this container was created with. */
  readonly dmaEntryLimit: number;
  /** RLIMIT_MEMLOCK in bytes. */
  readonly memlockLimit: number;
  /** IOMMU address width. */
  readonly iovaBits: number;
  readonly #host?: SimHost;
  readonly #faults?: FaultInjector;
  #tree = new SortedMap<DmaMapping>();
  #peak = 0;
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
    this.memlockLimit = memlock;
    this.iovaBits = bits;
    this.#host = options.host;
    this.#faults = options.faults;
  }

  /** VFIO_IOMMU_MAP_DMA: maps `[iova, iova + size)` to host `vaddr`; all-or-nothing. */
  map(iova: number, vaddr: number, size: number): void {
    const op = "type1.map";
    this.#faults?.check(op);
    checkU64(op, "iova", iova);
    checkU64(op, "vaddr", vaddr);
    checkU64(op, "size", size);
    checkDmaMapArguments(op, iova, vaddr, size);
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
    if (this.#locked + size > this.memlockLimit) {
      throw new HwError(
        op,
        "ENOMEM",
        `pinning ${
          hex(size)
        } more bytes exceeds RLIMIT_MEMLOCK ${this.memlockLimit} (locked ${this.#locked})`,
      );
    }
    this.#host?.pin(vaddr, size, op);
    this.#tree.set(iova, { iova, size, vaddr });
    this.#locked += size;
    if (this.#tree.size > this.#peak) this.#peak = this.#tree.size;
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
    return this.#tree.values().map((d) => ({ ...d }));
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
    return d === undefined ? undefined : { ...d };
  }

  #bisects(iova: number, size: number, d: DmaMapping): string {
    return `${hex(iova)}+${hex(size)} bisects the mapping ${hex(d.iova)}+${
      hex(d.size)
    } (type1 v2 cannot unmap part of a mapping)`;
  }

  /** Removes every mapping whose start lies in `[start, end)`; the caller checked the edges. */
  #removeRange(start: number, end: number): number {
    return this.#remove(this.#tree.valuesInRange(start, end));
  }

  /** Removes `doomed` (live mappings), unpinning their pages; counts one UNMAP call. */
  #remove(doomed: DmaMapping[]): number {
    let bytes = 0;
    for (const d of doomed) {
      this.#tree.delete(d.iova);
      this.#host?.unpin(d.vaddr, d.size);
      this.#locked -= d.size;
      bytes += d.size;
    }
    this.#stats.unmapCalls++;
    this.#stats.unmappedBytes += bytes;
    return bytes;
  }
}
