// Store micro-benchmarks (`deno task bench`): the bitmap is the baseline of
// each group. Each iteration applies the next conversion of a pre-generated
// workload (bench/workloads.ts) to a long-lived store. For the report with
// ratios, targets and memory, run bench/report.ts.
import { BitmapStore, RangeTreeStore, type StateStore } from "../src/store/mod.ts";
import {
  aligned2m,
  boot,
  dmaScatter,
  INITIAL_STATE,
  pagesOf,
  SHARED,
  STORE_BITS,
  swiotlbChurn,
  type Workload,
} from "./workloads.ts";

const kinds: [string, (n: number) => StateStore, boolean][] = [
  ["bitmap", (n) => new BitmapStore(n, { bits: STORE_BITS, initial: INITIAL_STATE }), true],
  ["range-tree", (n) => new RangeTreeStore(n, { bits: STORE_BITS, initial: INITIAL_STATE }), false],
];

function conversionBench(workload: Workload): void {
  for (const [name, make, baseline] of kinds) {
    const store = make(workload.pages);
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
  const store = make(booted.pages);
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
