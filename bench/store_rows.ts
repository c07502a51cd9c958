/**
 * The store-only rows of the benchmark report: each workload of
 * ./workloads.ts run on {@link BitmapStore} (the baseline: QEMU's layout) and
 * {@link RangeTreeStore} in the same process, interleaved repetition by
 * repetition so that machine noise hits both alike. Both hold exactly the
 * bits the workload's region claims (one, SHARED, for every workload here:
 * none has virtio-mem), so bytes are compared with the bitmap QEMU would
 * really keep.
 *
 * Timing covers only the conversions (or the replay): stores are built and
 * set up outside the timed part, and every conversion was generated up front.
 * Each store kind has its own copy of the timed loop, so neither pays for a
 * call site that has seen the other's class. Every conversion row first runs
 * its own workload untimed on both stores ({@link WARM_CONVERSIONS}), so that
 * it is timed in the warm state a store lives in.
 *
 * @module
 */

import { BitmapStore } from "../src/store/bitmap_store.ts";
import { RangeTreeStore } from "../src/store/range_tree_store.ts";
import type { StateStore } from "../src/store/state_store.ts";
import type { Measurement, ReportRow, RowSource } from "./report.ts";
import { benchReps, collectYoungGarbage, faultNote, MIN_REPS, minorFaults } from "./measurement.ts";
import {
  aligned2m,
  boot,
  type Conversions,
  dmaScatter,
  pagesOf,
  SHARED,
  swiotlbChurn,
  type Workload,
} from "./workloads.ts";

/** How one store kind is built, converted and replayed. */
interface Subject<S extends StateStore> {
  name: string;
  /** Bytes the store would need for `workload`, without building it (NaN: unknown). */
  bytesFor(workload: Workload): number;
  /**
   * A fresh store holding the bits `workload`'s region claims, every page in
   * its initial state. The caller applies `workload.conversions` to it and
   * nothing else (the bitmap's reset counts on it: see {@link resetBitmap}).
   * `untimed`: for a warm-up repetition, which may be set up more cheaply.
   */
  make(workload: Workload, untimed?: boolean): S;
  apply(store: S, conversions: Conversions): void;
  replay(store: S): number;
}

function applyToBitmap(store: BitmapStore, c: Conversions): void {
  const { starts, ends, toShared } = c;
  for (let i = 0; i < c.length; i++) {
    if (toShared[i] === 1) store.update(starts[i], ends[i], SHARED, 0);
    else store.update(starts[i], ends[i], 0, SHARED);
  }
}

function applyToTree(store: RangeTreeStore, c: Conversions): void {
  const { starts, ends, toShared } = c;
  for (let i = 0; i < c.length; i++) {
    if (toShared[i] === 1) store.update(starts[i], ends[i], SHARED, 0);
    else store.update(starts[i], ends[i], 0, SHARED);
  }
}

/** A store row's note where V8's `gc` is not exposed (see `collectYoungGarbage`). */
export const UNCOLLECTED_NOTE = "young garbage not collected between repetitions " +
  "(run with --v8-flags=--expose-gc): a stretch of fresh memory can slow every repetition";

/** Shared pages seen by the last replay: keeps the consumer's work observable. */
export let replayedSharedPages = 0;

// A replay consumer that reads every run, as a listener's populate would. One copy per store
// type on purpose: each call site stays monomorphic, so the timing is the store's iterator and
// not V8's dispatch between two iterator shapes.
function replayBitmap(store: BitmapStore): number {
  let runs = 0, shared = 0;
  for (const run of store.runs()) {
    runs++;
    if (run.state & SHARED) shared += run.end - run.start;
  }
  replayedSharedPages = shared;
  return runs;
}

function replayTree(store: RangeTreeStore): number {
  let runs = 0, shared = 0;
  for (const run of store.runs()) {
    runs++;
    if (run.state & SHARED) shared += run.end - run.start;
  }
  replayedSharedPages = shared;
  return runs;
}

/** The bitmap {@link bitmap} hands out again (see its `make`). */
let reusedBitmap: BitmapStore | undefined;

/** The bitmap the store rows reuse, if one was built (for tests). */
export function reusedBitmapStore(): BitmapStore | undefined {
  return reusedBitmap;
}
/** The workload whose conversions {@link reusedBitmap} holds on top of its initial state. */
let bitmapHolds: Workload | undefined;

/**
 * Brings `store` back to `initial` everywhere, when it was all
 * `held.initial` and then took `held`'s conversions: only the pages those
 * conversions cover can differ, so only they are written back. With `held`
 * undefined (not known) or of another initial state or size, all of it is
 * written. For warm-up repetitions only: see the bitmap's `make`.
 */
export function resetBitmap(store: BitmapStore, held: Workload | undefined, initial: number): void {
  if (held === undefined || held.initial !== initial || held.pages !== store.length) {
    store.set(0, store.length, initial);
    return;
  }
  const { starts, ends } = held.conversions;
  for (let i = 0; i < held.conversions.length; i++) store.set(starts[i], ends[i], initial);
}

const bitmap: Subject<BitmapStore> = {
  name: "bitmap",
  bytesFor: (w) => w.bits * Math.ceil(w.pages / 32) * 4,
  make: (w, untimed = false) => {
    // One bitmap per shape, reset for every repetition: a new 32-512 MiB
    // bitmap per repetition left V8 collecting the old ones in the middle of
    // the next timed loop (either store's), which made single repetitions of
    // the short `boot` rows 10 times slower. Resetting writes every word,
    // which also keeps first-touch page faults out of the timing.
    let store = reusedBitmap;
    if (store === undefined || store.length !== w.pages || store.bits !== w.bits) {
      reusedBitmap = bitmapHolds = undefined;
      store = new BitmapStore(w.pages, { bits: w.bits, initial: w.initial });
      reusedBitmap = store;
    }
    // A warm-up writes back only the pages converted, which makes warming
    // the 16 TiB row as cheap as the others (warmRepsFor). A timed
    // repetition writes every word: writing back only those pages leaves
    // exactly the lines the conversions touch in the cache: the 16 TiB
    // bitmap's repetitions then took 84-113 ns per conversion, against
    // 210-450 ns after writing every word (one process against six).
    if (untimed) resetBitmap(store, bitmapHolds, w.initial);
    else store.set(0, w.pages, w.initial);
    bitmapHolds = w;
    return store;
  },
  apply: applyToBitmap,
  replay: replayBitmap,
};

const rangeTree: Subject<RangeTreeStore> = {
  name: "range-tree",
  bytesFor: () => NaN,
  make: (w) => new RangeTreeStore(w.pages, { bits: w.bits, initial: w.initial }),
  apply: applyToTree,
  replay: replayTree,
};

/**
 * Free memory in bytes, or 0 when unknown: `Deno.systemMemoryInfo()` needs
 * `--allow-sys` (and Deno refuses /proc/meminfo without `--allow-all`), which
 * the report's command does not grant.
 */
function availableBytes(): number {
  try {
    return Deno.systemMemoryInfo().available;
  } catch {
    return 0;
  }
}

/** Without a free-memory figure, build stores up to this size (the 1-bit bitmap at 16 TiB is 512 MiB). */
const BLIND_LIMIT = 2 * 2 ** 30;

/**
 * A row whose stores need more than this many bytes (the 16 TiB rows) gets
 * the plain repetition count, not the fourfold one of short workloads:
 * resetting its bitmap between timed repetitions writes all of it.
 */
const BIG_STORE = 256 * 2 ** 20;

/** Short workloads (fewer conversions than this) get four times the repetitions. */
const SHORT_WORKLOAD = 100_000;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * The timing fields of a measurement. `seconds` is the best repetition: on a
 * shared 2-core machine noise (other processes, a GC cycle started by the
 * other store's allocation) only ever adds time, so the minimum is the
 * steadiest estimate of what the code costs; the median is kept alongside,
 * and every repetition in `times` so that report.ts can pair them.
 */
function timing(
  times: number[],
): { seconds: number; medianSeconds: number; repetitions: number; times: number[] } {
  return {
    seconds: Math.min(...times),
    medianSeconds: median(times),
    repetitions: times.length,
    times,
  };
}

/** A subject that will not be built, with the reason. */
function skipped(
  subject: Subject<StateStore>,
  workload: Workload,
  units: number,
  why: string,
): Measurement {
  return {
    store: subject.name,
    seconds: null,
    units,
    bytes: subject.bytesFor(workload),
    runs: null,
    note: why,
  };
}

/** Why `subject` cannot be built for `workload` on this machine, or undefined when it can. */
function tooBig(subject: Subject<StateStore>, workload: Workload): string | undefined {
  const need = subject.bytesFor(workload);
  if (!(need > 0)) return undefined;
  const free = availableBytes();
  if (free === 0 && need > BLIND_LIMIT) {
    return `not built: needs ${need} bytes, free memory unknown (bytes computed, timing skipped)`;
  }
  if (free > 0 && need * 3 > free) {
    return `not built: needs ${need} bytes, ${free} free (bytes computed, timing skipped)`;
  }
  return undefined;
}

/**
 * How many repetitions `workload` gets when rows get `reps`: four times as
 * many when it is short (fewer than {@link SHORT_WORKLOAD} conversions, a
 * millisecond or so, which one descheduling can ruin) unless its stores are
 * big, and never fewer than {@link MIN_REPS}.
 */
function repsFor(workload: Workload, reps: number): number {
  const big = SUBJECTS.some((s) => s.bytesFor(workload) > BIG_STORE);
  const short = workload.conversions.length < SHORT_WORKLOAD;
  return Math.max(MIN_REPS, short && !big ? reps * 4 : reps);
}

// deno-lint-ignore no-explicit-any
const SUBJECTS: Subject<any>[] = [bitmap, rangeTree];

/**
 * Conversions a row runs untimed before timing (see {@link measureConversions}):
 * a `boot` row of 3,081 conversions thus warms up with 98 repetitions. With
 * 20 it still read 2.0x-2.3x at 1 TiB where the same workload read 1.4x-1.6x
 * as a later row of the same run; with 100, 1.8x as both.
 */
const WARM_CONVERSIONS = 300_000;

/**
 * Untimed repetitions a row runs before its timed ones: enough for
 * {@link WARM_CONVERSIONS}, the 16 TiB row's included. That row had one
 * (writing its 512 MiB bitmap back a hundred times took too long), and in 2
 * of 24 report runs its tree took 800-2,700 ns per conversion in all five
 * repetitions against about 300 ns: its page numbers pass 2^30, so V8 drops
 * the store's optimized code (`--trace-deopt`: "not a Smi", "overflow" in
 * `#edit`, `#openContainer`, `find` and more) and one repetition is not
 * enough to compile it again. With compilation slowed on purpose
 * (`--v8-flags=--concurrent-recompilation-delay=100`), ten processes each:
 * with one warm-up, every repetition of the tree took 2.06x-6.61x the
 * bitmap's in three processes; with 98, none over 1.65x in any.
 */
export function warmRepsFor(workload: Workload): number {
  return Math.ceil(WARM_CONVERSIONS / workload.conversions.length);
}

/**
 * Times `workload`'s conversions on every subject: `reps` repetitions on
 * fresh stores, interleaved (bitmap, tree, bitmap, tree, ...) so that the
 * k-th repetitions of the two ran side by side and their ratio is one paired
 * sample of the noise.
 *
 * First `warm` untimed repetitions run the same way, so that every row is
 * timed with the code its workload reaches already compiled by V8's top tier.
 * {@link warmUp} alone left some store code in a lower tier: the same `boot`
 * 1 TiB workload read 2.2x-2.4x as the report's first row and 1.8x-1.9x as a
 * later row of the same run, and V8's `--trace-opt` showed the tree's index
 * search (`seek`, `key`, `nextKey`) finishing its top-tier compilation only
 * during the fourth 20-repetition row of that workload. A store in a host
 * serves conversions for the life of a VM, so the steady state is what the
 * rows compare; both stores get the same warm-up.
 *
 * `collect` runs before every build, warm-up included (default
 * {@link collectYoungGarbage}); where it returns false the measurements say so.
 */
export function measureConversions(
  workload: Workload,
  reps: number,
  warm = 0,
  collect: () => boolean = collectYoungGarbage,
): Measurement[] {
  const times: number[][] = SUBJECTS.map(() => []);
  const faults: number[][] = SUBJECTS.map(() => []);
  const last: (StateStore | undefined)[] = SUBJECTS.map(() => undefined);
  const skip = SUBJECTS.map((s) => tooBig(s, workload));
  // Young garbage (the stores just dropped) is collected before every build,
  // warm-up included, so that no repetition's store lands in fresh memory
  // (see collectYoungGarbage); the bitmap, reused, allocates nothing anyway.
  let collected = true;
  for (let r = 0; r < warm; r++) {
    SUBJECTS.forEach((subject, k) => {
      if (skip[k] !== undefined) return;
      collected = collect() && collected;
      subject.apply(subject.make(workload, true), workload.conversions);
    });
  }
  for (let r = 0; r < reps; r++) {
    SUBJECTS.forEach((subject, k) => {
      if (skip[k] !== undefined) return;
      last[k] = undefined; // let a huge previous store go before building the next
      collected = collect() && collected;
      const store = subject.make(workload);
      const f0 = minorFaults();
      const t0 = performance.now();
      subject.apply(store, workload.conversions);
      times[k].push((performance.now() - t0) / 1000);
      faults[k].push(minorFaults() - f0);
      last[k] = store;
    });
  }
  return SUBJECTS.map((subject, k) => {
    const store = last[k];
    if (store === undefined) {
      return skipped(subject, workload, workload.conversions.length, skip[k]!);
    }
    const note = [
      collected ? undefined : UNCOLLECTED_NOTE,
      faultNote(faults[k]),
    ].filter((n) => n !== undefined).join("; ") || undefined;
    return {
      store: subject.name,
      ...timing(times[k]),
      units: workload.conversions.length,
      bytes: store.byteSize(),
      runs: store.runCount,
      ...(note ? { note } : {}),
    };
  });
}

/** Times a full runs() replay of the state `setup` leaves, `reps` times per subject, interleaved. */
function measureReplay(setup: Workload, reps: number): Measurement[] {
  const why = SUBJECTS.map((subject) => tooBig(subject, setup));
  const stores = SUBJECTS.map((subject, k) => {
    if (why[k] !== undefined) return undefined;
    const store = subject.make(setup);
    subject.apply(store, setup.conversions);
    return store;
  });
  const times: number[][] = SUBJECTS.map(() => []);
  const runs: number[] = SUBJECTS.map(() => 0);
  for (let r = 0; r < reps; r++) {
    SUBJECTS.forEach((subject, k) => {
      if (stores[k] === undefined) return;
      const t0 = performance.now();
      runs[k] = subject.replay(stores[k]);
      times[k].push((performance.now() - t0) / 1000);
    });
  }
  return SUBJECTS.map((subject, k) => {
    const store = stores[k];
    if (store === undefined) return skipped(subject, setup, NaN, why[k]!);
    return {
      store: subject.name,
      ...timing(times[k]),
      units: runs[k],
      bytes: store.byteSize(),
      runs: store.runCount,
    };
  });
}

const TIB = pagesOf(2 ** 40);

/**
 * Runs small versions of every workload on every subject, untimed, so the
 * first timed repetition does not pay for compiling the code it exercises.
 */
function warmUp(): void {
  const workloads = [
    boot(pagesOf(2 ** 36), 101),
    swiotlbChurn(pagesOf(2 ** 36), 50_000, 102),
    dmaScatter(200_000, 103),
    aligned2m(200_000, 104),
  ];
  for (const subject of SUBJECTS) {
    for (const workload of workloads) {
      const store = subject.make(workload);
      subject.apply(store, workload.conversions);
      subject.replay(store);
    }
  }
}

/**
 * Issue 13, target 2: every store-only workload within 2x of the bitmap's
 * time (the bitmap holding the same claimed bits).
 */
const WITHIN_2X: ReportRow["targets"][number] = { metric: "time", max: 2 };

/** Every store-only row, in report order. */
async function storeRows(reps: number): Promise<ReportRow[]> {
  const rows: ReportRow[] = [];
  const conversionRow = (
    workload: Workload,
    name: string,
    targets: ReportRow["targets"],
  ): ReportRow => ({
    workload: name,
    description: workload.description,
    unit: "conversion",
    results: measureConversions(
      workload,
      repsFor(workload, reps),
      warmRepsFor(workload),
    ),
    targets,
  });
  const replayRow = (setup: Workload, name: string, targets: ReportRow["targets"]): ReportRow => ({
    workload: name,
    description: `replay: iterate runs() of the boot state (${setup.pages} pages)`,
    unit: "run",
    results: measureReplay(setup, repsFor(setup, reps)),
    targets,
  });
  const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
  warmUp();
  const bootTiB = boot(TIB);
  rows.push(conversionRow(bootTiB, "boot", [WITHIN_2X, { metric: "bytes", max: 0.01 }]));
  await tick();
  rows.push(
    conversionRow(swiotlbChurn(TIB), "swiotlb-churn", [WITHIN_2X, { metric: "bytes", max: 0.01 }]),
  );
  await tick();
  rows.push(conversionRow(dmaScatter(), "dma-scatter", [WITHIN_2X, { metric: "bytes", max: 1.2 }]));
  await tick();
  rows.push(conversionRow(aligned2m(), "2m-aligned", [{ metric: "time", max: 1, strict: true }]));
  await tick();
  rows.push(replayRow(bootTiB, "register", [{ metric: "time", max: 1, strict: true }]));
  for (
    const [label, bytes] of [["64GiB", 2 ** 36], ["1TiB", 2 ** 40], ["16TiB", 2 ** 44]] as const
  ) {
    await tick();
    const setup = boot(pagesOf(bytes));
    rows.push(conversionRow(setup, `scale: boot ${label}`, [WITHIN_2X]));
    rows.push(replayRow(setup, `scale: register ${label}`, [WITHIN_2X]));
  }
  return rows;
}

/**
 * The store-only rows as a report source; `MEMSTATE_BENCH_REPS` sets
 * repetitions (default 5, never fewer than {@link MIN_REPS}: `benchReps`).
 */
export const storeSource: RowSource = {
  name: "store",
  rows: () => storeRows(benchReps("store_rows", 5)),
};
