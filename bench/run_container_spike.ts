/**
 * A design spike, not the product's store: what roaring's *run container*
 * would buy the `boot` rows, the ones the range tree still misses (issue 13,
 * target 2: `boot` 64 GiB 3.4-4.2x the bitmap, 1 TiB 1.9-3.0x).
 *
 * The range tree pays, for every scattered buffer, a search of one B-tree of
 * about 6,000 extents from the root (three levels of sorted-btree nodes) and
 * a shift of half a 64-entry leaf. A run container keeps each 1 GiB span's
 * extents in one sorted array of its own, found through the store's span
 * directory (one hash probe): the search covers only the span's extents (94
 * at 64 GiB, 6 at 1 TiB), in a typed array. Here the arrays are carved from
 * one shared `Int32Array` (a bump allocator that doubles a container's room
 * when it fills and leaks the old room: its bytes count in the figure
 * printed), because one typed array per container costs 208 bytes of headers
 * and an allocation each time it grows (with per-container arrays the spike
 * ran 2.3x slower at 64 GiB, all of it in allocation).
 *
 * It checks itself: after the first repetition its runs must equal the
 * bitmap's, or it throws. It keeps no run count and merges nothing across
 * span edges (runs are merged when read), which the product would have to.
 *
 * Run: `deno run -A bench/run_container_spike.ts [64|1024 GiB] [repetitions]`.
 * Measured on this project's machine kind (2 cores, Deno 2.9.6), three
 * processes per size, 200 repetitions each with the three stores side by
 * side, ratios to the bitmap as best / median: at 64 GiB the spike 1.9-2.5x,
 * the range tree 3.2-3.9x; at 1 TiB the spike 1.03-1.17x, the range tree
 * 2.2-2.5x. Bytes: 6.4% of the bitmap at 64 GiB (the tree 7.4%), 0.93% at
 * 1 TiB (the tree 0.48%; the heap's doubling and leaked rooms are most of
 * it). Giving every container its full room up front changed nothing, so the
 * allocator is not where the 64 GiB time goes: the hash probe, the search of
 * 94 pairs and the shift of half of them are. So a run container would bring
 * `boot` 1 TiB within the target and `boot` 64 GiB to about 2x, not below.
 * What it would take in the product (a third container kind beside runs and
 * chunk maps, with its own change counting, conversions to and from the other
 * two, compaction, snapshots and the invariant check) is the next step of
 * issue 13.
 *
 * @module
 */

import { BitmapStore } from "../src/store/bitmap_store.ts";
import { RangeTreeStore } from "../src/store/range_tree_store.ts";
import { SpanDirectory } from "../src/store/_span_directory.ts";
import { boot, type Conversions, pagesOf, SHARED } from "./workloads.ts";

/** Pages of a span: 1 GiB of 4 KiB pages, as the range tree's chunk maps. */
const SPAN = 2 ** 18;
/** Entries a new container has room for. */
const FIRST_ROOM = 4;

/** Per-span sorted run arrays in one shared heap: (offset, state) pairs. */
class RunContainers {
  readonly length: number;
  readonly initial: number;
  #directory = new SpanDirectory();
  /** Pairs: heap[2k] = offset in the span, heap[2k + 1] = state. */
  heap = new Int32Array(1024);
  #top = 0;
  /** Per container: first pair, pairs in use, pairs of room. */
  #base: number[] = [];
  #count: number[] = [];
  #room: number[] = [];

  constructor(length: number, initial: number) {
    this.length = length;
    this.initial = initial;
  }

  /** Bytes: the heap, the per-container numbers and the directory. */
  byteSize(): number {
    return this.heap.byteLength + 3 * 8 * this.#base.length + this.#directory.byteSize();
  }

  update(start: number, end: number, setBits: number, clearBits: number): void {
    let pos = start;
    while (pos < end) {
      const span = Math.floor(pos / SPAN);
      const sc = span * SPAN;
      const stop = Math.min(end, sc + SPAN, this.length);
      let c = this.#directory.get(span);
      if (c < 0) c = this.#open(span);
      this.#edit(c, pos - sc, stop - sc, Math.min(SPAN, this.length - sc), setBits, clearBits);
      pos = stop;
    }
  }

  /** The runs of one span, offsets made absolute (unmerged across spans). */
  *spanRuns(span: number): Generator<[number, number, number]> {
    const sc = span * SPAN;
    const se = Math.min(sc + SPAN, this.length);
    const c = this.#directory.get(span);
    if (c < 0) {
      yield [sc, se, this.initial];
      return;
    }
    const h = this.heap, b = this.#base[c], n = this.#count[c];
    for (let k = 0; k < n; k++) {
      const end = k + 1 < n ? sc + h[2 * (b + k + 1)] : se;
      yield [sc + h[2 * (b + k)], end, h[2 * (b + k) + 1]];
    }
  }

  #open(span: number): number {
    const c = this.#base.length;
    this.#base.push(this.#alloc(FIRST_ROOM));
    this.#count.push(1);
    this.#room.push(FIRST_ROOM);
    this.heap[2 * this.#base[c]] = 0;
    this.heap[2 * this.#base[c] + 1] = this.initial;
    this.#directory.set(span, c);
    return c;
  }

  #alloc(pairs: number): number {
    while (2 * (this.#top + pairs) > this.heap.length) {
      const grown = new Int32Array(this.heap.length * 2);
      grown.set(this.heap);
      this.heap = grown;
    }
    const at = this.#top;
    this.#top += pairs;
    return at;
  }

  /** Makes room for `extra` more pairs in container `c` (moving it when full). */
  #reserve(c: number, extra: number): void {
    const n = this.#count[c];
    if (n + extra <= this.#room[c]) return;
    let room = this.#room[c];
    while (room < n + extra) room *= 2;
    const at = this.#alloc(room);
    const from = this.#base[c];
    this.heap.copyWithin(2 * at, 2 * from, 2 * (from + n));
    this.#base[c] = at;
    this.#room[c] = room;
  }

  /** `state = (state & ~clear) | set` over offsets `[a, b)` of container `c` (span of `size` pages). */
  #edit(c: number, a: number, b: number, size: number, set: number, clear: number): void {
    let h = this.heap;
    let base = this.#base[c];
    const n = this.#count[c];
    let lo = 0, hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (h[2 * (base + mid)] <= a) lo = mid + 1;
      else hi = mid;
    }
    const i = lo - 1;
    const key = h[2 * (base + i)];
    const next = i + 1 < n ? h[2 * (base + i + 1)] : size;
    const value = h[2 * (base + i) + 1];
    if (b > next) return this.#editWide(c, a, b, set, clear);
    const state = (value & ~clear) | set;
    if (state === value) return;
    const leftSame = i > 0 && h[2 * (base + i - 1) + 1] === state;
    const rightSame = i + 1 < n && h[2 * (base + i + 1) + 1] === state;
    if (a > key && b < next) {
      // The middle of an entry: two new boundaries.
      this.#reserve(c, 2);
      h = this.heap;
      base = this.#base[c];
      for (let t = n + 1; t > i + 2; t--) {
        h[2 * (base + t)] = h[2 * (base + t - 2)];
        h[2 * (base + t) + 1] = h[2 * (base + t - 2) + 1];
      }
      h[2 * (base + i + 1)] = a;
      h[2 * (base + i + 1) + 1] = state;
      h[2 * (base + i + 2)] = b;
      h[2 * (base + i + 2) + 1] = value;
      this.#count[c] = n + 2;
    } else if (a === key && b < next) {
      if (leftSame) h[2 * (base + i)] = b;
      else {
        h[2 * (base + i) + 1] = state;
        this.#insert(c, i + 1, b, value);
      }
    } else if (a > key) {
      if (rightSame) h[2 * (base + i + 1)] = a;
      else this.#insert(c, i + 1, a, state);
    } else if (leftSame && rightSame) this.#remove(c, i, 2);
    else if (leftSame) this.#remove(c, i, 1);
    else if (rightSame) {
      h[2 * (base + i + 1)] = key;
      this.#remove(c, i, 1);
    } else h[2 * (base + i) + 1] = state;
  }

  /** A range over several entries: recomputes the stretch and writes it back, merged. */
  #editWide(c: number, a: number, b: number, set: number, clear: number): void {
    const h = this.heap, base = this.#base[c], n = this.#count[c];
    const offs: number[] = [], states: number[] = [];
    const push = (off: number, state: number) => {
      if (states.length > 0 && states[states.length - 1] === state) return;
      offs.push(off);
      states.push(state);
    };
    for (let k = 0; k < n; k++) {
      const s = h[2 * (base + k)], v = h[2 * (base + k) + 1];
      const e = k + 1 < n ? h[2 * (base + k + 1)] : Infinity;
      if (e <= a || s >= b) push(s, v);
      else {
        if (s < a) push(s, v);
        push(Math.max(s, a), (v & ~clear) | set);
        if (e > b) push(b, v);
      }
    }
    this.#count[c] = 0;
    this.#reserve(c, offs.length);
    const at = this.#base[c];
    for (let k = 0; k < offs.length; k++) {
      this.heap[2 * (at + k)] = offs[k];
      this.heap[2 * (at + k) + 1] = states[k];
    }
    this.#count[c] = offs.length;
  }

  #insert(c: number, at: number, off: number, state: number): void {
    this.#reserve(c, 1);
    const h = this.heap, base = this.#base[c], n = this.#count[c];
    for (let t = n; t > at; t--) {
      h[2 * (base + t)] = h[2 * (base + t - 1)];
      h[2 * (base + t) + 1] = h[2 * (base + t - 1) + 1];
    }
    h[2 * (base + at)] = off;
    h[2 * (base + at) + 1] = state;
    this.#count[c] = n + 1;
  }

  #remove(c: number, at: number, k: number): void {
    const h = this.heap, base = this.#base[c], n = this.#count[c];
    for (let t = at; t + k < n; t++) {
      h[2 * (base + t)] = h[2 * (base + t + k)];
      h[2 * (base + t) + 1] = h[2 * (base + t + k) + 1];
    }
    this.#count[c] = n - k;
  }
}

/** Maximal runs of the spike, merged across spans, as `start:end:state` strings. */
function spikeRuns(spike: RunContainers): string[] {
  const out: string[] = [];
  let start = 0, end = 0, state = -1;
  for (let span = 0; span * SPAN < spike.length; span++) {
    for (const [s, e, v] of spike.spanRuns(span)) {
      if (v === state) end = e;
      else {
        if (state >= 0) out.push(`${start}:${end}:${state}`);
        start = s;
        end = e;
        state = v;
      }
    }
  }
  out.push(`${start}:${end}:${state}`);
  return out;
}

// One loop per store kind, so each call site stays monomorphic (as bench/store_rows.ts does).
function applyBitmap(store: BitmapStore, c: Conversions): void {
  for (let i = 0; i < c.length; i++) store.update(c.starts[i], c.ends[i], SHARED, 0);
}
function applyTree(store: RangeTreeStore, c: Conversions): void {
  for (let i = 0; i < c.length; i++) store.update(c.starts[i], c.ends[i], SHARED, 0);
}
function applySpike(store: RunContainers, c: Conversions): void {
  for (let i = 0; i < c.length; i++) store.update(c.starts[i], c.ends[i], SHARED, 0);
}

if (import.meta.main) {
  const gib = Number(Deno.args[0] ?? 64);
  const reps = Number(Deno.args[1] ?? 200);
  const w = boot(pagesOf(gib * 2 ** 30));
  const c = w.conversions;
  const bitmap = new BitmapStore(w.pages, { bits: 1 });
  const times = { bitmap: [] as number[], tree: [] as number[], spike: [] as number[] };
  let spikeBytes = 0, treeBytes = 0;
  for (let r = 0; r < reps; r++) {
    const tree = new RangeTreeStore(w.pages, { bits: 1 });
    const spike = new RunContainers(w.pages, 0);
    bitmap.set(0, w.pages, 0);
    // Rotate the order, so no store always runs first.
    const order = [0, 1, 2].map((k) => (k + r) % 3);
    for (const k of order) {
      const t0 = performance.now();
      if (k === 0) applyBitmap(bitmap, c);
      else if (k === 1) applyTree(tree, c);
      else applySpike(spike, c);
      const ms = performance.now() - t0;
      (k === 0 ? times.bitmap : k === 1 ? times.tree : times.spike).push(ms);
    }
    if (r === 0) {
      const want = [...bitmap.runs()].map((run) => `${run.start}:${run.end}:${run.state}`);
      const got = spikeRuns(spike);
      if (want.join() !== got.join()) throw new Error("the spike's runs differ from the bitmap's");
      spikeBytes = spike.byteSize();
      treeBytes = tree.byteSize();
    }
  }
  const best = (xs: number[]) => Math.min(...xs);
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1];
  const ns = (ms: number) => `${(ms * 1e6 / c.length).toFixed(0)} ns`;
  console.log(`boot ${gib} GiB, ${c.length} conversions, ${reps} repetitions, best / median:`);
  for (const [name, xs] of Object.entries(times)) {
    const ratio = `${(best(xs) / best(times.bitmap)).toFixed(2)}x / ${
      (median(xs) / median(times.bitmap)).toFixed(2)
    }x`;
    console.log(`  ${name.padEnd(7)} ${ns(best(xs))} / ${ns(median(xs))}  ${ratio}`);
  }
  const bitmapBytes = Math.ceil(w.pages / 32) * 4;
  console.log(
    `  bytes: bitmap ${bitmapBytes}, range tree ${treeBytes}, spike ${spikeBytes} (${
      (100 * spikeBytes / bitmapBytes).toFixed(2)
    }% of the bitmap)`,
  );
}
