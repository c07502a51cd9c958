/**
 * The baseline and test oracle: one bitmap per state bit, exactly as QEMU keeps
 * its state (system/ram-block-attributes.c `ram_block_attributes_create`: one
 * bit per host page for guest_memfd's shared state; hw/virtio/virtio-mem.c
 * `virtio_mem_device_realize`: one bit per block for virtio-mem's plugged
 * state), with word-at-a-time range operations and find_next_bit-style run
 * scanning.
 *
 * A store holds a bitmap only for the bits it was given (`bits` at
 * construction, then {@link BitmapStore.addBit}); a bit may be kept at a
 * coarser granularity than a page (virtio-mem's block), in which case every
 * change of that bit must be aligned to it. Memory is the sum over held bits of
 * `ceil(ceil(length / granularity) / 32) × 4` bytes whatever the state looks
 * like: 32 MiB per page-granular bit for a 1 TiB guest of 4 KiB pages.
 *
 * @module
 */

import { clearBitRange, findNextBit, setBitRange, testBit } from "./_bit_ops.ts";
import type { StoreOptions } from "./range_tree_store.ts";
import type { AddBitOptions, Run, StateStore } from "./state_store.ts";
import {
  checkAddBit,
  checkInteger,
  checkNonEmptyRange,
  checkOptions,
  checkPage,
  checkRange,
  checkShape,
  checkState,
} from "./validate.ts";

/** The largest bitmap store: 2^36 pages is 8 GiB per bit; past that an allocation cannot work. */
export const MAX_BITMAP_PAGES = 2 ** 36;

/** One held bit: its bitmap and how many pages one of its bits stands for. */
interface Plane {
  words: Uint32Array;
  /** Pages per bit of `words`: 1, or a power of two (a virtio-mem block). */
  granularity: number;
}

/**
 * A {@link StateStore} holding one `Uint32Array` bitmap per held state bit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BitmapStore } from "./bitmap_store.ts";
 * const store = new BitmapStore(1024, { bits: 2 });
 * store.update(0, 512, 0b01, 0);
 * assert.equal(store.runCount, 2);
 * assert.equal(store.byteSize(), 2 * 128); // two bitmaps of 1024 bits
 * ```
 */
export class BitmapStore implements StateStore {
  /** Number of pages. */
  readonly length: number;
  #bits: number;
  /** Per bit index: its plane, or undefined for a bit this store does not hold. */
  #planes: (Plane | undefined)[];
  /** The bits held, as a mask. */
  #held: number;
  #runCount: number | undefined;

  /** Creates a store of `length` pages, all in state `options.initial`. */
  constructor(length: number, options: StoreOptions = {}) {
    checkOptions(options);
    const bits = options.bits ?? 8;
    const initial = options.initial ?? 0;
    checkShape(length, bits);
    checkInteger("length", length, 1, MAX_BITMAP_PAGES);
    checkState("initial", initial, bits);
    this.length = length;
    this.#bits = bits;
    const words = Math.ceil(length / 32);
    this.#planes = Array.from({ length: bits }, () => ({
      words: new Uint32Array(words),
      granularity: 1,
    }));
    this.#held = 2 ** bits - 1;
    this.#runCount = 1;
    if (initial !== 0) this.#apply(0, length, initial, ~initial & this.#held);
  }

  /** Number of state bits: states are integers below `2^bits` made of held bits. */
  get bits(): number {
    return this.#bits;
  }

  /** The held bits as a mask (a bit below `bits` may be unheld after {@link addBit}). */
  get heldBits(): number {
    return this.#held;
  }

  /** The state of `page`. */
  get(page: number): number {
    checkPage(page, this.length);
    return this.#stateAt(page);
  }

  /** Sets every page of `[start, end)` to `state`. */
  set(start: number, end: number, state: number): void {
    checkRange(start, end, this.length);
    this.#checkHeld("state", state);
    this.#checkAligned(start, end, this.#held);
    this.#apply(start, end, state, ~state & this.#held);
  }

  /** Applies `(state | setBits) & ~clearBits` to every page of `[start, end)`. */
  update(start: number, end: number, setBits: number, clearBits: number): void {
    checkRange(start, end, this.length);
    this.#checkHeld("setBits", setBits);
    this.#checkHeld("clearBits", clearBits);
    this.#checkAligned(start, end, setBits | clearBits);
    this.#apply(start, end, setBits & ~clearBits, clearBits);
  }

  /**
   * Starts holding bit `bit` (every page 0 in it), with one bitmap bit per
   * `options.granularity` pages (default 1). Changes of that bit must then be
   * aligned to the granularity (or end at `length`).
   */
  addBit(bit: number, options: AddBitOptions = {}): void {
    const granularity = checkAddBit(bit, options, this.#held);
    this.#planes[bit] = {
      words: new Uint32Array(Math.ceil(Math.ceil(this.length / granularity) / 32)),
      granularity,
    };
    this.#held |= 2 ** bit;
    if (bit >= this.#bits) this.#bits = bit + 1;
    this.#runCount = undefined;
  }

  /** Maximal runs inside `[start, end)`, clipped to the window. */
  runs(start = 0, end: number = this.length): Iterable<Run> {
    checkRange(start, end, this.length);
    return this.#runs(start, end);
  }

  /**
   * The state every page of `[start, end)` has, or -1 when they differ: a
   * scan of each bitmap for the first page that departs from page `start`,
   * as {@link runs} does for its first run, without a generator.
   */
  uniformState(start: number, end: number): number {
    checkNonEmptyRange(start, end, this.length);
    const state = this.#stateAt(start);
    return this.#runEnd(start, end, state) >= end ? state : -1;
  }

  /** Number of maximal runs (a full scan, cached until the next change). */
  get runCount(): number {
    if (this.#runCount === undefined) {
      let n = 0;
      for (const _ of this.#runs(0, this.length)) n++;
      this.#runCount = n;
    }
    return this.#runCount;
  }

  /** Bytes of the bitmaps: per held bit, `ceil(ceil(length / granularity) / 32) × 4`. */
  byteSize(): number {
    let bytes = 0;
    for (const plane of this.#planes) if (plane) bytes += plane.words.length * 4;
    return bytes;
  }

  #checkHeld(name: string, value: number): void {
    checkState(name, value, this.#bits);
    const foreign = value & ~this.#held;
    if (foreign !== 0) {
      throw new RangeError(
        `${name}: bit 0x${foreign.toString(16)} is not held by this store ` +
          `(held: 0x${this.#held.toString(16)}); add it with addBit first`,
      );
    }
  }

  /** A coarse bit can only change in whole units of its granularity. */
  #checkAligned(start: number, end: number, touched: number): void {
    if (start >= end) return;
    for (let b = 0; b < this.#bits; b++) {
      const plane = this.#planes[b];
      if (!plane || plane.granularity === 1 || (touched & (1 << b)) === 0) continue;
      const g = plane.granularity;
      if (start % g !== 0 || (end % g !== 0 && end !== this.length)) {
        throw new RangeError(
          `start: bit ${b} is kept one bit per ${g} pages, so [${start}, ${end}) must be ` +
            `aligned to ${g} pages`,
        );
      }
    }
  }

  #stateAt(page: number): number {
    let state = 0;
    for (let b = 0; b < this.#bits; b++) {
      const plane = this.#planes[b];
      if (!plane) continue;
      const index = plane.granularity === 1 ? page : Math.floor(page / plane.granularity);
      if (testBit(plane.words, index)) state |= 1 << b;
    }
    return state;
  }

  #apply(start: number, end: number, on: number, off: number): void {
    if (start >= end) return;
    for (let b = 0; b < this.#bits; b++) {
      const bit = 1 << b;
      const plane = this.#planes[b];
      if (!plane || ((on | off) & bit) === 0) continue;
      const g = plane.granularity;
      const from = start / g, to = Math.ceil(end / g);
      if (on & bit) setBitRange(plane.words, from, to);
      else clearBitRange(plane.words, from, to);
    }
    this.#runCount = undefined;
  }

  *#runs(start: number, end: number): Generator<Run> {
    let pos = start;
    while (pos < end) {
      const state = this.#stateAt(pos);
      const next = this.#runEnd(pos, end, state);
      yield { start: pos, end: next, state };
      pos = next;
    }
  }

  /** The first page in `(pos, end)` where any bitmap departs from `state` (page `pos`'s), or `end`. */
  #runEnd(pos: number, end: number, state: number): number {
    let next = end;
    for (let b = 0; b < this.#bits && next > pos + 1; b++) {
      const plane = this.#planes[b];
      if (!plane) continue;
      const want = (state >>> b) & 1;
      const g = plane.granularity;
      if (g === 1) {
        next = findNextBit(plane.words, pos + 1, next, want === 0);
      } else {
        // In units of the plane: the unit after pos's, up to the unit holding next - 1.
        const unit = findNextBit(
          plane.words,
          Math.floor(pos / g) + 1,
          Math.ceil(next / g),
          want === 0,
        );
        next = Math.min(next, unit * g);
      }
    }
    return next;
  }
}
