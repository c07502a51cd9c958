/**
 * The product store: a tree of extents whose spans switch to containers, in
 * the spirit of roaring bitmaps' run and bitmap containers.
 *
 * ## Representation
 *
 * An ordered index of entries (an {@link ExtentIndex}, npm `sorted-btree`'s
 * B+-tree keyed by page) partitions `[0, length)`; an entry runs from its key to the
 * next key (or `length`). An entry's value is either
 *
 * - a **run**: a state word `>= 0` that every page of the entry has; or
 * - a **run container**: `-(CONTAINER_BASE + id + 1)`, an aligned *span*
 *   (`mapChunks` chunks, default 512 × 512 pages: 1 GiB of 4 KiB pages) whose
 *   runs are a sorted array of `(offset, state)` pairs of its own in
 *   {@link RunContainers}; or
 * - a **chunk map**: `-(map + 1)`, a span held as one slot per chunk in a
 *   {@link SlotArena}. A slot is again either a state word (the whole chunk
 *   has it) or `-(dense + 1)`, a **dense chunk**: one bit plane per state bit
 *   in a {@link DenseSlab}, exactly the bitmap's layout.
 *
 * With the default `runContainerAt` of 0, a span becomes a run container
 * before its first boundary, so the index holds whole spans only: uniform
 * ones as runs, the others as one container entry each. A container whose
 * span is crowded (more than `mapAt` boundaries inside it) becomes a chunk
 * map where the map would cost at most twice the memory of the boundaries as
 * index entries (roaring's rule, the cheaper container wins, tilted towards
 * the faster one): O(1) to address a chunk, O(1) to recolour a whole chunk,
 * and the bitmap's cost for the chunks that are fragmented inside. When a
 * map's span calms down to `mapAt / 2` boundaries it turns back into a run
 * container (the gap stops it flapping), and a container left uniform turns
 * back into a run. A span whose boundaries cost less than `MAP_FLOOR` of the
 * bitmap's bytes for it stays a container however crowded (a map pays for
 * itself only over many edits). Memory therefore follows fragmentation: a
 * 1 TiB guest with a few thousand scattered extents costs a few hundred
 * kilobytes where the bitmap costs 32 MiB per bit, and even when scattered
 * 4 KiB churn makes every chunk dense the store stays within about 1.13 times
 * the bitmap of the same bits (see {@link RangeTreeStore.byteSize} for the
 * bound).
 *
 * Why containers and not only a tree: a random search of a B-tree of a few
 * thousand extents costs more than a whole bitmap update (the report's
 * `scale: boot 64GiB` row: the search alone is about 1.5 times the bitmap's
 * conversion), and scattered 4 KiB conversions search on every edit
 * (`deno bench bench/structures_bench.ts`, group "chunk maps: scattered 4 KiB
 * conversions", 1,000,000 random pages of 16 GiB: the bitmap 1x, this store
 * 1.3-1.5x, the same store without chunk maps, its spans run containers of
 * about 50,000 pairs, 14-25x, over two runs). Both containers are found
 * through a {@link SpanDirectory} (one hash probe): a chunk map is then
 * indexed directly, so its hot edits (a 4 KiB flip in a fragmented span, a
 * 2 MiB recolouring) never search at all, and a run container is searched
 * over its own span's pairs only (94 at `scale: boot 64GiB`, where the whole
 * tree held 5,849 extents: that row went from 3.96-4.18x the bitmap to
 * 2.52-2.99x in round 4's runs, docs/performance_history.md). The tree is
 * searched only to find a span of runs, and edits near the last one start
 * from the index's finger (see _extent_index.ts).
 *
 * Invariants: there is always an entry at page 0; two neighbouring *run*
 * entries never share a state; a container entry starts on a span boundary
 * and the next key is the span's end; with `runContainerAt` 0 no run key lies
 * strictly inside a span. Containers, their pairs, uniform chunks and dense
 * chunks may start or end with their neighbour's state;
 * {@link RangeTreeStore.runs} merges across every such boundary, so it always
 * yields maximal runs.
 *
 * {@link RangeTreeStore.runCount} is `1 +` the number of state changes between
 * neighbouring pages, kept exact by every edit: each step of an edit counts the
 * changes on the boundaries it can affect before and after (a map and a dense
 * chunk also keep the count of changes inside them, and a run container has
 * one fewer than its pairs, which drives the representation changes).
 *
 * @module
 */

import { DenseSlab } from "./_dense_slab.ts";
import { ExtentIndex } from "./_extent_index.ts";
import { SlotArena } from "./_slot_arena.ts";
import { RunContainers } from "./_run_containers.ts";
import { SpanDirectory } from "./_span_directory.ts";
import { isPowerOfTwo } from "../util/_bits.ts";
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
  LARGEST_STATE,
} from "./validate.ts";

/** Estimated bytes of an index entry with leaf slack and overhead (for the map-or-runs choice). */
const RUN_ENTRY_BYTES = 24;
/** The map-or-runs choice: bytes of a chunk map per chunk (its slot in the map arena). */
const MAP_SLOT_BYTES = 4;
/** The map-or-runs choice: a chunk map's bytes besides its slots (metadata and index entry). */
const MAP_FIXED_BYTES = 40;
/** The map-or-runs choice: a dense chunk's bytes besides its bit planes (its change count). */
const DENSE_CHUNK_META_BYTES = 4;
/**
 * A crowded span becomes a chunk map while the map costs at most this many
 * times the bytes of the run entries it replaces: roaring's rule (the cheaper
 * container wins), tilted towards the map because every edit inside it is O(1).
 */
const MAP_COST_FACTOR = 2;
/**
 * log2 of the share of a run container's boundaries between two cost tests of
 * `#mapIfCrowded`: the test walks the container's pairs, so running it about
 * every `inside / 2^3` new boundaries keeps it O(1) amortised.
 */
const COST_TEST_SHARE_LOG = 3;
/**
 * Index values of run containers are `-(CONTAINER_BASE + id + 1)`; chunk maps'
 * are `-(map + 1)` with `map` below the store's span count, at most 2^46.
 */
const CONTAINER_BASE = 2 ** 48;

/** The index value of run container `id` (see {@link CONTAINER_BASE}). */
function containerEntry(id: number): number {
  return -(CONTAINER_BASE + id + 1);
}

/** The run container that an index value below `-CONTAINER_BASE` refers to. */
function entryContainer(value: number): number {
  return -value - CONTAINER_BASE - 1;
}

/** The span directory's slot for run container `id`: `-(id + 2)` (-1 is none, chunk maps `>= 0`). */
function containerSlot(id: number): number {
  return -id - 2;
}

/** The run container that a directory slot below -1 refers to. */
function slotContainer(slot: number): number {
  return -slot - 2;
}
/**
 * Default `runContainerAt`: 0, a span becomes a run container before its
 * first boundary, so the index holds whole spans only. Measured side by side
 * with the store before run containers (the report's `boot` workloads, paired
 * repetitions in one process, medians of the ratios): at 0, `boot` 64 GiB
 * 1.31x faster, 1 TiB 1.16x faster, 16 TiB 1.4x slower (nearly every buffer
 * there opens a container of its own, which costs a hash-table entry and an
 * allocation besides the index insert, and is edited only once); at 2 (a
 * span's second buffer turns its boundaries into a container) 64 GiB 1.17x
 * faster, but 1 TiB 1.56x and 16 TiB 1.4x slower: moving a span's boundaries
 * out of the index, and counting them to decide, costs more than the few
 * edits a sparse span then gets.
 */
const DEFAULT_CONTAINER_AT = 0;
/** Default `chunkPages`: 512 pages, 2 MiB of 4 KiB pages (one huge page). */
const DEFAULT_CHUNK_PAGES = 512;
/** Default `mapChunks`: 512 chunks, so a chunk map spans 1 GiB of 4 KiB pages. */
const DEFAULT_MAP_CHUNKS = 512;
/** Default `mapAt`: the run boundaries inside a span before it may become a chunk map. */
const DEFAULT_MAP_AT = 64;

/**
 * A span stays runs while its entries cost less than this share of the
 * bytes a bitmap of the store's bits pays for the span (1/8: 4 KiB of the
 * 32 KiB a 1-bit bitmap spends on a 1 GiB span, about 170 entries). Why: a
 * map pays for itself only over many edits (building it and its dense
 * chunks costs about as much as a hundred run edits, much of it allocating
 * typed arrays), and below the floor the memory it could save is small next
 * to the bitmap's. `scale: boot 64GiB` touches each of its 64 spans about 50
 * times; without the floor 17 of them became maps (at 94 entries) and the row
 * ran 1.8 times slower. Scattered churn (`dma-scatter`) crosses the floor
 * within a few hundred edits per span and keeps its memory near the bitmap's.
 */
const MAP_FLOOR = 1 / 8;

// Stand-ins shared by every store that has no container yet (never written to:
// #openContainers replaces them first), so a store of few runs stays small.
const NO_MAPS = new SlotArena(1, 0);
const NO_DENSE = new DenseSlab(32, 1, 0);
const NO_DIRECTORY = new SpanDirectory();
const NO_CONTAINERS = new RunContainers();

/** Options for a new store. */
export interface StoreOptions {
  /** The state word every page starts with (default 0). */
  initial?: number;
  /** How many state bits the store holds, 1 to 31 (default 8). */
  bits?: number;
}

/** Tuning options of a {@link RangeTreeStore}; the defaults suit 4 KiB pages. */
export interface RangeTreeOptions extends StoreOptions {
  /**
   * Pages per chunk, the unit of a dense container: a power of two from 32 to
   * 2^20 (default 512, 2 MiB of 4 KiB pages).
   */
  chunkPages?: number;
  /**
   * Chunks per chunk map: a power of two from 2 to 2^16, with
   * `chunkPages * mapChunks <= 2^30` (default 512: a 1 GiB span of 4 KiB pages).
   */
  mapChunks?: number;
  /**
   * A span may turn into a chunk map once more than this many run boundaries
   * lie inside it (it does when the map would cost at most twice the memory
   * of the entries), and turns back into runs at half of it: 2 to 2^20
   * (default 64).
   */
  mapAt?: number;
  /**
   * A span of runs becomes a run container (its runs in a sorted array of
   * its own, found without searching the index) once more than this many run
   * boundaries lie inside it, and turns back into runs at half of it: 0 to
   * `mapAt` (default 0: a span becomes a container before its first
   * boundary, and runs again once uniform). At most `mapAt`, since only a
   * run container turns into a chunk map.
   */
  runContainerAt?: number;
}

/** What a {@link RangeTreeStore} is made of right now (see {@link RangeTreeStore.stats}). */
export type RangeTreeStats = ReturnType<RangeTreeStore["stats"]>;

/**
 * Estimated bytes of one index entry slot: its key and value, 8 bytes each in
 * the tree node's two arrays. Node arrays are counted by capacity, not by use
 * (see {@link RangeTreeStore.byteSize}).
 */
export const RANGE_TREE_BYTES_PER_RUN = 16;
/**
 * Estimated fixed bytes of a {@link RangeTreeStore} object itself (measured on
 * Deno 2.9: an empty store grows V8's heap by 900-960 bytes, of which 185-240
 * are the store object; the index counts the rest, see
 * {@link ExtentIndex.byteSize}). Containers are allocated with the first
 * run container.
 */
export const RANGE_TREE_FIXED_BYTES = 240;

/**
 * A {@link StateStore} that keeps runs in a B-tree (npm `sorted-btree`) keyed
 * by run start, with run containers (sorted pairs) for spans with boundaries
 * inside and chunk-map and dense bit-plane containers for crowded spans.
 *
 * Editing the store while iterating {@link runs} is allowed: the iterator
 * continues from where it stopped against the current contents.
 *
 * Cost per operation, with `n` the entries of the index (uniform spans as
 * runs plus one per container, at most {@link runCount}), `e` the entries a
 * range covers, `p` the pairs of a run container, `k` the runs yielded, `b`
 * the state bits and `c` the pages of a chunk (`chunkPages`, default 512):
 *
 * | Operation             | Span of runs       | Run container (one hash probe) | Chunk map, per chunk (one hash probe)          |
 * | --------------------- | ------------------ | ------------------------------ | ---------------------------------------------- |
 * | `get(page)`           | O(log n)           | O(log p)                       | O(b)                                           |
 * | `set`, `update`       | O(log n + e)       | O(log p + p) (a shift)         | O(1) whole, O(b) one page, O(b·c/32) in part   |
 * | `runs(start, end)`    | O(log n + k)       | O(log p) per run               | O(1) uniform, O(b·c/32) dense                  |
 * | `uniformState`        | O(log n), one run  | O(log p) inside one pair       | O(1) in a uniform chunk; else as `runs`' first |
 * | `runCount`            | O(1)               | O(1)                           | O(1)                                           |
 * | `byteSize`, `stats`   | O(n / 64)          | O(1)                           | O(1)                                           |
 * | `addBit(bit)`         | O(1)               | O(1)                           | O(b·c/32) per dense chunk (each gets a plane)  |
 * | memory                | O(n)               | 8 bytes a pair, rooms fourfold | 4 bytes, or about b·c/8 bytes when dense       |
 *
 * A span turns into a chunk map (O(pairs + chunks per map)) only after more
 * than `mapAt` new boundaries, and back into a container only after half of
 * them are gone, so each conversion is paid for by the edits that led to it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RangeTreeStore } from "./range_tree_store.ts";
 * const store = new RangeTreeStore(2 ** 28); // 1 TiB of 4 KiB pages, all state 0
 * store.set(256, 768, 1);
 * assert.deepEqual([...store.runs()], [
 *   { start: 0, end: 256, state: 0 },
 *   { start: 256, end: 768, state: 1 },
 *   { start: 768, end: 2 ** 28, state: 0 },
 * ]);
 * assert.equal(store.get(767), 1);
 * ```
 */
export class RangeTreeStore implements StateStore {
  /** Number of pages. */
  readonly length: number;
  #bits: number;
  #index: ExtentIndex;
  #maps: SlotArena;
  /**
   * Span number to container, for every chunk map (its slot, `>= 0`) and run
   * container (`-(id + 2)`; -1 is "none"), see _span_directory.ts.
   */
  #directory: SpanDirectory = NO_DIRECTORY;
  #containers: RunContainers = NO_CONTAINERS;
  #dense: DenseSlab;
  /** Pages per chunk. */
  #chunk: number;
  /** log2 of `#chunk`. */
  #shift: number;
  /** Chunks per map. */
  #width: number;
  /** Pages per map: `#chunk * #width`, a power of two. */
  #span: number;
  /** `1 / #span`, exact. */
  #perSpan: number;
  #mapAt: number;
  #runsAt: number;
  #containerAt: number;
  /** A run container turns back into runs at this many boundaries inside it. */
  #containerRunsAt: number;
  /** State changes between neighbouring pages over the whole store: `runCount - 1`. */
  #changes = 0;
  /**
   * Looks of #mapIfCrowded that passed its count and floor tests (wrapping):
   * its cost test runs on a share of them.
   */
  #boundaries = 0;
  /** Set when an edit gave a container slot back, so the arenas may want compacting. */
  #released = false;

  /**
   * Creates a store of `length` pages, all in state `options.initial`.
   *
   * @param length pages, 1 to 2^52
   * @param options the initial state, the number of state bits and the
   *   container tuning ({@link RangeTreeOptions}); the defaults suit 4 KiB pages
   * @throws {RangeError | TypeError} naming the argument that is out of range
   *   or not an integer
   */
  constructor(length: number, options: RangeTreeOptions = {}) {
    checkOptions(options);
    const bits = options.bits ?? 8;
    const initial = options.initial ?? 0;
    const chunk = options.chunkPages ?? DEFAULT_CHUNK_PAGES;
    const width = options.mapChunks ?? DEFAULT_MAP_CHUNKS;
    const mapAt = options.mapAt ?? DEFAULT_MAP_AT;
    const containerAt = options.runContainerAt ?? DEFAULT_CONTAINER_AT;
    checkShape(length, bits);
    checkState("initial", initial, bits);
    checkInteger("chunkPages", chunk, 32, 2 ** 20);
    if (!isPowerOfTwo(chunk)) {
      throw new RangeError(`chunkPages: must be a power of two, got ${chunk}`);
    }
    checkInteger("mapChunks", width, 2, 2 ** 16);
    if (!isPowerOfTwo(width)) {
      throw new RangeError(`mapChunks: must be a power of two, got ${width}`);
    }
    if (chunk * width > 2 ** 30) {
      // Offsets inside a span must fit the 32-bit shifts of the hot paths.
      throw new RangeError(
        `mapChunks: chunkPages * mapChunks must be at most 2^30, got ${chunk} * ${width}`,
      );
    }
    checkInteger("mapAt", mapAt, 2, 2 ** 20);
    checkInteger("runContainerAt", containerAt, 0, mapAt);
    this.length = length;
    this.#bits = bits;
    this.#chunk = chunk;
    this.#shift = 31 - Math.clz32(chunk);
    this.#width = width;
    this.#span = chunk * width;
    this.#perSpan = 1 / this.#span;
    this.#mapAt = mapAt;
    this.#runsAt = mapAt >>> 1;
    this.#containerAt = containerAt;
    this.#containerRunsAt = containerAt >>> 1;
    this.#index = new ExtentIndex(length, initial);
    // Containers cost memory only once the first run container exists (#openContainers).
    this.#maps = NO_MAPS;
    this.#dense = NO_DENSE;
  }

  /** Number of state bits: states are integers in `[0, 2^bits)`. */
  get bits(): number {
    return this.#bits;
  }

  /**
   * Starts holding state bit `bit` (and any bit below it), every page 0 in
   * it. Runs and chunk maps hold whole state words, so only dense chunks grow:
   * each gets one more bit plane. `options.granularity` is accepted for the
   * interface's sake (the tree is exact at any granularity).
   *
   * @param bit the new bit's index: at least {@link bits}, below 31
   * @param options `granularity` in pages (a power of two; ignored)
   * @throws {RangeError} when the bit is held already or out of range
   */
  addBit(bit: number, options: AddBitOptions = {}): void {
    checkAddBit(bit, options, 2 ** this.#bits - 1);
    this.#bits = bit + 1;
    if (this.#dense !== NO_DENSE) this.#dense.widen(this.#bits);
  }

  /**
   * The state of one page.
   *
   * @param page an index in `[0, length)`
   * @returns its state word
   */
  get(page: number): number {
    checkPage(page, this.length);
    return this.#pageState(page);
  }

  /**
   * Sets every page of `[start, end)` to `state`.
   *
   * @param start first page
   * @param end one past the last page (`start === end` changes nothing)
   * @param state the new state word, below `2^bits`
   */
  set(start: number, end: number, state: number): void {
    checkRange(start, end, this.length);
    checkState("state", state, this.#bits);
    this.#edit(start, end, 0, state);
  }

  /**
   * Applies `(state | setBits) & ~clearBits` to every page of `[start, end)`.
   *
   * @param start first page
   * @param end one past the last page
   * @param setBits bits to set (below `2^bits`)
   * @param clearBits bits to clear; they win over `setBits`
   */
  update(start: number, end: number, setBits: number, clearBits: number): void {
    checkRange(start, end, this.length);
    checkState("setBits", setBits, this.#bits);
    checkState("clearBits", clearBits, this.#bits);
    this.#edit(start, end, ~clearBits, setBits & ~clearBits);
  }

  /**
   * The state every page of `[start, end)` has, or -1 when they differ. One
   * lookup when the range lies inside one run entry or one uniform chunk of
   * a map (a buffer about to be converted usually does); otherwise the first
   * maximal run decides. Without it a conversion of a few pages read its
   * runs through the generator of {@link runs}, the largest store cost of
   * the `replay 1 TiB` row's profile after the edits themselves.
   *
   * @param start first page
   * @param end one past the last page, above `start`
   * @returns the common state word, or -1
   * @throws {RangeError} when the range is empty or outside the store
   */
  uniformState(start: number, end: number): number {
    checkNonEmptyRange(start, end, this.length);
    const span = Math.floor(start * this.#perSpan);
    const slot = this.#directory.get(span);
    if (slot === -1) {
      const index = this.#index;
      index.seek(start);
      const value = index.value(); // a run: spans without a container hold runs only
      if (index.nextKey() >= end) return value;
    } else if (slot < -1) {
      // Inside one pair of the run container: its state.
      const containers = this.#containers;
      const id = slotContainer(slot);
      const sc = span * this.#span;
      const k = containers.find(id, start - sc);
      const pairEnd = k + 1 < containers.count[id]
        ? sc + containers.offsetAt(id, k + 1)
        : sc + this.#span;
      if (end <= pairEnd) return containers.stateAt(id, k);
    } else {
      // Inside one chunk of the map, and that chunk uniform: its slot is the state.
      const c = (start - span * this.#span) >>> this.#shift;
      const chunkSlot = this.#maps.data[slot * this.#width + c];
      const ce = span * this.#span + (c + 1) * this.#chunk;
      if (chunkSlot >= 0 && end <= ce) return chunkSlot;
    }
    for (const run of this.#runs(start, end)) return run.end >= end ? run.state : -1;
    return -1; // not reached: a non-empty window has a first run
  }

  /**
   * Maximal runs inside `[start, end)`, clipped to the window.
   *
   * @param start first page (default 0)
   * @param end one past the last page (default {@link length})
   * @returns the runs in page order, lazily: the first run may start before
   *   `start` and the last end after `end` in the store, but are cut to the window
   */
  runs(start = 0, end: number = this.length): Iterable<Run> {
    checkRange(start, end, this.length);
    return this.#runs(start, end);
  }

  /** Number of maximal runs in the whole store (kept up to date by every edit). */
  get runCount(): number {
    return this.#changes + 1;
  }

  /**
   * Estimated bytes, counted by allocated capacity, not by use:
   * {@link RANGE_TREE_FIXED_BYTES}; the index's estimate
   * ({@link ExtentIndex.byteSize}: about 300 bytes plus, per node of the
   * B-tree, 144 bytes of objects and {@link RANGE_TREE_BYTES_PER_RUN} per
   * key-and-value slot, 65 slots a node: about 1.2 KB per 32-64 entries); each
   * non-empty arena: per slot its words (4 bytes per chunk of a map;
   * `bits * chunkPages / 8` bytes for a dense chunk) and a 4-byte change
   * count, plus an 8-byte owner per map, and a typed-array header per array
   * (three for maps, two for dense chunks, see _slot_arena.ts); the run
   * containers: their shared heap by capacity (8 bytes a pair of room, rooms
   * and garbage included) and 12 bytes per container number, with four
   * typed-array headers (see _run_containers.ts); and the span directory:
   * two typed-array headers plus 12 bytes per table slot (two to eight per
   * container). Typed-array headers are 208 bytes (measured on Deno 2.9 /
   * V8 15: view, buffer and backing-store record); the containers' three
   * per-container arrays, and the directory's two, share a buffer each, so
   * their headers are counted a little high.
   *
   * Bound: when every chunk is dense and every span a chunk map (the worst
   * case of scattered 4 KiB churn), the estimate is at most the bitmap's bytes
   * × (1 + 4 / (bits·chunkPages/8) + (4·mapChunks + 208) /
   * (bits·chunkPages·mapChunks/8)) + 8 KiB, which is 1.13 × the bitmap for 1
   * bit and 1.07 × for 2 with the default sizes: arenas never hold more slots
   * than the store has chunks (or spans), and grow by half, so short of that
   * worst case their slack stays within 50% of what is in use. (Per map: 12
   * bytes of arena metadata, up to 96 of directory, and its two index entries at
   * about 50 bytes each at most.)
   *
   * Checked against V8 (`Deno.memoryUsage()` after forced GC): the
   * typed-array part matches the growth of `external` to within 1% (dense
   * 4 KiB scatter, chunk maps), and for stores of runs the whole estimate is
   * within 7% of heap plus external growth (from an empty store to 20,000
   * runs set in order or at random; measured over many stores, since one
   * store's measurement also picks up tens of KB of compiled code); with run
   * containers (the report's `boot` states at 64 GiB, 1 TiB and 16 TiB, 40
   * stores each, one process per size) within 3% (115 against 117 KiB, 279
   * against 279 KiB, 493 against 495 KiB, in round 15, after the containers'
   * heap doubled).
   *
   * @returns the estimate in bytes
   */
  byteSize(): number {
    return RANGE_TREE_FIXED_BYTES + this.#index.byteSize() +
      this.#maps.byteSize() + this.#dense.byteSize() + this.#directory.byteSize() +
      this.#containers.byteSize();
  }

  /**
   * What the store is made of right now, for reports and tests: `entries` of
   * the index (runs plus containers), spans held as `runContainers` and as
   * chunk `maps`, chunks held as `denseChunks` (bit planes), and `leaves` of
   * the index.
   */
  stats(): {
    entries: number;
    runContainers: number;
    maps: number;
    denseChunks: number;
    leaves: number;
  } {
    return {
      entries: this.#index.size,
      runContainers: this.#containers.live,
      maps: this.#maps.live,
      denseChunks: this.#dense.live,
      leaves: this.#index.leafCount(),
    };
  }

  // ---- reading ------------------------------------------------------------

  /** The state of page `off` of chunk `c` of map `map`. */
  #chunkPage(map: number, c: number, off: number): number {
    const slot = this.#maps.data[map * this.#width + c];
    return slot >= 0 ? slot : this.#dense.read(-slot - 1, off);
  }

  /** The state of the first page of an entry with value `value`. */
  #firstState(value: number): number {
    if (value >= 0) return value;
    if (value < -CONTAINER_BASE) return this.#containers.firstState(entryContainer(value));
    return this.#chunkPage(-value - 1, 0, 0);
  }

  /** The state of page `end - 1` of the entry `(key, value)` that ends at `end`. */
  #lastState(key: number, value: number, end: number): number {
    if (value >= 0) return value;
    if (value < -CONTAINER_BASE) return this.#containers.lastState(entryContainer(value));
    const off = end - 1 - key; // < 2^30
    return this.#chunkPage(-value - 1, off >>> this.#shift, off & (this.#chunk - 1));
  }

  /** The state of `page` (no argument checks). */
  #pageState(page: number): number {
    const span = Math.floor(page * this.#perSpan);
    const slot = this.#directory.get(span);
    if (slot >= 0) {
      const off = page - span * this.#span;
      return this.#chunkPage(slot, off >>> this.#shift, off & (this.#chunk - 1));
    }
    if (slot !== -1) {
      const containers = this.#containers;
      const id = slotContainer(slot);
      return containers.stateAt(id, containers.find(id, page - span * this.#span));
    }
    const index = this.#index;
    index.seek(page);
    return index.value();
  }

  /** The state of the page before the cursor entry, which starts at `key > 0`. */
  #stateBefore(key: number): number {
    const index = this.#index;
    return this.#lastState(index.prevKey(), index.prevValue(), key);
  }

  /** The state of the first page after the cursor entry; requires that there is one. */
  #stateAfter(): number {
    return this.#firstState(this.#index.nextValue());
  }

  *#runs(start: number, end: number): Generator<Run> {
    const index = this.#index;
    const chunk = this.#chunk;
    let pos = start;
    while (pos < end) {
      // Find the maximal run that starts at `pos`, reading the store afresh:
      // the consumer may have edited it while we were suspended.
      const dense = this.#dense;
      index.seek(pos);
      let state = -1;
      let runEnd = pos;
      scan: for (;;) {
        const key = index.key();
        const value = index.value();
        const next = index.nextKey();
        const stop = next < end ? next : end;
        if (value >= 0) {
          if (state >= 0 && value !== state) break;
          state = value;
          runEnd = stop;
        } else if (value < -CONTAINER_BASE) {
          const containers = this.#containers;
          const id = entryContainer(value);
          const n = containers.count[id];
          for (let k = containers.find(id, runEnd - key); runEnd < stop; k++) {
            const pairState = containers.stateAt(id, k);
            if (state >= 0 && pairState !== state) break scan;
            state = pairState;
            const pairEnd = k + 1 < n ? key + containers.offsetAt(id, k + 1) : next;
            runEnd = pairEnd < stop ? pairEnd : stop;
          }
        } else {
          const base = (-value - 1) * this.#width;
          const slots = this.#maps.data;
          while (runEnd < stop) {
            const c = (runEnd - key) >>> this.#shift;
            const cs = key + c * chunk;
            const ce = cs + chunk < stop ? cs + chunk : stop;
            const slot = slots[base + c];
            if (slot >= 0) {
              if (state >= 0 && slot !== state) break scan;
              state = slot;
              runEnd = ce;
            } else {
              const off = runEnd - cs;
              const first = dense.read(-slot - 1, off);
              if (state >= 0 && first !== state) break scan;
              state = first;
              runEnd = cs + dense.nextChange(-slot - 1, off, ce - cs);
              if (runEnd < ce) break scan;
            }
          }
        }
        if (runEnd === end || !index.stepNext()) break;
      }
      yield { start: pos, end: runEnd, state };
      pos = runEnd;
    }
  }

  // ---- editing ------------------------------------------------------------

  /**
   * `state = (state & keep) | put` over `[start, end)`, one entry at a time:
   * each step edits the part of the range inside one entry. Later steps read
   * pages no earlier step has touched, so merging as we go is safe.
   */
  #edit(start: number, end: number, keep: number, put: number): void {
    const index = this.#index;
    let pos = start;
    while (pos < end) {
      const span = Math.floor(pos * this.#perSpan);
      // Not cached: a step may create the first container, or change a span's.
      const slot = this.#directory.get(span);
      if (slot !== -1) {
        const sc = span * this.#span;
        const se = sc + this.#span < this.length ? sc + this.#span : this.length;
        const stop = se < end ? se : end;
        if (slot < 0) this.#editContainer(sc, slotContainer(slot), se, pos, stop, keep, put);
        else if (stop - pos !== 1 || !this.#editDensePage(sc, slot, pos, keep, put)) {
          this.#editMap(sc, slot, se, pos, stop, keep, put);
        }
        pos = stop;
        continue;
      }
      // Not in a container, so the entry holding `pos` is a run.
      index.seek(pos);
      const key = index.key();
      const value = index.value();
      const next = index.nextKey();
      let stop = next < end ? next : end;
      const state = (value & keep) | put;
      if (state === value) {
        pos = stop;
        continue;
      }
      const sc = span * this.#span;
      const se = sc + this.#span < this.length ? sc + this.#span : this.length;
      // An end inside a later span is left to the step that reaches that span.
      if (stop < next && stop > se) stop = Math.floor(stop * this.#perSpan) * this.#span;
      // Boundaries this step would put strictly inside `pos`'s span.
      const adds = (pos > key && pos !== sc ? 1 : 0) + (stop < next && stop < se ? 1 : 0);
      if (adds > 0) {
        // Has the span a boundary inside already? Only then count them.
        const inside = key > sc || next < se;
        const containerAt = this.#containerAt;
        const before = inside ? index.countInside(sc, se, containerAt) : 0;
        if (before + adds > containerAt) {
          // Too many for the index: the span becomes a run container, which takes the edit.
          const to = se < end ? se : end;
          if (inside) this.#editContainer(sc, this.#toContainer(sc, se), se, pos, to, keep, put);
          else this.#openContainer(sc, se, key, value, next, pos, to, state);
          pos = to;
          continue;
        }
        if (inside) index.seek(pos); // countInside moved the cursor
      }
      this.#recolorRun(key, value, next, pos, stop, state);
      pos = stop;
    }
    if (this.#released) {
      this.#released = false;
      if (this.#dense.sparse) this.#compactDense();
      if (this.#maps.sparse) this.#compactMaps();
    }
  }

  /**
   * `state = (state & keep) | put` over `[a, b)` inside the run container
   * `id`, which covers the span `[sc, se)`. The container keeps its pairs
   * maximal, so the changes inside it are its pairs less one; the two edges
   * of the span are compared with the pages just outside it, and only when
   * the edit reaches them. Afterwards the container may turn back into runs
   * (few boundaries left) or into a chunk map (crowded, see #mapIfCrowded).
   */
  #editContainer(
    sc: number,
    id: number,
    se: number,
    a: number,
    b: number,
    keep: number,
    put: number,
  ): void {
    const containers = this.#containers;
    const before = containers.count[id];
    const leftEdge = a === sc && sc > 0;
    const rightEdge = b === se && se < this.length;
    const firstBefore = leftEdge ? containers.firstState(id) : 0;
    const lastBefore = rightEdge ? containers.lastState(id) : 0;
    containers.apply(id, a - sc, b - sc, se - sc, keep, put);
    const after = containers.count[id];
    let total = after - before;
    if (leftEdge) {
      const left = this.#pageState(sc - 1);
      const first = containers.firstState(id);
      total += (left !== first ? 1 : 0) - (left !== firstBefore ? 1 : 0);
    }
    if (rightEdge) {
      const right = this.#pageState(se);
      const last = containers.lastState(id);
      total += (right !== last ? 1 : 0) - (right !== lastBefore ? 1 : 0);
    }
    this.#changes += total;
    if (after - 1 <= this.#containerRunsAt) this.#containerToRuns(sc, se, id);
    else if (after > before) this.#mapIfCrowded(sc, se, id, after - 1);
  }

  /**
   * The commonest edit on its own: one page strictly inside a dense chunk
   * (neither its first nor its last page) that stays dense, in a map that
   * stays a map. True when done; false, with nothing changed, for every
   * other case, which {@link #editMap} then handles in full. The same steps as
   * {@link #editMap}'s one-page case without its per-chunk setup: on a 4 KiB
   * flip in a fragmented span, the whole store edit measured a quarter
   * faster (`bench/store_rows.ts`, `dma-scatter`).
   */
  #editDensePage(sc: number, map: number, page: number, keep: number, put: number): boolean {
    const off = page - sc;
    const slot = this.#maps.data[map * this.#width + (off >>> this.#shift)];
    if (slot >= 0) return false; // a uniform chunk turns dense: #editMap
    const d = -slot - 1;
    const o = off & (this.#chunk - 1);
    // A chunk's first and last pages compare with the neighbouring chunks; the
    // store's last page (in a partial last chunk) has no right neighbour.
    if (o === 0 || o === this.#chunk - 1 || page + 1 === this.length) return false;
    const dense = this.#dense;
    const old = dense.read(d, o);
    const state = (old & keep) | put;
    if (state === old) return true;
    const left = dense.read(d, o - 1);
    const right = dense.read(d, o + 1);
    const inner = (left !== state ? 1 : 0) - (left !== old ? 1 : 0) +
      (right !== state ? 1 : 0) - (right !== old ? 1 : 0);
    const changes = this.#maps.changes;
    // Turning uniform, or the map falling to its runs threshold: the full path does both.
    if (dense.changes[d] + inner === 0 || changes[map] + inner <= this.#runsAt) return false;
    dense.flip(d, o, old ^ state);
    dense.changes[d] += inner;
    changes[map] += inner;
    this.#changes += inner;
    return true;
  }

  /**
   * Sets `[s, e)` to `state` inside the run entry under the cursor, which
   * covers `[key, next)` with state `value !== state`.
   */
  #recolorRun(key: number, value: number, next: number, s: number, e: number, state: number): void {
    const index = this.#index;
    const atStart = s === key;
    const atEnd = e === next;
    // States of the pages just outside [s, e); -1 where the store ends.
    let left = -1, right = -1;
    let leftRun = false, rightRun = false;
    if (!atStart) left = value;
    else if (s > 0) {
      left = this.#stateBefore(key);
      leftRun = index.prevValue() >= 0;
    }
    if (!atEnd) right = value;
    else if (e < this.length) {
      right = this.#stateAfter();
      rightRun = index.nextValue() >= 0;
    }
    if (left >= 0) this.#changes += (left !== state ? 1 : 0) - (left !== value ? 1 : 0);
    if (right >= 0) this.#changes += (right !== state ? 1 : 0) - (right !== value ? 1 : 0);
    const mergeLeft = leftRun && left === state;
    const mergeRight = rightRun && right === state;
    if (atStart && atEnd) {
      if (mergeLeft && mergeRight) index.removeHereAndNext(); // a freed buffer: one shift
      else if (mergeRight) {
        index.removeAfter();
        index.setValueHere(state);
      } else if (mergeLeft) index.removeHere();
      else index.setValueHere(state);
    } else if (atStart) {
      if (mergeLeft) index.setKeyHere(e); // the run before absorbs [s, e)
      else {
        index.setValueHere(state);
        index.insertAfter(e, value);
      }
    } else if (atEnd) {
      if (mergeRight) {
        index.stepNext(); // the run after absorbs [s, e)
        index.setKeyHere(s);
      } else index.insertAfter(s, state);
    } else {
      index.insertTwoAfter(s, state, e, value);
    }
  }

  /**
   * `state = (state & keep) | put` over `[a, b)` inside the chunk map `map`,
   * which covers the span `[sc, se)`; chunk by chunk. Needs no cursor: the
   * pages just outside the span are looked up only when an edge is touched.
   *
   * Invariants it keeps ({@link checkValid} checks them):
   *
   * - a slot is a state word (the whole chunk has it) or a dense chunk with
   *   at least one change inside; a dense chunk left uniform becomes a state
   *   word again and gives its slot back (`#released`);
   * - `dense.changes[d]` counts the changes between neighbouring pages inside
   *   dense chunk `d`, `maps.changes[map]` those inside the span (between its
   *   chunks too), `#changes` those of the whole store;
   * - a map whose count falls to `mapAt / 2` turns back into runs.
   *
   * Each chunk is one of three cases, and each counts only the boundaries it
   * can affect, before and after: a uniform chunk recoloured whole (its two
   * edges), one page of a dense chunk (its two neighbours), or a stretch of a
   * dense chunk (the changes over it, counted by popcount before the edit and
   * again after it, or only at the stretch's two ends when the edit leaves it
   * in one state; and the chunk's two edges). A uniform chunk edited in part
   * turns dense first. An edge is
   * compared with the neighbouring chunk, or with the page just outside the
   * span, which counts in `#changes` but not in the map's count; at the
   * store's ends there is no page to compare with.
   */
  #editMap(
    sc: number,
    map: number,
    se: number,
    a: number,
    b: number,
    keep: number,
    put: number,
  ): void {
    const chunk = this.#chunk;
    const dense = this.#dense;
    const slots = this.#maps.data;
    const base = map * this.#width;
    const shift = this.#shift;
    const lastChunk = (se - sc - 1) >>> shift;
    const length = this.length;
    let inside = 0; // change in the number of state changes inside the span
    let total = 0; // ... anywhere
    // Every page ends up in one state when each held bit is either set by
    // `put` or cleared (not kept): always for a store of one bit. Then the
    // changes inside a range after the edit need no count (swiotlb-churn's
    // map edits spent a quarter of their time counting).
    const held = LARGEST_STATE[this.#bits];
    const uniform = ((put | ~keep) & held) === held;
    for (let c = (a - sc) >>> shift; c <= lastChunk; c++) {
      const cs = sc + c * chunk;
      if (cs >= b) break;
      const ce = cs + chunk < se ? cs + chunk : se;
      const x = a > cs ? a : cs;
      const y = b < ce ? b : ce;
      let slot = slots[base + c];
      if (slot >= 0) {
        const state = (slot & keep) | put;
        if (state === slot) continue;
        if (x === cs && y === ce) {
          // The whole chunk changes colour: only its two edges can change.
          if (cs > 0) {
            const left = c > 0 ? this.#chunkLast(base, c - 1) : this.#pageState(sc - 1);
            const d = (left !== state ? 1 : 0) - (left !== slot ? 1 : 0);
            total += d;
            if (c > 0) inside += d;
          }
          if (ce < length) {
            const right = c < lastChunk ? this.#chunkFirst(base, c + 1) : this.#pageState(se);
            const d = (right !== state ? 1 : 0) - (right !== slot ? 1 : 0);
            total += d;
            if (c < lastChunk) inside += d;
          }
          slots[base + c] = state;
          continue;
        }
        // Part of a uniform chunk changes: it turns dense.
        const fresh = dense.alloc(cs);
        dense.apply(fresh, 0, ce - cs, 0, slot);
        slot = -fresh - 1;
        slots[base + c] = slot;
      }
      const d = -slot - 1;
      const last = ce - cs - 1; // offset of the chunk's last page
      const oa = x - cs, ob = y - cs;
      let inner = 0, leftEdge = 0, rightEdge = 0;
      if (ob - oa === 1) {
        // One page: compare it with its two neighbours.
        const old = dense.read(d, oa);
        const state = (old & keep) | put;
        if (state === old) continue;
        if (oa > 0) {
          const left = dense.read(d, oa - 1);
          inner += (left !== state ? 1 : 0) - (left !== old ? 1 : 0);
        } else if (cs > 0) {
          const left = c > 0 ? this.#chunkLast(base, c - 1) : this.#pageState(sc - 1);
          leftEdge = (left !== state ? 1 : 0) - (left !== old ? 1 : 0);
        }
        if (oa < last) {
          const right = dense.read(d, oa + 1);
          inner += (right !== state ? 1 : 0) - (right !== old ? 1 : 0);
        } else if (ce < length) {
          const right = c < lastChunk ? this.#chunkFirst(base, c + 1) : this.#pageState(se);
          rightEdge = (right !== state ? 1 : 0) - (right !== old ? 1 : 0);
        }
        dense.flip(d, oa, old ^ state);
      } else {
        // A span of pages: count changes on the boundaries it can affect, before and after.
        const lo = oa > 0 ? oa : 1;
        const hi = ob <= last ? ob : last;
        const left = oa === 0 && cs > 0
          ? (c > 0 ? this.#chunkLast(base, c - 1) : this.#pageState(sc - 1))
          : -1;
        const right = ob > last && ce < length
          ? (c < lastChunk ? this.#chunkFirst(base, c + 1) : this.#pageState(se))
          : -1;
        const firstBefore = left >= 0 ? dense.read(d, 0) : 0;
        const lastBefore = right >= 0 ? dense.read(d, last) : 0;
        inner -= dense.changesIn(d, lo, hi);
        dense.apply(d, oa, ob, keep, put);
        if (uniform) {
          // [oa, ob) now holds one state: only its two edges can differ.
          const state = dense.read(d, oa);
          if (oa > 0) inner += dense.read(d, oa - 1) !== state ? 1 : 0;
          if (ob <= last) inner += dense.read(d, ob) !== state ? 1 : 0;
        } else inner += dense.changesIn(d, lo, hi);
        if (left >= 0) {
          const first = dense.read(d, 0);
          leftEdge = (left !== first ? 1 : 0) - (left !== firstBefore ? 1 : 0);
        }
        if (right >= 0) {
          const lastNow = dense.read(d, last);
          rightEdge = (right !== lastNow ? 1 : 0) - (right !== lastBefore ? 1 : 0);
        }
      }
      total += inner + leftEdge + rightEdge;
      inside += inner + (c > 0 ? leftEdge : 0) + (c < lastChunk ? rightEdge : 0);
      dense.changes[d] += inner;
      if (dense.changes[d] === 0) {
        // The chunk became uniform: a state word is enough.
        slots[base + c] = dense.read(d, 0);
        dense.release(d);
        this.#released = true;
      }
    }
    this.#changes += total;
    this.#maps.changes[map] += inside;
    if (this.#maps.changes[map] <= this.#runsAt) this.#toRuns(sc, map);
  }

  /** The state of the first page of chunk `c` of the map at `base`. */
  #chunkFirst(base: number, c: number): number {
    const slot = this.#maps.data[base + c];
    return slot >= 0 ? slot : this.#dense.read(-slot - 1, 0);
  }

  /** The state of the last page of chunk `c` (a full chunk) of the map at `base`. */
  #chunkLast(base: number, c: number): number {
    const slot = this.#maps.data[base + c];
    return slot >= 0 ? slot : this.#dense.read(-slot - 1, this.#chunk - 1);
  }

  // ---- changing representation ------------------------------------------

  /**
   * The run container `id` over `[sc, se)` just gained boundaries and now has
   * `inside` of them: turns it into a chunk map when `inside > mapAt`, the
   * boundaries would cost at least `MAP_FLOOR` of what a bitmap pays for the
   * span as index entries, and the map would cost at most twice the memory of
   * those entries (roaring's rule, pick the cheaper container, with a factor
   * two in favour of the map since it also makes every edit inside it O(1)).
   * The comparison prices a boundary as an index entry (`RUN_ENTRY_BYTES`),
   * not as the container's 8-byte pair, so spans turn into maps where they
   * did before run containers existed (the point `dma-scatter` and
   * `swiotlb-churn` were tuned at). A map costs 4 bytes per chunk plus a
   * dense chunk for every chunk with a boundary strictly inside it, so
   * scattered boundaries (one per chunk) stay in the container, while
   * clustered ones (many per chunk) and chunk-aligned ones go to a map. The
   * cost test walks the container's pairs, so it runs about every
   * `inside / 8` new boundaries.
   */
  #mapIfCrowded(sc: number, se: number, id: number, inside: number): void {
    if (inside <= this.#mapAt) return;
    // Below the floor the entries are cheap however the map compares (no walk needed).
    if (RUN_ENTRY_BYTES * inside < MAP_FLOOR * this.bits * ((se - sc) >>> 3)) return;
    const seen = (this.#boundaries = (this.#boundaries + 1) >>> 0);
    const everyLog = Math.max(0, 31 - Math.clz32(inside) - COST_TEST_SHARE_LOG);
    if ((seen & ((1 << everyLog) - 1)) !== 0) return;
    const chunkBytes = 4 * this.bits * (this.#chunk >>> 5) + DENSE_CHUNK_META_BYTES;
    const mapBytes = MAP_SLOT_BYTES * this.#width + MAP_FIXED_BYTES +
      chunkBytes * this.#chunksSplitInside(id);
    if (mapBytes <= MAP_COST_FACTOR * RUN_ENTRY_BYTES * inside) this.#toMap(sc, se, id);
  }

  /** How many chunks of run container `id` hold a pair boundary strictly inside them. */
  #chunksSplitInside(id: number): number {
    const containers = this.#containers;
    const mask = this.#chunk - 1;
    let count = 0, last = -1;
    for (let k = 1; k < containers.count[id]; k++) {
      const off = containers.offsetAt(id, k);
      const c = off >>> this.#shift;
      if ((off & mask) !== 0 && c !== last) {
        count++;
        last = c;
      }
    }
    return count;
  }

  /** Makes the arenas and the directory on the store's first container. */
  #openContainers(): void {
    if (this.#directory !== NO_DIRECTORY) return;
    this.#maps = new SlotArena(this.#width, Math.ceil(this.length / this.#span));
    this.#dense = new DenseSlab(this.#chunk, this.bits, Math.ceil(this.length / this.#chunk));
    this.#directory = new SpanDirectory();
    this.#containers = new RunContainers();
  }

  /** Replaces the run entries over the span `[sc, se)` with one run container (same states); returns it. */
  #toContainer(sc: number, se: number): number {
    this.#openContainers();
    const index = this.#index;
    index.seek(sc);
    const firstKey = index.key();
    const offsets: number[] = [];
    const states: number[] = [];
    let last = 0, hasEndKey = false;
    for (;;) {
      const key = index.key();
      last = index.value();
      offsets.push(key > sc ? key - sc : 0);
      states.push(last);
      const next = index.nextKey();
      if (next >= se) {
        hasEndKey = next === se;
        break;
      }
      index.stepNext();
    }
    if (se < this.length && !hasEndKey) index.insertAfter(se, last);
    // Remove the keys inside, then mark the span's start.
    index.removeInside(sc, se);
    const id = this.#newContainer(sc, offsets, states);
    if (firstKey === sc) index.setValueHere(containerEntry(id));
    else index.insertAfter(sc, containerEntry(id));
    return id;
  }

  /** A run container for the span at `sc` holding the given pairs, entered in the directory. */
  #newContainer(sc: number, offsets: number[], states: number[]): number {
    const id = this.#containers.create(offsets, states);
    this.#directory.set(sc * this.#perSpan, containerSlot(id));
    return id;
  }

  /**
   * Makes the span `[sc, se)`, all of it inside the run entry `(key, value)`
   * that ends at `next` (the cursor's), a run container holding the edit of
   * `[a, b)` (inside the span) to `state`: its pairs are written at once,
   * `value`, `state`, `value` (the first and last only where the edit leaves
   * pages before or after it). Counts the changes it makes: the pairs' own
   * and, where the edit reaches an edge of the span, the one with the page
   * outside (before the edit that page had `value`'s neighbour as now).
   */
  #openContainer(
    sc: number,
    se: number,
    key: number,
    value: number,
    next: number,
    a: number,
    b: number,
    state: number,
  ): void {
    this.#openContainers();
    const index = this.#index;
    const id = this.#containers.createSplit(se - sc, value, a - sc, b - sc, state);
    this.#directory.set(sc * this.#perSpan, containerSlot(id));
    const ref = containerEntry(id);
    if (key === sc) {
      index.setValueHere(ref);
      if (next > se) index.insertAfter(se, value);
    } else if (next > se) index.insertTwoAfter(sc, ref, se, value); // one shift of the leaf
    else index.insertAfter(sc, ref);
    // The pages just outside the span keep their states; #pageState may move the cursor.
    let changes = this.#containers.count[id] - 1;
    if (a === sc && sc > 0) {
      const left = this.#pageState(sc - 1);
      changes += (left !== state ? 1 : 0) - (left !== value ? 1 : 0);
    }
    if (b === se && se < this.length) {
      const right = this.#pageState(se);
      changes += (right !== state ? 1 : 0) - (right !== value ? 1 : 0);
    }
    this.#changes += changes;
  }

  /** Replaces the run container `id` over `[sc, se)` with one chunk map (same states). */
  #toMap(sc: number, se: number, id: number): void {
    const dense = this.#dense;
    const chunk = this.#chunk;
    const containers = this.#containers;
    const n = containers.count[id];
    const map = this.#maps.alloc(sc);
    const slots = this.#maps.data;
    const base = map * this.#width;
    let denseChunk = -1, d = -1;
    for (let k = 0; k < n; k++) {
      const x = sc + containers.offsetAt(id, k);
      const y = k + 1 < n ? sc + containers.offsetAt(id, k + 1) : se;
      const value = containers.stateAt(id, k);
      const cx = (x - sc) >>> this.#shift;
      const cy = (y - 1 - sc) >>> this.#shift;
      for (let c = cx; c <= cy; c++) {
        const cs = sc + c * chunk;
        const ce = Math.min(cs + chunk, se);
        const px = x > cs ? x : cs;
        const py = y < ce ? y : ce;
        if (px === cs && py === ce) {
          slots[base + c] = value;
          continue;
        }
        // Several runs share this chunk: it is dense.
        if (denseChunk !== c) {
          denseChunk = c;
          d = dense.alloc(cs);
          slots[base + c] = -d - 1;
        }
        dense.apply(d, px - cs, py - cs, 0, value);
        if (px > cs) dense.changes[d]++; // a pair starts inside: a change (pairs are maximal)
      }
    }
    this.#maps.changes[map] = n - 1; // neighbouring pairs differ: every pair but the first is a change
    containers.release(id);
    this.#index.setValue(sc, -map - 1);
    this.#directory.set(sc * this.#perSpan, map);
  }

  /**
   * Replaces the chunk map at `sc` with its maximal runs: as a run container
   * while they have more than `runContainerAt / 2` boundaries between them,
   * else as run entries merged with equal run neighbours.
   */
  #toRuns(sc: number, map: number): void {
    const se = Math.min(sc + this.#span, this.length);
    // Read the span's runs before touching anything (at most mapAt / 2 + 1 of them).
    const starts: number[] = [];
    const states: number[] = [];
    for (const run of this.#runs(sc, se)) {
      starts.push(run.start - sc);
      states.push(run.state);
    }
    const slots = this.#maps.data;
    const base = map * this.#width;
    const chunks = ((se - sc - 1) >>> this.#shift) + 1;
    for (let c = 0; c < chunks; c++) {
      if (slots[base + c] < 0) this.#dense.release(-slots[base + c] - 1);
    }
    this.#maps.release(map);
    this.#released = true;
    if (starts.length - 1 > this.#containerRunsAt) {
      const id = this.#newContainer(sc, starts, states);
      this.#index.setValue(sc, containerEntry(id));
      return;
    }
    this.#directory.delete(sc * this.#perSpan);
    this.#spanToRuns(sc, se, starts, states);
  }

  /** Replaces the run container `id` over `[sc, se)` with run entries merged with equal neighbours. */
  #containerToRuns(sc: number, se: number, id: number): void {
    const containers = this.#containers;
    const starts: number[] = [];
    const states: number[] = [];
    for (let k = 0; k < containers.count[id]; k++) {
      starts.push(containers.offsetAt(id, k));
      states.push(containers.stateAt(id, k));
    }
    containers.release(id, true);
    this.#directory.delete(sc * this.#perSpan);
    this.#spanToRuns(sc, se, starts, states);
  }

  /**
   * Writes the runs of the span `[sc, se)` (offsets `starts` from `sc`, the
   * first 0) over its container's index entry, merging the first and last
   * with equal run neighbours.
   */
  #spanToRuns(sc: number, se: number, starts: number[], states: number[]): void {
    const index = this.#index;
    index.seek(sc);
    index.setValueHere(states[0]);
    for (let i = 1; i < starts.length; i++) index.insertAfter(sc + starts[i], states[i]);
    // The cursor is on the span's last run: merge it with an equal run after.
    const lastState = states[states.length - 1];
    if (se < this.length && index.nextValue() === lastState) index.removeAfter();
    if (sc > 0) {
      index.seek(sc);
      if (index.prevValue() === states[0]) index.removeHere();
    }
  }

  /**
   * Shrinks the dense arena, repointing each moved chunk's map slot. Dense
   * chunks keep no owner (see _slot_arena.ts), so the moves are collected and
   * every live map's slots scanned once: O(maps x mapChunks), paid only when
   * three quarters of the arena have been given back since it last grew.
   */
  #compactDense(): void {
    const dense = this.#dense;
    const movedTo = new Int32Array(dense.top).fill(-1);
    let moves = 0;
    dense.compact((from, to) => {
      movedTo[from] = to;
      moves++;
    });
    if (moves === 0) return;
    const maps = this.#maps;
    const slots = maps.data;
    const width = this.#width;
    for (let map = 0; map < maps.top; map++) {
      if (!maps.isLive(map)) continue;
      for (let at = map * width, end = at + width; at < end; at++) {
        const slot = slots[at];
        if (slot < 0 && -slot - 1 < movedTo.length && movedTo[-slot - 1] >= 0) {
          slots[at] = -movedTo[-slot - 1] - 1;
        }
      }
    }
  }

  /** Shrinks the map arena, repointing each moved map's entry and directory slot. */
  #compactMaps(): void {
    const index = this.#index;
    const maps = this.#maps;
    maps.compact((_from, to) => {
      const owner = maps.owner[to];
      index.setValue(owner, -to - 1);
      this.#directory.set(owner * this.#perSpan, to);
    });
  }

  /**
   * Walks the whole structure and throws an `Error` naming the first broken
   * invariant: entry order, maximal neighbouring runs, map alignment and
   * ownership, the directory, the change counts of maps and dense chunks, and
   * `runCount` against a fresh count. Linear in the structure's size: for
   * tests and debugging (like `sorted-btree`'s `checkValid`).
   *
   * @throws {Error} `RangeTreeStore invariant broken: ...` at the first broken invariant
   */
  checkValid(): void {
    const fail = (what: string): never => {
      throw new Error(`RangeTreeStore invariant broken: ${what}`);
    };
    const index = this.#index;
    const span = this.#span, chunk = this.#chunk;
    let prevKey = -1, prevValue = NaN, entries = 0, maps = 0, dense = 0, containers = 0;
    const denseSeen = new Set<number>();
    const containersSeen = new Set<number>();
    index.checkValid();
    for (const [key, value] of index.entries()) {
      if (entries === 0 && key !== 0) fail("no entry at page 0");
      if (key <= prevKey) fail(`keys out of order at ${key}`);
      if (value >= 0 && value === prevValue) fail(`equal neighbouring runs at ${key}`);
      if (value >= 0 && this.#containerAt === 0 && key % span !== 0) {
        fail(`run boundary at ${key} inside a span (runContainerAt 0 puts those in containers)`);
      }
      if (prevValue < 0 && key !== prevKey + span) {
        fail(`container at ${prevKey} not followed by its end`);
      }
      prevKey = key;
      prevValue = value;
      entries++;
      if (value >= 0) continue;
      if (value < -CONTAINER_BASE) {
        containers++;
        this.#checkContainer(key, entryContainer(value), containersSeen, fail);
        continue;
      }
      maps++;
      const map = -value - 1;
      const se = Math.min(key + span, this.length);
      if (key % span !== 0) fail(`map at ${key} not span-aligned`);
      if (this.#maps.owner[map] !== key) fail(`map slot ${map} owner`);
      if (this.#directory.get(key / span) !== map) fail(`directory entry of the map at ${key}`);
      let runs = 0;
      for (const _ of this.#runs(key, se)) runs++;
      if (runs - 1 !== this.#maps.changes[map]) fail(`change count of the map at ${key}`);
      if (runs - 1 <= this.#runsAt) fail(`map at ${key} should have turned back into runs`);
      for (let c = 0; c * chunk < se - key; c++) {
        const slot = this.#maps.data[map * this.#width + c];
        if (slot >= 0) continue;
        dense++;
        const d = -slot - 1, cs = key + c * chunk;
        if (!(d < this.#dense.top && this.#dense.isLive(d))) fail(`dense slot ${d} not in use`);
        if (denseSeen.has(d)) fail(`dense slot ${d} held twice`);
        denseSeen.add(d);
        const changes = this.#dense.changesIn(d, 1, Math.min(chunk, se - cs) - 1);
        if (changes !== this.#dense.changes[d]) fail(`change count of the dense chunk at ${cs}`);
        if (changes === 0) fail(`dense chunk at ${cs} is uniform`);
      }
    }
    if (prevValue < 0 && prevKey + span < this.length) {
      fail("last container not followed by its end");
    }
    if (entries !== index.size) fail("entry count");
    if (maps !== this.#maps.live) fail("map count");
    if (containers !== this.#containers.live) fail("run container count");
    if (maps + containers !== this.#directory.size) fail("directory size");
    if (dense !== this.#dense.live) fail("dense chunk count");
    let runs = 0;
    for (const _ of this.#runs(0, this.length)) runs++;
    if (runs !== this.runCount) fail(`runCount ${this.runCount}, counted ${runs}`);
  }

  /** {@link checkValid}'s checks of the run container `id`, entered at `key`. */
  #checkContainer(
    key: number,
    id: number,
    containersSeen: Set<number>,
    fail: (what: string) => never,
  ): void {
    const containers = this.#containers;
    const span = this.#span;
    const se = Math.min(key + span, this.length);
    if (key % span !== 0) fail(`run container at ${key} not span-aligned`);
    if (!(id < containers.top && containers.isLive(id))) fail(`run container ${id} not in use`);
    if (containersSeen.has(id)) fail(`run container ${id} held twice`);
    containersSeen.add(id);
    if (this.#directory.get(key / span) !== containerSlot(id)) {
      fail(`directory entry of the run container at ${key}`);
    }
    const n = containers.count[id];
    if (n > containers.room[id]) fail(`run container at ${key} holds more pairs than its room`);
    for (let k = 0; k < n; k++) {
      const off = containers.offsetAt(id, k);
      if (k === 0 ? off !== 0 : !(off > containers.offsetAt(id, k - 1) && off < se - key)) {
        fail(`run container at ${key}: pair ${k} at offset ${off}`);
      }
      if (k > 0 && containers.stateAt(id, k) === containers.stateAt(id, k - 1)) {
        fail(`run container at ${key}: pairs ${k - 1} and ${k} share a state`);
      }
    }
    if (n - 1 <= this.#containerRunsAt) {
      fail(`run container at ${key} should have turned into runs`);
    }
  }
}
