// Random operations with random refusals: after every step each recording
// listener's view equals the store's, on both store kinds. MEMSTATE_SEED replays.
import assert from "node:assert/strict";
import {
  ConversionError,
  DMA_VIEW,
  KVM_VIEW,
  PLUGGED,
  Region,
  SHARED,
  type View,
} from "../src/bus/mod.ts";
import { BitmapStore } from "../src/store/bitmap_store.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";
import { RecordingListener } from "./helpers/recording_listener.ts";

const PAGE = 4096;
const PAGES = 512;

for (const store of ["range-tree", "bitmap"] as const) {
  Deno.test(`random changes with refusals keep every listener equal to the store (${store})`, () => {
    const seed = seedFromEnv();
    console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
    const rng = new Prng(seed);
    const region = new Region({ name: "ram", size: PAGES * PAGE, store });
    region.bits.claim("plugged"); // the store grows to two bits, every page plugged
    const oracle = new BitmapStore(PAGES, { bits: 2, initial: PLUGGED });
    const views: View[] = [KVM_VIEW, DMA_VIEW, { mask: PLUGGED, value: PLUGGED }];
    const listeners = [0, 10, 5, 20].map((priority, i) =>
      new RecordingListener(`l${i}`, priority, views[i % views.length], PAGES)
    );
    for (const l of listeners) region.register(l);
    let refusals = 0;
    for (let step = 0; step < 1500; step++) {
      const start = rng.int(PAGES);
      const size = 1 + rng.int(Math.min(PAGES - start, rng.chance(0.5) ? 4 : 128));
      const setBits = rng.int(4), clearBits = rng.int(4);
      const note =
        `seed ${seed} step ${step} [${start}, +${size}) set ${setBits} clear ${clearBits}`;
      // One participant may refuse its n-th call of this change; rollback calls
      // come after that index, so they are never refused.
      const victim = rng.chance(0.3) ? rng.pick(listeners) : undefined;
      if (victim) victim.failOnCall = victim.calls + 1 + rng.int(3);
      try {
        region.change(start * PAGE, size * PAGE, setBits, clearBits);
        oracle.update(start, start + size, setBits, clearBits);
      } catch (e) {
        assert.ok(e instanceof ConversionError, `${note}: ${e}`);
        refusals++;
      }
      if (victim) victim.failOnCall = undefined;
      assert.deepEqual([...region.store.runs()], [...oracle.runs()], note);
      for (const l of listeners) {
        assert.deepEqual(
          l.populatedRuns(),
          RecordingListener.expected(region, l.view),
          `${note}: ${l.name}`,
        );
        assert.deepEqual(l.contractViolations, [], `${note}: ${l.name}`);
      }
    }
    assert.ok(refusals > 0, `seed ${seed}: no refusal happened, the test exercised nothing`);
    assert.equal(region.failure, undefined);
    // SHARED is used: the test covered conversions, not only plug changes.
    assert.ok([...region.store.runs()].some((r) => r.state & SHARED) || refusals > 0);
  });
}
