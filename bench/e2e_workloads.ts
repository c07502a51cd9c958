/**
 * End-to-end workloads for the benchmark report: conversions through
 * `Region.change` with the simulated kernels and plugins attached, run on the
 * bitmap-backed and the range-tree-backed region in one process.
 *
 * The host is the one issue 7 targets: a region, the KVM attributes plugin in
 * separate-backing mode over `SimKvm`, a VFIO type1 container (4 KiB mappings)
 * and an iommufd IOAS with cut_mapping (the proposed kernel: mainline has no
 * cut_mapping), both pinning host pages.
 *
 * - `dma-scatter`: random single 4 KiB pages of a 16 GiB region, each to shared
 *   or private at random (so about half are no-ops: already in that state).
 * - `2m-aligned`: random 2 MiB-aligned 2 MiB ranges of a 16 GiB region, each to
 *   shared or private at random; type1 maps and unmaps 512 pages per range.
 * - `register`: attaching an iommufd plugin to a 1 TiB region whose state has a
 *   few thousand extents (the replay of every populated run); one "conversion"
 *   of its row is one attach, and the plugin is detached again untimed.
 *
 * Each row's `totalMs` and `usPerConversion` come from a timed loop over the
 * conversions on a fresh host (the best of `repetitions`); `medianUs` from
 * timing each conversion of a further sample with `performance.now()`. The
 * two stores' repetitions run interleaved, the order swapped every
 * repetition, and every repetition's time is kept (`times`), so the report
 * pairs them as it does the store rows: run one store's repetitions after
 * the other's and a stretch of the machine running slow lands on one store
 * only (a `2m-aligned` run once read 1.78x that way, where runs side by side
 * read 0.97-1.03x). In the
 * random-direction workloads about half the conversions are no-ops, which
 * cost a fraction of an applied one, so the median of all of them sits where
 * the two groups meet; `appliedMedianUs` is the median of the conversions
 * that changed state.
 *
 * Run `deno run -A bench/e2e_workloads.ts` to print the rows as a table
 * (`--json` for JSON, `--scale 0.1` for a quick run, `--reps N`).
 * {@link endToEndSource} feeds the same rows to `bench/report.ts`.
 *
 * @module
 */

import { integerOption, parseOptions, usage } from "./cli_args.ts";
import { iommufd, kvmAttributes, type Plugin, Region, vfioType1 } from "../mod.ts";
import { SimIoas, SimKvm, SimType1Container } from "../sim.ts";
import { Prng } from "../src/util/prng.ts";
import type { Measurement, ReportRow, RowSource } from "./report.ts";
import { benchReps, faultNote, median, minorFaults } from "./measurement.ts";

/** The two stores a region can keep its state in. */
export type StoreKind = "bitmap" | "range-tree";

/** One measured workload on one store. */
export interface Row {
  /** Workload name: `dma-scatter`, `2m-aligned` or `register`. */
  workload: string;
  /** The region's store. */
  store: StoreKind;
  /** Conversions in the timed loop (for `register`: attaches). */
  conversions: number;
  /** Wall time of the timed loop, in milliseconds (the best repetition). */
  totalMs: number;
  /** Timed loops run, each on a fresh host (for `register`: one per attach). */
  repetitions: number;
  /**
   * Milliseconds of every timed loop, in the order run; for `register` every
   * attach times the attaches, so that each is on the scale of `totalMs`.
   */
  times: number[];
  /** `totalMs` per conversion, in microseconds. */
  usPerConversion: number;
  /** Median time of one conversion in the separately timed sample, in microseconds. */
  medianUs: number;
  /** Median over the sampled conversions that changed state (not no-ops), in microseconds. */
  appliedMedianUs: number;
  /** Sampled conversions that were no-ops. */
  sampledNoops: number;
  /** The region's store bytes at the end (`store.byteSize()`). */
  storeBytes: number;
  /** Maximal runs in the region's store at the end. */
  runs: number;
  /** Page faults taken by each timed loop, in the order run (conversion rows only). */
  faults?: number[];
}

/** How much to run. */
export interface EndToEndOptions {
  /** Multiplies every count (default 1; 0.1 = quick); counts never drop below 10. */
  scale?: number;
  /**
   * Timed loops per conversion row, each on a fresh host, the two stores
   * interleaved; the best counts (default 1).
   */
  repetitions?: number;
}

const GIB = 2 ** 30;
const PAGE = 4096;
const PAGES_PER_2M = 512;
/** The stores of every row, baseline first (the order of the first repetition). */
const STORES: StoreKind[] = ["bitmap", "range-tree"];

/** What {@link buildHost} returns: the region and the simulated VM under it. */
export interface EndToEndHost {
  /** The region (base 4 GiB, 4 KiB pages). */
  region: Region;
  /** The simulated VM; its host holds the pins of both IOMMUs. */
  vm: SimKvm;
  /** The attached plugins, in attach order. */
  plugins: Plugin[];
}

/**
 * A region of `size` bytes on `store` with the KVM attributes plugin
 * (separate backing) and, unless `dma` is false, a type1 container (limit
 * 2^23 entries, enough for 16 GiB of 4 KiB mappings) and an iommufd IOAS with
 * cut_mapping, both pinning pages of the VM's host.
 */
export function buildHost(store: StoreKind, size = 16 * GIB, dma = true): EndToEndHost {
  const vm = new SimKvm();
  const region = new Region({ name: "ram", size, base: 4 * GIB, store });
  const plugins: Plugin[] = [kvmAttributes({ vm })];
  if (dma) {
    const container = new SimType1Container({ host: vm.host, dmaEntryLimit: 2 ** 23 });
    plugins.push(vfioType1({ name: "nic0", container }));
    const ioas = new SimIoas({ host: vm.host, kernel: "proposed" });
    plugins.push(iommufd({ name: "gpu0", ioas }));
  }
  for (const plugin of plugins) plugin.attach(region);
  return { region, vm, plugins };
}

/** Conversions generated up front, so the timed loops only convert. */
export interface ConversionPlan {
  /** Byte offset of each conversion in the region. */
  offsets: Float64Array;
  /** Byte length of each conversion. */
  size: number;
  /** 1: to shared, 0: to private. */
  toShared: Uint8Array;
}

/** `count` conversions of `pagesEach` pages at random multiples of it in `pages`, random direction. */
export function randomPlan(
  pages: number,
  pagesEach: number,
  count: number,
  seed: number,
): ConversionPlan {
  const rng = new Prng(seed);
  const offsets = new Float64Array(count);
  const toShared = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    offsets[i] = rng.int(pages / pagesEach) * pagesEach * PAGE;
    toShared[i] = rng.chance(0.5) ? 1 : 0;
  }
  return { offsets, size: pagesEach * PAGE, toShared };
}

/**
 * Applies conversion `i` of `plan` (the other way round when `reverse`);
 * true when it changed state.
 */
export function applyConversion(
  region: Region,
  plan: ConversionPlan,
  i: number,
  reverse = false,
): boolean {
  const toShared = (plan.toShared[i] === 1) !== reverse;
  return !region.convert(plan.offsets[i], plan.size, toShared ? "shared" : "private").noop;
}

/**
 * Sets up a 1 TiB region on `store` with the KVM plugin and `extents / 2`
 * shared ranges (4 KiB to 2 MiB, random places), about `extents` runs: the
 * state an iommufd plugin replays when it attaches.
 */
export function registerHost(store: StoreKind, extents = 4000, seed = 7): EndToEndHost {
  const host = buildHost(store, 1024 * GIB, false);
  const rng = new Prng(seed);
  const pages = host.region.pages;
  for (let i = 0; i < extents / 2; i++) {
    const length = 1 + rng.int(PAGES_PER_2M);
    const start = rng.int(pages - length);
    host.region.convert(start * PAGE, length * PAGE, "shared");
  }
  return host;
}

/** Attaches a fresh iommufd plugin (pinning the VM's host) to `host`'s region; returns it. */
export function attachIommufd(host: EndToEndHost): Plugin {
  const ioas = new SimIoas({ host: host.vm.host, kernel: "proposed" });
  const plugin = iommufd({ name: "gpu1", ioas });
  plugin.attach(host.region);
  return plugin;
}

/** Every end-to-end row: each workload on the bitmap store, then on the range tree. */
export function endToEndRows(options: EndToEndOptions = {}): Row[] {
  const scale = options.scale ?? 1;
  const reps = options.repetitions ?? 1;
  if (!(scale > 0)) throw new RangeError(`scale: must be a positive number, got ${scale}`);
  if (!Number.isInteger(reps) || reps < 1) {
    throw new RangeError(`repetitions: must be an integer >= 1, got ${reps}`);
  }
  const n = (count: number) => Math.max(10, Math.round(count * scale));
  const rows: Row[] = [];
  warmUp();
  rows.push(...convertRows("dma-scatter", 1, n(100_000), n(20_000), 1, reps));
  rows.push(...convertRows("2m-aligned", PAGES_PER_2M, n(1_000), n(1_000), 2, reps));
  rows.push(...registerRows(n(20)));
  return rows;
}

/** What each end-to-end workload does, for the report. */
const DESCRIPTIONS: Record<string, string> = {
  "dma-scatter":
    "end-to-end (kvm + type1 + iommufd sims): 100,000 random 4 KiB conversions over 16 GiB",
  "2m-aligned":
    "end-to-end (kvm + type1 + iommufd sims): 1,000 random 2 MiB-aligned conversions over 16 GiB",
  "register": "end-to-end: attach iommufd (replay) to 1 TiB with ~4,000 extents, kvm sim attached",
};

/**
 * The bound for the conversion workloads: end to end, the range tree within
 * 1.1x of the bitmap (the store is a small part of a conversion through three
 * simulated kernels); a replay must be faster on the range tree.
 */
const TARGETS: Record<string, ReportRow["targets"]> = {
  "dma-scatter": [{ metric: "time", max: 1.1 }],
  "2m-aligned": [{ metric: "time", max: 1.1 }],
  "register": [{ metric: "time", max: 1, strict: true }],
};

/** {@link endToEndRows} in `bench/report.ts`'s row shape: one row per workload, bitmap first. */
export function toReportRows(rows: Row[]): ReportRow[] {
  const out: ReportRow[] = [];
  for (const row of rows) {
    let reportRow = out.find((r) => r.workload === `e2e ${row.workload}`);
    if (reportRow === undefined) {
      reportRow = {
        workload: `e2e ${row.workload}`,
        description: DESCRIPTIONS[row.workload] ?? row.workload,
        unit: row.workload === "register" ? "attach" : "conversion",
        results: [],
        targets: TARGETS[row.workload] ?? [],
      };
      out.push(reportRow);
    }
    const measurement: Measurement = {
      store: row.store,
      seconds: row.totalMs / 1000,
      medianSeconds: median(row.times) / 1000,
      repetitions: row.repetitions,
      times: row.times.map((ms) => ms / 1000),
      units: row.conversions,
      bytes: row.storeBytes,
      runs: row.runs,
      note: [
        `median ${row.medianUs.toFixed(2)} us, applied median ${
          row.appliedMedianUs.toFixed(2)
        } us per ${reportRow.unit} (${row.sampledNoops} sampled no-ops)`,
        faultNote(row.faults ?? []),
      ].filter((part) => part !== undefined).join("; "),
    };
    if (row.store === "bitmap") reportRow.results.unshift(measurement);
    else reportRow.results.push(measurement);
  }
  return out;
}

/**
 * The end-to-end rows as a `bench/report.ts` source (add it to `SOURCES`);
 * `MEMSTATE_BENCH_REPS` sets the repetitions (`benchReps`; default 5: the
 * quartiles of the paired ratios need more than three pairs to mean anything).
 */
export const endToEndSource: RowSource = {
  name: "end-to-end",
  rows(): Promise<ReportRow[]> {
    const repetitions = benchReps("e2e_workloads", 5);
    return Promise.resolve(toReportRows(endToEndRows({ repetitions })));
  },
};

/**
 * Runs a little of each conversion workload on both stores first, so the code
 * is compiled before any row is timed and the first row is not charged for it.
 */
function warmUp(): void {
  for (const store of ["bitmap", "range-tree"] as const) {
    for (const pagesEach of [1, PAGES_PER_2M]) {
      const { region } = buildHost(store);
      const count = pagesEach === 1 ? 20_000 : 200;
      const plan = randomPlan(region.pages, pagesEach, count, 99);
      for (let i = 0; i < count; i++) applyConversion(region, plan, i);
    }
  }
}

/** One store's side of a conversion row while its repetitions run. */
interface Side {
  store: StoreKind;
  times: number[];
  faults: number[];
  all: number[];
  applied: number[];
  region?: Region;
}

/**
 * On a fresh host per repetition: `timed` conversions as one timed loop, then
 * `sampled` more timed one by one; the two stores take turns, the order
 * swapped every repetition. The best loop counts; the samples of every
 * repetition make the medians.
 */
function convertRows(
  workload: string,
  pagesEach: number,
  timed: number,
  sampled: number,
  seed: number,
  repetitions: number,
): Row[] {
  const sides: Side[] = STORES.map((store) => ({
    store,
    times: [],
    faults: [],
    all: [],
    applied: [],
  }));
  for (let rep = 0; rep < repetitions; rep++) {
    for (let turn = 0; turn < sides.length; turn++) {
      const side = sides[(turn + rep) % sides.length];
      const region = buildHost(side.store).region;
      side.region = region;
      const plan = randomPlan(region.pages, pagesEach, timed + sampled, seed);
      const faults = minorFaults();
      const start = performance.now();
      for (let i = 0; i < timed; i++) applyConversion(region, plan, i);
      side.times.push(performance.now() - start);
      side.faults.push(minorFaults() - faults);
      for (let i = 0; i < sampled; i++) {
        const t0 = performance.now();
        const changed = applyConversion(region, plan, timed + i);
        const us = (performance.now() - t0) * 1000;
        side.all.push(us);
        if (changed) side.applied.push(us);
      }
    }
  }
  return sides.map((side) => {
    const totalMs = Math.min(...side.times);
    return {
      workload,
      store: side.store,
      conversions: timed,
      totalMs,
      repetitions,
      times: side.times,
      usPerConversion: (totalMs * 1000) / timed,
      medianUs: median(side.all),
      appliedMedianUs: median(side.applied),
      sampledNoops: side.all.length - side.applied.length,
      storeBytes: side.region!.store.byteSize(),
      runs: side.region!.store.runCount,
      faults: side.faults,
    };
  });
}

/**
 * Times `attaches` iommufd attaches (each a full replay) to one prepared 1 TiB
 * region per store, the stores taking turns attach by attach. The row's time
 * is the sum of its attaches; each attach, times the attaches, is one of its
 * `times` (a whole row's worth, as the conversion rows' repetitions are).
 */
function registerRows(attaches: number): Row[] {
  const hosts = STORES.map((store) => registerHost(store));
  const times: number[][] = STORES.map(() => []);
  for (let i = 0; i < attaches; i++) {
    for (let turn = 0; turn < STORES.length; turn++) {
      const k = (turn + i) % STORES.length;
      const t0 = performance.now();
      const plugin = attachIommufd(hosts[k]);
      times[k].push(performance.now() - t0);
      plugin.detach(hosts[k].region);
    }
  }
  return STORES.map((store, k) => {
    const totalMs = times[k].reduce((sum, ms) => sum + ms, 0);
    const medianUs = median(times[k]) * 1000;
    return {
      workload: "register",
      store,
      conversions: attaches,
      totalMs,
      repetitions: attaches,
      times: times[k].map((ms) => ms * attaches),
      usPerConversion: (totalMs * 1000) / attaches,
      medianUs,
      appliedMedianUs: medianUs,
      sampledNoops: 0,
      storeBytes: hosts[k].region.store.byteSize(),
      runs: hosts[k].region.store.runCount,
    };
  });
}

if (import.meta.main) {
  const values = parseOptions("e2e_workloads", {
    json: { type: "boolean" },
    scale: { type: "string" },
    reps: { type: "string" },
  });
  const scale = values.scale === undefined ? 1 : Number(values.scale);
  // At 100, dma-scatter makes 10 million conversions: linux_rows.ts's cap on --count. Below
  // 0.001 it makes fewer than 100, and the other loops sit at their floor of 10 (endToEndRows).
  if (!(scale >= 0.001 && scale <= 100)) {
    usage(
      "e2e_workloads",
      `--scale: a number from 0.001 to 100, got ${JSON.stringify(values.scale)}`,
    );
  }
  const repetitions = integerOption("e2e_workloads", "reps", values.reps, {
    fallback: 1,
    min: 1,
    max: 1000,
  });
  const rows = endToEndRows({ scale, repetitions });
  if (values.json) console.log(JSON.stringify(rows, null, 2));
  else {
    console.table(rows.map((r) => ({
      workload: r.workload,
      store: r.store,
      conversions: r.conversions,
      totalMs: Math.round(r.totalMs),
      "us/conv": r.usPerConversion.toFixed(2),
      "median us": r.medianUs.toFixed(2),
      "applied median us": r.appliedMedianUs.toFixed(2),
      "sampled no-ops": r.sampledNoops,
      storeBytes: r.storeBytes,
      runs: r.runs,
    })));
  }
}
