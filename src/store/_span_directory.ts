/**
 * The directory of {@link RangeTreeStore}'s containers: an exact hash table
 * from span number (`page / spanPages`) to a chunk-map slot (`>= 0`) or a run
 * container (`-(id + 2)`; the store decodes it, this table holds any int32).
 *
 * Every container is also an entry of the store's index, so the directory
 * adds no information; it exists for speed. Finding a page in the index costs
 * a search of its B-tree (for the report's `boot` states, about as much as a
 * whole bitmap update); one multiplicative-hash probe costs a few ns. The
 * edits that the containers exist for (scattered 4 KiB flips, whole-chunk
 * recolouring, buffers in a crowded span) therefore skip the index entirely.
 * Memory: 12 bytes per table slot, two to eight slots per container (the
 * table doubles when half full and halves when an eighth full).
 *
 * Open addressing with linear probing; deletion shifts later members of the
 * probe run back, so there are no tombstones and a miss stops at the first
 * empty slot.
 *
 * @module
 */

import { TYPED_ARRAY_OVERHEAD_BYTES } from "./_slot_arena.ts";

const EMPTY = -1;
// Shared empty arrays: a directory with no spans allocates nothing of its own.
const NO_KEYS = new Float64Array(0);
const NO_VALUES = new Int32Array(0);

/** An exact map from span number (a non-negative integer) to slot number. */
export class SpanDirectory {
  /** Number of spans held. */
  size = 0;
  #keys: Float64Array = NO_KEYS;
  #values: Int32Array = NO_VALUES;
  #mask = -1;
  #shift = 32;

  /** The slot of span `span`, or -1 when it has none. */
  get(span: number): number {
    if (this.size === 0) return -1;
    const keys = this.#keys;
    let h = this.#home(span);
    for (;;) {
      const k = keys[h];
      if (k === span) return this.#values[h];
      if (k === EMPTY) return -1;
      h = (h + 1) & this.#mask;
    }
  }

  /** Sets the slot of span `span` (adding the span when new). */
  set(span: number, slot: number): void {
    if ((this.size + 1) * 2 > this.#keys.length) this.#rehash(Math.max(8, this.#keys.length * 2));
    const keys = this.#keys;
    let h = this.#home(span);
    for (;;) {
      const k = keys[h];
      if (k === span) break;
      if (k === EMPTY) {
        keys[h] = span;
        this.size++;
        break;
      }
      h = (h + 1) & this.#mask;
    }
    this.#values[h] = slot;
  }

  /** Removes span `span`; requires that it is held. */
  delete(span: number): void {
    const keys = this.#keys;
    const values = this.#values;
    const mask = this.#mask;
    let h = this.#home(span);
    while (keys[h] !== span) h = (h + 1) & mask;
    // Shift back every later member of the probe run that may move into the hole.
    let hole = h;
    for (let i = (h + 1) & mask; keys[i] !== EMPTY; i = (i + 1) & mask) {
      const home = this.#home(keys[i]);
      // Movable unless its home lies cyclically in (hole, i].
      const inRun = hole <= i ? home > hole && home <= i : home > hole || home <= i;
      if (!inRun) {
        keys[hole] = keys[i];
        values[hole] = values[i];
        hole = i;
      }
    }
    keys[hole] = EMPTY;
    this.size--;
    if (this.size === 0) this.#rehash(0);
    else if (this.size * 8 < keys.length && keys.length > 8) this.#rehash(keys.length / 2);
  }

  /** Where `span`'s probe starts: a multiplicative hash of its low and high words. */
  #home(span: number): number {
    return Math.imul((span | 0) ^ ((span / 4294967296) | 0), 0x9e3779b1) >>> this.#shift;
  }

  /** Estimated bytes: two typed arrays with their headers, by capacity. */
  byteSize(): number {
    return this.#keys.length === 0 ? 0 : 2 * TYPED_ARRAY_OVERHEAD_BYTES + this.#keys.length * 12;
  }

  #rehash(capacity: number): void {
    const oldKeys = this.#keys;
    const oldValues = this.#values;
    if (capacity === 0) {
      this.#keys = NO_KEYS;
      this.#values = NO_VALUES;
    } else {
      // Both arrays are views of one buffer: one allocation per rehash, not
      // two (RunContainers' #grow says why that counts).
      const buffer = new ArrayBuffer(capacity * 12);
      this.#keys = new Float64Array(buffer, 0, capacity).fill(EMPTY);
      this.#values = new Int32Array(buffer, 8 * capacity, capacity);
    }
    this.#mask = capacity - 1;
    this.#shift = 32 - Math.log2(Math.max(1, capacity));
    this.size = 0;
    for (let i = 0; i < oldKeys.length; i++) {
      if (oldKeys[i] !== EMPTY) this.set(oldKeys[i], oldValues[i]);
    }
  }
}
