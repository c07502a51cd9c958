/**
 * Dense containers for {@link RangeTreeStore}'s fragmented chunks: a slot of
 * a {@link SlotArena} holds one chunk of pages as one bit plane per state bit,
 * the same layout as the bitmap baseline, so a dense chunk costs what the
 * bitmap pays for those pages plus 4 bytes (its change count; the slab keeps
 * no owners, see _slot_arena.ts).
 *
 * Besides reading and writing pages it answers the two questions the store
 * asks of a chunk: how many state changes lie in a span (to keep `runCount`
 * exact) and where the next change is (to yield maximal runs).
 *
 * @module
 */

import { popcount } from "./_bit_ops.ts";
import { LOOP_FILL_WORDS, SlotArena } from "./_slot_arena.ts";

const ALL = 0xffffffff;

/**
 * Bit planes of dense chunks, one arena slot per chunk. Offsets are page
 * offsets inside the chunk, `[0, chunkPages)`; slot `s`, plane `b`, word `w`
 * is `data[s * stride + b * words + w]`.
 */
export class DenseSlab extends SlotArena {
  /** State bits per page: the number of planes of a slot. */
  bits: number;
  /** Words of one plane: `chunkPages / 32`. */
  readonly words: number;

  /**
   * A slab for chunks of `chunkPages` pages (a multiple of 32) and `bits`
   * planes, holding at most `maxChunks` chunks.
   */
  constructor(chunkPages: number, bits: number, maxChunks: number) {
    super(bits * (chunkPages >>> 5), maxChunks, false);
    this.bits = bits;
    this.words = chunkPages >>> 5;
  }

  /** Gives every slot `bits` planes: the existing ones keep their words, new ones are 0. */
  widen(bits: number): void {
    if (bits <= this.bits) return;
    this.restride(bits * this.words);
    this.bits = bits;
  }

  /** The state word of page `off` of `slot`. */
  read(slot: number, off: number): number {
    const data = this.data;
    const words = this.words;
    let at = slot * this.stride + (off >>> 5);
    const shift = off & 31;
    let state = 0;
    for (let b = 0; b < this.bits; b++, at += words) state |= ((data[at] >>> shift) & 1) << b;
    return state;
  }

  /** Flips, at page `off` of `slot`, every state bit set in `mask`. */
  flip(slot: number, off: number, mask: number): void {
    const data = this.data;
    let at = slot * this.stride + (off >>> 5);
    const bit = 1 << (off & 31);
    for (let m = mask; m !== 0; m >>>= 1, at += this.words) {
      if (m & 1) data[at] ^= bit;
    }
  }

  /**
   * For pages `[a, b)` of `slot`: `state = (state & keep) | put`. A bit set in
   * `put` is set, a bit clear in `keep` and `put` is cleared, the rest stay.
   */
  apply(slot: number, a: number, b: number, keep: number, put: number): void {
    let base = slot * this.stride;
    for (let bit = 0; bit < this.bits; bit++, base += this.words) {
      const m = 1 << bit;
      if (put & m) fillPlane(this.data, base, a, b, true);
      else if (!(keep & m)) fillPlane(this.data, base, a, b, false);
    }
  }

  /**
   * Number of boundaries `i` in `[lo, hi]` (page `i - 1` against page `i`)
   * where the state changes; requires `1 <= lo` and `hi < chunkPages`.
   */
  changesIn(slot: number, lo: number, hi: number): number {
    if (lo > hi) return 0;
    const data = this.data;
    const words = this.words;
    const base = slot * this.stride;
    const first = lo >>> 5;
    const last = hi >>> 5;
    let total = 0;
    if (this.bits === 1) {
      // One plane (a region without virtio-mem): no loop over planes.
      for (let w = first, at = base + first; w <= last; w++, at++) {
        const x = data[at];
        let diff = x ^ ((x << 1) | (w > 0 ? data[at - 1] >>> 31 : (x & 1)));
        if (w === first) diff &= ALL << (lo & 31);
        if (w === last) diff &= ALL >>> (31 - (hi & 31));
        total += popcount(diff);
      }
      return total;
    }
    for (let w = first; w <= last; w++) {
      let diff = 0;
      for (let b = 0, at = base + w; b < this.bits; b++, at += words) {
        const x = data[at];
        // Bit j of (x ^ shifted) says whether page 32w+j differs from page 32w+j-1.
        const carry = w > 0 ? data[at - 1] >>> 31 : (x & 1);
        diff |= x ^ ((x << 1) | carry);
      }
      if (w === first) diff &= ALL << (lo & 31);
      if (w === last) diff &= ALL >>> (31 - (hi & 31));
      total += popcount(diff);
    }
    return total;
  }

  /**
   * The first page in `(from, limit)` of `slot` whose state differs from page
   * `from`'s, or `limit` when there is none.
   */
  nextChange(slot: number, from: number, limit: number): number {
    const start = from + 1;
    if (start >= limit) return limit;
    const data = this.data;
    const words = this.words;
    const base = slot * this.stride;
    const state = this.read(slot, from);
    const lastWord = (limit - 1) >>> 5;
    for (let w = start >>> 5; w <= lastWord; w++) {
      let diff = 0;
      for (let b = 0, at = base + w; b < this.bits; b++, at += words) {
        diff |= data[at] ^ (((state >>> b) & 1) === 1 ? ALL : 0);
      }
      if (w === start >>> 5) diff &= ALL << (start & 31);
      if (diff !== 0) {
        const index = (w << 5) + (31 - Math.clz32(diff & -diff));
        return index < limit ? index : limit;
      }
    }
    return limit;
  }
}

/** Sets or clears bits `[a, b)` of the plane that starts at word `base`. */
function fillPlane(data: Int32Array, base: number, a: number, b: number, on: boolean): void {
  const first = base + (a >>> 5);
  const last = base + ((b - 1) >>> 5);
  const head = (ALL << (a & 31)) >>> 0;
  const tail = ALL >>> (31 - ((b - 1) & 31));
  if (first === last) {
    const mask = head & tail;
    data[first] = on ? data[first] | mask : data[first] & ~mask;
    return;
  }
  data[first] = on ? data[first] | head : data[first] & ~head;
  const fill = on ? ALL : 0;
  if (last - first - 1 <= LOOP_FILL_WORDS) {
    for (let w = first + 1; w < last; w++) {
      data[w] = fill;
    }
  } else data.fill(fill, first + 1, last);
  data[last] = on ? data[last] | tail : data[last] & ~tail;
}
