/**
 * The ordered map under {@link RangeTreeStore}: keys are extent starts (page
 * numbers, exact doubles up to 2^52), values are doubles (a run's state word,
 * or a negative chunk-map reference).
 *
 * It is a B+-tree of height two with a wide, shallow top level: a sorted array
 * of leaves, each a `Float64Array` of interleaved `(key, value)` pairs holding
 * up to {@link LEAF_MAX} entries, plus a plain array of each leaf's first key.
 *
 * Why not a general B-tree (npm `sorted-btree`, which design.md first named):
 * on this 2-core machine a binary-search step costs ~5 ns, almost all of it a
 * mispredicted branch, so the ~15 comparator-driven steps of a descent cost
 * more than a whole bitmap update (design.md, "Performance intent"). Here a
 * lookup does no comparator calls, allocates nothing, and avoids most
 * unpredictable branches:
 *
 * - a **jump table** splits `[0, limit)` into about eight equal buckets per leaf
 *   and records, per bucket, the leaf that covers the bucket's start; a lookup
 *   indexes it and moves at most a leaf or two (a crowded bucket, where keys
 *   cluster, falls back to bisecting only its own leaves);
 * - inside the leaf, the position is **interpolated** between the leaf's first
 *   key and the next leaf's, then corrected by a short linear walk (bisecting
 *   only when the guess is far off).
 *
 * The table has O(leaves) entries, so memory still follows the number of
 * extents, not the guest size. Edits go through a cursor ({@link li},
 * {@link ix}) that every structural change keeps pointing at the same entry,
 * so an edit costs one lookup, not one per touched key.
 *
 * @module
 */

import { TYPED_ARRAY_OVERHEAD_BYTES } from "./slot_arena.ts";

/** Entries a leaf holds at most; a full leaf splits in two. */
export const LEAF_MAX = 64;
/** Smallest leaf capacity in entries; leaves grow by doubling up to {@link LEAF_MAX}. */
const LEAF_MIN_CAP = 4;
/** Linear steps a lookup takes from its interpolated guess before it bisects. */
const WALK = 8;
/** The jump table of every one-leaf index (never written: it is replaced before a second leaf). */
const ONE_LEAF = new Int32Array(1);

/** One leaf: `n` entries as `[key0, value0, key1, value1, ...]`, keys ascending. */
export class Leaf {
  /** Interleaved keys and values; its length is twice the capacity. */
  pairs: Float64Array;
  /** Entries in use. */
  n = 0;

  /** An empty leaf with room for `capacity` entries. */
  constructor(capacity: number) {
    this.pairs = new Float64Array(capacity * 2);
  }
}

/**
 * Sorted `(key, value)` entries with a cursor. {@link seek} places the cursor
 * ({@link li}: leaf index, {@link ix}: entry index in the leaf); the cursor
 * methods edit around it and keep it on a documented entry. {@link version}
 * changes with every insert or removal. Callers guarantee the ordering
 * preconditions stated on each method; nothing here checks them.
 */
export class ExtentIndex {
  /** Leaves in key order; never empty. */
  leaves: Leaf[];
  /** `mins[i]` is the first key of `leaves[i]`. */
  mins: number[];
  /** Number of entries. */
  size = 1;
  /** Bumped by every insert and removal. */
  version = 0;
  /** Cursor: leaf index. */
  li = 0;
  /** Cursor: entry index in that leaf. */
  ix = 0;
  /**
   * The leaf {@link seek} found: `leaf.pairs[ix * 2]` is the cursor's key and
   * `leaf.pairs[ix * 2 + 1]` its value. Valid only until the cursor moves or
   * the index changes; it saves hot paths two loads.
   */
  leaf: Leaf;
  /** Keys are below this bound; the jump table divides `[0, limit)` into buckets. */
  readonly limit: number;
  /** `jump[b]` is the last leaf whose first key is `<= b * width`. */
  #jump!: Int32Array;
  /** Keys per bucket of the jump table: a power of two. */
  #width = 1;
  /** `1 / #width`, exact for a power of two: multiplying beats dividing. */
  #perBucket = 1;

  /** An index over keys in `[0, limit)` holding the single entry `(0, value)`. */
  constructor(limit: number, value: number) {
    const leaf = new Leaf(LEAF_MIN_CAP);
    leaf.pairs[1] = value;
    leaf.n = 1;
    this.leaves = [leaf];
    this.leaf = leaf;
    this.mins = [0];
    this.limit = limit;
    this.#rebuildJump();
  }

  /** Puts the cursor on the last entry whose key is `<= key` (`0 <= key < limit`). */
  seek(key: number): void {
    const mins = this.mins;
    const count = mins.length;
    const jump = this.#jump;
    const b = (key * this.#perBucket) | 0; // < buckets <= 2^31, so truncation is floor
    let li = jump[b];
    if (li + 1 < count && mins[li + 1] <= key) {
      li++;
      if (li + 1 < count && mins[li + 1] <= key) {
        // A crowded bucket: bisect its leaves only.
        let lo = li + 1, hi = b + 1 < jump.length ? jump[b + 1] : count - 1;
        while (lo < hi) {
          const mid = (lo + hi + 1) >>> 1;
          if (mins[mid] <= key) lo = mid;
          else hi = mid - 1;
        }
        li = lo;
      }
    }
    const leaf = this.leaves[li];
    const pairs = leaf.pairs;
    const n = leaf.n;
    let ix = 0;
    if (n > 1) {
      const first = pairs[0];
      const end = li + 1 < count ? mins[li + 1] : this.limit;
      ix = (((key - first) / (end - first)) * n) | 0;
      if (ix >= n) ix = n - 1;
      let lo = -1, hi = -1; // a bisection window, when the walk gives up
      if (pairs[ix << 1] <= key) {
        for (let step = 0; ix + 1 < n && pairs[(ix + 1) << 1] <= key; step++) {
          if (step === WALK) {
            lo = ix + 1;
            hi = n - 1;
            break;
          }
          ix++;
        }
      } else {
        for (let step = 0; pairs[--ix << 1] > key; step++) {
          if (step === WALK) {
            lo = 0;
            hi = ix - 1;
            break;
          }
        }
      }
      if (lo >= 0) {
        while (lo < hi) {
          const mid = (lo + hi + 1) >>> 1;
          if (pairs[mid << 1] <= key) lo = mid;
          else hi = mid - 1;
        }
        ix = lo;
      }
    }
    this.li = li;
    this.ix = ix;
    this.leaf = leaf;
  }

  /**
   * The number of keys `k` with `lo < k < hi` (`0 <= lo < hi <= limit`), or
   * some number above `cap` once it is known to exceed it. Moves the cursor.
   */
  countInside(lo: number, hi: number, cap: number): number {
    this.seek(hi - 1);
    const li = this.li, ix = this.ix;
    this.seek(lo);
    if (this.li === li) return ix - this.ix;
    let count = this.leaves[this.li].n - this.ix + ix;
    for (let l = this.li + 1; l < li && count <= cap; l++) count += this.leaves[l].n;
    return count;
  }

  // ---- reading around the cursor -------------------------------------------

  /** The key at the cursor. */
  key(): number {
    return this.leaves[this.li].pairs[this.ix << 1];
  }

  /** The value at the cursor. */
  value(): number {
    return this.leaves[this.li].pairs[(this.ix << 1) + 1];
  }

  /** True when an entry follows the cursor. */
  hasNext(): boolean {
    return this.ix + 1 < this.leaves[this.li].n || this.li + 1 < this.leaves.length;
  }

  /** The key after the cursor, or {@link limit} at the last entry. */
  nextKey(): number {
    const leaf = this.leaves[this.li];
    if (this.ix + 1 < leaf.n) return leaf.pairs[(this.ix + 1) << 1];
    return this.li + 1 < this.leaves.length ? this.mins[this.li + 1] : this.limit;
  }

  /** The value after the cursor; requires {@link hasNext}. */
  nextValue(): number {
    const leaf = this.leaves[this.li];
    if (this.ix + 1 < leaf.n) return leaf.pairs[((this.ix + 1) << 1) + 1];
    return this.leaves[this.li + 1].pairs[1];
  }

  /** The key before the cursor; requires that the cursor is not on the first entry. */
  prevKey(): number {
    if (this.ix > 0) return this.leaves[this.li].pairs[(this.ix - 1) << 1];
    const prev = this.leaves[this.li - 1];
    return prev.pairs[(prev.n - 1) << 1];
  }

  /** The value before the cursor; requires that the cursor is not on the first entry. */
  prevValue(): number {
    if (this.ix > 0) return this.leaves[this.li].pairs[((this.ix - 1) << 1) + 1];
    const prev = this.leaves[this.li - 1];
    return prev.pairs[((prev.n - 1) << 1) + 1];
  }

  /** Moves the cursor to the next entry; returns false (and stays) at the last one. */
  stepNext(): boolean {
    if (this.ix + 1 < this.leaves[this.li].n) {
      this.ix++;
      return true;
    }
    if (this.li + 1 === this.leaves.length) return false;
    this.li++;
    this.ix = 0;
    return true;
  }

  /** Moves the cursor to the previous entry; returns false (and stays) at the first one. */
  stepPrev(): boolean {
    if (this.ix > 0) {
      this.ix--;
      return true;
    }
    if (this.li === 0) return false;
    this.li--;
    this.ix = this.leaves[this.li].n - 1;
    return true;
  }

  // ---- editing at the cursor -----------------------------------------------

  /** Sets the value at the cursor. */
  setValueHere(value: number): void {
    this.leaves[this.li].pairs[(this.ix << 1) + 1] = value;
  }

  /** Re-keys the cursor entry; requires that `key` stays between its neighbours' keys. */
  setKeyHere(key: number): void {
    this.leaves[this.li].pairs[this.ix << 1] = key;
    if (this.ix === 0) this.#setMin(this.li, key);
  }

  /**
   * Inserts `(key, value)` right after the cursor (requires the cursor key `<
   * key <` the next key); the cursor moves to the new entry.
   */
  insertAfter(key: number, value: number): void {
    this.#insertAt(this.li, this.ix + 1, key, value);
  }

  /** Removes the entry after the cursor (requires {@link hasNext}); the cursor stays put. */
  removeAfter(): void {
    const leaf = this.leaves[this.li];
    if (this.ix + 1 < leaf.n) this.#removeAt(this.li, this.ix + 1);
    else this.#removeAt(this.li + 1, 0);
  }

  /**
   * Removes the cursor entry (requires that it is not the first); the cursor
   * moves to the entry before it.
   */
  removeHere(): void {
    const li = this.li, ix = this.ix;
    this.stepPrev();
    this.#removeAt(li, ix);
  }

  // ---- editing by key (for rare, multi-step changes) -----------------------

  /** Inserts `(key, value)`; requires that `key` is absent and not below the first key. */
  insert(key: number, value: number): void {
    this.seek(key);
    this.insertAfter(key, value);
  }

  /** Removes the entry at `key`; requires that it exists and is not the first. */
  remove(key: number): void {
    this.seek(key);
    this.removeHere();
  }

  /** Sets the value of the entry at `key`; requires that it exists. */
  setValue(key: number, value: number): void {
    this.seek(key);
    this.setValueHere(value);
  }

  /**
   * Estimated bytes: per leaf `leafOverhead` plus 8 bytes per pair slot, 16
   * bytes of top-level arrays per leaf, and the jump table (4 bytes a bucket).
   */
  byteSize(leafOverhead: number): number {
    let total = 64 + 16 * this.leaves.length;
    if (this.#jump !== ONE_LEAF) total += TYPED_ARRAY_OVERHEAD_BYTES + 4 * this.#jump.length;
    for (const leaf of this.leaves) total += leafOverhead + leaf.pairs.length * 8;
    return total;
  }

  // ---- structure -------------------------------------------------------------

  /** Inserts at position `at` of leaf `li`; the cursor ends on the new entry. */
  #insertAt(li: number, at: number, key: number, value: number): void {
    let leaf = this.leaves[li];
    if (leaf.n === LEAF_MAX) {
      // Split in two; the upper half goes to a new leaf with room to grow.
      const half = LEAF_MAX >>> 1;
      const right = new Leaf(half + (half >>> 1));
      right.pairs.set(leaf.pairs.subarray(half << 1, LEAF_MAX << 1));
      right.n = LEAF_MAX - half;
      leaf.n = half;
      this.leaves.splice(li + 1, 0, right);
      this.mins.splice(li + 1, 0, right.pairs[0]);
      this.#leafInserted(li + 1);
      if (at > half) {
        li++;
        at -= half;
        leaf = right;
      }
    }
    if (leaf.n << 1 === leaf.pairs.length) {
      const grown = new Float64Array(Math.min(LEAF_MAX, leaf.n * 2) << 1);
      grown.set(leaf.pairs.subarray(0, leaf.n << 1));
      leaf.pairs = grown;
    }
    const pairs = leaf.pairs;
    if (at < leaf.n) pairs.copyWithin((at + 1) << 1, at << 1, leaf.n << 1);
    pairs[at << 1] = key;
    pairs[(at << 1) + 1] = value;
    leaf.n++;
    if (at === 0) this.#setMin(li, key);
    this.size++;
    this.version++;
    this.li = li;
    this.ix = at;
  }

  /**
   * Removes position `at` of leaf `li`. The cursor, which must be on another
   * entry, keeps pointing at that entry.
   */
  #removeAt(li: number, at: number): void {
    const leaf = this.leaves[li];
    const pairs = leaf.pairs;
    if (at + 1 < leaf.n) pairs.copyWithin(at << 1, (at + 1) << 1, leaf.n << 1);
    leaf.n--;
    this.size--;
    this.version++;
    if (this.li === li && this.ix > at) this.ix--;
    if (leaf.n === 0) {
      this.#dropLeaf(li);
      if (this.li > li) this.li--;
      return;
    }
    if (at === 0) this.#setMin(li, pairs[0]);
    if (leaf.n * 4 <= LEAF_MAX) this.#rebalance(li);
  }

  /** Merges an underfull leaf into a neighbour, or shrinks its capacity. */
  #rebalance(li: number): void {
    const leaves = this.leaves;
    const leaf = leaves[li];
    const limit = LEAF_MAX >>> 1;
    if (li + 1 < leaves.length && leaf.n + leaves[li + 1].n <= limit) {
      this.#merge(li);
    } else if (li > 0 && leaf.n + leaves[li - 1].n <= limit) {
      this.#merge(li - 1);
    } else if (leaf.pairs.length >= leaf.n * 8 && leaf.pairs.length > LEAF_MIN_CAP * 2) {
      const shrunk = new Float64Array(Math.max(LEAF_MIN_CAP, leaf.n * 2) << 1);
      shrunk.set(leaf.pairs.subarray(0, leaf.n << 1));
      leaf.pairs = shrunk;
    }
  }

  /** Appends leaf `li + 1` to leaf `li` and drops it, carrying the cursor along. */
  #merge(li: number): void {
    const left = this.leaves[li];
    const right = this.leaves[li + 1];
    const n = left.n + right.n;
    if (n << 1 > left.pairs.length) {
      const grown = new Float64Array(Math.min(LEAF_MAX, Math.max(LEAF_MIN_CAP, n * 2)) << 1);
      grown.set(left.pairs.subarray(0, left.n << 1));
      left.pairs = grown;
    }
    left.pairs.set(right.pairs.subarray(0, right.n << 1), left.n << 1);
    if (this.li === li + 1) {
      this.li = li;
      this.ix += left.n;
    } else if (this.li > li + 1) this.li--;
    left.n = n;
    this.#dropLeaf(li + 1);
  }

  // ---- the jump table ------------------------------------------------------

  /** The first bucket whose start is `>= key`. */
  #bucketAtOrAfter(key: number): number {
    return Math.ceil(key / this.#width);
  }

  /** Leaf `li`'s first key becomes `key` (still between its neighbours' first keys). */
  #setMin(li: number, key: number): void {
    const old = this.mins[li];
    this.mins[li] = key;
    const jump = this.#jump;
    // Buckets starting in [min(old, key), max(old, key)) change hands.
    const owner = key < old ? li : li - 1;
    const to = Math.min(jump.length, this.#bucketAtOrAfter(Math.max(old, key)));
    for (let b = this.#bucketAtOrAfter(Math.min(old, key)); b < to; b++) jump[b] = owner;
  }

  /** A leaf was inserted at `li` (a split): buckets from its first key on shift by one. */
  #leafInserted(li: number): void {
    if (this.leaves.length * 2 > this.#jump.length) {
      this.#rebuildJump();
      return;
    }
    const jump = this.#jump;
    for (let b = this.#bucketAtOrAfter(this.mins[li]); b < jump.length; b++) jump[b]++;
  }

  /** Removes leaf `li` from the top arrays (it is empty, or merged into its left neighbour). */
  #dropLeaf(li: number): void {
    const from = this.#bucketAtOrAfter(this.mins[li]);
    this.leaves.splice(li, 1);
    this.mins.splice(li, 1);
    if (this.leaves.length === 1 || this.leaves.length * 32 < this.#jump.length) {
      this.#rebuildJump();
      return;
    }
    const jump = this.#jump;
    for (let b = from; b < jump.length; b++) jump[b]--;
  }

  /** Sizes the table to about eight buckets per leaf and fills it. */
  #rebuildJump(): void {
    if (this.leaves.length === 1) {
      // One leaf needs no table: every key maps to bucket 0 of a shared one.
      this.#jump = ONE_LEAF;
      this.#width = Infinity;
      this.#perBucket = 0;
      return;
    }
    const want = this.leaves.length * 8;
    let width = 1;
    while (Math.ceil(this.limit / width) > want) width *= 2;
    const buckets = Math.ceil(this.limit / width);
    const jump = new Int32Array(buckets);
    const mins = this.mins;
    let li = 0;
    for (let b = 0; b < buckets; b++) {
      const start = b * width;
      while (li + 1 < mins.length && mins[li + 1] <= start) li++;
      jump[b] = li;
    }
    this.#jump = jump;
    this.#width = width;
    this.#perBucket = 1 / width;
  }
}
