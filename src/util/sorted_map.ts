/**
 * An ordered map from numbers to values, for the simulated kernels' mapping
 * tables (type1 mappings, iommufd areas) and the iommufd plugin's index: the
 * structures every simulated map and unmap searches and edits.
 *
 * It is a B+-tree of height two: a sorted array of leaves, each holding up to
 * {@link LEAF_MAX} keys in a `Float64Array` beside their values, and an array
 * of each leaf's first key to find the leaf by binary search. Lookups answer
 * the neighbour queries the simulators need (at or below, below, at or above,
 * above) with the value only, so they allocate nothing; values that need
 * their key carry it.
 *
 * ## Two ordered maps
 *
 * The project has two ordered maps on purpose: npm `sorted-btree` under
 * `RangeTreeStore` (src/store/_extent_index.ts) and this one under the
 * simulated kernels. `deno bench bench/structures_bench.ts`, groups
 * "ordered maps": filling a type1 container 4 KiB at a time (65,535 keys in
 * order, then deleting them) takes this map 1x and sorted-btree 4x, and
 * random inserts, lookups and deletes among 1,000,000 keys 1x against 3x:
 * sorted-btree's leaves grow and shrink with `Array.prototype.splice`, where
 * an insert here is one `copyWithin` and a short loop. The simulators edit
 * their tables on every simulated map and unmap, so they use this map (they
 * used sorted-btree first). The store keeps sorted-btree because its hot
 * edits do not touch its tree at all (they land in chunk maps: group "chunk
 * maps" in the same bench, 1.8x the bitmap with them, 16x without), because
 * it relies on what this map does not offer (counting a span's keys through
 * `forRange`, deleting key ranges, memory counted node by node), and because
 * the design asks for a well-kept package where one fits. Moving the store's
 * run entries to a faster map is a question for the store's own benchmark
 * rows (`deno task bench:report`), not a reason for a third map.
 *
 * @module
 */

/** Keys a leaf holds at most; a full leaf splits in two. */
export const LEAF_MAX = 128;
/** A leaf this sparse merges with a neighbour when both fit in half a leaf. */
const LEAF_SPARSE = LEAF_MAX / 4;

interface Leaf<V> {
  /** Keys ascending in `[0, size)`. */
  keys: Float64Array;
  /** `values[i]` belongs to `keys[i]`; slots past `size` are cleared. */
  values: (V | undefined)[];
  /** Entries in use. */
  size: number;
}

function newLeaf<V>(): Leaf<V> {
  return { keys: new Float64Array(LEAF_MAX), values: [], size: 0 };
}

/** Index of the first key of `leaf` that is `>= key` (`size` if none). */
function lowerBound<V>(leaf: Leaf<V>, key: number): number {
  const keys = leaf.keys;
  let lo = 0, hi = leaf.size;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first key of `leaf` that is `> key` (`size` if none). */
function upperBound<V>(leaf: Leaf<V>, key: number): number {
  const keys = leaf.keys;
  let lo = 0, hi = leaf.size;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid] <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A map from numeric keys (any numbers but NaN) to values, kept in key order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SortedMap } from "./sorted_map.ts";
 * const areas = new SortedMap<string>();
 * areas.set(0x2000, "b");
 * areas.set(0x1000, "a");
 * assert.equal(areas.atOrBelow(0x1fff), "a");
 * assert.equal(areas.above(0x1000), "b");
 * assert.equal(areas.below(0x1000), undefined);
 * ```
 */
export class SortedMap<V> {
  /** Leaves in key order; only an empty map has an empty leaf (its only one). */
  #leaves: Leaf<V>[] = [newLeaf<V>()];
  /** `#firsts[i]` is the first key of leaf `i`; `#firsts[0]` is -Infinity so every key has a leaf. */
  #firsts: number[] = [-Infinity];
  /**
   * The leaf the last lookup landed in. Callers ask about nearby keys in a
   * row (a map checks the neighbour below its end, then inserts; a discard
   * looks at both edges, then deletes), so checking it first usually saves
   * the binary search over {@link #firsts}.
   */
  #finger = 0;
  #size = 0;

  /** Number of entries. */
  get size(): number {
    return this.#size;
  }

  /** The value of `key`, if present. */
  get(key: number): V | undefined {
    const leaf = this.#leaves[this.#leafOf(key)];
    const i = lowerBound(leaf, key);
    return i < leaf.size && leaf.keys[i] === key ? leaf.values[i] : undefined;
  }

  /** True when `key` is present. */
  has(key: number): boolean {
    const leaf = this.#leaves[this.#leafOf(key)];
    const i = lowerBound(leaf, key);
    return i < leaf.size && leaf.keys[i] === key;
  }

  /** The value of the greatest key `<= key`. */
  atOrBelow(key: number): V | undefined {
    const leaf = this.#leaves[this.#leafOf(key)];
    // Every leaf but the first starts at or below `key`, so only the first can miss.
    const i = upperBound(leaf, key) - 1;
    return i >= 0 ? leaf.values[i] : undefined;
  }

  /** The value of the greatest key `< key`. */
  below(key: number): V | undefined {
    const li = this.#leafOf(key);
    const leaf = this.#leaves[li];
    const i = lowerBound(leaf, key) - 1;
    if (i >= 0) return leaf.values[i];
    // The leaf starts exactly at `key`: the answer ends the previous leaf.
    if (li === 0) return undefined;
    const previous = this.#leaves[li - 1];
    return previous.values[previous.size - 1];
  }

  /** The value of the least key `>= key`. */
  atOrAbove(key: number): V | undefined {
    const li = this.#leafOf(key);
    return this.#fromIndex(li, lowerBound(this.#leaves[li], key));
  }

  /** The value of the least key `> key`. */
  above(key: number): V | undefined {
    const li = this.#leafOf(key);
    return this.#fromIndex(li, upperBound(this.#leaves[li], key));
  }

  /** Sets `key` to `value`, adding the key or replacing its value. */
  set(key: number, value: V): void {
    if (Number.isNaN(key)) throw new RangeError("key: must be a number, got NaN");
    let li = this.#leafOf(key);
    let leaf = this.#leaves[li];
    let i = lowerBound(leaf, key);
    if (i < leaf.size && leaf.keys[i] === key) {
      leaf.values[i] = value;
      return;
    }
    if (leaf.size === LEAF_MAX) {
      this.#split(li);
      if (key >= this.#firsts[li + 1]) {
        li++;
        leaf = this.#leaves[li];
        i = lowerBound(leaf, key);
      }
    }
    const values = leaf.values;
    leaf.keys.copyWithin(i + 1, i, leaf.size);
    for (let j = leaf.size; j > i; j--) values[j] = values[j - 1];
    leaf.keys[i] = key;
    values[i] = value;
    leaf.size++;
    this.#size++;
    // #firsts needs no update: only leaf 0 can take a key below its first one.
  }

  /** Removes `key`; true when it was present. */
  delete(key: number): boolean {
    const li = this.#leafOf(key);
    const leaf = this.#leaves[li];
    const i = lowerBound(leaf, key);
    if (i >= leaf.size || leaf.keys[i] !== key) return false;
    this.#removeSpan(li, i, i + 1);
    return true;
  }

  /** Removes every key in `[lo, hi)` and returns how many there were. */
  deleteRange(lo: number, hi: number): number {
    let removed = 0;
    for (;;) {
      let li = this.#leafOf(lo);
      let i = lowerBound(this.#leaves[li], lo);
      if (i === this.#leaves[li].size) {
        if (li + 1 === this.#leaves.length) break;
        li++;
        i = 0;
      }
      const leaf = this.#leaves[li];
      if (i >= leaf.size || leaf.keys[i] >= hi) break;
      const j = lowerBound(leaf, hi);
      const more = j === leaf.size; // the range may go on in the next leaf
      this.#removeSpan(li, i, j);
      removed += j - i;
      if (!more) break;
    }
    return removed;
  }

  /** The values of the keys in `[lo, hi)`, in key order. */
  valuesInRange(lo: number, hi: number): V[] {
    const out: V[] = [];
    let li = this.#leafOf(lo);
    let i = lowerBound(this.#leaves[li], lo);
    for (; li < this.#leaves.length; li++, i = 0) {
      const leaf = this.#leaves[li];
      for (; i < leaf.size; i++) {
        if (leaf.keys[i] >= hi) return out;
        out.push(leaf.values[i]!);
      }
    }
    return out;
  }

  /** Every value, in key order. */
  values(): V[] {
    const out: V[] = [];
    for (const leaf of this.#leaves) {
      for (let i = 0; i < leaf.size; i++) out.push(leaf.values[i]!);
    }
    return out;
  }

  /** The leaf whose key range holds `key`: the last leaf whose first key is `<= key`. */
  #leafOf(key: number): number {
    const firsts = this.#firsts;
    const finger = this.#finger;
    if (
      finger < firsts.length && firsts[finger] <= key &&
      (finger + 1 === firsts.length || key < firsts[finger + 1])
    ) {
      return finger;
    }
    let lo = 1, hi = firsts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (firsts[mid] <= key) lo = mid + 1;
      else hi = mid;
    }
    this.#finger = lo - 1;
    return lo - 1;
  }

  /** The value at index `i` of leaf `li`, or the first of the next leaf when `i` is past the end. */
  #fromIndex(li: number, i: number): V | undefined {
    const leaf = this.#leaves[li];
    if (i < leaf.size) return leaf.values[i];
    return li + 1 < this.#leaves.length ? this.#leaves[li + 1].values[0] : undefined;
  }

  /** Moves the upper half of full leaf `li` into a new leaf after it. */
  #split(li: number): void {
    const leaf = this.#leaves[li];
    const half = LEAF_MAX >> 1;
    const right = newLeaf<V>();
    right.keys.set(leaf.keys.subarray(half, leaf.size));
    right.values = leaf.values.slice(half, leaf.size);
    right.size = leaf.size - half;
    leaf.values.length = half;
    leaf.size = half;
    this.#leaves.splice(li + 1, 0, right);
    this.#firsts.splice(li + 1, 0, right.keys[0]);
  }

  /** Removes entries `[i, j)` of leaf `li` (non-empty), then drops or merges a sparse leaf. */
  #removeSpan(li: number, i: number, j: number): void {
    const leaf = this.#leaves[li];
    const values = leaf.values;
    const count = j - i;
    leaf.keys.copyWithin(i, j, leaf.size);
    for (let k = j; k < leaf.size; k++) values[k - count] = values[k];
    // Release the removed values (clearing slots is cheaper than shrinking the array).
    for (let k = leaf.size - count; k < leaf.size; k++) values[k] = undefined;
    leaf.size -= count;
    this.#size -= count;
    if (leaf.size === 0) {
      if (this.#leaves.length > 1) this.#dropLeaf(li);
      return;
    }
    if (i === 0 && li > 0) this.#firsts[li] = leaf.keys[0];
    if (leaf.size < LEAF_SPARSE) this.#mergeSparse(li);
  }

  /** Merges sparse leaf `li` into a neighbour when both fit in half a leaf (keeps leaves dense). */
  #mergeSparse(li: number): void {
    const leaves = this.#leaves;
    if (li + 1 < leaves.length && leaves[li].size + leaves[li + 1].size <= LEAF_MAX / 2) {
      this.#mergeInto(li, li + 1);
    } else if (li > 0 && leaves[li - 1].size + leaves[li].size <= LEAF_MAX / 2) {
      this.#mergeInto(li - 1, li);
    }
  }

  /** Appends leaf `from` (= `into + 1`) to leaf `into` and drops it. */
  #mergeInto(into: number, from: number): void {
    const a = this.#leaves[into], b = this.#leaves[from];
    a.keys.set(b.keys.subarray(0, b.size), a.size);
    for (let k = 0; k < b.size; k++) a.values[a.size + k] = b.values[k];
    a.size += b.size;
    this.#dropLeaf(from);
  }

  #dropLeaf(li: number): void {
    this.#leaves.splice(li, 1);
    this.#firsts.splice(li, 1);
    this.#firsts[0] = -Infinity;
  }
}
