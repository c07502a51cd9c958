/**
 * Run containers for {@link RangeTreeStore}'s spans that hold a few extents
 * or a few hundred: each container is one span's runs as a sorted array of
 * `(offset, state)` pairs, roaring's run container. Offsets are page offsets
 * inside the span, `[0, spanPages)`; pair 0 is at offset 0, and neighbouring
 * pairs differ in state (so a container with `n` pairs has `n - 1` state
 * changes inside it).
 *
 * Why a container and not the tree: an edit in a span of the tree searches
 * the whole index of extents from its root (three levels of sorted-btree
 * nodes for the 6,000 extents of the report's `boot` rows), which alone cost
 * more than the bitmap's whole conversion; a container is found through the
 * span directory (one hash probe) and searched over its own pairs only (94
 * at `boot` 64 GiB, a handful at 1 TiB). docs/performance_history.md (round 4)
 * says what that bought the report's `boot` rows.
 *
 * Why one shared heap: a V8 typed array costs about 208 bytes of headers, more
 * than a container of a few pairs. Containers are carved out of one
 * `Int32Array` (two words a pair) by a bump allocator; a container that fills
 * its room moves to one four times as big at the top (see `reserve`), and one
 * left with at most an eighth of its room to one it fills half (see
 * `#shrink`), leaving the old room as garbage
 * (as does a released container); when the garbage outweighs half of what is
 * live (and 64 pairs) the heap is copied afresh with only the live rooms. So
 * a room holds at most eight times its pairs (or `FIRST_ROOM`), and the heap,
 * doubled when full, stays within a small multiple of the rooms.
 * Container numbers never change, so nothing outside has to be told when
 * rooms move. When the last container goes back to runs, a heap of at most
 * {@link KEEP_PAIRS} pairs (and arrays for at most {@link KEEP_CONTAINERS}
 * containers) stays for the next one (a pool that empties
 * between bursts of buffers opens one again at once; see `release`).
 *
 * @module
 */

import { TYPED_ARRAY_OVERHEAD_BYTES } from "./_slot_arena.ts";

/** Shifts of more words than this use `copyWithin` (a memmove) instead of a loop. */
const COPY_WORDS = 32;
/** Pairs a new container has room for. */
const FIRST_ROOM = 8;
/** Bytes per container of the per-container arrays (base, count, room: 4 each). */
const META_BYTES = 12;

const NO_INTS = new Int32Array(0);
/** Pairs of heap, at most, that {@link RunContainers.release} keeps once no container is left. */
export const KEEP_PAIRS = 128;
/**
 * Container numbers, at most, whose per-container arrays
 * {@link RunContainers.release} keeps once no container is left.
 */
export const KEEP_CONTAINERS = 64;

/** Many sorted run arrays in one heap, numbered; see the module doc. */
export class RunContainers {
  /** The pairs: pair `p` is `heap[2p]` (offset) and `heap[2p + 1]` (state). */
  heap: Int32Array = NO_INTS;
  /** Per container: its first pair in the heap. */
  base: Int32Array = NO_INTS;
  /** Per container: pairs in use; -1 when the number is free. */
  count: Int32Array = NO_INTS;
  /** Per container: pairs of room. */
  room: Int32Array = NO_INTS;
  /** Containers in use. */
  live = 0;
  /** Numbers handed out: `[0, top)`. */
  top = 0;
  /** Pairs of the heap handed out (the bump pointer). */
  #used = 0;
  /** Pairs of room held by live containers. */
  #held = 0;
  /** Free container numbers below `top`. */
  #free: number[] = [];

  /** Estimated bytes: the heap and the per-container arrays by capacity, with their headers. */
  byteSize(): number {
    if (this.count.length === 0) return 0;
    return 4 * TYPED_ARRAY_OVERHEAD_BYTES + this.heap.byteLength + this.count.length * META_BYTES;
  }

  /** True when container `id` (below {@link top}) is in use. */
  isLive(id: number): boolean {
    return this.count[id] >= 0;
  }

  /**
   * A new container with room for `pairs` pairs and none in use: the caller
   * writes them and sets `count`.
   */
  alloc(pairs: number): number {
    let id: number;
    if (this.#free.length > 0) id = this.#free.pop()!;
    else {
      if (this.top === this.count.length) this.#grow(Math.max(8, this.top * 2));
      id = this.top++;
    }
    let room = FIRST_ROOM;
    while (room < pairs) room *= 2;
    this.count[id] = 0;
    this.room[id] = 0;
    this.live++;
    this.#moveTo(id, room);
    return id;
  }

  /**
   * Gives container `id` back; its room becomes garbage. `reopen` says its
   * span may want a container again soon (it went back to runs, not on to a
   * chunk map): when it was the last container, a heap of at most
   * {@link KEEP_PAIRS} pairs and per-container arrays for at most
   * {@link KEEP_CONTAINERS} containers stay for the next one (1.8 KB of
   * elements, 2.6 KB with the headers `byteSize` counts). 128 pairs, not 64,
   * since the heap doubles: a first container that grows once (room 8, then
   * 32) leaves a heap of 80 pairs. A SWIOTLB pool that
   * empties between bursts reopens a container at its next buffer, and
   * allocating its typed arrays afresh each time cost `swiotlb-churn`
   * (whose 200,000 conversions empty its pool 764 times) 1-11% of its time
   * (paired medians of five runs against the code that dropped them:
   * 0.89-0.99, `bench/store_rows.ts`'s loop). Otherwise the last release
   * drops every array.
   */
  release(id: number, reopen = false): void {
    this.#held -= this.room[id];
    this.count[id] = -1;
    this.room[id] = 0;
    this.live--;
    this.#free.push(id);
    if (this.live > 0) {
      if (this.#tooMuchGarbage()) this.#compact();
      return;
    }
    // Nothing left: start again from an empty heap. (Every number below `top`
    // was released, so `count` already says -1 for each.)
    this.top = this.#used = this.#held = 0;
    this.#free = [];
    if (
      reopen && this.heap.length <= 2 * KEEP_PAIRS && this.count.length <= KEEP_CONTAINERS
    ) return;
    this.heap =
      this.base =
      this.count =
      this.room =
        NO_INTS;
  }

  /** The last pair of container `id` whose offset is `<= off` (pair 0 is at offset 0). */
  find(id: number, off: number): number {
    off |= 0; // below 2^30: see apply
    const heap = this.heap;
    const base = this.base[id];
    let lo = 1, hi = this.count[id];
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (heap[2 * (base + mid)] <= off) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /** The state of the first page of container `id`. */
  firstState(id: number): number {
    return this.heap[2 * this.base[id] + 1];
  }

  /** The state of the last page of container `id`. */
  lastState(id: number): number {
    return this.heap[2 * (this.base[id] + this.count[id] - 1) + 1];
  }

  /** The offset of pair `k` of container `id`. */
  offsetAt(id: number, k: number): number {
    return this.heap[2 * (this.base[id] + k)];
  }

  /** The state of pair `k` of container `id`. */
  stateAt(id: number, k: number): number {
    return this.heap[2 * (this.base[id] + k) + 1];
  }

  /** A new container holding the pairs `(offsets[k], states[k])` (maximal, the first at 0). */
  create(offsets: readonly number[], states: readonly number[]): number {
    const id = this.alloc(offsets.length);
    const heap = this.heap;
    const base = this.base[id];
    for (let k = 0; k < offsets.length; k++) {
      heap[2 * (base + k)] = offsets[k];
      heap[2 * (base + k) + 1] = states[k];
    }
    this.count[id] = offsets.length;
    return id;
  }

  /**
   * A new container for a span of `size` pages, all `value` but `[oa, ob)`,
   * which is `state` (`!== value`, and the range not the whole span): two or
   * three pairs, written at once.
   */
  createSplit(size: number, value: number, oa: number, ob: number, state: number): number {
    const pairs = (oa > 0 ? 1 : 0) + 1 + (ob < size ? 1 : 0);
    const id = this.alloc(pairs);
    const heap = this.heap;
    let at = 2 * this.base[id];
    if (oa > 0) {
      heap[at++] = 0;
      heap[at++] = value;
    }
    heap[at++] = oa;
    heap[at++] = state;
    if (ob < size) {
      heap[at++] = ob;
      heap[at] = value;
    }
    this.count[id] = pairs;
    return id;
  }

  /**
   * Makes room in container `id` for `extra` more pairs (it may move, and the
   * heap with it). A full room grows fourfold, not twofold: a container of a
   * crowded span (94 pairs at `boot` 64 GiB) then moves twice on its way up
   * instead of four times, and its heap grows and compacts less often.
   * Against doubling with shrinking at a quarter (`bench/store_ab.ts --base
   * 8e28c24 --processes 7`: the median of seven processes' paired medians,
   * two runs): `boot` 64 GiB 0.95x of the time (0.93x-1.04x per process),
   * 1 TiB 1.01x-1.03x (at the edge of the A/A spread: possibly 1-3% slower),
   * 16 TiB 1.00x, `swiotlb-churn` 0.98x; an A/A run's medians read
   * 0.98x-1.02x. The price is bytes: 24% more at the end of
   * `boot` 1 TiB (0.72% of the bitmap, against 0.58%), and a quarter more
   * typed arrays allocated on the way at 1 TiB and 16 TiB, where many
   * containers outgrow their first room of 8 and few need a fourth move (at
   * 64 GiB a third less; `bench/store_ab.ts --allocated`).
   */
  reserve(id: number, extra: number): void {
    const need = this.count[id] + extra;
    if (need <= this.room[id]) return;
    let room = this.room[id] * 4;
    while (room < need) room *= 2;
    this.#moveTo(id, room);
  }

  /** Inserts `k` pairs (1 or 2) at position `at` of container `id`: `(o1, s1)` then `(o2, s2)`. */
  insert(id: number, at: number, o1: number, s1: number, o2 = 0, s2 = 0, k = 1): void {
    this.reserve(id, k);
    const heap = this.heap;
    const base = this.base[id];
    const n = this.count[id];
    this.#shiftWords(2 * (base + at + k), 2 * (base + at), 2 * (base + n));
    heap[2 * (base + at)] = o1;
    heap[2 * (base + at) + 1] = s1;
    if (k === 2) {
      heap[2 * (base + at + 1)] = o2;
      heap[2 * (base + at + 1) + 1] = s2;
    }
    this.count[id] = n + k;
  }

  /** Removes `k` pairs from position `at` of container `id` (its room may shrink). */
  remove(id: number, at: number, k: number): void {
    const base = this.base[id];
    const n = this.count[id];
    this.#shiftWords(2 * (base + at), 2 * (base + at + k), 2 * (base + n));
    this.count[id] = n - k;
    this.#shrink(id);
  }

  /**
   * `state = (state & keep) | put` over offsets `[oa, ob)` of container `id`,
   * whose span has `size` pages, keeping its pairs maximal. A range inside
   * one pair (a buffer converted whole, the usual case) splits or recolours
   * that pair, merging with its neighbours; a range over several pairs is
   * rebuilt.
   */
  apply(
    id: number,
    oa: number,
    ob: number,
    size: number,
    keep: number,
    put: number,
  ): void {
    // Offsets in a span are below 2^30 but arrive as doubles (a page minus its
    // span's start): as int32 they compare with the heap's words without a
    // conversion each, in the search and the splits below (the search's
    // compares were int-to-double conversions, `perf annotate` of the
    // `boot` 64 GiB build). Against the code before (`bench/store_ab.ts
    // --base 6eea065`, three runs, medians of 7, 7 and 9 processes): `boot`
    // 64 GiB 0.95x, 0.95x and 0.99x, `swiotlb-churn` 0.92x-0.96x, `boot` 1
    // TiB 0.97x-0.99x, 16 TiB 1.00x-1.01x.
    oa |= 0;
    ob |= 0;
    size |= 0;
    const i = this.find(id, oa);
    const heap = this.heap;
    const base = this.base[id];
    const n = this.count[id];
    const key = heap[2 * (base + i)];
    const next = i + 1 < n ? heap[2 * (base + i + 1)] : size;
    if (ob > next) {
      this.#applyAcross(id, i, oa, ob, size, keep, put);
      return;
    }
    const value = heap[2 * (base + i) + 1];
    const state = (value & keep) | put;
    if (state === value) return;
    const leftSame = i > 0 && heap[2 * (base + i - 1) + 1] === state;
    const rightSame = i + 1 < n && heap[2 * (base + i + 1) + 1] === state;
    if (oa > key && ob < next) this.insert(id, i + 1, oa, state, ob, value, 2);
    else if (ob < next) {
      // From the pair's start: the pair before absorbs [oa, ob), or the pair is split.
      if (leftSame) heap[2 * (base + i)] = ob;
      else {
        heap[2 * (base + i) + 1] = state;
        this.insert(id, i + 1, ob, value);
      }
    } else if (oa > key) {
      // To the pair's end: the pair after absorbs it, or a pair starts at oa.
      if (rightSame) heap[2 * (base + i + 1)] = oa;
      else this.insert(id, i + 1, oa, state);
    } else if (leftSame && rightSame) this.remove(id, i, 2);
    else if (leftSame) this.remove(id, i, 1);
    else if (rightSame) {
      heap[2 * (base + i + 1)] = key;
      this.remove(id, i, 1);
    } else heap[2 * (base + i) + 1] = state;
  }

  /**
   * {@link apply} for `[oa, ob)` over several pairs, from pair
   * `i` (which holds `oa`): the covered pairs are recomputed, merged, and
   * written back in place of the old ones.
   */
  #applyAcross(
    id: number,
    i: number,
    oa: number,
    ob: number,
    size: number,
    keep: number,
    put: number,
  ): void {
    const heap = this.heap;
    const base = this.base[id];
    const n = this.count[id];
    // The pairs i..j-1 overlap [oa, ob); j is the first pair starting at or past ob.
    let j = i + 1;
    while (j < n && heap[2 * (base + j)] < ob) j++;
    const offsets: number[] = [];
    const states: number[] = [];
    let last = i > 0 ? heap[2 * (base + i - 1) + 1] : -1;
    const add = (off: number, state: number) => {
      if (state === last) return;
      offsets.push(off);
      states.push(state);
      last = state;
    };
    for (let k = i; k < j; k++) {
      const start = heap[2 * (base + k)];
      const value = heap[2 * (base + k) + 1];
      const end = k + 1 < n ? heap[2 * (base + k + 1)] : size;
      if (start < oa) add(start, value);
      add(start > oa ? start : oa, (value & keep) | put);
      if (end > ob) add(ob, value);
    }
    // The pair at j (if any) keeps its offset; it merges when it repeats the last state.
    const dropNext = j < n && heap[2 * (base + j) + 1] === last ? 1 : 0;
    const removed = j - i + dropNext;
    const added = offsets.length;
    if (added > removed) this.reserve(id, added - removed);
    // Shift the pairs after the rewritten stretch, then write it.
    const h = this.heap;
    const b = this.base[id];
    this.#shiftWords(2 * (b + i + added), 2 * (b + i + removed), 2 * (b + n));
    for (let k = 0; k < added; k++) {
      h[2 * (b + i + k)] = offsets[k];
      h[2 * (b + i + k) + 1] = states[k];
    }
    this.count[id] = n - removed + added;
    if (added < removed) this.#shrink(id);
  }

  /**
   * Moves heap words `[from, end)` to start at `to` (the ranges may overlap):
   * a loop for a few words, `copyWithin` (a memmove) past `COPY_WORDS`.
   */
  #shiftWords(to: number, from: number, end: number): void {
    const heap = this.heap;
    const n = end - from;
    if (n > COPY_WORDS) heap.copyWithin(to, from, end);
    else if (to > from) { for (let w = n - 1; w >= 0; w--) heap[to + w] = heap[from + w]; }
    else for (let w = 0; w < n; w++) heap[to + w] = heap[from + w];
  }

  /**
   * Gives container `id` a room of `room` pairs at the heap's top, keeping its
   * pairs; first compacts the heap when its garbage (rooms given up by moves
   * and releases) outweighs half of the live rooms. A full heap doubles
   * (with the per-container arrays and the span directory in one buffer each,
   * see `#grow`): a fresh store's build at `boot` 1 TiB allocates 27 buffers
   * instead of 72 and takes 0.90x-0.91x the time, 64 GiB 0.90x-0.93x, 16 TiB
   * 0.93x-0.94x, `swiotlb-churn` 0.93x-0.97x; the heap grown by half and the
   * rest as now, 0.96x-0.97x at 1 TiB and 0.99x at 64 GiB
   * (`bench/store_ab.ts --base fba35fe --processes 7`, two runs each; an
   * A/A run reads 0.98x-1.00x; `--allocated` counts the buffers). The price:
   * `boot` 1 TiB ends at 279 KiB instead of 234 KiB (0.85% of the bitmap),
   * the end-to-end 2 MiB-aligned row's store at 45 KiB instead of 28 KiB (9%
   * of the bitmap instead of 6%).
   */
  #moveTo(id: number, room: number): void {
    if (this.#tooMuchGarbage()) this.#compact();
    if (2 * (this.#used + room) > this.heap.length) {
      const grown = new Int32Array(4 * (this.#used + room));
      grown.set(this.heap.subarray(0, 2 * this.#used));
      this.heap = grown;
    }
    const from = this.base[id];
    const to = this.#used;
    const n = this.count[id];
    const old = this.room[id];
    if (n > 0) this.heap.copyWithin(2 * to, 2 * from, 2 * (from + n)); // a new one has none
    this.#held += room - old;
    this.base[id] = to;
    this.room[id] = room;
    this.#used += room;
    // A room given up for a smaller one may be most of the heap: drop it now.
    if (room < old && this.#tooMuchGarbage()) this.#compact();
  }

  /**
   * Moves container `id`, once it uses at most an eighth of its room, to the
   * smallest room (a power of two, at least `FIRST_ROOM`) it fills at most
   * half of: growing again takes as many pairs as it holds. An eighth, not a
   * quarter, because rooms grow fourfold: a room just grown holds a quarter
   * of it plus one, and at a quarter one removal would move it straight back
   * down. `swiotlb-churn`, whose buffers come and go, allocates 1,974 KiB of
   * typed arrays at a quarter and 1,134 KiB at an eighth (`bench/store_ab.ts
   * --base 6662222 --allocated --workloads churn`), in 0.96x of the time
   * (`bench/store_ab.ts --base 6662222 --processes 7 --workloads churn`:
   * 0.90x-1.00x per process; its A/A reads 1.02x).
   */
  #shrink(id: number): void {
    const room = this.room[id];
    const count = this.count[id];
    if (room <= FIRST_ROOM || count * 8 > room) return;
    let fit = FIRST_ROOM;
    while (fit < 2 * count) fit *= 2;
    this.#moveTo(id, fit);
  }

  /** True when the heap's garbage outweighs half of the live rooms, and 64 pairs. */
  #tooMuchGarbage(): boolean {
    return this.#used - this.#held > Math.max(64, this.#held >>> 1);
  }

  /** Copies every live container's room into a fresh heap, dropping the garbage. */
  #compact(): void {
    const old = this.heap;
    const heap = new Int32Array(2 * Math.ceil(this.#held * 1.5));
    let used = 0;
    for (let id = 0; id < this.top; id++) {
      if (this.count[id] < 0) continue;
      const from = this.base[id];
      heap.set(old.subarray(2 * from, 2 * (from + this.count[id])), 2 * used);
      this.base[id] = used;
      used += this.room[id];
    }
    this.heap = heap;
    this.#used = used;
  }

  /**
   * Gives the per-container arrays room for `capacity` containers (doubling).
   * The three are views of one buffer: each buffer is a backing store from
   * the C heap that V8's sweeper frees later, costing far more than its
   * bytes; and opening containers, which grows these arrays, is most of what
   * the tree pays over the bitmap at `boot` 1 TiB: a 4 KiB flip that opens a
   * container took 213 ns against the bitmap's 62 ns, one in an open
   * container 37 ns against 43 ns (a scratch loop, best of 400). See
   * `#moveTo` for what the change measured.
   */
  #grow(capacity: number): void {
    const keep = this.top;
    const buffer = new ArrayBuffer(capacity * META_BYTES);
    const ints = (a: Int32Array, at: number, fill: number) => {
      const b = new Int32Array(buffer, at * capacity, capacity);
      if (fill !== 0) b.fill(fill, keep);
      b.set(a.subarray(0, keep));
      return b;
    };
    this.base = ints(this.base, 0, 0);
    this.count = ints(this.count, 4, -1);
    this.room = ints(this.room, 8, 0);
  }
}
