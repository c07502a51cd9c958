// SortedMap against a sorted-array oracle: random sets, deletes and range
// deletes over a small key space (so leaves split, empty and merge), with every
// query checked after each step. MEMSTATE_SEED replays a run.
import assert from "node:assert/strict";
import { SortedMap } from "../src/util/sorted_map.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";

/** The oracle: keys ascending, values beside them. */
class Oracle {
  keys: number[] = [];
  values: string[] = [];

  #index(key: number): number {
    let i = 0;
    while (i < this.keys.length && this.keys[i] < key) i++;
    return i;
  }

  set(key: number, value: string): void {
    const i = this.#index(key);
    if (this.keys[i] === key) this.values[i] = value;
    else {
      this.keys.splice(i, 0, key);
      this.values.splice(i, 0, value);
    }
  }

  delete(key: number): boolean {
    const i = this.#index(key);
    if (this.keys[i] !== key) return false;
    this.keys.splice(i, 1);
    this.values.splice(i, 1);
    return true;
  }

  deleteRange(lo: number, hi: number): number {
    const before = this.keys.length;
    for (let i = this.keys.length - 1; i >= 0; i--) {
      if (this.keys[i] >= lo && this.keys[i] < hi) {
        this.keys.splice(i, 1);
        this.values.splice(i, 1);
      }
    }
    return before - this.keys.length;
  }

  find(test: (k: number) => boolean, last: boolean): string | undefined {
    const order = [...this.keys.keys()];
    if (last) order.reverse();
    for (const i of order) if (test(this.keys[i])) return this.values[i];
    return undefined;
  }
}

function checkQueries(map: SortedMap<string>, oracle: Oracle, key: number, note: string): void {
  assert.equal(map.size, oracle.keys.length, `${note}: size`);
  assert.equal(map.get(key), oracle.find((k) => k === key, false), `${note}: get(${key})`);
  assert.equal(map.has(key), oracle.keys.includes(key), `${note}: has(${key})`);
  assert.equal(map.atOrBelow(key), oracle.find((k) => k <= key, true), `${note}: atOrBelow`);
  assert.equal(map.below(key), oracle.find((k) => k < key, true), `${note}: below(${key})`);
  assert.equal(map.atOrAbove(key), oracle.find((k) => k >= key, false), `${note}: atOrAbove`);
  assert.equal(map.above(key), oracle.find((k) => k > key, false), `${note}: above(${key})`);
}

Deno.test("SortedMap agrees with a sorted-array oracle under random edits", () => {
  const seed = seedFromEnv();
  console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  const rng = new Prng(seed);
  const map = new SortedMap<string>();
  const oracle = new Oracle();
  const KEYS = 3000;
  for (let step = 0; step < 6000; step++) {
    const note = `seed ${seed} step ${step}`;
    const key = rng.int(KEYS) * 4096;
    const roll = rng.next();
    // Phases that grow, then shrink, so leaves split, empty out and merge.
    const growing = Math.floor(step / 1500) % 2 === 0;
    if (roll < (growing ? 0.7 : 0.25)) {
      map.set(key, `v${step}`);
      oracle.set(key, `v${step}`);
    } else if (roll < 0.97) {
      assert.equal(map.delete(key), oracle.delete(key), `${note}: delete(${key})`);
    } else {
      const hi = key + rng.int(200) * 4096;
      assert.equal(map.deleteRange(key, hi), oracle.deleteRange(key, hi), `${note}: deleteRange`);
    }
    checkQueries(map, oracle, rng.int(KEYS + 2) * 4096 - 4096, note);
    checkQueries(map, oracle, key, note);
    if (step % 250 === 0) {
      assert.deepEqual(map.values(), oracle.values, `${note}: values`);
      const lo = rng.int(KEYS) * 4096, hi = lo + rng.int(500) * 4096;
      const want = oracle.values.filter((_, i) => oracle.keys[i] >= lo && oracle.keys[i] < hi);
      assert.deepEqual(map.valuesInRange(lo, hi), want, `${note}: valuesInRange`);
    }
  }
});

Deno.test("SortedMap: ascending inserts, then everything removed by one range delete", () => {
  const map = new SortedMap<number>();
  for (let k = 0; k < 10_000; k++) map.set(k, k * 2);
  assert.equal(map.size, 10_000);
  assert.equal(map.atOrBelow(5000.5), 10_000);
  assert.equal(map.below(0), undefined);
  assert.equal(map.above(9999), undefined);
  assert.deepEqual(map.valuesInRange(4998, 5001), [9996, 9998, 10_000]);
  assert.equal(map.deleteRange(-Infinity, Infinity), 10_000);
  assert.equal(map.size, 0);
  assert.equal(map.atOrAbove(0), undefined);
  map.set(7, 1);
  assert.deepEqual(map.values(), [1]);
});

Deno.test("SortedMap: NaN is refused as a key and changes nothing", () => {
  const map = new SortedMap<number>();
  assert.throws(() => map.set(NaN, 1), /key: must be a number, got NaN/);
  assert.equal(map.size, 0);
});
