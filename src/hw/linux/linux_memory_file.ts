/**
 * A real file of host memory (a memfd, or a guest_memfd through the subclass in
 * `linux_guest_memfd.ts`) with its MAP_SHARED host mapping.
 *
 * Backing accounting uses cachestat(2) (Linux 6.5+; every kernel with
 * guest_memfd has it). The alternatives were tried on Linux 6.18 and each
 * fails on guest_memfd: lseek(SEEK_DATA/SEEK_HOLE) gives ESPIPE (the file has
 * no llseek), fstat's st_blocks stays 0 (guest_memfd does no block
 * accounting), and mincore() misses pages allocated by fallocate (it counts
 * only up-to-date folios, and guest_memfd marks a folio up to date when it is
 * first faulted). cachestat counts the folios in the page cache, which is
 * exactly "allocated" for both file kinds, and needs no mapping.
 *
 * `read` never faults a hole in: a page that is not allocated reads as zero
 * without touching the mapping, because touching it would allocate it (both
 * shmem and guest_memfd fill holes on fault) and so undo the punch being checked.
 *
 * @module
 */

import { HwError } from "../errors.ts";
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, type MemoryFile } from "../backend.ts";
import { toBigU64 } from "../u64.ts";
import { checkMappedAccess, offArg, u32Arg } from "./arguments.ts";
import { checkU64 } from "../u64.ts";
import { cString, lastError, libc, SYS_CACHESTAT } from "./libc.ts";

const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_SHARED = 0x01;
const MFD_CLOEXEC = 0x1;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/** What a {@link LinuxMemoryFile} is made of; it owns `fd` and `mapping` from then on. */
export interface MemoryFileParts {
  /** Prefix of error `op` names, as the simulator spells them: `"memfd"` or `"gmem"`. */
  kind: "memfd" | "gmem";
  /** The open file descriptor. */
  fd: number;
  /** File size in bytes. */
  size: number;
  /** The MAP_SHARED mapping of the whole file, or null when it cannot be mapped. */
  mapping: Deno.PointerObject | null;
  /** Called once when the file is closed (the VM forgets it). */
  onClose?: () => void;
}

/**
 * mmap(MAP_SHARED, read/write) of `size` bytes of `fd`. Throws the kernel's
 * errno as a {@link HwError}; the caller still owns `fd` on failure.
 */
export function mapShared(op: string, fd: number, size: number): Deno.PointerObject {
  const { sym } = libc();
  const ptr = sym.mmap(null, toBigU64(size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n);
  if (ptr === null || BigInt(Deno.UnsafePointer.value(ptr)) === MAP_FAILED) {
    throw lastError(op, `mmap(${size} bytes, MAP_SHARED)`);
  }
  return ptr;
}

/** Closes `fd`, ignoring errors: used only to release on an error path. */
export function closeQuietly(fd: number): void {
  libc().sym.close(fd);
}

/** A memfd or guest_memfd with its host mapping; see the module doc. */
export class LinuxMemoryFile implements MemoryFile {
  /** File size in bytes. */
  readonly size: number;
  /** Host virtual address of the mapping (0 when the file is not mapped). */
  readonly hostAddress: number;
  readonly #kind: "memfd" | "gmem";
  /**
   * `fallocate`'s and `punchHole`'s op name, made once: every 4 KiB
   * conversion punches, and builds no string for it (the `linux 4k` bench rows).
   */
  readonly #fallocateOp: "memfd.fallocate" | "gmem.fallocate";
  #fd: number;
  #mapping: Deno.PointerObject | null;
  #onClose?: () => void;

  /** Takes ownership of `parts.fd` and `parts.mapping`. */
  constructor(parts: MemoryFileParts) {
    this.#kind = parts.kind;
    this.#fallocateOp = parts.kind === "memfd" ? "memfd.fallocate" : "gmem.fallocate";
    this.#fd = parts.fd;
    this.size = parts.size;
    this.#mapping = parts.mapping;
    this.#onClose = parts.onClose;
    this.hostAddress = parts.mapping === null ? 0 : Number(Deno.UnsafePointer.value(parts.mapping));
  }

  /** The file descriptor (-1 once closed). */
  get fd(): number {
    return this.#fd;
  }

  /** True once {@link close} ran. */
  get closed(): boolean {
    return this.#fd < 0;
  }

  /** fallocate(2); the kernel validates `mode`, alignment and bounds. */
  fallocate(mode: number, offset: number, length: number): void {
    u32Arg(this.#fallocateOp, "mode", mode);
    this.#fallocate(mode, offset, length);
  }

  /** fallocate(PUNCH_HOLE | KEEP_SIZE): the range is freed and reads zero. */
  punchHole(offset: number, length: number): void {
    // The mode is a constant that fits 32 bits: only the range needs checking.
    this.#fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
  }

  /** fallocate(2) with a checked `mode`; checks `offset` and `length`. */
  #fallocate(mode: number, offset: number, length: number): void {
    const op = this.#fallocateOp;
    const off = offArg(op, "offset", offset);
    const len = offArg(op, "length", length);
    const fd = this.#open(op);
    if (libc().sym.fallocate(fd, mode | 0, off, len) === -1) {
      throw lastError(op, `fallocate(mode 0x${mode.toString(16)}, ${offset}, ${length})`);
    }
  }

  /**
   * Bytes of `[offset, offset + length)` (clipped to the file) on allocated
   * pages, from cachestat. Partial pages at either end count only their overlap.
   */
  allocatedBytes(offset = 0, length: number = this.size): number {
    const op = `${this.#kind}.allocatedBytes`;
    checkU64(op, "offset", offset);
    checkU64(op, "length", length);
    this.#open(op);
    const end = Math.min(this.size, offset + length);
    if (offset >= end) return 0;
    const ps = libc().pageSize;
    const firstFull = Math.ceil(offset / ps);
    const lastFull = Math.floor(end / ps);
    if (firstFull >= lastFull) {
      // The range lies within one page or straddles one boundary: count per page.
      let bytes = 0;
      for (let page = Math.floor(offset / ps); page * ps < end; page++) {
        if (this.#residentPages(op, page, 1) === 1) {
          bytes += Math.min(end, (page + 1) * ps) - Math.max(offset, page * ps);
        }
      }
      return bytes;
    }
    let bytes = this.#residentPages(op, firstFull, lastFull - firstFull) * ps;
    if (offset < firstFull * ps && this.#residentPages(op, firstFull - 1, 1) === 1) {
      bytes += firstFull * ps - offset;
    }
    if (end > lastFull * ps && this.#residentPages(op, lastFull, 1) === 1) {
      bytes += end - lastFull * ps;
    }
    return bytes;
  }

  /** Reads through the mapping; holes read as zero without being faulted in. */
  read(offset: number, length: number): Uint8Array {
    const op = `${this.#kind}.read`;
    const mapping = this.#mapped(op);
    checkMappedAccess(op, offset, length, this.size);
    this.checkHostAccess(op, offset, length);
    const out = new Uint8Array(length);
    if (length === 0) return out;
    const ps = libc().pageSize;
    const first = Math.floor(offset / ps);
    const pages = Math.ceil((offset + length) / ps) - first;
    const view = new Deno.UnsafePointerView(mapping);
    if (this.#residentPages(op, first, pages) === pages) {
      view.copyInto(out, offset);
      return out;
    }
    for (let page = first; page < first + pages; page++) {
      if (this.#residentPages(op, page, 1) === 0) continue; // a hole: stays zero
      const from = Math.max(offset, page * ps);
      const to = Math.min(offset + length, (page + 1) * ps);
      view.copyInto(out.subarray(from - offset, to - offset), from);
    }
    return out;
  }

  /** Writes through the mapping; the touched pages become allocated. */
  write(offset: number, data: Uint8Array): void {
    const op = `${this.#kind}.write`;
    if (!(data instanceof Uint8Array)) {
      throw new TypeError(`${op}: data must be a Uint8Array, got ${typeof data}`);
    }
    const mapping = this.#mapped(op);
    checkMappedAccess(op, offset, data.length, this.size);
    this.checkHostAccess(op, offset, data.length);
    if (data.length === 0) return;
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(mapping, data.length, offset)).set(data);
  }

  /** Unmaps and closes the file (idempotent). */
  close(): void {
    if (this.#fd < 0) return;
    const { sym } = libc();
    if (this.#mapping !== null) sym.munmap(this.#mapping, BigInt(this.size));
    sym.close(this.#fd);
    this.#mapping = null;
    this.#fd = -1;
    const onClose = this.#onClose;
    this.#onClose = undefined;
    onClose?.();
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Throws where touching `[offset, offset + length)` through the mapping would
   * fault in the kernel. Plain memfds never fault inside the file; guest_memfd
   * overrides this for private pages (which raise SIGBUS on the host).
   */
  protected checkHostAccess(_op: string, _offset: number, _length: number): void {}

  #open(op: string): number {
    if (this.#fd < 0) throw new HwError(op, "EBADF", `the ${this.#fileName()} is closed`);
    return this.#fd;
  }

  #mapped(op: string): Deno.PointerObject {
    this.#open(op);
    if (this.#mapping === null) {
      throw new HwError(
        op,
        "ENODEV",
        `the ${this.#fileName()} has no host mapping (created without GUEST_MEMFD_FLAG_MMAP)`,
      );
    }
    return this.#mapping;
  }

  #fileName(): string {
    return this.#kind === "gmem" ? "guest_memfd" : "memfd";
  }

  /** Number of pages in `[firstPage, firstPage + count)` present in the page cache. */
  #residentPages(op: string, firstPage: number, count: number): number {
    const ps = libc().pageSize;
    const range = new BigUint64Array([BigInt(firstPage * ps), BigInt(count * ps)]);
    // struct cachestat: nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted.
    const stat = new BigUint64Array(5);
    const rc = libc().sym.syscall4(
      BigInt(SYS_CACHESTAT),
      BigInt(this.#fd),
      new Uint8Array(range.buffer),
      new Uint8Array(stat.buffer),
      0n,
    );
    if (Number(rc) === -1) throw lastError(op, "cachestat");
    // Swapped-out shmem pages are still allocated to the file: count them too.
    return Number(stat[0] + stat[3]);
  }
}

/**
 * memfd_create + ftruncate + mmap(MAP_SHARED): the host-visible (shared)
 * backing of a region. Everything acquired is released if a later step fails.
 */
export function openSharedMemfd(size: number, onClose?: () => void): LinuxMemoryFile {
  const op = "kvm.createSharedMemory";
  const length = offArg(op, "size", size);
  const { sym } = libc();
  const fd = sym.memfd_create(cString("memstate-shared"), MFD_CLOEXEC);
  if (fd === -1) throw lastError(op, "memfd_create");
  try {
    if (sym.ftruncate(fd, length) === -1) throw lastError(op, `ftruncate(${size})`);
    const mapping = mapShared(op, fd, size);
    return new LinuxMemoryFile({ kind: "memfd", fd, size, mapping, onClose });
  } catch (error) {
    closeQuietly(fd);
    throw error;
  }
}
