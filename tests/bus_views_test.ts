// Views whose value is not their whole mask: a listener that follows memory
// that is plugged but private (mask SHARED | PLUGGED, value PLUGGED) must be
// told when a page goes shared, because a bit of its mask that must be clear
// got set.
import assert from "node:assert/strict";
import { isPopulatedState, KVM_VIEW, PLUGGED, Region, SHARED, type View } from "../src/bus/mod.ts";
import { type Call, RecordingListener } from "./helpers/recording_listener.ts";

const PRIVATE_PLUGGED: View = { mask: SHARED | PLUGGED, value: PLUGGED };
const PAGE = 4096;

Deno.test("views: populated means the masked bits equal the value, set and clear alike", () => {
  assert.equal(isPopulatedState(PLUGGED, PRIVATE_PLUGGED), true);
  assert.equal(isPopulatedState(SHARED | PLUGGED, PRIVATE_PLUGGED), false);
  assert.equal(isPopulatedState(0, PRIVATE_PLUGGED), false);
  assert.equal(isPopulatedState(SHARED, PRIVATE_PLUGGED), false);
});

Deno.test("views: a plugged-and-private listener hears conversions in both directions", () => {
  const region = new Region({ name: "ram", size: 64 * PAGE });
  const pages = region.pages;
  const listener = new RecordingListener("private-memory", 5, PRIVATE_PLUGGED, pages);
  region.register(listener); // all private and (implied) plugged: everything replayed
  assert.deepEqual(listener.populatedRuns(), [[0, pages]]);
  region.convert(4 * PAGE, 2 * PAGE, "shared");
  assert.deepEqual(listener.populatedRuns(), [[0, 4], [6, pages]]);
  assert.equal(region.isPopulated({ offset: 4 * PAGE, size: PAGE }, PRIVATE_PLUGGED), false);
  assert.equal(region.isPopulated({ offset: 6 * PAGE, size: PAGE }, PRIVATE_PLUGGED), true);
  region.convert(5 * PAGE, PAGE, "private");
  assert.deepEqual(listener.populatedRuns(), [[0, 4], [5, pages]]);
  assert.deepEqual(listener.populatedRuns(), RecordingListener.expected(region, PRIVATE_PLUGGED));
  assert.deepEqual(listener.contractViolations, []);
});

Deno.test("views: store runs that agree under a view are told as one range", () => {
  const region = new Region({ name: "ram", size: 64 * PAGE });
  region.bits.claim("plugged", { granularity: 1 });
  region.convert(0, 8 * PAGE, "shared");
  region.change(2 * PAGE, 2 * PAGE, 0, PLUGGED); // store runs [0, 2) [2, 4) [4, 8) all shared
  assert.equal(region.store.runCount, 4);
  const log: Call[] = [];
  const kvm = new RecordingListener("kvm", 0, KVM_VIEW, region.pages, log);
  region.register(kvm);
  assert.deepEqual(log.map((c) => [c.kind, c.offset, c.size]), [["populate", 0, 8 * PAGE]]);
  const sections: number[][] = [];
  region.replayPopulated({ offset: 0, size: region.size }, KVM_VIEW, (s) => {
    sections.push([s.offset, s.size]);
  });
  assert.deepEqual(sections, [[0, 8 * PAGE]]);
  log.length = 0;
  region.unregister(kvm); // one discard per populated run: here, one
  assert.deepEqual(log.map((c) => [c.kind, c.offset, c.size]), [["discard", 0, 8 * PAGE]]);
});
