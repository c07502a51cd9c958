// Ordering, views, mixed ranges and no-ops.
import assert from "node:assert/strict";
import { DMA_VIEW, KVM_VIEW, PLUGGED, Region, SHARED } from "../src/bus/mod.ts";
import { type Call, RecordingListener } from "./helpers/recording_listener.ts";

const MiB = 2 ** 20;

function setup(store: "range-tree" | "bitmap" = "range-tree") {
  const region = new Region({ name: "ram", size: 64 * MiB, store });
  const log: Call[] = [];
  const kvm = new RecordingListener("kvm", 0, KVM_VIEW, region.pages, log);
  const dma = new RecordingListener("dma", 10, DMA_VIEW, region.pages, log);
  // Register in the "wrong" order: priority, not registration order, must decide.
  region.register(dma);
  region.register(kvm);
  return { region, log, kvm, dma };
}

Deno.test("to-shared notifies KVM (priority 0) before DMA (priority 10)", () => {
  const { region, log } = setup();
  const result = region.convert(MiB, MiB, "shared");
  assert.deepEqual(log.map((c) => `${c.name}.${c.kind}`), ["kvm.populate", "dma.populate"]);
  assert.deepEqual(result.notified, ["kvm", "dma"]);
  assert.equal(result.toShared, MiB);
});

Deno.test("to-private notifies DMA before KVM: unmap before the memory goes private", () => {
  const { region, log } = setup();
  region.convert(0, 4 * MiB, "shared");
  log.length = 0;
  const result = region.convert(MiB, MiB, "private");
  assert.deepEqual(log.map((c) => `${c.name}.${c.kind}`), ["dma.discard", "kvm.discard"]);
  assert.equal(result.toPrivate, MiB);
});

Deno.test("a mixed range notifies only the parts that change, merged per listener", () => {
  const { region, log, kvm, dma } = setup();
  region.convert(0, 4096, "shared");
  region.convert(3 * 4096, 4096, "shared");
  log.length = 0;
  const result = region.convert(0, 4 * 4096, "shared");
  assert.deepEqual(log, [
    { name: "kvm", kind: "populate", offset: 4096, size: 2 * 4096 },
    { name: "dma", kind: "populate", offset: 4096, size: 2 * 4096 },
  ]);
  assert.equal(result.changedBytes, 2 * 4096);
  assert.deepEqual(kvm.populatedRuns(), [[0, 4]]);
  assert.deepEqual(dma.contractViolations, []);
});

Deno.test("an already-applied change is a no-op that notifies nobody", () => {
  const { region, log } = setup();
  region.convert(0, MiB, "shared");
  log.length = 0;
  const result = region.convert(0, MiB, "shared");
  assert.equal(result.noop, true);
  assert.deepEqual(result.notified, []);
  assert.deepEqual(log, []);
  assert.equal(region.stats.noops, 1);
  assert.equal(region.convert(2 * MiB, MiB, "private").noop, true);
});

Deno.test("the DMA view sees nothing while memory is shared but unplugged", () => {
  const { region, log, dma } = setup("bitmap");
  region.bits.claim("plugged");
  region.change(0, 8 * MiB, 0, PLUGGED); // unplug
  region.convert(0, 8 * MiB, "shared");
  assert.deepEqual(log.map((c) => c.name), ["kvm"]);
  assert.deepEqual(dma.populatedRuns(), []);
  log.length = 0;
  region.change(2 * MiB, 2 * MiB, PLUGGED, 0); // plug 2 MiB of it
  assert.deepEqual(log, [{ name: "dma", kind: "populate", offset: 2 * MiB, size: 2 * MiB }]);
  assert.equal(region.isPopulated({ offset: 2 * MiB, size: 2 * MiB }, DMA_VIEW), true);
  assert.equal(region.isPopulated({ offset: 2 * MiB, size: 2 * MiB + 1 }, DMA_VIEW), false);
  assert.equal(region.isPopulated({ offset: 0, size: 8 * MiB }, KVM_VIEW), true);
});

Deno.test("equal priorities keep registration order for populates, reverse for discards", () => {
  const region = new Region({ name: "ram", size: MiB });
  const log: Call[] = [];
  for (const name of ["a", "b", "c"]) {
    region.register(new RecordingListener(name, 5, KVM_VIEW, region.pages, log));
  }
  region.convert(0, 4096, "shared");
  region.convert(0, 4096, "private");
  assert.deepEqual(log.map((c) => c.name + c.kind[0]), ["ap", "bp", "cp", "cd", "bd", "ad"]);
});

Deno.test("observers get one post-commit event per applied change and cannot veto", () => {
  const { region } = setup();
  const events: number[] = [];
  region.observe((e) => {
    // Post-commit: the store already has the new state.
    events.push(region.stateAt(e.offset));
    throw new Error("observers cannot veto");
  });
  region.convert(0, MiB, "shared");
  region.convert(0, MiB, "shared"); // no-op: no event
  // One page, the usual conversion: one event too (region.ts keeps a change an observer
  // would hear of off its one-page path, #changePage, which tells no observer).
  region.convert(2 * MiB, 4096, "shared");
  region.convert(2 * MiB, 4096, "private");
  assert.deepEqual(events, [SHARED | PLUGGED, SHARED | PLUGGED, PLUGGED]);
  assert.equal(region.stats.observerErrors, 3);
  assert.equal(region.stateAt(0), SHARED | PLUGGED);
});

Deno.test("a change that calls a listener once per flipping run names it once in notified", () => {
  const { region, log } = setup();
  region.convert(0, MiB, "shared");
  region.convert(2 * MiB, MiB, "shared"); // shared [0, 1) and [2, 3) MiB; [1, 2) private
  log.length = 0;
  const result = region.convert(0, 4 * MiB, "shared"); // two runs flip: [1, 2) and [3, 4)
  assert.deepEqual(log.map((c) => `${c.name}.${c.kind}`), [
    "kvm.populate",
    "kvm.populate",
    "dma.populate",
    "dma.populate",
  ]);
  assert.deepEqual(result.notified, ["kvm", "dma"]);
});
