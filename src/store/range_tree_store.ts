/**
 * The product store: maximal runs of equal state kept in a B-tree.
 *
 * Each key of the B-tree (npm `sorted-btree`) is the first page of a run and its
 * value is the run's state word; a run ends where the next key begins (or at
 * `length`). There is always a key at page 0, and two neighbouring keys never
 * carry the same state, so the tree holds exactly one entry per maximal run and
 * its memory grows with fragmentation, not with guest size: a 1 TiB guest with
 * a few thousand extents costs kilobytes where a bitmap costs 32 MiB per bit.
 *
 * @module
 */

import m from "sorted-btree";
import type { Run, StateStore } from "./state_store.ts";
import { checkPage, checkRange, checkShape, checkState } from "./validate.ts";

const BTree = m.default;
type Tree = InstanceType<typeof BTree<number, number>>;

/** Options for a new store. */
export interface StoreOptions {
  /** The state word every page starts with (default 0). */
  initial?: number;
  /** How many state bits the store holds, 1 to 31 (default 8). */
  bits?: number;
}

/**
 * Estimated bytes per run in {@link RangeTreeStore.byteSize}: a key and a value
 * slot in a leaf (8 bytes each as unboxed doubles) plus a share of the leaf's
 * and the inner nodes' fixed cost.
 */
export const RANGE_TREE_BYTES_PER_RUN = 20;
/** Estimated fixed bytes of a {@link RangeTreeStore}: the tree object and its root. */
export const RANGE_TREE_FIXED_BYTES = 128;

/**
 * A {@link StateStore} that keeps maximal runs in a B-tree keyed by run start.
 *
 * @example
 * ```ts
 * import { RangeTreeStore } from "./range_tree_store.ts";
 * const store = new RangeTreeStore(2 ** 28); // 1 TiB of 4 KiB pages, all state 0
 * store.set(256, 768, 1);
 * console.log([...store.runs()]); // three runs
 * ```
 */
export class RangeTreeStore implements StateStore {
  /** Number of pages. */
  readonly length: number;
  /** Number of state bits. */
  readonly bits: number;
  #tree: Tree;

  /** Creates a store of `length` pages, all in state `options.initial`. */
  constructor(length: number, options: StoreOptions = {}) {
    const bits = options.bits ?? 8;
    const initial = options.initial ?? 0;
    checkShape(length, bits);
    checkState("initial", initial, bits);
    this.length = length;
    this.bits = bits;
    this.#tree = new BTree<number, number>();
    this.#tree.set(0, initial);
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
    this.#assign(start, end, state);
  }

  /** Applies `(state | setBits) & ~clearBits` to every page of `[start, end)`. */
  update(start: number, end: number, setBits: number, clearBits: number): void {
    checkRange(start, end, this.length);
    checkState("setBits", setBits, this.bits);
    checkState("clearBits", clearBits, this.bits);
    if (start === end) return;
    // Collect first: assigning while iterating would invalidate the iterator.
    const changes: Run[] = [];
    for (const run of this.#runs(start, end)) {
      const next = (run.state | setBits) & ~clearBits;
      if (next !== run.state) changes.push({ start: run.start, end: run.end, state: next });
    }
    for (const c of changes) this.#assign(c.start, c.end, c.state);
  }

  /** Maximal runs inside `[start, end)`, clipped to the window. */
  runs(start = 0, end: number = this.length): Iterable<Run> {
    checkRange(start, end, this.length);
    return this.#runs(start, end);
  }

  /** Number of maximal runs in the whole store. */
  get runCount(): number {
    return this.#tree.size;
  }

  /**
   * Estimated bytes: {@link RANGE_TREE_FIXED_BYTES} plus
   * {@link RANGE_TREE_BYTES_PER_RUN} per run.
   */
  byteSize(): number {
    return RANGE_TREE_FIXED_BYTES + RANGE_TREE_BYTES_PER_RUN * this.#tree.size;
  }

  #stateAt(page: number): number {
    // Key 0 always exists, so there is always a pair at or below `page`.
    return this.#tree.getPairOrNextLower(page)![1];
  }

  *#runs(start: number, end: number): Generator<Run> {
    if (start >= end) return;
    let runStart = start;
    let state = this.#stateAt(start);
    for (const [key, value] of this.#tree.entries(start + 1)) {
      if (key >= end) break;
      yield { start: runStart, end: key, state };
      runStart = key;
      state = value;
    }
    yield { start: runStart, end, state };
  }

  /** The core edit: `[start, end)` becomes one run of `state`, merged with equal neighbours. */
  #assign(start: number, end: number, state: number): void {
    if (start >= end) return;
    const tree = this.#tree;
    // The state just after the range must survive the edit, so read it first.
    const after = end < this.length ? this.#stateAt(end) : undefined;
    const before = start > 0 ? this.#stateAt(start - 1) : undefined;
    tree.deleteRange(start, end, false);
    if (before !== state) tree.set(start, state);
    if (after !== undefined) {
      if (after === state) tree.delete(end);
      else tree.set(end, after);
    }
  }
}
