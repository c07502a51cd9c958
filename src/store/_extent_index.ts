/**
 * The ordered map under {@link RangeTreeStore}: keys are extent starts (page
 * numbers: integers, exact as doubles up to 2^52), values are doubles (a
 * run's state word, or a negative reference to a chunk map or a run container).
 *
 * Why `sorted-btree` here and the hand-written `SortedMap` in the simulated
 * kernels: see src/util/sorted_map.ts ("Two ordered maps"). The tree
 * holds the entries and does every structural change (splitting a full leaf,
 * merging emptied ones, growing or shrinking the root).
 *
 * ## The finger
 *
 * The cursor is a *finger*: the leaf that holds the cursor entry, the
 * entry's position in it, and the path of internal nodes (with the child
 * taken at each) from the root down to that leaf. An edit of a run reads and
 * changes the entries around one position (the entry, its neighbours, one or
 * two inserted or removed boundaries); through the finger each of those is an
 * array access in the leaf (or, at the leaf's edge, a step along the path to
 * the neighbouring leaf) instead of a search from the root, and inserting or
 * removing an entry is a shift inside the leaf plus a size update on the
 * path. Measured with the bench report (`boot`, `scale: boot 64GiB`,
 * `swiotlb-churn`, stores of one bit, one run): searching from the root for
 * every one of those steps, through sorted-btree's comparator-driven `set` /
 * `delete` / `nextHigherPair`, made a conversion cost 1.0-1.6 us against the
 * bitmap's 0.1-0.35 us (4.4-12x); through the finger it costs 0.23-0.32 us
 * (1.7-3.5x). {@link seek} also starts at the finger: a key inside the
 * finger's leaf (the common case for edits near the last one) costs one
 * binary search in that leaf. What is left on random edits is the search
 * itself and the shift: a random descent of a tree of 6,000 extents costs
 * more than the bitmap's whole conversion on a 2 MiB bitmap, which is why
 * the store keeps a span's boundaries in a run container of its own (see
 * range_tree_store.ts; with its default `runContainerAt` this index holds
 * whole spans only).
 *
 * In-place edits keep sorted-btree's invariants exactly: an internal node's
 * `keys[i]` is the largest key under child `i`, its `_size` counts the
 * entries below it, and no leaf is empty or holds more than
 * {@link NODE_SIZE} entries. Whatever the finger cannot do in place (an
 * insert into a full leaf, a removal that would leave a leaf other than the
 * root at most {@link IN_PLACE_MIN} entries) goes through sorted-btree's own
 * `set` / `delete`, which may split, merge or rebalance nodes; the finger is
 * then rebuilt with one search, since every node it points at may have moved.
 * This reads and writes sorted-btree's node fields (`_root`, `keys`,
 * `values`, `children`, `_size`); {@link ExtentIndex}'s constructor checks
 * that layout once and refuses to run should a release change it.
 *
 * Where the store's speed comes from otherwise: the hot edits (a scattered
 * 4 KiB flip, a 2 MiB recolouring, a buffer in a crowded span) land in run
 * containers and chunk maps that {@link RangeTreeStore} finds through a hash
 * table (see _span_directory.ts); they never touch this index.
 *
 * @module
 */

import m from "npm:sorted-btree@^2.1.0";

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

/**
 * The finger removes an entry in place only while its leaf keeps more than
 * this many entries; below, sorted-btree's `delete` removes it and merges the
 * leaf with a neighbour when the two fit in one node (it does so at half
 * full). A quarter rather than sorted-btree's half: `swiotlb-churn` frees and
 * reallocates boundaries in the same few leaves, and with half 52,000 of its
 * 200,000 conversions (runs only) went through sorted-btree, with a quarter
 * 15,000. The index's bytes are counted by node
 * ({@link ExtentIndex.byteSize}), so sparser leaves show in the report.
 */
export const IN_PLACE_MIN = NODE_SIZE / 4;

/** Keys are page numbers (never NaN), so plain subtraction orders them. */
const compareKeys = (a: number, b: number): number => a - b;

/**
 * A node of sorted-btree as the finger reads and edits it: a leaf has
 * `keys` and `values`; an internal node has `keys` (the largest key under
 * each child), `children` and `_size` (the entries below it).
 */
interface TreeNode {
  keys: number[];
  values: number[];
  children?: TreeNode[];
  _size: number;
}

/** The part of sorted-btree's `BTree` object the finger reads. */
interface TreeInternals {
  _root: TreeNode;
}

/**
 * Estimated bytes of the adapter and the `BTree` object (measured on Deno
 * 2.9 with forced GC: 222 and 82).
 */
export const INDEX_FIXED_BYTES = 304;

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

/** Internal levels the finger's path has room for at first (it grows if a tree is deeper). */
const INITIAL_PATH = 8;

/**
 * Why sorted-btree's node layout is not the one the finger edits, or
 * undefined when it is: checked once on a tree with internal nodes.
 */
function layoutProblem(): string | undefined {
  const tree = new BTree<number, number>(undefined, compareKeys, NODE_SIZE);
  const count = 4 * NODE_SIZE;
  for (let k = 0; k < count; k++) tree.set(k, -k);
  const root = (tree as unknown as Partial<TreeInternals>)._root;
  if (root === undefined || !Array.isArray(root.keys)) return "no _root with keys";
  if (!Array.isArray(root.children)) return "the root of a big tree has no children array";
  if (root._size !== count) return "internal nodes keep no _size";
  const leaf = root.children[0];
  if (!Array.isArray(leaf?.keys) || !Array.isArray(leaf.values) || leaf.children !== undefined) {
    return "leaves are not keys and values arrays";
  }
  if (leaf.values[1] !== -leaf.keys[1]) return "leaf values do not line up with keys";
  if (root.keys[0] !== leaf.keys[leaf.keys.length - 1]) {
    return "internal keys are not the largest key of each child";
  }
  return undefined;
}

let layoutChecked: string | undefined | null = null;

/**
 * Sorted `(key, value)` entries with a cursor (a finger into the tree, see
 * the module doc). {@link seek} places the cursor on an entry; the cursor
 * methods read and edit around it and leave it on a documented entry.
 * Callers guarantee the ordering preconditions stated on each method;
 * nothing here checks them. The index is never empty.
 */
export class ExtentIndex {
  /** Keys are below this bound. */
  readonly limit: number;
  #tree: Tree;
  /** The leaf holding the cursor entry. */
  #leaf: TreeNode;
  /** The cursor entry's position in `#leaf`. */
  #i = 0;
  /** Internal nodes from the root down to `#leaf`'s parent: `#path[0 .. #depth)`. */
  #path: TreeNode[];
  /** The child taken at each node of `#path`. */
  #slots: number[] = Array.from({ length: INITIAL_PATH }, () => 0);
  /** Internal levels above the leaves (0 while the root is a leaf). */
  #depth = 0;
  /** Searches from the root since construction (for tests: the finger saves them). */
  #searches = 0;
  /** Edits handed to sorted-btree since construction (for tests and tuning). */
  #fallbacks = 0;
  /** Leaves the finger split itself since construction (for tests and tuning). */
  #splits = 0;

  /** An index over keys in `[0, limit)` holding the single entry `(0, value)`. */
  constructor(limit: number, value: number) {
    if (layoutChecked === null) layoutChecked = layoutProblem();
    if (layoutChecked !== undefined) {
      throw new Error(
        `sorted-btree: unexpected node layout (${layoutChecked}); ExtentIndex needs 2.1.x`,
      );
    }
    this.limit = limit;
    this.#tree = new BTree<number, number>(undefined, compareKeys, NODE_SIZE);
    this.#tree.set(0, value);
    this.#leaf = this.#root();
    // Filled (not holey) from the start, so reading it never checks for holes.
    this.#path = Array.from({ length: INITIAL_PATH }, () => this.#leaf);
  }

  /** Number of entries. */
  get size(): number {
    return this.#tree.size;
  }

  /**
   * How often the cursor searched from the root, how often an edit went
   * through sorted-btree's own `set` / `delete`, and how many leaves the
   * finger split itself, since construction. For tests and tuning: every
   * other move and edit was done at the finger.
   */
  get counters(): { searches: number; fallbacks: number; splits: number } {
    return { searches: this.#searches, fallbacks: this.#fallbacks, splits: this.#splits };
  }

  /** Puts the cursor on the last entry whose key is `<= key` (`0 <= key < limit`). */
  seek(key: number): void {
    const keys = this.#leaf.keys;
    const n = keys.length;
    const i = this.#i;
    if (key >= keys[i]) {
      // Still inside the cursor entry (the store often asks twice): nothing to do.
      if (i + 1 < n ? key < keys[i + 1] : key < this.#nextLeafFirstKey()) return;
      if (key <= keys[n - 1]) {
        this.#i = lastAtMost(keys, key, i + 1, n);
        return;
      }
    } else if (key >= keys[0]) {
      this.#i = lastAtMost(keys, key, 0, i);
      return;
    }
    this.#descend(key);
  }

  /**
   * The number of keys `k` with `lo < k < hi` (`0 <= lo < hi <= limit`), or
   * some number above `cap` once it is known to exceed it. Walks the leaves
   * of the window from the finger (back from it first when it is inside the
   * window), one binary search per leaf; the cursor ends somewhere in or
   * next to the window (callers seek again).
   */
  countInside(lo: number, hi: number, cap: number): number {
    // Keys are integers: `lo < k < hi` is `lo + 1 <= k <= hi - 1`.
    if (hi - lo <= 1) return 0;
    const at = this.key();
    if (at > lo && at < hi) {
      // Inside the window already (the store asks about the span of the run
      // it is about to edit): walk back to the leaf holding lo rather than
      // search for it.
      while (this.#leaf.keys[0] > lo && this.#toPrevLeaf());
      const keys = this.#leaf.keys;
      this.#i = Math.max(0, lastAtMost(keys, lo, 0, keys.length));
    } else this.seek(lo + 1);
    let keys = this.#leaf.keys;
    let from = keys[this.#i] > lo ? this.#i : this.#i + 1;
    let count = 0;
    for (;;) {
      const n = keys.length;
      const to = lastAtMost(keys, hi - 1, from, n) + 1;
      count += to - from;
      if (to < n || count > cap || !this.#toNextLeaf()) return count;
      keys = this.#leaf.keys;
      from = 0;
    }
  }

  // ---- reading around the cursor -------------------------------------------

  /** The key at the cursor. */
  key(): number {
    return this.#leaf.keys[this.#i];
  }

  /** The value at the cursor. */
  value(): number {
    return this.#leaf.values[this.#i];
  }

  /** True when an entry follows the cursor. */
  hasNext(): boolean {
    return this.#i + 1 < this.#leaf.keys.length || this.#peekNextLeaf() !== undefined;
  }

  /** The key after the cursor, or {@link limit} at the last entry. */
  nextKey(): number {
    const keys = this.#leaf.keys;
    return this.#i + 1 < keys.length ? keys[this.#i + 1] : this.#nextLeafFirstKey();
  }

  /** The value after the cursor; requires {@link hasNext}. */
  nextValue(): number {
    const leaf = this.#leaf;
    return this.#i + 1 < leaf.keys.length
      ? leaf.values[this.#i + 1]
      : this.#peekNextLeaf()!.values[0];
  }

  /** The key before the cursor; requires that the cursor is not on the first entry. */
  prevKey(): number {
    if (this.#i > 0) return this.#leaf.keys[this.#i - 1];
    const prev = this.#peekPrevLeaf()!;
    return prev.keys[prev.keys.length - 1];
  }

  /** The value before the cursor; requires that the cursor is not on the first entry. */
  prevValue(): number {
    if (this.#i > 0) return this.#leaf.values[this.#i - 1];
    const prev = this.#peekPrevLeaf()!;
    return prev.values[prev.values.length - 1];
  }

  /** Moves the cursor to the next entry; returns false (and stays) at the last one. */
  stepNext(): boolean {
    if (this.#i + 1 < this.#leaf.keys.length) {
      this.#i++;
      return true;
    }
    return this.#toNextLeaf();
  }

  /** Moves the cursor to the previous entry; returns false (and stays) at the first one. */
  stepPrev(): boolean {
    if (this.#i > 0) {
      this.#i--;
      return true;
    }
    return this.#toPrevLeaf();
  }

  // ---- editing at the cursor -----------------------------------------------

  /** Sets the value at the cursor. */
  setValueHere(value: number): void {
    this.#leaf.values[this.#i] = value;
  }

  /** Re-keys the cursor entry; requires that `key` stays between its neighbours' keys. */
  setKeyHere(key: number): void {
    const keys = this.#leaf.keys;
    keys[this.#i] = key;
    if (this.#i === keys.length - 1) this.#setLeafMax(key);
  }

  /**
   * Inserts `(key, value)` right after the cursor (requires the cursor key `<
   * key <` the next key); the cursor moves to the new entry.
   */
  insertAfter(key: number, value: number): void {
    if (this.#leaf.keys.length >= NODE_SIZE && !this.#splitLeaf(this.#i + 1)) {
      // The parent is full too: sorted-btree splits up the tree.
      this.#fallbacks++;
      this.#tree.set(key, value);
      this.#descend(key);
      return;
    }
    const leaf = this.#leaf;
    const keys = leaf.keys, values = leaf.values;
    const n = keys.length;
    // The key goes right after the cursor; at the leaf's end it becomes the
    // leaf's largest key (it is below the next leaf's first key).
    const at = this.#i + 1;
    for (let t = n; t > at; t--) {
      keys[t] = keys[t - 1];
      values[t] = values[t - 1];
    }
    keys[at] = key;
    values[at] = value;
    this.#i = at;
    this.#addToSizes(1);
    if (at === n) this.#setLeafMax(key);
  }

  /**
   * Inserts `(key1, value1)` and then `(key2, value2)` right after the cursor
   * (requires the cursor key `< key1 < key2 <` the next key), as two
   * {@link insertAfter} calls would, with one shift of the leaf instead of
   * two: the edit of a run's middle adds two boundaries at once. The cursor
   * moves to `key2`.
   */
  insertTwoAfter(key1: number, value1: number, key2: number, value2: number): void {
    if (this.#leaf.keys.length + 2 > NODE_SIZE) {
      this.insertAfter(key1, value1);
      this.insertAfter(key2, value2);
      return;
    }
    const leaf = this.#leaf;
    const keys = leaf.keys, values = leaf.values;
    const n = keys.length;
    const at = this.#i + 1;
    // Grow by two first: writing at n + 1 of an n-element array would leave a
    // hole at n and turn the leaf's arrays into slower "holey" ones for good.
    keys.push(key2);
    keys.push(key2);
    values.push(value2);
    values.push(value2);
    for (let t = n + 1; t > at + 1; t--) {
      keys[t] = keys[t - 2];
      values[t] = values[t - 2];
    }
    keys[at] = key1;
    values[at] = value1;
    keys[at + 1] = key2;
    values[at + 1] = value2;
    this.#i = at + 1;
    this.#addToSizes(2);
    if (at === n) this.#setLeafMax(key2);
  }

  /** Removes the entry after the cursor (requires {@link hasNext}); the cursor stays put. */
  removeAfter(): void {
    if (this.#i + 1 < this.#leaf.keys.length && this.#canShrink(1)) {
      this.#removeInLeaf(this.#i + 1);
      return;
    }
    const key = this.key();
    this.#fallbacks++;
    this.#tree.delete(this.nextKey());
    this.#descend(key);
  }

  /**
   * Removes the cursor entry (requires that it is not the first); the cursor
   * moves to the entry before it.
   */
  removeHere(): void {
    const i = this.#i;
    if (this.#canShrink(1)) {
      this.#removeInLeaf(i);
      if (i > 0) this.#i = i - 1;
      else this.#toPrevLeaf();
      return;
    }
    const key = this.key();
    const before = this.prevKey();
    this.#fallbacks++;
    this.#tree.delete(key);
    this.#descend(before);
  }

  /**
   * Removes the cursor entry and the one after it (requires both, and that
   * the cursor is not on the first entry), as {@link removeAfter} then
   * {@link removeHere} would, with one shift of the leaf: a freed buffer
   * merges with the runs on both sides. The cursor moves to the entry before.
   */
  removeHereAndNext(): void {
    const leaf = this.#leaf;
    const keys = leaf.keys, values = leaf.values;
    const n = keys.length;
    const i = this.#i;
    if (i + 1 >= n || !this.#canShrink(2)) {
      this.removeAfter();
      this.removeHere();
      return;
    }
    for (let t = i + 2; t < n; t++) {
      keys[t - 2] = keys[t];
      values[t - 2] = values[t];
    }
    // pop, not `length =`: setting the length is a runtime call (it showed in
    // the profile of the report's swiotlb-churn row), pop has a fast path.
    keys.pop();
    keys.pop();
    values.pop();
    values.pop();
    this.#addToSizes(-2);
    if (i + 2 === n) this.#setLeafMax(keys[n - 3]);
    if (i > 0) this.#i = i - 1;
    else this.#toPrevLeaf();
  }

  // ---- editing by key (for rare, multi-step changes) -----------------------

  /** Inserts `(key, value)`; requires that `key` is absent and not below the first key. The cursor moves to it. */
  insert(key: number, value: number): void {
    this.seek(key);
    this.insertAfter(key, value);
  }

  /** Removes the entry at `key`; requires that it exists and is not the first. The cursor moves to the entry before it. */
  remove(key: number): void {
    this.seek(key);
    this.removeHere();
  }

  /**
   * Removes every entry with `lo < key < hi` (`0 <= lo < hi <= limit`); the
   * cursor moves to the last entry with key `<= lo`. In place when they all
   * lie in one leaf that may lose them (the root, or one that keeps more
   * than {@link IN_PLACE_MIN} entries), otherwise with one sorted-btree
   * `deleteRange`: a span turning into a run container drops its keys at
   * once, not one search each.
   */
  removeInside(lo: number, hi: number): void {
    this.seek(lo);
    const leaf = this.#leaf;
    const keys = leaf.keys, values = leaf.values;
    const n = keys.length;
    const from = this.#i + 1; // first position past lo in this leaf
    const to = lastAtMost(keys, hi - 1, from, n) + 1;
    const count = to - from;
    // All of them in this leaf: none past its end, or the next leaf starts at hi or later.
    const inLeaf = to < n || this.#nextLeafFirstKey() >= hi;
    if (inLeaf && count === 0) return;
    if (inLeaf && this.#canShrink(count)) {
      for (let t = to; t < n; t++) {
        keys[t - count] = keys[t];
        values[t - count] = values[t];
      }
      for (let t = 0; t < count; t++) {
        keys.pop(); // see removeHereAndNext
        values.pop();
      }
      this.#addToSizes(-count);
      if (to === n) this.#setLeafMax(keys[from - 1]);
      return;
    }
    this.#fallbacks++;
    this.#tree.deleteRange(lo + 1, hi, false);
    this.#descend(lo);
  }

  /** Sets the value of the entry at `key`; requires that it exists. The cursor moves to it. */
  setValue(key: number, value: number): void {
    this.seek(key);
    this.setValueHere(value);
  }

  // ---- whole-index views (tests, checks, reports) ------------------------------

  /** Every entry as `[key, value]`, keys ascending (allocates a pair per entry). */
  entries(): IterableIterator<[number, number]> {
    return this.#tree.entries();
  }

  /**
   * Throws when sorted-btree finds its own structure broken (sizes, key
   * order, internal keys) or when the finger does not point at the cursor
   * entry through the tree's current nodes.
   */
  checkValid(): void {
    this.#tree.checkValid(true);
    let node = this.#root();
    for (let d = 0; d < this.#depth; d++) {
      if (this.#path[d] !== node) throw new Error(`ExtentIndex finger: stale node at depth ${d}`);
      const children = node.children;
      if (children === undefined || this.#slots[d] >= children.length) {
        throw new Error(`ExtentIndex finger: bad child slot at depth ${d}`);
      }
      node = children[this.#slots[d]];
    }
    if (node !== this.#leaf || node.children !== undefined) {
      throw new Error("ExtentIndex finger: the path does not end at the cursor's leaf");
    }
    if (!(this.#i >= 0 && this.#i < node.keys.length)) {
      throw new Error(`ExtentIndex finger: position ${this.#i} outside its leaf`);
    }
  }

  /** Number of leaf nodes of the tree (walks the nodes: for reports and tests). */
  leafCount(): number {
    let leaves = 0;
    this.#forEachNode(this.#root(), (node) => {
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
    if (root.children === undefined) {
      return INDEX_FIXED_BYTES + NODE_OVERHEAD_BYTES + 2 * 8 * grownCapacity(0, root.keys.length);
    }
    let nodes = 0;
    this.#forEachNode(root, () => nodes++);
    return INDEX_FIXED_BYTES + nodes * NODE_BYTES;
  }

  // ---- internals -------------------------------------------------------------

  /** The tree's root node. */
  #root(): TreeNode {
    return (this.#tree as unknown as TreeInternals)._root;
  }

  /** Rebuilds the finger from the root: the cursor goes to the last entry with key `<= key`. */
  #descend(key: number): void {
    this.#searches++;
    let node = this.#root();
    let d = 0;
    for (let children = node.children; children !== undefined; children = node.children) {
      // The first child whose largest key is >= key (the last child when none is).
      const keys = node.keys;
      let lo = 0, hi = keys.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (keys[mid] < key) lo = mid + 1;
        else hi = mid;
      }
      if (d === this.#path.length) {
        this.#path.push(node);
        this.#slots.push(lo);
      } else {
        this.#path[d] = node;
        this.#slots[d] = lo;
      }
      d++;
      node = children[lo];
    }
    this.#depth = d;
    this.#leaf = node;
    const keys = node.keys;
    const i = lastAtMost(keys, key, 0, keys.length);
    // Below this leaf's first key, the entry is the previous leaf's last
    // (there is one: key 0 is always present).
    if (i >= 0) this.#i = i;
    else this.#toPrevLeaf();
  }

  /** Moves the finger to the first entry of the next leaf; false (and stays) at the last leaf. */
  #toNextLeaf(): boolean {
    const path = this.#path, slots = this.#slots, depth = this.#depth;
    let d = depth - 1;
    while (d >= 0 && slots[d] === path[d].children!.length - 1) d--;
    if (d < 0) return false;
    let node = path[d].children![++slots[d]];
    for (d++; d < depth; d++) {
      path[d] = node;
      slots[d] = 0;
      node = node.children![0];
    }
    this.#leaf = node;
    this.#i = 0;
    return true;
  }

  /** Moves the finger to the last entry of the previous leaf; false (and stays) at the first leaf. */
  #toPrevLeaf(): boolean {
    const path = this.#path, slots = this.#slots, depth = this.#depth;
    let d = depth - 1;
    while (d >= 0 && slots[d] === 0) d--;
    if (d < 0) return false;
    let node = path[d].children![--slots[d]];
    for (d++; d < depth; d++) {
      path[d] = node;
      const last = node.children!.length - 1;
      slots[d] = last;
      node = node.children![last];
    }
    this.#leaf = node;
    this.#i = node.keys.length - 1;
    return true;
  }

  /** The leaf after the finger's, or undefined at the last leaf; the finger stays. */
  #peekNextLeaf(): TreeNode | undefined {
    const path = this.#path, slots = this.#slots;
    let d = this.#depth - 1;
    while (d >= 0 && slots[d] === path[d].children!.length - 1) d--;
    if (d < 0) return undefined;
    let node = path[d].children![slots[d] + 1];
    while (node.children !== undefined) node = node.children[0];
    return node;
  }

  /** The leaf before the finger's, or undefined at the first leaf; the finger stays. */
  #peekPrevLeaf(): TreeNode | undefined {
    const path = this.#path, slots = this.#slots;
    let d = this.#depth - 1;
    while (d >= 0 && slots[d] === 0) d--;
    if (d < 0) return undefined;
    let node = path[d].children![slots[d] - 1];
    while (node.children !== undefined) node = node.children[node.children.length - 1];
    return node;
  }

  /** The first key of the next leaf, or {@link limit} at the last leaf. */
  #nextLeafFirstKey(): number {
    const next = this.#peekNextLeaf();
    return next === undefined ? this.limit : next.keys[0];
  }

  /**
   * Splits the finger's full leaf in two halves, the right half a new leaf
   * after it in the same parent, as sorted-btree's own split does, and moves
   * the finger to the half where position `at` of the old leaf (an insertion
   * point, at most the leaf's length) now lies. False, with nothing changed,
   * when the leaf is the root or its parent is full: then sorted-btree must
   * split further up. Splitting here rather than through `set` keeps the
   * finger: `set` would search from the root, maybe move an entry to a
   * sibling instead, and the finger would have to be found again.
   */
  #splitLeaf(at: number): boolean {
    const d = this.#depth - 1;
    if (d < 0) return false;
    const parent = this.#path[d];
    if (parent.keys.length >= NODE_SIZE) return false;
    const leaf = this.#leaf;
    const half = leaf.keys.length >>> 1;
    const LeafNode = leaf.constructor as new (keys: number[], values: number[]) => TreeNode;
    const right = new LeafNode(leaf.keys.splice(half), leaf.values.splice(half));
    const slot = this.#slots[d];
    parent.children!.splice(slot + 1, 0, right);
    parent.keys.splice(slot, 0, leaf.keys[half - 1]); // the left half's largest key
    this.#splits++;
    if (at > half) {
      this.#slots[d] = slot + 1;
      this.#leaf = right;
      this.#i -= half;
    }
    return true;
  }

  /** Adds `delta` to the entry count of every internal node on the finger's path. */
  #addToSizes(delta: number): void {
    const path = this.#path;
    for (let d = 0; d < this.#depth; d++) path[d]._size += delta;
  }

  /**
   * The finger's leaf now has `max` as its largest key: update the copies of
   * it in the internal nodes above (each holds its children's largest keys),
   * as far up as it is a node's largest.
   */
  #setLeafMax(max: number): void {
    const path = this.#path, slots = this.#slots;
    for (let d = this.#depth - 1; d >= 0; d--) {
      const keys = path[d].keys;
      keys[slots[d]] = max;
      if (slots[d] !== keys.length - 1) return;
    }
  }

  /**
   * Whether the finger's leaf may lose `count` entries in place: when it is
   * the root (a root leaf has no neighbour to merge with, and sorted-btree
   * leaves it as it is), or when it keeps more than {@link IN_PLACE_MIN}.
   * Small stores live in a root leaf: the simulated kernels' tables, a
   * region with a few dozen buffers in flight. Before the root case, every
   * removal from a root leaf of at most 17 entries went through
   * sorted-btree's `delete` and a search from the root: a quarter of a
   * million of them in the `replay 1 TiB` row's million conversions.
   */
  #canShrink(count: number): boolean {
    return this.#depth === 0 || this.#leaf.keys.length - count > IN_PLACE_MIN;
  }

  /** Removes entry `j` of the finger's leaf, which may lose it ({@link #canShrink}). */
  #removeInLeaf(j: number): void {
    const leaf = this.#leaf;
    const keys = leaf.keys, values = leaf.values;
    const last = keys.length - 1;
    for (let t = j; t < last; t++) {
      keys[t] = keys[t + 1];
      values[t] = values[t + 1];
    }
    keys.pop();
    values.pop();
    this.#addToSizes(-1);
    if (j === last) this.#setLeafMax(keys[last - 1]);
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

/** The last position in `[from, to)` of sorted `keys` whose key is `<= key`, or `from - 1`. */
function lastAtMost(keys: number[], key: number, from: number, to: number): number {
  let lo = from, hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid] <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}
