// Store micro-benchmarks (`deno task bench`): the bitmap is the baseline of
// each group. Each iteration applies the next conversion of a pre-generated
// workload (bench/workloads.ts) to a long-lived store. For the report with
// ratios, targets and memory, run bench/report.ts.
import { BitmapStore, RangeTreeStore, type StateStore } from "../src/store/mod.ts";
import {
  aligned2m,
  boot,
  dmaScatter,
  pagesOf,
  SHARED,
  swiotlbChurn,
  type Workload,
} from "./workloads.ts";

// Both stores hold the bits the workload's region claims (bench/workloads.ts).
const kinds: [string, (w: Workload) => StateStore, boolean][] = [
  ["bitmap", (w) => new BitmapStore(w.pages, { bits: w.bits, initial: w.initial }), true],
  ["range-tree", (w) => new RangeTreeStore(w.pages, { bits: w.bits, initial: w.initial }), false],
];

function conversionBench(workload: Workload): void {
  for (const [name, make, baseline] of kinds) {
    const store = make(workload);
    const { starts, ends, toShared, length } = workload.conversions;
    let i = 0;
    Deno.bench({
      name: `${name}: ${workload.name}`,
      group: workload.name,
      baseline,
      fn() {
        if (toShared[i] === 1) store.update(starts[i], ends[i], SHARED, 0);
        else store.update(starts[i], ends[i], 0, SHARED);
        if (++i === length) i = 0;
      },
    });
  }
}

conversionBench(dmaScatter());
conversionBench(aligned2m());
conversionBench(swiotlbChurn(pagesOf(2 ** 36)));

// Replay: iterate every run of a booted 64 GiB region.
const booted = boot(pagesOf(2 ** 36));
for (const [name, make, baseline] of kinds) {
  const store = make(booted);
  const { starts, ends, toShared } = booted.conversions;
  for (let i = 0; i < booted.conversions.length; i++) {
    if (toShared[i] === 1) store.update(starts[i], ends[i], SHARED, 0);
    else store.update(starts[i], ends[i], 0, SHARED);
  }
  const expected = store.runCount;
  Deno.bench({
    name: `${name}: replay runs() of a booted 64 GiB region`,
    group: "register",
    baseline,
    fn() {
      let n = 0;
      for (const _ of store.runs()) n++;
      if (n !== expected) throw new Error(`expected ${expected} runs, got ${n}`);
    },
  });
}
