// RangeTreeStore on stores no bitmap can hold (2^40 and 2^52 pages), checked
// against a plain list-of-runs reference model, with chunk maps forced in far
// apart places. Reproduce a failure with MEMSTATE_SEED=<seed>.
import assert from "node:assert/strict";
import { RangeTreeStore } from "../src/store/range_tree_store.ts";
import type { Run } from "../src/store/state_store.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";

/** The obviously-correct model: maximal runs in two arrays, O(runs) per edit. */
class ReferenceRuns {
  starts: number[] = [0];
  states: number[];
  constructor(readonly length: number, initial: number) {
    this.states = [initial];
  }
  #index(page: number): number {
    let i = this.starts.length - 1;
    while (this.starts[i] > page) i--;
    return i;
  }
  #split(page: number): void {
    if (page >= this.length) return;
    const i = this.#index(page);
    if (this.starts[i] !== page) {
      this.starts.splice(i + 1, 0, page);
      this.states.splice(i + 1, 0, this.states[i]);
    }
  }
  apply(start: number, end: number, f: (state: number) => number): void {
    if (start >= end) return;
    this.#split(start);
    this.#split(end);
    for (let i = this.#index(start); i < this.starts.length && this.starts[i] < end; i++) {
      this.states[i] = f(this.states[i]);
    }
    for (let i = this.starts.length - 1; i > 0; i--) {
      if (this.states[i] === this.states[i - 1]) {
        this.starts.splice(i, 1);
        this.states.splice(i, 1);
      }
    }
  }
  get(page: number): number {
    return this.states[this.#index(page)];
  }
  runs(start = 0, end = this.length): Run[] {
    const out: Run[] = [];
    for (let i = 0; i < this.starts.length; i++) {
      const s = Math.max(start, this.starts[i]);
      const e = Math.min(end, i + 1 < this.starts.length ? this.starts[i + 1] : this.length);
      if (s < e) out.push({ start: s, end: e, state: this.states[i] });
    }
    return out;
  }
}

for (const length of [2 ** 40, 2 ** 52]) {
  Deno.test(`huge: a 2^${Math.log2(length)}-page store with chunk maps in far-apart places`, () => {
    const seed = seedFromEnv();
    console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
    const rng = new Prng(seed);
    const tree = new RangeTreeStore(length, { bits: 3, chunkPages: 64, mapChunks: 16, mapAt: 8 });
    const model = new ReferenceRuns(length, 0);
    // Hot windows of a few chunk maps each: at 0, in the middle, at the very end.
    const windows = [0, length / 2 - 2048, length - 4096];
    let maps = 0;
    for (let step = 0; step < 1500; step++) {
      let start: number, end: number;
      if (rng.chance(0.03)) { // a rare huge edit across everything in between
        start = rng.int(length / 2);
        end = start + rng.int(length - start) + 1;
      } else {
        const base = rng.pick(windows);
        start = base + rng.int(4096);
        end = Math.min(length, start + (rng.chance(0.6) ? 1 : 1 + rng.int(300)));
      }
      const note = `seed ${seed} step ${step} [${start}, ${end})`;
      if (rng.chance(0.3)) {
        const state = rng.int(8);
        tree.set(start, end, state);
        model.apply(start, end, () => state);
      } else {
        const setBits = rng.int(8), clearBits = rng.int(8);
        tree.update(start, end, setBits, clearBits);
        model.apply(start, end, (s) => (s | setBits) & ~clearBits);
      }
      tree.checkValid();
      assert.deepEqual([...tree.runs()], model.runs(), note);
      assert.equal(tree.runCount, model.starts.length, `${note}: runCount`);
      const base = rng.pick(windows);
      const ws = base + rng.int(4096), we = Math.min(length, ws + rng.int(5000));
      assert.deepEqual([...tree.runs(ws, we)], model.runs(ws, we), `${note}: window`);
      const page = rng.chance(0.5) ? base + rng.int(4096) : rng.int(length);
      assert.equal(tree.get(page), model.get(page), `${note}: get(${page})`);
      maps = Math.max(maps, tree.stats().maps);
    }
    assert.ok(maps >= 2, `chunk maps were never made (max ${maps})`);
  });
}

Deno.test("huge: default options on 2^52 pages, the largest store", () => {
  const n = 2 ** 52;
  const s = new RangeTreeStore(n, { bits: 2 });
  s.set(n - 1, n, 3);
  let flips = 0;
  // Crowd the last span.
  for (let p = n - 2 ** 18; p < n - 1; p += 7, flips++) s.update(p, p + 1, 1, 0);
  s.checkValid();
  assert.equal(s.stats().maps, 1);
  assert.equal(s.get(n - 1), 3);
  assert.equal(s.get(n - 2 ** 18), 1);
  assert.equal(s.get(n - 2 ** 18 + 1), 0);
  // The zero prefix, each flipped page and the gap after it, then page n - 1.
  assert.equal(s.runCount, 1 + 2 * flips + 1);
  s.set(0, n, 2);
  s.checkValid();
  assert.deepEqual([...s.runs()], [{ start: 0, end: n, state: 2 }]);
  assert.equal(s.stats().maps, 0);
});
