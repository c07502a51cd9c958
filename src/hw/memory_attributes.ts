/**
 * KVM's per-guest-frame memory attribute table (KVM_SET_MEMORY_ATTRIBUTES).
 *
 * The kernel keeps attributes in an xarray indexed by guest frame number,
 * independent of memslots; a frame without an entry is shared (attributes 0).
 * Here the same table is a range store over the whole u64 guest physical space
 * (2^52 frames of 4 KiB), so its memory grows with the number of attribute
 * extents; where the VM supports one attribute (KVM defines only PRIVATE), a
 * stretch that keeps converting one frame at a time is held as a bitmap
 * besides (_frame_bits.ts). The real Linux backend reuses this class to
 * remember what it set where the running kernel cannot report it.
 *
 * @module
 */

import { HwError } from "./errors.ts";
import { RangeTreeStore } from "../store/range_tree_store.ts";
import { FrameBits } from "./_frame_bits.ts";
import { KVM_MEMORY_ATTRIBUTE_PRIVATE } from "./backend.ts";
import { countPagesWith } from "../store/_read_runs.ts";
import { addWrapsU64, checkPowerOfTwo, checkU64, hex, isAligned } from "./u64.ts";

const OP = "kvm.setMemoryAttributes";

/** One maximal run of guest frames with equal attributes, in bytes. */
export interface AttributeRun {
  /** Guest physical address of the run. */
  gpa: number;
  /** Length in bytes. */
  size: number;
  /** The attributes every frame of the run has (0 = shared). */
  attributes: number;
}

/** The attribute table with the kernel's validation rules. */
export class SimMemoryAttributes {
  /** Attribute bits `set` accepts (KVM_CAP_MEMORY_ATTRIBUTES). */
  readonly supportedMask: number;
  /** Guest page size in bytes. */
  readonly pageSize: number;
  /**
   * The attribute words by frame: a {@link FrameBits} where a word is one
   * bit (one supported attribute), else a range store of the word's bits.
   */
  #store: RangeTreeStore | FrameBits;
  /**
   * Attribute words are stored shifted down past the unsupported low bits:
   * PRIVATE (bit 3), the only attribute KVM defines, is stored as one bit, so
   * fragmented stretches cost one bit plane, not four.
   */
  #shift: number;
  /** Pages marked private, or -1 when not counted since the last change (see privateBytes). */
  #privatePages = 0;
  #calls = 0;
  /** Frames in the u64 guest physical space: `2^64 / pageSize`, at most 2^52. */
  readonly #frames: number;

  /**
   * An all-shared table accepting the attribute bits in `supportedMask`
   * (at most 31 bits; KVM defines only {@link KVM_MEMORY_ATTRIBUTE_PRIVATE}).
   */
  constructor(supportedMask: number, pageSize = 4096) {
    if (!Number.isInteger(supportedMask) || supportedMask < 0 || supportedMask > 0x7fffffff) {
      throw new RangeError(
        `supportedMask: must be an integer in [0, 0x7fffffff], got ${supportedMask}`,
      );
    }
    checkPowerOfTwo("pageSize", pageSize, 4096, 2 ** 30);
    this.supportedMask = supportedMask;
    this.pageSize = pageSize;
    this.#shift = supportedMask === 0 ? 0 : 31 - Math.clz32(supportedMask & -supportedMask);
    const bits = Math.max(1, 32 - Math.clz32(supportedMask >>> this.#shift));
    this.#frames = 2 ** 64 / pageSize;
    this.#store = bits === 1
      ? new FrameBits(this.#frames)
      : new RangeTreeStore(this.#frames, { bits });
  }

  /**
   * KVM_SET_MEMORY_ATTRIBUTES: gives every frame of `[gpa, gpa + size)` exactly
   * `attributes`. `EINVAL` (nothing changes) unless `flags` is 0, `attributes`
   * has only supported bits, `size` > 0, the range does not wrap, and `gpa` and
   * `size` are page aligned.
   */
  set(gpa: number, size: number, attributes: number, flags = 0): void {
    // No arithmetic on what may not be a number (a BigInt would throw its own TypeError).
    const numbers = typeof gpa === "number" && typeof size === "number";
    const first = numbers ? gpa / this.pageSize : NaN;
    const pages = numbers ? size / this.pageSize : NaN;
    // Whole when gpa and size are aligned integers: the page size is a power
    // of two, so the quotients are exact. `gpa` is tested itself, as a tiny
    // fraction such as 5e-324 divides to 0; `pages` must be at least 1, so no
    // fraction of a size divides to a whole. `end` is then exact (below 2^52).
    // Every call the kernel accepts passes this test, so #check runs only to
    // throw the broken rule's error, in the kernel's order. Skipping #check's
    // calls on every accepted call took the `linux 4k (unallocated)` row from
    // 1.49x to 1.42x (medians of six interleaved processes of
    // `bench/linux_rows.ts --reps 6` each).
    const end = first + pages;
    const accepted = flags === 0 && Number.isInteger(gpa) && Number.isSafeInteger(first) &&
      first >= 0 && Number.isSafeInteger(pages) && pages > 0 && end < this.#frames &&
      Number.isInteger(attributes) && attributes >= 0 && attributes <= 0x7fffffff &&
      (attributes & ~this.supportedMask) === 0;
    if (!accepted) {
      this.#check(gpa, size, attributes, flags);
      // Unreachable while the test above takes every call the kernel accepts.
      throw new Error(`${OP}: internal: an accepted call failed the quick test`);
    }
    this.#store.set(first, end, attributes >>> this.#shift);
    this.#privatePages = -1;
    this.#calls++;
  }

  /**
   * Throws the error of the first rule `set`'s arguments break, in the
   * kernel's order (kvm_vm_ioctl_set_mem_attributes).
   */
  #check(gpa: number, size: number, attributes: number, flags: number): void {
    checkU64(OP, "gpa", gpa);
    checkU64(OP, "size", size);
    checkU64(OP, "attributes", attributes);
    checkU64(OP, "flags", flags);
    // Same order as kvm_vm_ioctl_set_mem_attributes; every failure is EINVAL.
    if (flags !== 0) throw new HwError(OP, "EINVAL", `flags must be 0, got ${hex(flags)}`);
    if (attributes > 0x7fffffff || (attributes & ~this.supportedMask) !== 0) {
      throw new HwError(
        OP,
        "EINVAL",
        `attributes ${hex(attributes)} has bits outside the supported mask ${
          hex(this.supportedMask)
        }`,
      );
    }
    if (size === 0) throw new HwError(OP, "EINVAL", "size must not be 0");
    if (addWrapsU64(gpa, size)) {
      throw new HwError(OP, "EINVAL", `range ${hex(gpa)}+${hex(size)} wraps around 2^64`);
    }
    if (!isAligned(gpa, this.pageSize) || !isAligned(size, this.pageSize)) {
      throw new HwError(
        OP,
        "EINVAL",
        `gpa ${hex(gpa)} and size ${hex(size)} must be aligned to the page size ${
          hex(this.pageSize)
        }`,
      );
    }
  }

  /** The attributes of the guest frame containing `gpa` (0 = shared). */
  get(gpa: number): number {
    checkU64("kvm.getMemoryAttributes", "gpa", gpa);
    if (gpa >= 2 ** 64) return 0;
    return this.#store.get(Math.floor(gpa / this.pageSize)) << this.#shift;
  }

  /**
   * Bytes of guest physical memory marked private. Counted from the table's
   * runs when asked after a change (reports ask once; every 4 KiB conversion
   * sets attributes, and counting there read the table twice per call: about
   * a fifth of `set`, the `linux 4k` rows of `deno task bench:report`).
   */
  privateBytes(): number {
    if (this.#privatePages < 0) {
      const store = this.#store;
      const mask = KVM_MEMORY_ATTRIBUTE_PRIVATE >>> this.#shift;
      this.#privatePages = store instanceof FrameBits
        ? (mask & 1) === 0 ? 0 : store.ones
        : countPagesWith(store, 0, store.length, mask);
    }
    return this.#privatePages * this.pageSize;
  }

  /** Successful `set` calls. */
  get setCalls(): number {
    return this.#calls;
  }

  /**
   * Number of maximal runs over the whole guest physical space (at least 1).
   * Kept up to date while the table is a range store alone; counted over its
   * runs while it holds bitmap blocks (_frame_bits.ts), as reports ask once.
   */
  get runCount(): number {
    return this.#store.runCount;
  }

  /**
   * Maximal runs of equal attributes in ascending order, covering `[0, 2^64)`
   * (the last run ends at 2^64, written as a double). Pass `gpa` and `size` to
   * clip to a window.
   */
  *runs(gpa = 0, size: number = 2 ** 64 - gpa): Iterable<AttributeRun> {
    const first = Math.floor(gpa / this.pageSize);
    const end = Math.min(this.#store.length, Math.ceil((gpa + size) / this.pageSize));
    for (const run of this.#store.runs(first, end)) {
      yield {
        gpa: run.start * this.pageSize,
        size: (run.end - run.start) * this.pageSize,
        attributes: run.state << this.#shift,
      };
    }
  }
}
