// Property: for random states on both stores (random claimed bits, a coarse
// plugged bit, random changes), restore(snapshot) equals the region in either
// store kind, listeners registered after the restore see exactly what the
// store says, the JSON form round-trips, and applying the snapshot to a region
// in another random state (listeners attached) makes it equal too.
// fast-check prints its seed on failure; MEMSTATE_SEED replays a run.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  applySnapshot,
  DMA_VIEW,
  KVM_VIEW,
  PLUGGED,
  Region,
  SHARED,
  snapshotFromJson,
  type View,
} from "../src/bus/mod.ts";
import { seedFromEnv } from "../src/util/prng.ts";
import { RecordingListener } from "./helpers/recording_listener.ts";

const PAGE = 4096;
const BLOCK_PAGES = 8;

type StoreKind = "range-tree" | "bitmap";
const storeKind = fc.constantFrom<StoreKind>("range-tree", "bitmap");

interface Op {
  start: number;
  size: number;
  bits: "shared" | "plugged" | "custom";
  set: boolean;
}

const shape = fc.record({
  pages: fc.constantFrom(64, 200, 1024, 4096 + 24),
  plugged: fc.boolean(),
  custom: fc.boolean(),
  initial: fc.constantFrom<"private" | "shared">("private", "shared"),
});

const ops = fc.array(
  fc.record({
    start: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
    size: fc.integer({ min: 1, max: 300 }),
    bits: fc.constantFrom<Op["bits"]>("shared", "shared", "plugged", "custom"),
    set: fc.boolean(),
  }),
  { maxLength: 80 },
);

/** A region of `s` in `store`, after `list` (ops on unclaimed bits are skipped). */
function build(
  s: { pages: number; plugged: boolean; custom: boolean; initial: "private" | "shared" },
  store: StoreKind,
  list: { start: number; size: number; bits: Op["bits"]; set: boolean }[],
): Region {
  const region = new Region({ name: "ram", size: s.pages * PAGE, store, initial: s.initial });
  if (s.plugged) {
    region.addSource({ name: "vmem", bits: PLUGGED, granularity: BLOCK_PAGES * PAGE });
  }
  if (s.custom) region.bits.claim("custom");
  for (const op of list) replay(region, s, op);
  return region;
}

function runsOf(region: Region) {
  return [...region.store.runs()];
}

const VIEWS: View[] = [KVM_VIEW, DMA_VIEW, { mask: PLUGGED, value: PLUGGED }];

Deno.test("property: restore(snapshot) equals, on both stores, and listeners see the store", () => {
  const seed = seedFromEnv();
  console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  fc.assert(
    fc.property(shape, storeKind, storeKind, ops, ops, (s, from, to, list, other) => {
      const region = build(s, from, list);
      const bytes = region.snapshot();
      // Restore into the other kind and back: same runs, same shape, same bytes.
      const copy = Region.restore(bytes, { store: to });
      assert.deepEqual(runsOf(copy), runsOf(region));
      assert.equal(copy.impliedBits, region.impliedBits);
      assert.deepEqual(copy.snapshot(), bytes);
      // The listeners' view equals the store after restore + attach.
      for (const [i, view] of VIEWS.entries()) {
        const l = new RecordingListener(`l${i}`, i, view, copy.pages);
        copy.register(l);
        assert.deepEqual(l.populatedRuns(), RecordingListener.expected(region, view));
        assert.deepEqual(l.contractViolations, []);
      }
      // The JSON form round-trips.
      const json = JSON.parse(JSON.stringify(region.snapshotJson()));
      assert.deepEqual([...snapshotFromJson(json).runs()], runsOf(region));
      // Applying to a live region in another state makes it equal, listeners following.
      const live = build(s, to, other);
      const listeners = VIEWS.map((v, i) => new RecordingListener(`m${i}`, i, v, live.pages));
      for (const l of listeners) live.register(l);
      applySnapshot(live, bytes);
      assert.deepEqual(runsOf(live), runsOf(region));
      for (const l of listeners) {
        assert.deepEqual(l.populatedRuns(), RecordingListener.expected(region, l.view));
        assert.deepEqual(l.contractViolations, []);
      }
    }),
    { seed, numRuns: 150 },
  );
});

Deno.test("property: a delta since a mark brings a copy from the mark to now", () => {
  const seed = seedFromEnv();
  console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  fc.assert(
    fc.property(shape, storeKind, storeKind, ops, ops, (s, from, to, before, after) => {
      const region = build(s, from, before);
      const mark = region.mark();
      const copy = Region.restore(region.snapshot(), { store: to });
      for (const op of after) replay(region, s, op);
      applySnapshot(copy, region.changesSince(mark).encode());
      assert.deepEqual(runsOf(copy), runsOf(region));
    }),
    { seed, numRuns: 150 },
  );
});

/** Applies one op as {@link build} does. */
function replay(
  region: Region,
  s: { pages: number; plugged: boolean; custom: boolean },
  op: { start: number; size: number; bits: Op["bits"]; set: boolean },
): void {
  let start = Math.floor(op.start * s.pages);
  let end = Math.min(s.pages, start + op.size);
  let bit = SHARED;
  if (op.bits === "plugged") {
    if (!s.plugged) return;
    bit = PLUGGED;
    start -= start % BLOCK_PAGES;
    end = Math.min(s.pages, Math.ceil(end / BLOCK_PAGES) * BLOCK_PAGES);
  } else if (op.bits === "custom") {
    const custom = region.bits.get("custom");
    if (!custom) return;
    bit = custom;
  }
  region.change(start * PAGE, (end - start) * PAGE, op.set ? bit : 0, op.set ? 0 : bit);
}
