// Memory accounting of RangeTreeStore: byteSize stays within the bound its
// documentation states for the worst case (every chunk dense), within 2x the
// bitmap under scattered 4 KiB churn, and tiny for structured guests.
// No timing here. Reproduce a failure with MEMSTATE_SEED=<seed>.
import assert from "node:assert/strict";
import { BitmapStore } from "../src/store/bitmap_store.ts";
import { RangeTreeStore } from "../src/store/range_tree_store.ts";
import { KEEP_PAIRS } from "../src/store/_run_containers.ts";
import { TYPED_ARRAY_OVERHEAD_BYTES } from "../src/store/_slot_arena.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";
import { boot, pagesOf, SHARED } from "../bench/workloads.ts";

/** The bitmap's bytes for `length` pages and `bits` bits, without allocating it. */
function bitmapBytes(length: number, bits: number): number {
  return bits * Math.ceil(length / 32) * 4;
}

/** The documented worst-case bound of RangeTreeStore.byteSize (see its doc). */
function denseBound(length: number, bits: number, chunkPages = 512, mapChunks = 512): number {
  const perChunk = (bits * chunkPages) / 8;
  const factor = 1 + 4 / perChunk + (4 * mapChunks + 208) / (perChunk * mapChunks);
  return bitmapBytes(length, bits) * factor + 8192;
}

for (const bits of [1, 2, 8]) {
  Deno.test(`memory: every chunk dense (${bits} bits) stays within the documented bound`, () => {
    const length = 2 ** 21; // 8 GiB: 4,096 chunks in 8 spans
    const s = new RangeTreeStore(length, { bits });
    for (let p = 0; p < length; p += 7) s.update(p, p + 1, 1, 0);
    const stats = s.stats();
    assert.equal(stats.denseChunks, length / 512, JSON.stringify(stats));
    assert.equal(stats.maps, 8, JSON.stringify(stats));
    const bytes = s.byteSize();
    assert.ok(bytes >= bitmapBytes(length, bits), `${bytes}: less than the planes themselves`);
    assert.ok(bytes <= denseBound(length, bits), `${bytes} > bound ${denseBound(length, bits)}`);
    assert.equal(bitmapBytes(length, bits), new BitmapStore(length, { bits }).byteSize());
  });
}

Deno.test("memory: scattered 4 KiB churn stays within 2x the bitmap at every point", () => {
  const seed = seedFromEnv();
  console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  const rng = new Prng(seed);
  const length = 2 ** 20; // 4 GiB
  const s = new RangeTreeStore(length, { bits: 2, initial: 2 });
  const limit = 2 * bitmapBytes(length, 2);
  let peak = 0;
  for (let i = 0; i < 400_000; i++) {
    const p = rng.int(length);
    if (rng.chance(0.5)) s.update(p, p + 1, 1, 0);
    else s.update(p, p + 1, 0, 1);
    if (i % 1000 === 0) peak = Math.max(peak, s.byteSize());
  }
  peak = Math.max(peak, s.byteSize());
  assert.ok(peak <= limit, `seed ${seed}: peak ${peak} > 2x bitmap ${limit}`);
  assert.ok(s.byteSize() <= denseBound(length, 2), `${s.byteSize()} > bound`);
});

Deno.test("memory: a structured 1 TiB guest costs under 1% of the bitmap", () => {
  const seed = seedFromEnv();
  console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  const rng = new Prng(seed);
  const length = 2 ** 28;
  const s = new RangeTreeStore(length, { bits: 2, initial: 2 });
  s.update(2 ** 20, 2 ** 20 + 2 ** 18, 1, 0); // a 1 GiB SWIOTLB pool at 4 GiB
  for (let i = 0; i < 1000; i++) {
    const start = rng.int(length / 512) * 512;
    s.update(start, start + 512, 1, 0); // 2 MiB buffers
  }
  for (let i = 0; i < 2000; i++) {
    const p = rng.int(length);
    s.update(p, p + 1, 1, 0); // 4 KiB buffers
  }
  assert.ok(s.runCount > 5000, `runCount ${s.runCount}`);
  const share = s.byteSize() / bitmapBytes(length, 2);
  assert.ok(share < 0.01, `${s.byteSize()} bytes is ${(share * 100).toFixed(2)}% of the bitmap`);
});

Deno.test("memory: the report's `boot` 1 TiB, one bit, ends under 1% of its bitmap", () => {
  // Issue 13's memory target for the report's row (bench/store_rows.ts), on the row's own
  // conversions: the store of a region without virtio-mem claims one bit, so the honest bitmap
  // is 32 MiB. The containers' growth policy (_run_containers.ts #moveTo) is priced here.
  const w = boot(pagesOf(2 ** 40));
  const s = new RangeTreeStore(w.pages, { bits: w.bits, initial: w.initial });
  const { starts, ends, toShared } = w.conversions;
  for (let i = 0; i < w.conversions.length; i++) {
    if (toShared[i] === 1) s.update(starts[i], ends[i], SHARED, 0);
    else s.update(starts[i], ends[i], 0, SHARED);
  }
  assert.equal(w.bits, 1);
  const share = s.byteSize() / bitmapBytes(w.pages, w.bits);
  assert.ok(share < 0.01, `${s.byteSize()} bytes is ${(share * 100).toFixed(2)}% of the bitmap`);
});

Deno.test("memory: a store back to one run gives its containers back", () => {
  const length = 2 ** 20;
  const s = new RangeTreeStore(length, { bits: 2 });
  const fresh = s.byteSize();
  for (let p = 0; p + 2 <= length; p += 5) s.set(p, p + 2, 3);
  assert.ok(s.byteSize() > 100 * fresh);
  s.set(0, length, 0);
  assert.deepEqual(s.stats(), {
    entries: 1,
    runContainers: 0,
    maps: 0,
    denseChunks: 0,
    leaves: 1,
  });
  assert.ok(s.byteSize() <= fresh + 1024, `${s.byteSize()} vs a fresh store's ${fresh}`);
});

Deno.test("memory: the last run container to go leaves a small heap for the next", () => {
  // _run_containers.ts RunContainers.release: once no container is left, a heap of at most
  // KEEP_PAIRS pairs is kept with its per-container arrays (a pool that empties between bursts
  // reopens a container at once); a bigger one is dropped (tested in store_internals_test.ts).
  const store = new RangeTreeStore(2 ** 18, { bits: 1, mapAt: 2 ** 20 });
  const bitmap = new BitmapStore(2 ** 18, { bits: 1 });
  const fresh = store.byteSize();
  const headers = 4 * TYPED_ARRAY_OVERHEAD_BYTES; // the heap and three per-container arrays
  const kept = headers + 2 * KEEP_PAIRS * 4 + 1024;
  const both = (start: number, end: number, state: number) => {
    store.set(start, end, state);
    bitmap.set(start, end, state);
  };
  for (let burst = 0; burst < 3; burst++) {
    for (const page of [100, 5_000, 70_000]) both(page + burst, page + burst + 8, 1);
    assert.equal(store.stats().runContainers, 1);
    both(0, 2 ** 18, 0); // the pool empties
    store.checkValid();
    assert.deepEqual([...store.runs()], [...bitmap.runs()]);
    assert.equal(store.stats().runContainers, 0);
    const bytes = store.byteSize() - fresh;
    assert.ok(bytes > headers && bytes <= kept, `burst ${burst}: ${bytes} bytes kept`);
  }
  // A container of 600 boundaries shrinks as it empties: what is left when it goes is small too.
  const rng = new Prng(6);
  for (let i = 0; i < 300; i++) {
    const page = rng.int(2 ** 18 - 1);
    both(page, page + 1, 1);
  }
  both(0, 2 ** 18, 0);
  store.checkValid();
  assert.equal(store.runCount, 1);
  assert.ok(store.byteSize() - fresh <= kept, `${store.byteSize() - fresh} bytes kept`);
});

Deno.test("memory: a run container that empties out gives its room back", () => {
  // _run_containers.ts: a container left with at most a quarter of its room moves to one half
  // as big, and the heap drops its garbage once it outweighs half of the live rooms.
  // One span of the default size; mapAt at its maximum keeps it a run container.
  const store = new RangeTreeStore(2 ** 18, { bits: 1, mapAt: 2 ** 20 });
  const rng = new Prng(5);
  for (let i = 0; i < 600; i++) {
    const page = rng.int(239_000);
    store.update(page, page + 1, 1, 0);
  }
  for (const page of [250_000, 250_010, 250_020]) store.update(page, page + 1, 1, 0);
  const crowded = store.byteSize();
  assert.equal(store.stats().runContainers, 1);
  store.set(0, 239_000, 0); // all but the last three buffers
  store.checkValid();
  assert.equal(store.runCount, 7);
  assert.equal(store.stats().runContainers, 1);
  // Before rooms shrank: 45,408 bytes here, most of it a 2,048-pair room for 7 pairs.
  assert.ok(store.byteSize() < crowded / 4, `${store.byteSize()} of ${crowded} bytes`);
  assert.ok(store.byteSize() < 4096, `${store.byteSize()} bytes`);
});
