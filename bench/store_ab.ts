/**
 * The range tree of this checkout against its code at another git revision,
 * paired: both stores are built from the same workload in one process,
 * repetition by repetition, the order turned each time, so that a slow
 * stretch of the machine falls on both. Prints, per workload, each side's
 * best time per conversion and the median over repetitions of this
 * checkout's time over the other's (below 1: this checkout is faster).
 * `--base HEAD` is an A/A run: its spread is the noise to beat. The paired
 * figures for store changes in docs/performance_history.md come from this
 * script.
 *
 * A process can run one side at one of two speeds throughout (a paired
 * median of an A/A run reads anywhere from 0.89x to 1.15x in one process), so
 * the comparison runs in `--processes` processes (default 5) and prints each
 * one's paired median and their median.
 *
 * The base revision is checked out into a temporary git worktree, removed
 * afterwards. Each workload is first built untimed on both stores (as
 * `bench/store_rows.ts` warms each row up), then timed.
 *
 * `--allocated` times nothing: it prints the bytes and the number of
 * buffers each side allocates for typed arrays while it builds each workload
 * once, and the bytes it ends with (`byteSize()`), so a change's price in
 * typed-array churn shows beside its time. Each buffer costs more than its
 * bytes (see `RunContainers`' `#grow`), hence the count.
 *
 * Run: `deno run -A bench/store_ab.ts --base <revision> [--reps N] [--processes N]
 * [--workloads a,b] [--allocated]` (workloads: boot64, boot1t, boot16t, churn;
 * default all).
 *
 * @module
 */

import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { integerOption, parseOptions, usage as usageOf } from "./cli_args.ts";
import { checkWorktree, type RunProcess, withBaseWorktree } from "./ab_base.ts";
import { RangeTreeStore } from "../src/store/range_tree_store.ts";
import { median, pairedMedianRatio } from "./measurement.ts";
import {
  boot,
  type Conversions,
  pagesOf,
  SHARED,
  swiotlbChurn,
  type Workload,
} from "./workloads.ts";

/** The workloads, by name, with their untimed warm-up repetitions. */
const WORKLOADS: Record<string, { make: () => Workload; warm: number }> = {
  boot64: { make: () => boot(pagesOf(2 ** 36)), warm: 60 },
  boot1t: { make: () => boot(pagesOf(2 ** 40)), warm: 60 },
  boot16t: { make: () => boot(pagesOf(2 ** 44)), warm: 10 },
  churn: { make: () => swiotlbChurn(pagesOf(2 ** 40)), warm: 5 },
};

/** What both stores offer here: a constructor and `update`. */
interface Store {
  update(start: number, end: number, setBits: number, clearBits: number): void;
  readonly runCount: number;
  byteSize(): number;
}
type StoreClass = new (length: number, options: { bits: number; initial: number }) => Store;

/**
 * The timed loop, one literal per side: V8 keeps type feedback per function
 * literal (closures made at one site share it), so with one loop for both
 * classes each side would run code that has seen the other's class too.
 */
const LOOPS: ((store: Store, c: Conversions) => void)[] = [
  function applyThis(store, c) {
    const { starts, ends, toShared } = c;
    for (let i = 0; i < c.length; i++) {
      if (toShared[i] === 1) store.update(starts[i], ends[i], SHARED, 0);
      else store.update(starts[i], ends[i], 0, SHARED);
    }
  },
  function applyBase(store, c) {
    const { starts, ends, toShared } = c;
    for (let i = 0; i < c.length; i++) {
      if (toShared[i] === 1) store.update(starts[i], ends[i], SHARED, 0);
      else store.update(starts[i], ends[i], 0, SHARED);
    }
  },
];

/** A timed build of a workload on a fresh store of `Class` with `apply`, in milliseconds. */
function builder(
  Class: StoreClass,
  apply: (store: Store, c: Conversions) => void,
): (w: Workload) => { ms: number; runs: number } {
  return (w) => {
    const store = new Class(w.pages, { bits: 1, initial: w.initial });
    const t0 = performance.now();
    apply(store, w.conversions);
    return { ms: performance.now() - t0, runs: store.runCount };
  };
}

/** Bytes of buffers allocated for typed arrays since reset (views of an existing buffer excluded). */
let allocated = 0;
/** The number of those buffers. */
let buffers = 0;
/** The constructor every buffer is an instance of, before `countAllocations` replaces it. */
const PlainArrayBuffer = ArrayBuffer;

/** Counts one buffer of `bytes` into {@link allocated} and {@link buffers}. */
function countBuffer(bytes: number): void {
  allocated += bytes;
  buffers++;
}

/** Every typed-array kind, so that no store allocation goes uncounted. */
const TYPED_ARRAYS = [
  "Int8Array",
  "Uint8Array",
  "Uint8ClampedArray",
  "Int16Array",
  "Uint16Array",
  "Int32Array",
  "Uint32Array",
  "Float32Array",
  "Float64Array",
  "BigInt64Array",
  "BigUint64Array",
];

/**
 * Makes every typed-array constructor, and `ArrayBuffer`'s (a store may lay
 * several typed arrays over one buffer), count the bytes it allocates into
 * {@link allocated} and the buffers into {@link buffers} (JavaScript arrays
 * and the B-tree's nodes are not seen).
 * For `--allocated` only: the subclasses would slow the timed builds. Arrays
 * made before the call (module constants) keep the old constructors.
 */
function countAllocations(): void {
  const global = globalThis as unknown as Record<
    string,
    new (...args: unknown[]) => ArrayBufferView
  >;
  for (const name of TYPED_ARRAYS) {
    const Base = global[name];
    global[name] = class extends Base {
      constructor(...args: unknown[]) {
        super(...args);
        // A view of an existing buffer (subarray builds one through the species) allocates nothing.
        if (!(args[0] instanceof PlainArrayBuffer)) countBuffer(this.byteLength);
      }
    };
  }
  const buffer = globalThis as unknown as {
    ArrayBuffer: new (bytes: number, options?: { maxByteLength?: number }) => ArrayBuffer;
  };
  buffer.ArrayBuffer = class extends PlainArrayBuffer {
    constructor(bytes: number, options?: { maxByteLength?: number }) {
      super(bytes, options);
      countBuffer(this.byteLength);
    }
  };
}

/** One line of usage error: what was wrong and the rule; exit status 2. */
function usage(message: string): never {
  return usageOf("store_ab", message);
}

/**
 * Per workload: this checkout's best and the base's best time per conversion
 * in nanoseconds, and the paired median ratio.
 */
type Pairing = Record<string, [number, number, number]>;

/** Times every workload of `names` on both classes, paired; see the module doc. */
function pairings(classes: StoreClass[], names: string[], reps: number): Pairing {
  const sides = classes.map((Class, k) => builder(Class, LOOPS[k]));
  const out: Pairing = {};
  for (const name of names) {
    const { make, warm } = WORKLOADS[name];
    const w = make();
    for (let r = 0; r < warm; r++) for (const build of sides) build(w);
    const ms: number[][] = [[], []];
    const runs = new Set<number>();
    for (let r = 0; r < reps; r++) {
      for (const k of r % 2 === 0 ? [0, 1] : [1, 0]) {
        const { ms: t, runs: n } = sides[k](w);
        ms[k].push(t);
        runs.add(n);
      }
    }
    if (runs.size !== 1) throw new Error(`${name}: the two stores disagree on runCount`);
    const ns = (k: number) => (Math.min(...ms[k]) * 1e6) / w.conversions.length;
    out[name] = [ns(0), ns(1), pairedMedianRatio(ms[0], ms[1])];
  }
  return out;
}

/** `--allocated`: typed-array bytes and buffers of one build of each workload, each side. */
function allocations(classes: StoreClass[], names: string[]): void {
  countAllocations();
  const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
  for (const name of names) {
    const w = WORKLOADS[name].make();
    const built = classes.map((Class, k) => {
      const store = new Class(w.pages, { bits: 1, initial: w.initial });
      allocated = buffers = 0;
      LOOPS[k](store, w.conversions);
      return { bytes: allocated, count: buffers, store };
    });
    if (built[0].store.runCount !== built[1].store.runCount) {
      throw new Error(`${name}: the two stores disagree on runCount`);
    }
    const [mine, base] = built.map(({ bytes, count, store }) =>
      `${kib(bytes)} in ${count} buffers to end at ${kib(store.byteSize())}`
    );
    console.log(`${name.padEnd(8)} this ${mine}; base ${base}`);
  }
}

/** Runs {@link pairings} in a process of its own, on the base checked out at `dir`. */
function pairingInProcess(
  run: RunProcess,
  dir: string,
  names: string[],
  reps: number,
): Promise<Pairing> {
  const args = ["--worktree", dir, "--reps", String(reps), "--workloads", names.join(",")];
  return run<Pairing>(import.meta.url, args);
}

if (import.meta.main) {
  const values = parseOptions("store_ab", {
    base: { type: "string" },
    reps: { type: "string" },
    processes: { type: "string" },
    workloads: { type: "string" },
    allocated: { type: "boolean" },
    worktree: { type: "string" },
  });
  const reps = integerOption("store_ab", "reps", values.reps, {
    fallback: 60,
    min: 3,
    max: 10_000,
  });
  const processes = integerOption("store_ab", "processes", values.processes, {
    fallback: 5,
    min: 1,
    max: 100,
  });
  const names = (values.workloads ?? Object.keys(WORKLOADS).join(",")).split(",");
  for (const name of names) {
    if (!Object.hasOwn(WORKLOADS, name)) {
      usage(`--workloads: each one of ${Object.keys(WORKLOADS).join(" ")}, got "${name}"`);
    }
  }
  const load = async (dir: string): Promise<StoreClass[]> => {
    const other = await import(pathToFileURL(join(dir, "src/store/range_tree_store.ts")).href);
    return [RangeTreeStore, other.RangeTreeStore as StoreClass];
  };
  if (values.worktree !== undefined) {
    // One comparison process of the parent's (below): print its pairings as JSON.
    const dir = values.worktree;
    checkWorktree("store_ab", dir, "src/store/range_tree_store.ts");
    if (values.base !== undefined || values.allocated) {
      usage("--worktree: a comparison process of store_ab's own, without --base or --allocated");
    }
    console.log(JSON.stringify(pairings(await load(dir), names, reps)));
  } else {
    if (values.base === undefined) usage("--base: a git revision to compare with is required");
    await withBaseWorktree("store_ab", values.base, async ({ dir, label, run }) => {
      if (values.allocated) {
        console.log(
          `${label}: typed-array buffers allocated by one build, and the bytes it ends with`,
        );
        allocations(await load(dir), names);
        return;
      }
      console.log(`${label}, ${reps} pairs in each of ${processes} processes`);
      const results: Pairing[] = [];
      for (let p = 0; p < processes; p++) {
        results.push(await pairingInProcess(run, dir, names, reps));
      }
      for (const name of names) {
        const best = (k: 0 | 1) => `${Math.min(...results.map((r) => r[name][k])).toFixed(0)} ns`;
        const ratios = results.map((r) => r[name][2]);
        console.log(
          `${name.padEnd(8)} this ${best(0)}, base ${best(1)} (best); paired medians ` +
            `${ratios.map((x) => x.toFixed(3)).join(" ")}: median ${median(ratios).toFixed(3)}x`,
        );
      }
    });
  }
}
