/**
 * The simulated host process: its virtual address space and the page
 * references (pins) that IOMMU mappings hold on it.
 *
 * Reservations stand in for mmap(): {@link SimHost.reserve} hands out
 * non-overlapping, aligned host virtual addresses (1 GiB aligned for sizes of
 * 1 GiB and more, 2 MiB otherwise, so IO page tables can use large entries).
 * Pinning stands in for get_user_pages(FOLL_PIN): it fails with `EFAULT` where
 * the real call would (an address that is not mapped, or a guest_memfd page the
 * host may not touch), and it counts references per host page in a range store,
 * so a 1 TiB mapping costs a handful of runs. In-place guest_memfd conversion
 * asks {@link SimHost.firstPinned} whether any page still has an extra user.
 *
 * @module
 */

import { HwError } from "../errors.ts";
import { RangeTreeStore } from "../../store/range_tree_store.ts";
import { hex } from "../u64.ts";
import { readRuns } from "../../store/_read_runs.ts";

/** Host page size the simulated host uses for pins and reservations. */
export const HOST_PAGE_SIZE = 4096;
/** The top of the simulated user address space (x86-64 with 4-level paging: 2^47). */
export const HOST_ADDRESS_LIMIT = 2 ** 47;
/** Where the first reservation starts (1 TiB): leaves low addresses unused, as mmap does. */
const FIRST_ADDRESS = 2 ** 40;
const GIB = 2 ** 30;
const TWO_MIB = 2 ** 21;
/** Bits of the per-page pin counter: up to 2^20 - 1 references per page. */
const PIN_BITS = 20;
const PIN_MAX = 2 ** PIN_BITS - 1;

/** Whoever backs a reservation and may forbid pinning parts of it (a guest_memfd). */
export interface HostMappingOwner {
  /** A short name for messages, e.g. `"guest_memfd#1"`. */
  readonly name: string;
  /**
   * The first byte offset inside `[offset, offset + size)` (relative to the
   * reservation) that cannot be pinned, or `undefined` when all of it can.
   */
  unpinnableOffset(offset: number, size: number): number | undefined;
}

interface Reservation {
  base: number;
  size: number;
  owner?: HostMappingOwner;
  /** Bytes of physically contiguous memory behind each aligned page of the reservation. */
  pageSize: number;
}

/** Options of {@link SimHost.reserve}. */
export interface ReserveOptions {
  /**
   * The backing's page (folio) size: 4 KiB for shmem and memfd folios
   * (default), 2 MiB for THP or 2 MiB hugetlb, 1 GiB for 1 GiB hugetlb. Each
   * aligned page of that size is physically contiguous, which is what lets an
   * IOMMU use a large IO page-table entry (drivers/iommu/iommu.c
   * `iommu_pgsize` picks the size from the alignment of `iova | paddr`).
   */
  pageSize?: number;
}

/** Options of {@link SimHost}. */
export interface SimHostOptions {
  /**
   * RLIMIT_MEMLOCK in bytes (default Infinity, as with CAP_IPC_LOCK or a
   * raised limit). It bounds each locked-memory counter below.
   */
  memlockLimit?: number;
}

/**
 * Which locked-memory counter a pin charges. VFIO type1 charges the
 * process's `mm->locked_vm` (drivers/vfio/vfio_iommu_type1.c `vfio_lock_acct`
 * -> `__account_locked_vm`); native iommufd charges the user's
 * `user->locked_vm` (drivers/iommu/iommufd/pages.c `incr_user_locked_vm`,
 * account mode IOPT_PAGES_ACCOUNT_USER), or `mm->locked_vm` when opened
 * through the VFIO compat path. Both are held to the same RLIMIT_MEMLOCK.
 */
export type LockedCounter = "mm" | "user";

/** The simulated host address space and its page pins. Share one between the simulators. */
export class SimHost {
  #next = FIRST_ADDRESS;
  /**
   * Reservations by ascending base: {@link SimHost.reserve} hands out rising
   * addresses, so appending keeps the order, and a binary search over this short
   * array is far cheaper than a B-tree walk on every pin.
   */
  #reservations: Reservation[] = [];
  #pins = new RangeTreeStore(HOST_ADDRESS_LIMIT / HOST_PAGE_SIZE, { bits: PIN_BITS });
  #pinnedPages = 0;
  #pinCalls = 0;
  #locked: Record<LockedCounter, number> = { mm: 0, user: 0 };
  /** RLIMIT_MEMLOCK in bytes. */
  readonly memlockLimit: number;

  /** A host process with nothing reserved; see {@link SimHostOptions}. */
  constructor(options: SimHostOptions = {}) {
    const limit = options.memlockLimit ?? Infinity;
    if (typeof limit !== "number" || !(limit >= 0)) {
      throw new RangeError(`memlockLimit: must be a number >= 0, got ${limit}`);
    }
    this.memlockLimit = limit;
  }

  /**
   * Charges `bytes` of pinned memory to `counter`; `ENOMEM` (naming `op`) when
   * it would pass RLIMIT_MEMLOCK, and nothing is charged then.
   */
  lock(counter: LockedCounter, bytes: number, op: string): void {
    const now = this.#locked[counter];
    if (now + bytes > this.memlockLimit) {
      const name = counter === "mm" ? "mm->locked_vm" : "user->locked_vm";
      throw new HwError(
        op,
        "ENOMEM",
        `pinning ${hex(bytes)} more bytes would take ${name} past RLIMIT_MEMLOCK ` +
          `${this.memlockLimit} (locked ${now})`,
      );
    }
    this.#locked[counter] = now + bytes;
  }

  /** Returns `bytes` to `counter`. */
  unlock(counter: LockedCounter, bytes: number): void {
    this.#locked[counter] -= bytes;
  }

  /** Bytes charged to `counter` now. */
  lockedBytes(counter: LockedCounter): number {
    return this.#locked[counter];
  }

  /**
   * Reserves `size` bytes of host address space (like an anonymous or file
   * mmap) and returns its address. `owner` may refuse pins on parts of it.
   * Fails with `ENOMEM` when the simulated address space is exhausted.
   */
  reserve(size: number, owner?: HostMappingOwner, options: ReserveOptions = {}): number {
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new RangeError(`reserve: size must be a positive integer, got ${size}`);
    }
    const pageSize = options.pageSize ?? HOST_PAGE_SIZE;
    if (pageSize !== HOST_PAGE_SIZE && pageSize !== TWO_MIB && pageSize !== GIB) {
      throw new RangeError(`reserve: pageSize must be 4 KiB, 2 MiB or 1 GiB, got ${pageSize}`);
    }
    if (size % pageSize !== 0) {
      throw new RangeError(`reserve: size ${size} must be a multiple of pageSize ${pageSize}`);
    }
    // mmap aligns large mappings so the backing's pages line up with virtual addresses.
    const alignment = Math.max(pageSize, size >= GIB ? GIB : TWO_MIB);
    const base = Math.ceil(this.#next / alignment) * alignment;
    const rounded = Math.ceil(size / HOST_PAGE_SIZE) * HOST_PAGE_SIZE;
    if (base + rounded > HOST_ADDRESS_LIMIT) {
      throw new HwError(
        "host.reserve",
        "ENOMEM",
        `no room for ${hex(size)} bytes below the host address limit ${hex(HOST_ADDRESS_LIMIT)}`,
      );
    }
    this.#reservations.push({ base, size: rounded, owner, pageSize });
    this.#next = base + rounded;
    return base;
  }

  /**
   * Takes one reference on every host page of `[vaddr, vaddr + size)`.
   * All-or-nothing: fails with `EFAULT` (errors name `op`) when part of the range
   * is not reserved or its owner forbids pinning, and with `ENOMEM` when a
   * page's reference count would overflow.
   */
  pin(vaddr: number, size: number, op = "host.pin"): void {
    const [first, end] = this.#pages("pin", vaddr, size);
    this.#checkPinnable(vaddr, size, op);
    const runs = readRuns(this.#pins, first, end);
    for (const run of runs) {
      if (run.state >= PIN_MAX) {
        throw new HwError(
          op,
          "ENOMEM",
          `page ${hex(run.start * HOST_PAGE_SIZE)} already has ${run.state} references`,
        );
      }
    }
    for (const run of runs) {
      if (run.state === 0) this.#pinnedPages += run.end - run.start;
      this.#pins.set(run.start, run.end, run.state + 1);
    }
    this.#pinCalls++;
  }

  /**
   * Drops one reference from every host page of `[vaddr, vaddr + size)`.
   * Throws a `RangeError` (a simulator bug, not a kernel error) when a page
   * in the range is not pinned; nothing changes then.
   */
  unpin(vaddr: number, size: number): void {
    const [first, end] = this.#pages("unpin", vaddr, size);
    const runs = readRuns(this.#pins, first, end);
    for (const run of runs) {
      if (run.state === 0) {
        throw new RangeError(
          `unpin: page ${hex(run.start * HOST_PAGE_SIZE)} in ${hex(vaddr)}+${
            hex(size)
          } is not pinned`,
        );
      }
    }
    for (const run of runs) {
      if (run.state === 1) this.#pinnedPages -= run.end - run.start;
      this.#pins.set(run.start, run.end, run.state - 1);
    }
  }

  /** The byte address of the first pinned page touching `[vaddr, vaddr + size)`, if any. */
  firstPinned(vaddr: number, size: number): number | undefined {
    if (size <= 0) return undefined;
    const first = Math.floor(vaddr / HOST_PAGE_SIZE);
    const end = Math.min(Math.ceil((vaddr + size) / HOST_PAGE_SIZE), this.#pins.length);
    if (first >= end) return undefined;
    for (const run of this.#pins.runs(first, end)) {
      if (run.state > 0) return run.start * HOST_PAGE_SIZE;
    }
    return undefined;
  }

  /**
   * The backing page size at `vaddr` (see {@link ReserveOptions.pageSize});
   * 4 KiB outside every reservation.
   */
  pageSizeAt(vaddr: number): number {
    const i = this.#lastReservationAtOrBelow(vaddr);
    const r = this.#reservations[i];
    return r !== undefined && vaddr < r.base + r.size ? r.pageSize : HOST_PAGE_SIZE;
  }

  /** The reference count of the host page containing `vaddr`. */
  pinCount(vaddr: number): number {
    return this.#pins.get(Math.floor(vaddr / HOST_PAGE_SIZE));
  }

  /** Bytes of host memory with at least one reference. */
  pinnedBytes(): number {
    return this.#pinnedPages * HOST_PAGE_SIZE;
  }

  /** Successful pin calls so far. */
  get pinCalls(): number {
    return this.#pinCalls;
  }

  /** Bytes of address space reserved so far. */
  reservedBytes(): number {
    let total = 0;
    for (const r of this.#reservations) total += r.size;
    return total;
  }

  #pages(what: string, vaddr: number, size: number): [number, number] {
    if (
      !Number.isSafeInteger(vaddr) || !Number.isSafeInteger(size) || vaddr < 0 || size <= 0 ||
      vaddr % HOST_PAGE_SIZE !== 0 || size % HOST_PAGE_SIZE !== 0 ||
      vaddr + size > HOST_ADDRESS_LIMIT
    ) {
      throw new RangeError(
        `${what}: vaddr and size must be page aligned, size > 0, below ${
          hex(HOST_ADDRESS_LIMIT)
        }; got vaddr ${vaddr}, size ${size}`,
      );
    }
    return [vaddr / HOST_PAGE_SIZE, (vaddr + size) / HOST_PAGE_SIZE];
  }

  /** EFAULT where get_user_pages would fail: a hole in the address space or a forbidden page. */
  #checkPinnable(vaddr: number, size: number, op: string): void {
    const fault = this.#firstFault(vaddr, size);
    if (fault !== undefined) throw new HwError(op, "EFAULT", fault.why);
  }

  /**
   * The host address of the first page of `[vaddr, vaddr + size)` that cannot be
   * pinned (not reserved, or its owner forbids it), or undefined when all can.
   */
  unpinnableAt(vaddr: number, size: number): number | undefined {
    this.#pages("pin", vaddr, size);
    return this.#firstFault(vaddr, size)?.at;
  }

  /** The first page {@link SimHost.pin} would fault on, and why; undefined when none. */
  #firstFault(vaddr: number, size: number): { at: number; why: string } | undefined {
    const end = vaddr + size;
    let at = vaddr;
    // Walk the reservations covering [vaddr, end) in order; a gap is a fault.
    for (let i = this.#lastReservationAtOrBelow(at); at < end; i++) {
      const r = this.#reservations[i];
      if (r === undefined || r.base > at || r.base + r.size <= at) {
        return { at, why: `host address ${hex(at)} is not mapped in the host` };
      }
      const stop = Math.min(end, r.base + r.size);
      const bad = r.owner?.unpinnableOffset(at - r.base, stop - at);
      if (bad !== undefined) {
        return {
          at: r.base + bad,
          why: `host address ${hex(r.base + bad)} (${r.owner!.name} offset ${
            hex(bad)
          }) cannot be pinned: the page is private`,
        };
      }
      at = stop;
    }
    return undefined;
  }

  /** Index of the last reservation whose base is at or below `address` (-1 if none). */
  #lastReservationAtOrBelow(address: number): number {
    let lo = 0, hi = this.#reservations.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#reservations[mid].base <= address) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }
}
