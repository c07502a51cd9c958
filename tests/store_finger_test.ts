// The ExtentIndex finger (leaf, position and path into sorted-btree) against a
// plain sorted model: every cursor operation, through growth (leaves split in
// place and by sorted-btree, the root splits), shrinking (sorted-btree merges
// leaves and collapses the root) and bulk removal, with the finger checked
// against the tree's current nodes after every step. A finger left pointing at
// a node sorted-btree replaced, or at a stale position, fails checkValid or a
// model comparison. Also the store-level users of the finger: chunk maps made
// and dissolved, and arenas compacted, in between run edits. No timing.
// Reproduce a failure with MEMSTATE_SEED=<seed>.
import assert from "node:assert/strict";
import { BitmapStore } from "../src/store/bitmap_store.ts";
import { ExtentIndex, IN_PLACE_MIN, NODE_SIZE } from "../src/store/_extent_index.ts";
import { RangeTreeStore } from "../src/store/range_tree_store.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";

function seeded(name: string): Prng {
  const seed = seedFromEnv();
  console.log(`${name}: seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  return new Prng(seed);
}

/** A sorted array of keys with values: the obviously-correct index. */
class Model {
  keys: number[] = [0];
  values: number[];
  constructor(readonly limit: number, value: number) {
    this.values = [value];
  }
  /** Position of the last key <= key. */
  at(key: number): number {
    let lo = 0, hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.keys[mid] <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }
  insertAt(i: number, key: number, value: number): void {
    this.keys.splice(i, 0, key);
    this.values.splice(i, 0, value);
  }
  removeAt(i: number, count = 1): void {
    this.keys.splice(i, count);
    this.values.splice(i, count);
  }
  nextKey(i: number): number {
    return i + 1 < this.keys.length ? this.keys[i + 1] : this.limit;
  }
}

/** The cursor is on model position `i`: key, value and both neighbours agree, and the finger is sound. */
function assertCursor(index: ExtentIndex, model: Model, i: number, note: string): void {
  index.checkValid();
  assert.equal(index.size, model.keys.length, `${note}: size`);
  assert.equal(index.key(), model.keys[i], `${note}: key`);
  assert.equal(index.value(), model.values[i], `${note}: value`);
  assert.equal(index.nextKey(), model.nextKey(i), `${note}: nextKey`);
  assert.equal(index.hasNext(), i + 1 < model.keys.length, `${note}: hasNext`);
  if (i + 1 < model.keys.length) assert.equal(index.nextValue(), model.values[i + 1], note);
  if (i > 0) {
    assert.equal(index.prevKey(), model.keys[i - 1], `${note}: prevKey`);
    assert.equal(index.prevValue(), model.values[i - 1], `${note}: prevValue`);
  }
}

function assertEntries(index: ExtentIndex, model: Model, note: string): void {
  const entries = [...index.entries()];
  assert.deepEqual(entries.map((e) => e[0]), model.keys, `${note}: keys`);
  assert.deepEqual(entries.map((e) => e[1]), model.values, `${note}: values`);
}

/** A fresh key strictly between model positions i and i + 1, or -1 when there is no room. */
function gapKey(rng: Prng, model: Model, i: number): number {
  const lo = model.keys[i] + 1, hi = model.nextKey(i) - 1;
  return lo <= hi ? lo + rng.int(hi - lo + 1) : -1;
}

for (const limit of [3000, 2 ** 44]) {
  Deno.test(`finger: every cursor operation matches a sorted model (keys < ${limit})`, () => {
    const rng = seeded("finger ops");
    const index = new ExtentIndex(limit, 1);
    const model = new Model(limit, 1);
    let i = 0; // the cursor's model position
    // Grow to thousands of entries (depth 3 with 64-entry nodes), then shrink
    // back to a handful, then grow again: the finger lives through splits,
    // merges and root changes.
    const phases = [
      { steps: 6000, grow: 0.75 },
      { steps: 7000, grow: 0.2 },
      { steps: 2000, grow: 0.7 },
    ];
    let step = 0;
    for (const phase of phases) {
      for (let s = 0; s < phase.steps; s++, step++) {
        const note = `step ${step}`;
        const r = rng.next();
        if (r < phase.grow) {
          // Insert one or two keys right after the cursor (after a seek, usually).
          if (rng.chance(0.5)) {
            const probe = rng.int(limit);
            index.seek(probe);
            i = model.at(probe);
          }
          const k1 = gapKey(rng, model, i);
          if (k1 < 0) continue;
          const two = rng.chance(0.4) && model.nextKey(i) - k1 > 1;
          if (two) {
            const k2 = k1 + 1 + rng.int(model.nextKey(i) - k1 - 1);
            index.insertTwoAfter(k1, step, k2, -step);
            model.insertAt(i + 1, k1, step);
            model.insertAt(i + 2, k2, -step);
            i += 2;
          } else {
            index.insertAfter(k1, step);
            model.insertAt(i + 1, k1, step);
            i += 1;
          }
        } else if (r < phase.grow + (1 - phase.grow) * 0.85 && model.keys.length > 1) {
          // Remove around the cursor, in each of the ways the store does.
          const probe = 1 + rng.int(limit - 1);
          index.seek(probe);
          i = model.at(probe);
          const how = rng.int(4);
          if (how === 0 && i > 0) {
            index.removeHere();
            model.removeAt(i);
            i -= 1;
          } else if (how === 1 && i + 1 < model.keys.length) {
            index.removeAfter();
            model.removeAt(i + 1);
          } else if (how === 2 && i > 0 && i + 1 < model.keys.length) {
            index.removeHereAndNext();
            model.removeAt(i, 2);
            i -= 1;
          } else if (how === 3) {
            // Everything strictly inside a window starting at the cursor key.
            const lo = model.keys[i];
            const hi = Math.min(limit, lo + 2 + rng.int(Math.max(2, Math.floor(limit / 50))));
            index.removeInside(lo, hi);
            let j = i + 1;
            while (j < model.keys.length && model.keys[j] < hi) j++;
            model.removeAt(i + 1, j - i - 1);
          }
        } else {
          // Move, re-key or re-value without changing the structure.
          const probe = rng.int(limit);
          index.seek(probe);
          i = model.at(probe);
          const what = rng.int(3);
          if (what === 0 && i > 0) {
            const lo = model.keys[i - 1] + 1, hi = model.nextKey(i) - 1;
            const to = lo + rng.int(hi - lo + 1);
            index.setKeyHere(to);
            model.keys[i] = to;
          } else if (what === 1) {
            index.setValueHere(-7 * step);
            model.values[i] = -7 * step;
          } else {
            for (let n = rng.int(70); n > 0 && i + 1 < model.keys.length; n--) {
              assert.ok(index.stepNext(), `${note}: stepNext`);
              i++;
            }
            for (let n = rng.int(70); n > 0 && i > 0; n--) {
              assert.ok(index.stepPrev(), `${note}: stepPrev`);
              i--;
            }
            if (i === model.keys.length - 1) assert.equal(index.stepNext(), false, note);
            if (i === 0) assert.equal(index.stepPrev(), false, note);
          }
        }
        assertCursor(index, model, i, note);
        if (step % 200 === 0) assertEntries(index, model, note);
        if (step % 7 === 0) {
          // countInside from wherever the cursor is (inside the window or not).
          const lo = rng.int(limit - 1);
          const hi = lo + 1 + rng.int(Math.min(limit - lo, Math.max(2, Math.floor(limit / 20))));
          const expect = model.keys.filter((k) => k > lo && k < hi).length;
          if (rng.chance(0.5)) {
            // Put the cursor inside the window first, as the store does.
            const inside = model.keys.findIndex((k) => k > lo && k < hi);
            if (inside >= 0) {
              index.seek(model.keys[inside]);
              i = inside;
            }
          }
          assert.equal(index.countInside(lo, hi, Infinity), expect, `${note}: countInside`);
          const cap = rng.int(8);
          const capped = index.countInside(lo, hi, cap);
          if (expect <= cap) assert.equal(capped, expect, `${note}: countInside capped`);
          else assert.ok(capped > cap, `${note}: countInside capped at ${cap}: ${capped}`);
          index.seek(model.keys[i]);
          assertCursor(index, model, i, `${note} after countInside`);
        }
      }
    }
    assertEntries(index, model, "end");
    const { searches, fallbacks, splits } = index.counters;
    assert.ok(splits > 0, "no leaf was ever split in place");
    assert.ok(
      fallbacks > 0,
      "no edit ever went through sorted-btree (no merges, no parent splits)",
    );
    assert.ok(searches > 0);
  });
}

Deno.test("finger: a full leaf whose parent is full goes through sorted-btree, and the finger follows", () => {
  // Keys inserted in order fill leaves to NODE_SIZE and their parents to
  // NODE_SIZE children, so inserts keep hitting the fallback; reading the
  // neighbours right after each one finds a stale finger.
  const index = new ExtentIndex(2 ** 40, 0);
  const model = new Model(2 ** 40, 0);
  index.seek(0);
  for (let k = 1; k <= NODE_SIZE * NODE_SIZE * 3; k++) {
    index.insertAfter(k * 10, k);
    model.insertAt(k, k * 10, k);
    if (k % 97 === 0) assertCursor(index, model, k, `insert ${k}`);
    else assert.equal(index.key(), k * 10);
  }
  assert.ok(index.counters.fallbacks > 0, JSON.stringify(index.counters));
  assertEntries(index, model, "grown");
  // Now shrink from the front: removals drop leaves below IN_PLACE_MIN, so
  // sorted-btree merges leaves and eventually collapses the root.
  let removed = 0;
  while (model.keys.length > 3) {
    index.seek(model.keys[1]);
    index.removeHere();
    model.removeAt(1);
    removed++;
    if (removed % 53 === 0) assertCursor(index, model, 0, `remove ${removed}`);
  }
  assertCursor(index, model, 0, "shrunk");
  assert.ok(index.leafCount() === 1, `leaves ${index.leafCount()}`);
  assert.ok(IN_PLACE_MIN < NODE_SIZE / 2);
});

Deno.test("finger: removeInside across many leaves, and inside one leaf", () => {
  const index = new ExtentIndex(1_000_000, 0);
  const model = new Model(1_000_000, 0);
  index.seek(0);
  for (let k = 1; k < 5000; k++) {
    index.insertAfter(k * 100, k);
    model.insertAt(k, k * 100, k);
  }
  // Many leaves: sorted-btree's deleteRange.
  index.removeInside(50_000, 300_000);
  model.removeAt(model.at(50_000) + 1, model.at(299_999) - model.at(50_000));
  assertCursor(index, model, model.at(50_000), "wide");
  // A few keys of one leaf, in place.
  index.removeInside(400_050, 400_350);
  model.removeAt(model.at(400_050) + 1, model.at(400_349) - model.at(400_050));
  assertCursor(index, model, model.at(400_050), "narrow");
  // Nothing to remove.
  index.removeInside(400_100, 400_101);
  assertCursor(index, model, model.at(400_100), "empty");
  assertEntries(index, model, "end");
});

Deno.test("finger: store edits between chunk maps made, dissolved and compacted match the oracle", () => {
  // Small containers so that spans turn into maps and back, and arenas grow
  // and compact, within a few thousand edits; checkValid (which also checks
  // the finger) after every edit.
  const rng = seeded("finger store");
  const length = 64 * 16 * 40; // 40 spans of 16 chunks of 64 pages
  const options = { chunkPages: 64, mapChunks: 16, mapAt: 6, bits: 2 };
  const tree = new RangeTreeStore(length, options);
  const oracle = new BitmapStore(length, { bits: 2 });
  let maxMaps = 0, maxDense = 0, denseDropped = false, mapsDropped = false;
  for (let step = 0; step < 4000; step++) {
    const phase = Math.floor(step / 1000);
    let start: number, end: number;
    if (phase % 2 === 0) {
      // Scatter short edits: spans crowd, chunks go dense.
      start = rng.int(length);
      end = Math.min(length, start + 1 + rng.int(4));
    } else {
      // Wide edits: chunks and spans calm down, dense chunks and maps are released.
      start = rng.int(length);
      end = Math.min(length, start + 64 + rng.int(1024));
    }
    if (rng.chance(0.5)) {
      const state = rng.int(4);
      tree.set(start, end, state);
      oracle.set(start, end, state);
    } else {
      const setBits = rng.int(4), clearBits = rng.int(4);
      tree.update(start, end, setBits, clearBits);
      oracle.update(start, end, setBits, clearBits);
    }
    const note = `step ${step} [${start}, ${end})`;
    tree.checkValid();
    const stats = tree.stats();
    maxMaps = Math.max(maxMaps, stats.maps);
    maxDense = Math.max(maxDense, stats.denseChunks);
    // Arenas compact once at most a quarter of their slots is in use.
    if (maxDense > 8 && stats.denseChunks * 4 < maxDense) denseDropped = true;
    if (maxMaps > 8 && stats.maps * 4 < maxMaps) mapsDropped = true;
    if (step % 10 === 0) {
      assert.deepEqual([...tree.runs()], [...oracle.runs()], `${note}: runs`);
      for (let k = 0; k < 4; k++) {
        const page = rng.int(length);
        assert.equal(tree.get(page), oracle.get(page), `${note}: get(${page})`);
      }
    }
    assert.equal(tree.runCount, oracle.runCount, `${note}: runCount`);
  }
  assert.ok(denseDropped, `dense chunks never dropped to a quarter of ${maxDense}`);
  assert.ok(mapsDropped, `maps never dropped to a quarter of ${maxMaps}`);
});

Deno.test("finger: a root leaf shrinks in place to one entry; other leaves stop at IN_PLACE_MIN", () => {
  // _extent_index.ts #canShrink: a root leaf has no neighbour to merge with, so every removal
  // from it is done at the finger (none goes through sorted-btree); a leaf under a parent is
  // left to sorted-btree once it would fall to IN_PLACE_MIN entries, which keeps leaves non-empty.
  const small = new ExtentIndex(1000, 0);
  const model = new Model(1000, 0);
  small.seek(0);
  for (let k = 1; k <= 12; k++) {
    small.insertAfter(k * 10, k);
    model.insertAt(k, k * 10, k);
  }
  for (const [k, how] of [[5, "here"], [11, "pair"], [1, "after"], [8, "here"]] as const) {
    small.seek(k * 10);
    const i = model.at(k * 10);
    if (how === "here") {
      small.removeHere();
      model.removeAt(i, 1);
    } else if (how === "after") {
      small.seek((k - 1) * 10);
      small.removeAfter();
      model.removeAt(i, 1);
    } else {
      small.removeHereAndNext();
      model.removeAt(i, 2);
    }
    small.checkValid();
    assertEntries(small, model, `root leaf, ${how} ${k * 10}`);
  }
  small.removeInside(0, 1000);
  model.removeAt(1, model.keys.length - 1);
  small.checkValid();
  assertEntries(small, model, "root leaf emptied down to its first entry");
  assert.deepEqual(small.counters.fallbacks, 0, JSON.stringify(small.counters));

  // A leaf with a parent: removing down to IN_PLACE_MIN hands over to sorted-btree.
  const big = new ExtentIndex(1_000_000, 0);
  big.seek(0);
  for (let k = 1; k < 4 * NODE_SIZE; k++) big.insertAfter(k * 10, k);
  for (let k = 1; k < 4 * NODE_SIZE - 1; k++) {
    big.seek(10);
    big.removeAfter();
    big.checkValid();
  }
  assert.ok(big.counters.fallbacks > 0, JSON.stringify(big.counters));
  assert.equal(big.size, 2);
});
