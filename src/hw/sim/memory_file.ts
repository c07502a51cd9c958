/**
 * Simulated host memory files: the shared memfd and guest_memfd.
 *
 * Both keep page allocation range-wise and contents sparsely
 * ({@link SparsePages}), so a 1 TiB file costs memory in proportion to what
 * was written and how fragmented its holes are. They differ in the kernel rules
 * they enforce:
 *
 * - memfd (shmem): fallocate accepts KEEP_SIZE and PUNCH_HOLE (PUNCH_HOLE only
 *   with KEEP_SIZE); an unaligned punch zeroes the partial pages at its edges.
 *   The simulated file never grows: allocating past its end without KEEP_SIZE
 *   fails with `EFBIG` (a simplification; shmem would extend the file).
 * - guest_memfd: fallocate requires KEEP_SIZE (`EOPNOTSUPP`), allows only
 *   PUNCH_HOLE besides it (`EOPNOTSUPP`), needs page-aligned offset and length
 *   (`EINVAL`), and cannot allocate past its end (`EINVAL`); a validated punch
 *   cannot fail. Host access needs GUEST_MEMFD_FLAG_MMAP (`ENODEV`, as mmap
 *   would fail); touching a page that is private in the file's own view raises
 *   SIGBUS in the kernel, reported here as `EFAULT` with "SIGBUS" in the message.
 *   The file's view starts shared with GUEST_MEMFD_FLAG_INIT_SHARED and private
 *   without it; with in-place conversion (proposed KVM_SET_MEMORY_ATTRIBUTES2)
 *   {@link SimGuestMemfd.setAttributes} flips it and converting to private fails
 *   with `EAGAIN` and the file offset of the first pinned page.
 *
 * A closed file fails every call with `EBADF`. Closing does not unmap: the
 * host reservation stays, as a mapping outlives its file descriptor.
 *
 * @module
 */

import { type Errno, HwError } from "../errors.ts";
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  GUEST_MEMFD_FLAG_INIT_SHARED,
  GUEST_MEMFD_FLAG_MMAP,
  type GuestMemfd,
  KVM_MEMORY_ATTRIBUTE_PRIVATE,
  type MemoryFile,
} from "../backend.ts";
import { RangeTreeStore } from "../../store/range_tree_store.ts";
import type { FaultInjector, SimOperation } from "./faults.ts";
import { type HostMappingOwner, SimHost } from "./host_memory.ts";
import { SparsePages } from "./_sparse_pages.ts";
import { countPagesWith } from "../../store/_read_runs.ts";
import { isMultipleOfPowerOfTwo } from "../../util/_bits.ts";
import { addWrapsU64, checkPowerOfTwo, checkU64, hex, isAligned } from "../u64.ts";

/** Options shared by both simulated files. */
export interface SimFileOptions {
  /** The host whose address space maps the file and whose pins in-place conversion checks. */
  host?: SimHost;
  /** Fault injection shared with the rest of the simulation. */
  faults?: FaultInjector;
  /** Page size in bytes (default 4096). */
  pageSize?: number;
  /** A name for messages (default `"memfd"` / `"guest_memfd"`). */
  name?: string;
  /**
   * The physical page (folio) size behind the mapping: 4 KiB (default), or
   * 2 MiB / 1 GiB for hugetlb. IOMMU mappings of it can use entries up to
   * that size.
   */
  backingPageSize?: number;
}

/** Options of a simulated guest_memfd. */
export interface SimGuestMemfdOptions extends SimFileOptions {
  /** GUEST_MEMFD_FLAG_* flags (validated by the VM that creates the file). */
  flags?: number;
  /** Whether KVM_SET_MEMORY_ATTRIBUTES2 on the file exists (default false: `ENOTTY`). */
  inPlace?: boolean;
}

/** One maximal run of the file's own attribute view, in bytes. */
export interface FileAttributeRun {
  /** File offset of the run. */
  offset: number;
  /** Length in bytes. */
  size: number;
  /** Attributes of every page in the run (0 = shared). */
  attributes: number;
}

/**
 * What the two simulated files share: size, host mapping, sparse pages, the
 * read/write/punch plumbing and the counters. Subclasses add the kernel rules.
 */
export abstract class SimFileBase implements MemoryFile {
  /** File size in bytes. */
  readonly size: number;
  /** Page size in bytes. */
  readonly pageSize: number;
  /** A name for messages. */
  readonly name: string;
  /** The simulated host the file is mapped into. */
  readonly host: SimHost;
  /** Host virtual address of the mapping (0 when the file cannot be mapped). */
  abstract readonly hostAddress: number;
  #pages: SparsePages;
  /** Fault injection, if any. */
  protected readonly faults?: FaultInjector;
  #closed = false;
  #punchCalls = 0;
  #punchedBytes = 0;

  /** Creates an empty (unallocated, all-zero) file of `size` bytes. */
  constructor(size: number, options: SimFileOptions, defaultName: string) {
    const pageSize = options.pageSize ?? 4096;
    checkPowerOfTwo("pageSize", pageSize, 4096, 2 ** 30);
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new RangeError(`size: must be a positive integer, got ${size}`);
    }
    this.size = size;
    this.pageSize = pageSize;
    this.name = options.name ?? defaultName;
    this.host = options.host ?? new SimHost();
    this.faults = options.faults;
    this.#pages = new SparsePages(size, pageSize);
  }

  /** fallocate(2) with the file's rules. */
  abstract fallocate(mode: number, offset: number, length: number): void;

  /** fallocate(PUNCH_HOLE | KEEP_SIZE): the range reads zero afterwards. */
  punchHole(offset: number, length: number): void {
    this.fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
  }

  /** Bytes of `[offset, offset + length)` backed by allocated pages (default: the whole file). */
  allocatedBytes(offset = 0, length: number = this.size): number {
    if (
      !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0
    ) {
      throw new RangeError(
        `allocatedBytes: offset and length must be non-negative integers, got ${offset}, ${length}`,
      );
    }
    return this.#pages.allocatedBytes(offset, length);
  }

  /** Reads `length` bytes at `offset` through the host mapping. */
  read(offset: number, length: number): Uint8Array {
    this.checkAccess(`${this.kindName}.read`, offset, length);
    return this.#pages.read(offset, length);
  }

  /** Writes `data` at `offset` through the host mapping; allocates the touched pages. */
  write(offset: number, data: Uint8Array): void {
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(`write: data must be a Uint8Array, got ${typeof data}`);
    }
    this.checkAccess(`${this.kindName}.write`, offset, data.length);
    this.#pages.write(offset, data);
  }

  /** Releases the file (idempotent); later calls fail with `EBADF`. */
  close(): void {
    this.#closed = true;
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Successful hole punches. */
  get punchCalls(): number {
    return this.#punchCalls;
  }

  /** Bytes punched by successful calls (each call's range clipped to the file). */
  get punchedBytes(): number {
    return this.#punchedBytes;
  }

  /** Pages holding written bytes (the simulator's memory cost). */
  get writtenPages(): number {
    return this.#pages.writtenPages;
  }

  /** `"memfd"` or `"gmem"`: the prefix of this file's operation names. */
  protected abstract readonly kindName: "memfd" | "gmem";

  /** Throws unless the host may touch `[offset, offset + length)` through the mapping. */
  protected checkAccess(op: string, offset: number, length: number): void {
    if (this.#closed) throw new HwError(op, "EBADF", `${this.name} is closed`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || length < 0) {
      throw new RangeError(
        `${op}: offset and length must be integers (length >= 0), got ${offset}, ${length}`,
      );
    }
    if (offset < 0 || offset + length > this.size) {
      throw new HwError(
        op,
        "EFAULT",
        `SIGBUS: ${hex(offset)}+${hex(length)} is outside ${this.name} of size ${hex(this.size)}`,
      );
    }
  }

  /** Fault check, closed check and fallocate's generic (vfs) argument rules. */
  protected beginFallocate(op: SimOperation, mode: number, offset: number, length: number): void {
    this.faults?.check(op);
    if (this.#closed) throw new HwError(op, "EBADF", `${this.name} is closed`);
    checkArgument(op, "mode", mode);
    checkArgument(op, "offset", offset);
    checkArgument(op, "length", length);
    if (offset < 0 || length <= 0) {
      throw new HwError(
        op,
        "EINVAL",
        `offset must be >= 0 and length > 0, got ${offset}, ${length}`,
      );
    }
    if ((mode & FALLOC_FL_PUNCH_HOLE) !== 0 && (mode & FALLOC_FL_KEEP_SIZE) === 0) {
      throw new HwError(op, "EOPNOTSUPP", "FALLOC_FL_PUNCH_HOLE requires FALLOC_FL_KEEP_SIZE");
    }
  }

  /** Frees whole pages of the range and zeroes partial ones; counts the punch. */
  protected punch(offset: number, length: number): void {
    const end = Math.min(this.size, offset + length);
    if (offset < end) {
      const first = Math.ceil(offset / this.pageSize);
      const last = end === this.size ? this.#pages.pageCount : Math.floor(end / this.pageSize);
      if (first < last) this.#pages.deallocate(first, last);
      // Edges inside a page: zero the bytes, the page stays (as shmem does).
      const headEnd = Math.min(end, first * this.pageSize);
      if (offset < headEnd) this.#pages.zero(offset, headEnd - offset);
      const tailStart = Math.max(offset, last * this.pageSize);
      if (tailStart < end && last >= first) this.#pages.zero(tailStart, end - tailStart);
      this.#punchedBytes += end - offset;
    }
    this.#punchCalls++;
  }

  /** Number of pages (the last one may be partial). */
  protected get pageCount(): number {
    return this.#pages.pageCount;
  }

  /** Marks pages `[first, end)` allocated (fallocate without PUNCH_HOLE). */
  protected allocatePages(first: number, end: number): void {
    this.#pages.allocate(first, end);
  }
}

/** A simulated memfd mapped MAP_SHARED: the host-visible (shared) backing. */
export class SimMemoryFile extends SimFileBase {
  /** Host virtual address of the mapping. */
  readonly hostAddress: number;
  /** Operation prefix. */
  protected readonly kindName = "memfd" as const;

  /** Creates and maps a memfd of `size` bytes. */
  constructor(size: number, options: SimFileOptions = {}) {
    super(size, options, "memfd");
    this.hostAddress = this.host.reserve(size, undefined, { pageSize: options.backingPageSize });
  }

  /**
   * shmem fallocate: mode 0 allocates, KEEP_SIZE allocates without growing,
   * PUNCH_HOLE|KEEP_SIZE deallocates; other bits `EOPNOTSUPP`.
   */
  fallocate(mode: number, offset: number, length: number): void {
    const op = "memfd.fallocate";
    this.beginFallocate(op, mode, offset, length);
    if ((mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) !== 0) {
      fail(op, "EOPNOTSUPP", `mode ${hex(mode)} has bits other than KEEP_SIZE|PUNCH_HOLE`);
    }
    if ((mode & FALLOC_FL_PUNCH_HOLE) !== 0) return this.punch(offset, length);
    const end = offset + length;
    if ((mode & FALLOC_FL_KEEP_SIZE) === 0 && end > this.size) {
      fail(op, "EFBIG", `the simulated memfd cannot grow past ${hex(this.size)}`);
    }
    const first = Math.floor(offset / this.pageSize);
    const last = Math.ceil(Math.min(end, this.size) / this.pageSize);
    this.allocatePages(first, last);
  }
}

/**
 * Refuses an fallocate argument that is not a safe integer. Three calls
 * rather than a loop over `[[name, value], ...]`: that loop built four arrays
 * per fallocate, which only Turbofan's escape analysis removes, and a
 * conversion punches the backing file of the side it leaves
 * (plugins/kvm_attributes.ts `#convert`). Not `checkU64` (hw/u64.ts): a
 * negative offset or length is the kernel's EINVAL here, not a TypeError.
 */
function checkArgument(op: SimOperation, name: string, value: number): void {
  if (!Number.isSafeInteger(value)) {
    throw new TypeError(`${op}: ${name} must be an integer, got ${value}`);
  }
}

/** A simulated guest_memfd (KVM_CREATE_GUEST_MEMFD). Create it through `SimKvm`. */
export class SimGuestMemfd extends SimFileBase implements GuestMemfd, HostMappingOwner {
  /** GUEST_MEMFD_FLAG_* flags it was created with. */
  readonly flags: number;
  /** Host virtual address of the mapping; 0 without GUEST_MEMFD_FLAG_MMAP. */
  readonly hostAddress: number;
  /** Whether in-place conversion (KVM_SET_MEMORY_ATTRIBUTES2) is available. */
  readonly inPlace: boolean;
  /** Operation prefix. */
  protected readonly kindName = "gmem" as const;
  #attributes: RangeTreeStore;
  #privatePages: number;
  #conversions = 0;

  /** Creates a guest_memfd of `size` bytes; `SimKvm.createGuestMemfd` validates the flags. */
  constructor(size: number, options: SimGuestMemfdOptions = {}) {
    super(size, options, "guest_memfd");
    this.flags = options.flags ?? 0;
    this.inPlace = options.inPlace ?? false;
    const initShared = (this.flags & GUEST_MEMFD_FLAG_INIT_SHARED) !== 0;
    this.#attributes = new RangeTreeStore(this.pageCount, {
      bits: 4,
      initial: initShared ? 0 : KVM_MEMORY_ATTRIBUTE_PRIVATE,
    });
    this.#privatePages = initShared ? 0 : this.pageCount;
    this.hostAddress = (this.flags & GUEST_MEMFD_FLAG_MMAP) !== 0
      ? this.host.reserve(size, this)
      : 0;
  }

  /**
   * guest_memfd fallocate: KEEP_SIZE required and only PUNCH_HOLE besides it
   * (`EOPNOTSUPP`), page-aligned offset and length (`EINVAL`), allocation within
   * the file (`EINVAL`). A punch that passed validation cannot fail.
   */
  fallocate(mode: number, offset: number, length: number): void {
    const op = "gmem.fallocate";
    this.beginFallocate(op, mode, offset, length);
    if ((mode & FALLOC_FL_KEEP_SIZE) === 0) {
      fail(op, "EOPNOTSUPP", "guest_memfd requires FALLOC_FL_KEEP_SIZE");
    }
    if ((mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) !== 0) {
      fail(op, "EOPNOTSUPP", `mode ${hex(mode)}: only PUNCH_HOLE may be added to KEEP_SIZE`);
    }
    if (
      !isMultipleOfPowerOfTwo(offset, this.pageSize) ||
      !isMultipleOfPowerOfTwo(length, this.pageSize)
    ) {
      fail(
        op,
        "EINVAL",
        `offset ${hex(offset)} and length ${hex(length)} must be page aligned`,
      );
    }
    if ((mode & FALLOC_FL_PUNCH_HOLE) !== 0) return this.punch(offset, length);
    if (offset + length > this.size) {
      fail(
        op,
        "EINVAL",
        `allocation ${hex(offset)}+${hex(length)} is past the end ${hex(this.size)}`,
      );
    }
    this.allocatePages(offset / this.pageSize, (offset + length) / this.pageSize);
  }

  /**
   * In-place conversion: every page of `[offset, offset + size)` gets
   * `attributes` (0 = shared, KVM_MEMORY_ATTRIBUTE_PRIVATE = private); contents
   * are kept. `ENOTTY` without in-place support; `EINVAL` for unaligned, empty,
   * wrapping or out-of-file ranges and unknown bits; converting to private fails
   * with `EAGAIN` and `errorOffset` (file offset of the first pinned page) while
   * any page is pinned. Nothing changes on failure.
   */
  setAttributes(offset: number, size: number, attributes: number): void {
    const op = "gmem.setAttributes";
    this.faults?.check(op);
    if (this.closed) fail(op, "EBADF", `${this.name} is closed`);
    if (!this.inPlace) {
      fail(op, "ENOTTY", "in-place conversion (KVM_SET_MEMORY_ATTRIBUTES2) is not supported");
    }
    checkU64(op, "offset", offset);
    checkU64(op, "size", size);
    checkU64(op, "attributes", attributes);
    if (attributes > 0x7fffffff || (attributes & ~KVM_MEMORY_ATTRIBUTE_PRIVATE) !== 0) {
      fail(op, "EINVAL", `attributes ${hex(attributes)} has unsupported bits`);
    }
    if (size === 0) fail(op, "EINVAL", "size must not be 0");
    if (addWrapsU64(offset, size)) {
      fail(op, "EINVAL", `range ${hex(offset)}+${hex(size)} wraps`);
    }
    if (!isAligned(offset, this.pageSize) || !isAligned(size, this.pageSize)) {
      fail(op, "EINVAL", `offset ${hex(offset)} and size ${hex(size)} must be page aligned`);
    }
    if (offset + size > this.size) {
      fail(
        op,
        "EINVAL",
        `range ${hex(offset)}+${hex(size)} is past the end of ${this.name} (${hex(this.size)})`,
      );
    }
    const toPrivate = (attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE) !== 0;
    if (toPrivate && this.hostAddress !== 0) {
      const pinned = this.host.firstPinned(this.hostAddress + offset, size);
      if (pinned !== undefined) {
        const errorOffset = pinned - this.hostAddress;
        throw new HwError(
          op,
          "EAGAIN",
          `page at offset ${hex(errorOffset)} of ${this.name} is pinned (refcount ${
            this.host.pinCount(pinned)
          }); drop the pins and retry`,
          { errorOffset },
        );
      }
    }
    const first = offset / this.pageSize;
    const end = (offset + size) / this.pageSize;
    const wasPrivate = countPagesWith(this.#attributes, first, end, KVM_MEMORY_ATTRIBUTE_PRIVATE);
    this.#privatePages += toPrivate ? end - first - wasPrivate : -wasPrivate;
    this.#attributes.set(first, end, attributes);
    this.#conversions++;
  }

  /** The attributes of the page at `offset` in the file's own view (0 = shared). */
  getAttributes(offset: number): number {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= this.size) {
      throw new RangeError(
        `getAttributes: offset must be an integer in [0, ${this.size}), got ${offset}`,
      );
    }
    return this.#attributes.get(Math.floor(offset / this.pageSize));
  }

  /** Maximal runs of the file's attribute view, ascending. */
  *attributeRuns(): Iterable<FileAttributeRun> {
    for (const run of this.#attributes.runs()) {
      yield {
        offset: run.start * this.pageSize,
        size: Math.min(this.size, run.end * this.pageSize) - run.start * this.pageSize,
        attributes: run.state,
      };
    }
  }

  /** Bytes private in the file's own view. */
  privateBytes(): number {
    return Math.min(this.size, this.#privatePages * this.pageSize);
  }

  /** Successful in-place conversions. */
  get conversions(): number {
    return this.#conversions;
  }

  /** {@link HostMappingOwner}: private pages cannot be pinned (GUP fails on them). */
  unpinnableOffset(offset: number, size: number): number | undefined {
    const end = Math.min(this.size, offset + size);
    if (offset >= end) return offset;
    const first = Math.floor(offset / this.pageSize);
    const last = Math.ceil(end / this.pageSize);
    for (const run of this.#attributes.runs(first, last)) {
      if ((run.state & KVM_MEMORY_ATTRIBUTE_PRIVATE) !== 0) {
        return Math.max(offset, run.start * this.pageSize);
      }
    }
    return offset + size > this.size ? this.size : undefined;
  }

  /** Host access needs MMAP (`ENODEV`) and shared pages (SIGBUS, as `EFAULT`). */
  protected override checkAccess(op: string, offset: number, length: number): void {
    if (this.closed) fail(op, "EBADF", `${this.name} is closed`);
    if ((this.flags & GUEST_MEMFD_FLAG_MMAP) === 0) {
      fail(op, "ENODEV", `${this.name} was created without GUEST_MEMFD_FLAG_MMAP: mmap fails`);
    }
    super.checkAccess(op, offset, length);
    if (length === 0) return;
    const bad = this.unpinnableOffset(offset, length);
    if (bad !== undefined) {
      fail(
        op,
        "EFAULT",
        `SIGBUS: the page at offset ${hex(bad)} of ${this.name} is private to the guest`,
      );
    }
  }
}

/** Throws an {@link HwError}; a function so that control flow sees `never`. */
function fail(op: string, errno: Errno, message: string): never {
  throw new HwError(op, errno, message);
}
