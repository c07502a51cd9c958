/**
 * The ordered map under {@link RangeTreeStore}: keys are extent starts (page
 * numbers: integers, exact as doubles up to 2^52), values are doubles (a
 * run's state word, or a negative chunk-map reference).
 *
 * Why `sorted-btree`: the project brief names it for the range-tree state
 * store ("a B-tree of contiguous extents, on npm `sorted-btree`"; "prefer a
 * well-kept npm package over hand-written code where one fits"). So this
 * module is a thin cursor adapter, not a tree: the tree holds the entries,
 * and the adapter remembers where the caller is, namely the cursor entry's
 * key and value plus its two neighbours once looked up (`nextHigherPair`,
 * `nextLowerPair`), so an edit that reads and changes the entries around one
 * position searches the tree once or twice, not once per question. Forward
 * walks (replaying runs, scanning a span's keys) read 32 entries ahead with
 * one bounded `forRange` instead of searching per step.
 *
 * Where the store's speed comes from: not from this tree. The hot edits (a
 * scattered 4 KiB flip in a fragmented span, a 2 MiB recolouring) land in
 * chunk maps that {@link RangeTreeStore} finds through a hash table (see
 * span_directory.ts) and then indexes directly; they never search the tree.
 * The tree is searched only where extents are few and large, where a few
 * descents per edit are affordable (each costs 50-150 ns on this machine: a
 * comparator-driven binary search per level, and `splice` to insert or
 * delete, so an edit of a run costs 400-500 ns where the bitmap's costs
 * 50-200 ns).
 *
 * @module
 */

import m from "sorted-btree";

// The package's CommonJS default export; a plain default import does not type-check.
const BTree = m.default;
type Tree = InstanceType<typeof BTree<number, number>>;

/**
 * Node size of the tree (sorted-btree's default is 32). Measured with the
 * bench report: 64 makes the boot, churn and replay rows 5-15% faster and the
 * index 30% smaller, since a node's fixed cost (about 144 bytes of objects and
 * array headers) is shared by twice the entries.
 */
export const NODE_SIZE = 64;

/** Keys are page numbers (never NaN), so plain subtraction orders them. */
const compareKeys = (a: number, b: number): number => a - b;

/** What {@link ExtentIndex.byteSize} reads of sorted-btree's nodes (leaves have no `children`). */
interface TreeNode {
  keys: unknown[];
  children?: TreeNode[];
}

/** A neighbour of the cursor: not looked up yet, looked up and absent, or known. */
const UNKNOWN = 0, NONE = 1, KNOWN = 2;

/**
 * Estimated bytes of the adapter and the `BTree` object (measured on Deno
 * 2.9 with forced GC: 222 and 82).
 */
export const INDEX_FIXED_BYTES = 304;

// ---- read-ahead for forward walks -------------------------------------------
//
// A walk (stepNext after stepNext: replaying runs, scanning a span's keys)
// would otherwise search the tree once per step. Instead one bounded
// `forRange` copies the next AHEAD entries here. The buffer is shared by all
// indexes (one walk runs at a time, and a store must not pay ~450 bytes for
// it, which is what an open sorted-btree iterator would hold); `aheadOwner`
// names the index whose entries it holds, and every change to that index's
// tree empties it.

/** Entries fetched per read-ahead. */
const AHEAD = 32;
/** Keys and values of the read-ahead entries, interleaved. */
const aheadData = new Float64Array(2 * AHEAD);
/** Id of the index the buffer belongs to (0: none). */
let aheadOwner = 0;
/** The key of the entry just before `aheadData[2 * aheadPos]`. */
let aheadKey = -1;
/** Entries in the buffer, and how many of them were handed out. */
let aheadLen = 0, aheadPos = 0;
/** True when the buffer reaches the index's last entry. */
let aheadAtEnd = false;
/** The key whose successors a fill collects (the entry itself is skipped). */
let fillFrom = -1;
/** The `forRange` result that stops a fill (a constant: no allocation). */
const FULL = { break: 0 };
/** Ids of indexes, for `aheadOwner`. */
let lastId = 0;

/** `forRange` callback: appends one entry after `fillFrom`; stops when full. */
function fill(key: number, value: number): { break: number } | undefined {
  if (key === fillFrom) return undefined;
  aheadData[2 * aheadLen] = key;
  aheadData[2 * aheadLen + 1] = value;
  return ++aheadLen === AHEAD ? FULL : undefined;
}

/**
 * Estimated bytes of one tree node apart from its array elements: the node
 * object and two JS arrays (keys, and values or children) with their
 * backing-store headers (measured: 144).
 */
const NODE_OVERHEAD_BYTES = 144;

/**
 * The capacity V8 gives an array grown one `splice` at a time from `from`
 * elements to `length`: a full array grows to `1.5 * (length + 1) + 16`.
 */
function grownCapacity(from: number, length: number): number {
  let capacity = from;
  while (capacity < length) capacity = capacity + 1 + ((capacity + 1) >>> 1) + 16;
  return capacity;
}

/**
 * Estimated bytes of one node of a tree with more than one node: a split
 * leaves each half with `NODE_SIZE / 2` elements, which the next insert
 * grows to 65 slots (for 64) per array, 8 bytes each (Deno runs V8 without
 * pointer compression: a Smi and an unboxed double both take 8). Measured
 * over 20,000-entry trees: 1,190-1,230 bytes a leaf (internal nodes
 * included), keys at random (46 a leaf) or in order (64 a leaf) alike, since
 * arrays keep their capacity.
 */
export const NODE_BYTES: number = NODE_OVERHEAD_BYTES +
  2 * 8 * grownCapacity(NODE_SIZE / 2, NODE_SIZE / 2 + 1);

/**
 * Sorted `(key, value)` entries with a cursor. {@link seek} places the cursor
 * on an entry; the cursor methods read and edit around it and leave it on a
 * documented entry. Callers guarantee the ordering preconditions stated on
 * each method; nothing here checks them. The index is never empty.
 */
export class ExtentIndex {
  /** Keys are below this bound. */
  readonly limit: number;
  #tree: Tree;
  /** Reused by every lookup so that lookups allocate nothing. */
  #pair: [number, number] = [0, 0];
  /** The cursor entry. */
  #key = 0;
  #value: number;
  /** The entry after the cursor: {@link UNKNOWN}, {@link NONE} or {@link KNOWN} (then #nextK/V). */
  #nextIs = UNKNOWN;
  #nextK = 0;
  #nextV = 0;
  /** The entry before the cursor, likewise. */
  #prevIs = UNKNOWN;
  #prevK = 0;
  #prevV = 0;
  /**
   * Set by {@link stepNext}: the caller is walking forwards, so looking up the
   * entry after the cursor reads ahead (see `fill`) rather than searching the
   * tree once per step.
   */
  #walking = false;
  /** This index's id in `aheadOwner`. */
  readonly #id = ++lastId;

  /** An index over keys in `[0, limit)` holding the single entry `(0, value)`. */
  constructor(limit: number, value: number) {
    this.limit = limit;
    this.#tree = new BTree<number, number>(undefined, compareKeys, NODE_SIZE);
    this.#tree.set(0, value);
    this.#value = value;
    this.#nextIs = NONE;
    this.#prevIs = NONE;
  }

  /** Number of entries. */
  get size(): number {
    return this.#tree.size;
  }

  /** Puts the cursor on the last entry whose key is `<= key` (`0 <= key < limit`). */
  seek(key: number): void {
    // Still inside the cursor entry (the store often asks twice): no search.
    if (
      key >= this.#key && (key === this.#key || (this.#nextIs !== UNKNOWN && key < this.nextKey()))
    ) {
      return;
    }
    const pair = this.#tree.getPairOrNextLower(key, this.#pair)!;
    this.#moveTo(pair[0], pair[1]);
  }

  /**
   * The number of keys `k` with `lo < k < hi` (`0 <= lo < hi <= limit`), or
   * some number above `cap` once it is known to exceed it. Leaves the cursor
   * where it was.
   */
  countInside(lo: number, hi: number, cap: number): number {
    // Keys are integers, so `lo < k` is `lo + 1 <= k`. Without a callback
    // sorted-btree counts a leaf by subtracting positions, so an exact count
    // costs O(leaves in range); the callback form stops past the cap.
    if (cap === Infinity) return this.#tree.forRange(lo + 1, hi, false);
    const stop = cap + 1;
    return this.#tree.forRange(
      lo + 1,
      hi,
      false,
      (_k, _v, n) => n + 1 >= stop ? { break: stop } : undefined,
    );
  }

  // ---- reading around the cursor -------------------------------------------

  /** The key at the cursor. */
  key(): number {
    return this.#key;
  }

  /** The value at the cursor. */
  value(): number {
    return this.#value;
  }

  /** True when an entry follows the cursor. */
  hasNext(): boolean {
    return this.#lookNext();
  }

  /** The key after the cursor, or {@link limit} at the last entry. */
  nextKey(): number {
    return this.#lookNext() ? this.#nextK : this.limit;
  }

  /** The value after the cursor; requires {@link hasNext}. */
  nextValue(): number {
    this.#lookNext();
    return this.#nextV;
  }

  /** The key before the cursor; requires that the cursor is not on the first entry. */
  prevKey(): number {
    this.#lookPrev();
    return this.#prevK;
  }

  /** The value before the cursor; requires that the cursor is not on the first entry. */
  prevValue(): number {
    this.#lookPrev();
    return this.#prevV;
  }

  /** Moves the cursor to the next entry; returns false (and stays) at the last one. */
  stepNext(): boolean {
    if (!this.#lookNext()) return false;
    this.#prevK = this.#key;
    this.#prevV = this.#value;
    this.#prevIs = KNOWN;
    this.#key = this.#nextK;
    this.#value = this.#nextV;
    this.#nextIs = UNKNOWN;
    this.#walking = true;
    return true;
  }

  /** Moves the cursor to the previous entry; returns false (and stays) at the first one. */
  stepPrev(): boolean {
    if (!this.#lookPrev()) return false;
    this.#nextK = this.#key;
    this.#nextV = this.#value;
    this.#nextIs = KNOWN;
    this.#key = this.#prevK;
    this.#value = this.#prevV;
    this.#prevIs = UNKNOWN;
    this.#walking = false;
    return true;
  }

  // ---- editing at the cursor -----------------------------------------------

  /** Sets the value at the cursor. */
  setValueHere(value: number): void {
    this.#dropAhead();
    this.#tree.set(this.#key, value);
    this.#value = value;
  }

  /** Re-keys the cursor entry; requires that `key` stays between its neighbours' keys. */
  setKeyHere(key: number): void {
    this.#dropAhead();
    this.#tree.delete(this.#key);
    this.#tree.set(key, this.#value);
    this.#key = key;
  }

  /**
   * Inserts `(key, value)` right after the cursor (requires the cursor key `<
   * key <` the next key); the cursor moves to the new entry.
   */
  insertAfter(key: number, value: number): void {
    this.#dropAhead();
    this.#tree.set(key, value);
    this.#prevK = this.#key;
    this.#prevV = this.#value;
    this.#prevIs = KNOWN;
    this.#key = key;
    this.#value = value; // the old next entry, if known, is still next
  }

  /** Removes the entry after the cursor (requires {@link hasNext}); the cursor stays put. */
  removeAfter(): void {
    this.#lookNext();
    this.#dropAhead();
    this.#tree.delete(this.#nextK);
    this.#nextIs = UNKNOWN;
  }

  /**
   * Removes the cursor entry (requires that it is not the first); the cursor
   * moves to the entry before it.
   */
  removeHere(): void {
    const key = this.#key;
    this.#lookPrev();
    // The entry after the removed one (known or not) is the new cursor's next.
    this.#key = this.#prevK;
    this.#value = this.#prevV;
    this.#prevIs = UNKNOWN;
    this.#dropAhead();
    this.#tree.delete(key);
  }

  // ---- editing by key (for rare, multi-step changes) -----------------------

  /** Inserts `(key, value)`; requires that `key` is absent and not below the first key. The cursor moves to it. */
  insert(key: number, value: number): void {
    this.#dropAhead();
    this.#tree.set(key, value);
    this.#moveTo(key, value);
  }

  /** Removes the entry at `key`; requires that it exists and is not the first. The cursor moves to the entry before it. */
  remove(key: number): void {
    this.seek(key);
    this.removeHere();
  }

  /** Sets the value of the entry at `key`; requires that it exists. The cursor moves to it. */
  setValue(key: number, value: number): void {
    this.#dropAhead();
    this.#tree.set(key, value);
    if (key !== this.#key) this.#moveTo(key, value);
    else this.#value = value;
  }

  // ---- whole-index views (tests, checks, reports) ------------------------------

  /** Every entry as `[key, value]`, keys ascending (allocates a pair per entry). */
  entries(): IterableIterator<[number, number]> {
    return this.#tree.entries();
  }

  /** Throws when sorted-btree finds its own structure broken (sizes, key order). */
  checkValid(): void {
    this.#tree.checkValid(true);
  }

  /** Number of leaf nodes of the tree (walks the nodes: for reports and tests). */
  leafCount(): number {
    const root = this.#root();
    if (root === undefined) return Math.ceil(this.#tree.size / (NODE_SIZE / 2));
    let leaves = 0;
    this.#forEachNode(root, (node) => {
      if (node.children === undefined) leaves++;
    });
    return leaves;
  }

  /**
   * Estimated bytes: {@link INDEX_FIXED_BYTES}, plus {@link NODE_BYTES} per
   * node of the tree (leaf or internal), counted by walking the nodes; a tree
   * that is a single leaf counts that leaf's arrays as grown from empty (17
   * slots up to 17 entries, then 43, then 82). Node arrays are counted at the
   * capacity V8 gives them, not at the entries in use. Checked against the growth of V8's
   * heap after forced GC (Deno 2.9, many stores per measurement): within 5%
   * either way for stores of 1 to 20,000 runs set at random or in order
   * (e.g. 20,000 runs at random: 518 KB measured, 514 KB estimated; in order:
   * 372 KB measured, 378 KB estimated).
   */
  byteSize(): number {
    const root = this.#root();
    if (root === undefined) {
      // Unknown node layout: assume half-full leaves, the fewest entries a leaf keeps.
      return INDEX_FIXED_BYTES + Math.ceil(this.#tree.size / (NODE_SIZE / 2)) * NODE_BYTES;
    }
    if (root.children === undefined) {
      return INDEX_FIXED_BYTES + NODE_OVERHEAD_BYTES + 2 * 8 * grownCapacity(0, root.keys.length);
    }
    let nodes = 0;
    this.#forEachNode(root, () => nodes++);
    return INDEX_FIXED_BYTES + nodes * NODE_BYTES;
  }

  // ---- internals -------------------------------------------------------------

  /** Puts the cursor on `(key, value)` with both neighbours unknown. */
  #moveTo(key: number, value: number): void {
    this.#key = key;
    this.#value = value;
    this.#nextIs = UNKNOWN;
    this.#prevIs = UNKNOWN;
    this.#walking = false;
  }

  /** Looks up the entry after the cursor if needed; true when there is one. */
  #lookNext(): boolean {
    if (this.#nextIs === UNKNOWN) {
      if (aheadOwner !== this.#id || aheadKey !== this.#key) {
        if (!this.#walking) return this.#searchNext();
        this.#readAhead();
      } else if (aheadPos === aheadLen && !aheadAtEnd) this.#readAhead();
      if (aheadPos === aheadLen) {
        this.#nextIs = NONE;
        return false;
      }
      this.#nextK = aheadKey = aheadData[2 * aheadPos];
      this.#nextV = aheadData[2 * aheadPos + 1];
      aheadPos++;
      this.#nextIs = KNOWN;
    }
    return this.#nextIs === KNOWN;
  }

  /** Fills the shared read-ahead buffer with the entries after the cursor. */
  #readAhead(): void {
    aheadOwner = this.#id;
    aheadKey = fillFrom = this.#key;
    aheadLen = aheadPos = 0;
    this.#tree.forRange(this.#key, this.limit, false, fill);
    aheadAtEnd = aheadLen < AHEAD;
  }

  /** Empties the read-ahead buffer if it holds this index's entries (they are about to change). */
  #dropAhead(): void {
    if (aheadOwner === this.#id) aheadOwner = 0;
  }

  /** Finds the entry after the cursor with one search; true when there is one. */
  #searchNext(): boolean {
    const pair = this.#tree.nextHigherPair(this.#key, this.#pair);
    if (pair === undefined) {
      this.#nextIs = NONE;
      return false;
    }
    this.#nextK = pair[0];
    this.#nextV = pair[1];
    this.#nextIs = KNOWN;
    return true;
  }

  /** Looks up the entry before the cursor if needed; true when there is one. */
  #lookPrev(): boolean {
    if (this.#prevIs === UNKNOWN) {
      const pair = this.#tree.nextLowerPair(this.#key, this.#pair);
      if (pair === undefined) this.#prevIs = NONE;
      else {
        this.#prevK = pair[0];
        this.#prevV = pair[1];
        this.#prevIs = KNOWN;
      }
    }
    return this.#prevIs === KNOWN;
  }

  /**
   * The tree's root node. sorted-btree has no public node count, so
   * {@link byteSize} and {@link leafCount} read its node layout (`_root`,
   * `keys`, `children`; unchanged since 1.x); undefined should a release
   * change it.
   */
  #root(): TreeNode | undefined {
    const root = (this.#tree as unknown as { _root?: TreeNode })._root;
    return root !== undefined && Array.isArray(root.keys) ? root : undefined;
  }

  /** Calls `visit` on every node under `root`. */
  #forEachNode(root: TreeNode, visit: (node: TreeNode) => void): void {
    const stack = [root];
    while (stack.length > 0) {
      const node = stack.pop()!;
      visit(node);
      const children = node.children;
      if (children === undefined) continue;
      for (const child of children) stack.push(child);
    }
  }
}
