/**
 * The baseline and test oracle: one bitmap per state bit, exactly as QEMU keeps
 * its shared bitmap (system/ram-block-attributes.c), with word-at-a-time range
 * operations and find_next_bit-style run scanning.
 *
 * Memory is `bits × ceil(length / 32) × 4` bytes whatever the state looks like:
 * 32 MiB per bit for a 1 TiB guest of 4 KiB pages.
 *
 * @module
 */

import { clearBitRange, findNextBit, setBitRange, testBit } from "./bit_ops.ts";
import type { StoreOptions } from "./range_tree_store.ts";
import type { Run, StateStore } from "./state_store.ts";
import { checkInteger, checkPage, checkRange, checkShape, checkState } from "./validate.ts";

/** The largest bitmap store: 2^36 pages is 8 GiB per bit; past that an allocation cannot work. */
export const MAX_BITMAP_PAGES = 2 ** 36;

/**
 * A {@link StateStore} holding one `Uint32Array` bitmap per state bit.
 *
 * @example
 * ```ts
 * import { BitmapStore } from "./bitmap_store.ts";
 * const store = new BitmapStore(1024, { bits: 2 });
 * store.update(0, 512, 0b01, 0);
 * console.log(store.runCount); // 2
 * ```
 */
export class BitmapStore implements StateStore {
  /** Number of pages. */
  readonly length: number;
  /** Number of state bits, one bitmap each. */
  readonly bits: number;
  #maps: Uint32Array[];
  #runCount: number | undefined;

  /** Creates a store of `length` pages, all in state `options.initial`. */
  constructor(length: number, options: StoreOptions = {}) {
    const bits = options.bits ?? 8;
    const initial = options.initial ?? 0;
    checkShape(length, bits);
    checkInteger("length", length, 1, MAX_BITMAP_PAGES);
    checkState("initial", initial, bits);
    this.length = length;
    this.bits = bits;
    const words = Math.ceil(length / 32);
    this.#maps = Array.from({ length: bits }, () => new Uint32Array(words));
    this.#runCount = 1;
    if (initial !== 0) {
      this.#apply(0, length, initial, ~initial & (2 ** bits - 1));
    }
  }

  /** The state of `page`. */
  get(page: number): number {
    checkPage(page, this.length);
    return this.#stateAt(page);
  }

  /** Sets every page of `[start, end)` to `state`. */
  set(start: number, end: number, state: number): void {
    checkRange(start, end, this.length);
    checkState("state", state, this.bits);
    this.#apply(start, end, state, ~state & (2 ** this.bits - 1));
  }

  /** Applies `(state | setBits) & ~clearBits` to every page of `[start, end)`. */
  update(start: number, end: number, setBits: number, clearBits: number): void {
    checkRange(start, end, this.length);
    checkState("setBits", setBits, this.bits);
    checkState("clearBits", clearBits, this.bits);
    this.#apply(start, end, setBits & ~clearBits, clearBits);
  }

  /** Maximal runs inside `[start, end)`, clipped to the window. */
  runs(start = 0, end: number = this.length): Iterable<Run> {
    checkRange(start, end, this.length);
    return this.#runs(start, end);
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

  /** Bytes of the bitmaps: `bits × ceil(length / 32) × 4`. */
  byteSize(): number {
    return this.bits * Math.ceil(this.length / 32) * 4;
  }

  #stateAt(page: number): number {
    let state = 0;
    for (let b = 0; b < this.bits; b++) {
      if (testBit(this.#maps[b], page)) state |= 1 << b;
    }
    return state;
  }

  #apply(start: number, end: number, on: number, off: number): void {
    if (start >= end) return;
    for (let b = 0; b < this.bits; b++) {
      const bit = 1 << b;
      if (on & bit) setBitRange(this.#maps[b], start, end);
      else if (off & bit) clearBitRange(this.#maps[b], start, end);
    }
    this.#runCount = undefined;
  }

  *#runs(start: number, end: number): Generator<Run> {
    let pos = start;
    while (pos < end) {
      const state = this.#stateAt(pos);
      let next = end;
      // The run ends at the first page where any bitmap departs from `state`.
      for (let b = 0; b < this.bits && next > pos + 1; b++) {
        const want = (state >>> b) & 1;
        next = findNextBit(this.#maps[b], pos + 1, next, want === 0);
      }
      yield { start: pos, end: next, state };
      pos = next;
    }
  }
}
