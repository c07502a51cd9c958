// Differential property test: the range tree must agree with the bitmap oracle
// after every random set/update. Reproduce a failure with MEMSTATE_SEED=<seed>.
import assert from "node:assert/strict";
import { BitmapStore, RangeTreeStore, type StateStore } from "../src/store/mod.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";

function randomRange(rng: Prng, length: number): [number, number] {
  // Mixed sizes: single pages, small spans, and up to a quarter of the store.
  const kind = rng.int(3);
  const max = kind === 0 ? 1 : kind === 1 ? 16 : Math.max(1, Math.floor(length / 4));
  const size = 1 + rng.int(max);
  const start = rng.int(length - Math.min(size, length) + 1);
  return [start, Math.min(length, start + size)];
}

function assertSameRuns(a: StateStore, b: StateStore, start: number, end: number, note: string) {
  assert.deepEqual([...a.runs(start, end)], [...b.runs(start, end)], note);
}

function assertMaximal(store: StateStore, note: string) {
  let prev: number | undefined;
  let count = 0;
  for (const run of store.runs()) {
    assert.notEqual(run.state, prev, `${note}: neighbouring runs share state ${run.state}`);
    assert.ok(run.start < run.end, `${note}: empty run`);
    prev = run.state;
    count++;
  }
  assert.equal(store.runCount, count, `${note}: runCount`);
}

for (const length of [1, 37, 1000, 4096 + 13]) {
  Deno.test(`range tree matches the bitmap oracle over ${length} pages`, () => {
    const seed = seedFromEnv();
    console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
    const rng = new Prng(seed);
    const bits = 3;
    const tree = new RangeTreeStore(length, { bits });
    const oracle = new BitmapStore(length, { bits });
    for (let step = 0; step < 3000; step++) {
      const [start, end] = randomRange(rng, length);
      const note = `seed ${seed} step ${step} [${start}, ${end})`;
      if (rng.chance(0.4)) {
        const state = rng.int(8);
        tree.set(start, end, state);
        oracle.set(start, end, state);
      } else {
        const setBits = rng.int(8), clearBits = rng.int(8);
        tree.update(start, end, setBits, clearBits);
        oracle.update(start, end, setBits, clearBits);
      }
      for (let i = 0; i < 4; i++) {
        const page = rng.int(length);
        assert.equal(tree.get(page), oracle.get(page), `${note}: get(${page})`);
      }
      assertSameRuns(tree, oracle, 0, length, note);
      const [ws, we] = randomRange(rng, length);
      assertSameRuns(tree, oracle, ws, we, `${note} window [${ws}, ${we})`);
      assert.equal(tree.runCount, oracle.runCount, `${note}: runCount`);
    }
    assertMaximal(tree, `seed ${seed}`);
    assertMaximal(oracle, `seed ${seed}`);
  });
}

Deno.test("stores agree when they start from a non-zero initial state", () => {
  const tree = new RangeTreeStore(100, { initial: 5, bits: 3 });
  const oracle = new BitmapStore(100, { initial: 5, bits: 3 });
  tree.update(10, 20, 0, 4);
  oracle.update(10, 20, 0, 4);
  assert.deepEqual([...tree.runs()], [...oracle.runs()]);
  assert.deepEqual([...tree.runs()], [
    { start: 0, end: 10, state: 5 },
    { start: 10, end: 20, state: 1 },
    { start: 20, end: 100, state: 5 },
  ]);
});
