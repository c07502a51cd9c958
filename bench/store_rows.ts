/**
 * The store-only rows of the benchmark report: each workload of
 * ./workloads.ts run on {@link BitmapStore} (the baseline: QEMU's layout) and
 * {@link RangeTreeStore} in the same process, interleaved repetition by
 * repetition so that machine noise hits both alike.
 *
 * Timing covers only the conversions (or the replay): stores are built and
 * set up outside the timed part, and every conversion was generated up front.
 * Each store kind has its own copy of the timed loop, so neither pays for a
 * call site that has seen the other's class.
 *
 * @module
 */

import { BitmapStore } from "../src/store/bitmap_store.ts";
import { RangeTreeStore } from "../src/store/range_tree_store.ts";
import type { StateStore } from "../src/store/state_store.ts";
import type { Measurement, ReportRow, RowSource } from "./report.ts";
import {
  aligned2m,
  boot,
  type Conversions,
  dmaScatter,
  INITIAL_STATE,
  pagesOf,
  SHARED,
  STORE_BITS,
  swiotlbChurn,
  type Workload,
} from "./workloads.ts";

/** How one store kind is built, converted and replayed. */
interface Subject<S extends StateStore> {
  name: string;
  /** Bytes the store would need for `pages`, without building it. */
  bytesFor(pages: number): number;
  make(pages: number): S;
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

const bitmap: Subject<BitmapStore> = {
  name: "bitmap",
  bytesFor: (pages) => STORE_BITS * Math.ceil(pages / 32) * 4,
  make: (pages) => new BitmapStore(pages, { bits: STORE_BITS, initial: INITIAL_STATE }),
  apply: applyToBitmap,
  replay: replayBitmap,
};

const rangeTree: Subject<RangeTreeStore> = {
  name: "range-tree",
  bytesFor: () => NaN,
  make: (pages) => new RangeTreeStore(pages, { bits: STORE_BITS, initial: INITIAL_STATE }),
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

/** Without a free-memory figure, build stores up to this size (the bitmap at 16 TiB is 1 GiB). */
const BLIND_LIMIT = 2 * 2 ** 30;

/** A bitmap bigger than this is built and timed once, not `reps` times. */
const BIG_BITMAP = 256 * 2 ** 20;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * The timing fields of a measurement. `seconds` is the best repetition: on a
 * shared 2-core machine noise (other processes, a GC cycle started by the
 * other store's 64 MiB allocation) only ever adds time, so the minimum is the
 * steadiest estimate of what the code costs; the median is kept alongside.
 */
function timing(times: number[]): { seconds: number; medianSeconds: number; repetitions: number } {
  return { seconds: Math.min(...times), medianSeconds: median(times), repetitions: times.length };
}

/** A subject that will not be built, with the reason. */
function skipped(
  subject: Subject<StateStore>,
  pages: number,
  units: number,
  why: string,
): Measurement {
  return {
    store: subject.name,
    seconds: null,
    units,
    bytes: subject.bytesFor(pages),
    runs: null,
    note: why,
  };
}

/** Why `subject` cannot be built for `pages` on this machine, or undefined when it can. */
function tooBig(subject: Subject<StateStore>, pages: number): string | undefined {
  const need = subject.bytesFor(pages);
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

// deno-lint-ignore no-explicit-any
const SUBJECTS: Subject<any>[] = [bitmap, rangeTree];

/**
 * Times `workload`'s conversions on every subject: `reps` interleaved
 * repetitions on fresh stores (one when a store is huge).
 */
function measureConversions(workload: Workload, reps: number): Measurement[] {
  const times: number[][] = SUBJECTS.map(() => []);
  const last: (StateStore | undefined)[] = SUBJECTS.map(() => undefined);
  const skip = SUBJECTS.map((s) => tooBig(s, workload.pages));
  for (let r = 0; r < reps; r++) {
    SUBJECTS.forEach((subject, k) => {
      if (skip[k] !== undefined) return;
      if (r > 0 && subject.bytesFor(workload.pages) > BIG_BITMAP) return;
      last[k] = undefined; // let a huge previous store go before building the next
      const store = subject.make(workload.pages);
      const t0 = performance.now();
      subject.apply(store, workload.conversions);
      times[k].push((performance.now() - t0) / 1000);
      last[k] = store;
    });
  }
  return SUBJECTS.map((subject, k) => {
    const store = last[k];
    if (store === undefined) {
      return skipped(subject, workload.pages, workload.conversions.length, skip[k]!);
    }
    return {
      store: subject.name,
      ...timing(times[k]),
      units: workload.conversions.length,
      bytes: store.byteSize(),
      runs: store.runCount,
    };
  });
}

/** Times a full runs() replay of the state `setup` leaves, `reps` times per subject. */
function measureReplay(setup: Workload, reps: number): Measurement[] {
  return SUBJECTS.map((subject) => {
    const why = tooBig(subject, setup.pages);
    if (why !== undefined) return skipped(subject, setup.pages, NaN, why);
    const store = subject.make(setup.pages);
    subject.apply(store, setup.conversions);
    const times: number[] = [];
    const n = subject.bytesFor(setup.pages) > BIG_BITMAP ? 1 : reps;
    let runs = 0;
    for (let r = 0; r < n; r++) {
      const t0 = performance.now();
      runs = subject.replay(store);
      times.push((performance.now() - t0) / 1000);
    }
    return {
      store: subject.name,
      ...timing(times),
      units: runs,
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
      const store = subject.make(workload.pages);
      subject.apply(store, workload.conversions);
      subject.replay(store);
    }
  }
}

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
    // Short workloads (a few thousand conversions) get more repetitions.
    results: measureConversions(workload, workload.conversions.length < 100_000 ? reps * 4 : reps),
    targets,
  });
  const replayRow = (setup: Workload, name: string, targets: ReportRow["targets"]): ReportRow => ({
    workload: name,
    description: `replay: iterate runs() of the boot state (${setup.pages} pages)`,
    unit: "run",
    results: measureReplay(setup, reps * 4),
    targets,
  });
  const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
  warmUp();
  const bootTiB = boot(TIB);
  rows.push(conversionRow(bootTiB, "boot", [{ metric: "bytes", max: 0.01 }]));
  await tick();
  rows.push(conversionRow(swiotlbChurn(TIB), "swiotlb-churn", [{ metric: "bytes", max: 0.01 }]));
  await tick();
  rows.push(
    conversionRow(dmaScatter(), "dma-scatter", [
      { metric: "time", max: 5 },
      { metric: "bytes", max: 2 },
    ]),
  );
  await tick();
  rows.push(conversionRow(aligned2m(), "2m-aligned", [{ metric: "time", max: 1, strict: true }]));
  await tick();
  rows.push(replayRow(bootTiB, "register", [{ metric: "time", max: 1, strict: true }]));
  for (
    const [label, bytes] of [["64GiB", 2 ** 36], ["1TiB", 2 ** 40], ["16TiB", 2 ** 44]] as const
  ) {
    await tick();
    const setup = boot(pagesOf(bytes));
    rows.push(conversionRow(setup, `scale: boot ${label}`, []));
    rows.push(replayRow(setup, `scale: register ${label}`, []));
  }
  return rows;
}

/** The store-only rows as a report source; `MEMSTATE_BENCH_REPS` sets repetitions (default 5). */
export const storeSource: RowSource = {
  name: "store",
  rows(): Promise<ReportRow[]> {
    let reps = 5;
    try {
      const raw = Deno.env.get("MEMSTATE_BENCH_REPS");
      if (raw) reps = Math.max(1, Number.parseInt(raw, 10) || 5);
    } catch {
      // No env permission: keep the default.
    }
    return storeRows(reps);
  },
};
