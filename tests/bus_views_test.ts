// Views whose value is not their whole mask: a listener that follows memory
// that is plugged but private (mask SHARED | PLUGGED, value PLUGGED) must be
// told when a page goes shared, because a bit of its mask that must be clear
// got set.
import assert from "node:assert/strict";
import { isPopulatedState, PLUGGED, Region, SHARED, type View } from "../src/bus/mod.ts";
import { RecordingListener } from "./helpers/recording_listener.ts";

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
