// The invariant checker given what it exists to catch: a store that breaks its
// contract (runs that are not maximal, a runCount that lies) and plugins whose
// hardware disagrees with the store, or whose verify throws. A checker that never fails proves
// nothing.
import assert from "node:assert/strict";
import { Region } from "../src/bus/mod.ts";
import { checkInvariants } from "../src/host/invariants.ts";
import { SimType1Container } from "../src/hw/sim/mod.ts";
import { type Plugin, vfioType1 } from "../src/plugins/mod.ts";
import { BitmapStore } from "../src/store/mod.ts";
import type { Run, StateStore } from "../src/store/mod.ts";

/**
 * A store that keeps its pages right but reports them wrongly: `runs()` splits
 * every run longer than a page in two (neighbours of one state), and
 * `runCount` adds `extraRuns` to the truth.
 */
class BrokenStore implements StateStore {
  readonly #inner: BitmapStore;
  splitRuns = false;
  extraRuns = 0;

  constructor(pages: number) {
    this.#inner = new BitmapStore(pages, { bits: 1 });
  }
  get length(): number {
    return this.#inner.length;
  }
  get bits(): number {
    return this.#inner.bits;
  }
  get runCount(): number {
    return this.#inner.runCount + this.extraRuns;
  }
  get(page: number): number {
    return this.#inner.get(page);
  }
  set(start: number, end: number, state: number): void {
    this.#inner.set(start, end, state);
  }
  update(start: number, end: number, setBits: number, clearBits: number): void {
    this.#inner.update(start, end, setBits, clearBits);
  }
  *runs(start?: number, end?: number): Iterable<Run> {
    for (const run of this.#inner.runs(start, end)) {
      if (!this.splitRuns || run.end - run.start < 2) {
        yield run;
        continue;
      }
      const middle = run.start + Math.floor((run.end - run.start) / 2);
      yield { start: run.start, end: middle, state: run.state };
      yield { start: middle, end: run.end, state: run.state };
    }
  }
  byteSize(): number {
    return this.#inner.byteSize();
  }
}

function brokenRegion() {
  const store = new BrokenStore(256);
  const region = new Region({ name: "ram", size: 256 * 4096, store });
  region.convert(0, 16 * 4096, "shared");
  return { store, region };
}

Deno.test("invariants: a well-formed store passes with one check per region", () => {
  const { region } = brokenRegion();
  assert.deepEqual(checkInvariants([region], []), { checked: 1, violations: [] });
});

Deno.test("invariants: neighbouring runs of one state are reported with their page", () => {
  const { store, region } = brokenRegion();
  store.splitRuns = true; // [0, 8) [8, 16) shared, [16, 136) [136, 256) private
  store.extraRuns = 2; // runCount agrees with the runs it yields: only maximality is broken
  const report = checkInvariants([region], []);
  assert.deepEqual(report.violations, [
    "region ram: two neighbouring runs share state 1 at page 8",
    "region ram: two neighbouring runs share state 0 at page 136",
  ]);
});

Deno.test("invariants: a runCount that differs from the runs is reported, above or below", () => {
  const { store, region } = brokenRegion();
  for (const extra of [1, -1]) {
    store.extraRuns = extra;
    const report = checkInvariants([region], []);
    assert.deepEqual(report.violations, [`region ram: runCount ${2 + extra} but 2 runs`]);
  }
});

Deno.test("invariants: what a plugin's verify finds is reported, one check per plugin and region", () => {
  const region = new Region({ name: "ram", size: 2 ** 24 });
  const container = new SimType1Container();
  const nic = vfioType1({ name: "nic0", container });
  nic.attach(region);
  region.convert(0, 2 * 4096, "shared");
  assert.deepEqual(checkInvariants([region], [nic]), { checked: 2, violations: [] });
  container.unmap(4096, 4096); // behind the plugin's back
  assert.deepEqual(checkInvariants([region], [nic]), {
    checked: 2,
    violations: ["nic0: [0x1000, 0x2000) is populated but not mapped"],
  });
});

Deno.test("invariants: a verify that throws, or returns a promise or no list, is a violation naming the plugin and the region", async () => {
  const region = new Region({ name: "ram", size: 2 ** 24 });
  const container = new SimType1Container();
  const nic = vfioType1({ name: "nic0", container });
  nic.attach(region);
  region.convert(0, 2 * 4096, "shared");
  container.unmap(4096, 4096); // behind the plugin's back: nic0 still finds it
  const mine = (name: string, verify: () => unknown): Plugin => ({
    name,
    kind: "mine",
    attach() {},
    detach() {},
    stats: () => nic.stats(),
    verify: verify as () => string[],
  });
  const report = checkInvariants([region], [
    mine("throws", () => {
      throw new Error("verify boom\nsecond line");
    }),
    mine("late", () => Promise.reject(new Error("later"))),
    mine("odd", () => 7),
    nic,
  ]);
  assert.deepEqual(report, {
    checked: 5,
    violations: [
      "plugin throws: verify on region ram threw: verify boom",
      "plugin late: verify on region ram returned a Promise; verify must be synchronous " +
      "(memstate does not await it)",
      "plugin odd: verify on region ram returned number, not a list of lines",
      "nic0: [0x1000, 0x2000) is populated but not mapped",
    ],
  });
  await new Promise((resolve) => setTimeout(resolve, 20)); // the rejection was handled
});
