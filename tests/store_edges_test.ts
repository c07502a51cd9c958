// RangeTreeStore at its edges: every range between the pages where something
// changes shape (page 0 and 1, chunk and span boundaries, the last pages of
// the store, a span cut short by the store's end), applied one after another
// on small stores whose spans become chunk maps easily, each compared with the
// BitmapStore oracle and followed by checkValid(). Runs are merged when they
// are read, so a missed merge shows only in checkValid; these ranges are
// where random edits rarely land. Plus the map-or-runs memory choice.
import assert from "node:assert/strict";
import {
  BitmapStore,
  type RangeTreeOptions,
  RangeTreeStore,
  type StateStore,
} from "../src/store/mod.ts";
import { DenseSlab } from "../src/store/_dense_slab.ts";
import { SlotArena } from "../src/store/_slot_arena.ts";
import { SpanDirectory } from "../src/store/_span_directory.ts";
import { Prng } from "../src/util/prng.ts";
import { testSeed } from "./helpers/env.ts";

/** 32-page chunks, 64-page spans, and a span turns into a map past 2 boundaries. */
const TINY: RangeTreeOptions = { chunkPages: 32, mapChunks: 2, mapAt: 2 };
const SPAN = 64;

function assertSame(tree: RangeTreeStore, oracle: StateStore, note: string): void {
  tree.checkValid();
  assert.deepEqual([...tree.runs()], [...oracle.runs()], note);
  assert.equal(tree.runCount, oracle.runCount, `${note}: runCount`);
}

/** The pages where a range's ends are interesting in a store of `length` pages. */
function edgePages(length: number): number[] {
  const pages = new Set<number>();
  for (const p of [0, 1, 2, 31, 32, 33, SPAN - 1, SPAN, SPAN + 1]) pages.add(p);
  const lastSpan = Math.floor((length - 1) / SPAN) * SPAN;
  for (const p of [lastSpan - 1, lastSpan, lastSpan + 1, length - 2, length - 1, length]) {
    pages.add(p);
  }
  return [...pages].filter((p) => p >= 0 && p <= length).sort((a, b) => a - b);
}

// Lengths where the last span is full, one page long, or cut anywhere in between; each with run
// containers from a span's first boundary (the default) and from its third (runs first, then a
// container made from them, #toContainer).
for (
  const length of [SPAN - 1, SPAN, SPAN + 1, 2 * SPAN - 1, 2 * SPAN, 2 * SPAN + 1, 3 * SPAN + 33]
) {
  for (const runContainerAt of [0, 2]) {
    Deno.test(`store edges: every range between edge pages, ${length} pages, runContainerAt ${runContainerAt}`, () => {
      const rng = new Prng(length);
      const tree = new RangeTreeStore(length, { bits: 2, ...TINY, runContainerAt });
      const oracle = new BitmapStore(length, { bits: 2 });
      const pages = edgePages(length);
      for (let round = 0; round < 3; round++) {
        // Fragment the store first, so that spans turn into maps and dense chunks.
        for (let i = 0; i < length / 2; i++) {
          const page = rng.int(length), state = rng.int(4);
          tree.set(page, page + 1, state);
          oracle.set(page, page + 1, state);
        }
        assertSame(tree, oracle, `round ${round} fragmented`);
        for (const start of pages) {
          for (const end of pages) {
            if (end <= start) continue;
            const state = rng.int(4);
            tree.set(start, end, state);
            oracle.set(start, end, state);
            assertSame(tree, oracle, `round ${round} set [${start}, ${end}) to ${state}`);
            // The same range flipped by bit, and one page on either side of it.
            tree.update(start, end, 0, 1);
            oracle.update(start, end, 0, 1);
            assertSame(tree, oracle, `round ${round} clear bit 0 of [${start}, ${end})`);
            const page = rng.chance(0.5) ? start : end - 1;
            tree.update(page, page + 1, 2, 0);
            oracle.update(page, page + 1, 2, 0);
            assertSame(tree, oracle, `round ${round} set bit 1 of page ${page}`);
          }
        }
      }
    });
  }
}

Deno.test("store edges: a run recoloured to its left neighbour's state merges with it, at every page", () => {
  for (const length of [8, SPAN + 1]) {
    for (let page = 1; page < length; page++) {
      const tree = new RangeTreeStore(length, { bits: 2, ...TINY });
      tree.set(page, length, 1); // two runs: [0, page) 0 and [page, length) 1
      tree.set(page, length, 0); // back to one run
      tree.checkValid();
      assert.equal(tree.stats().entries, 1, `length ${length}, page ${page}`);
      tree.set(0, page, 1); // and the other way round
      tree.set(0, page, 0);
      tree.checkValid();
      assert.equal(tree.stats().entries, 1, `length ${length}, page ${page}`);
    }
  }
});

Deno.test("store edges: random edits on stores whose last span is short, every shape", () => {
  const seed = testSeed("store edges");
  const rng = new Prng(seed);
  const shapes: RangeTreeOptions[] = [
    TINY,
    { chunkPages: 32, mapChunks: 4, mapAt: 3 },
    { chunkPages: 64, mapChunks: 2, mapAt: 2 },
  ];
  for (const shape of shapes) {
    for (const options of [shape, { ...shape, runContainerAt: shape.mapAt }]) {
      const span = options.chunkPages! * options.mapChunks!;
      for (const length of [span * 3 + 1, span * 3 - 1, span * 2 + options.chunkPages! + 1]) {
        const tree = new RangeTreeStore(length, { bits: 3, ...options });
        const oracle = new BitmapStore(length, { bits: 3 });
        for (let step = 0; step < 600; step++) {
          // Mostly near the end of the store, where the last span is cut short.
          const near = rng.chance(0.7);
          const start = near ? Math.max(0, length - 1 - rng.int(span + 2)) : rng.int(length);
          const end = Math.min(length, start + 1 + rng.int(rng.chance(0.5) ? 3 : span));
          const state = rng.int(8);
          tree.set(start, end, state);
          oracle.set(start, end, state);
          assertSame(
            tree,
            oracle,
            `seed ${seed} ${
              JSON.stringify(options)
            } length ${length} step ${step} [${start}, ${end})`,
          );
        }
      }
    }
  }
});

// ---- the map-or-runs choice: memory -----------------------------------------------------

// Default options: 512-page chunks, 1 GiB spans (262,144 pages) of 512 chunks.

Deno.test("store memory: scattered boundaries (one per chunk) stay out of chunk maps", () => {
  // 400 boundaries, one in each of 400 chunks: a map would need 400 dense
  // chunks, far more than twice the bytes of the 400 boundaries as index entries;
  // they stay in the span's run container.
  const store = new RangeTreeStore(2 ** 20, { bits: 1 });
  for (let c = 0; c < 400; c++) store.set(c * 512 + 100, (c + 1) * 512 + 100, (c + 1) % 2);
  store.checkValid();
  assert.equal(store.runCount, 401);
  assert.deepEqual(store.stats().maps, 0);
  assert.equal(store.stats().denseChunks, 0);
  assert.equal(store.stats().runContainers, 1);
  assert.ok(store.byteSize() < 16 * 1024, `${store.byteSize()} bytes`);
});

Deno.test("store memory: clustered boundaries (many per chunk) become one chunk map", () => {
  // 400 boundaries in 4 chunks: four dense chunks cost less than 400 entries.
  const store = new RangeTreeStore(2 ** 20, { bits: 1 });
  for (let c = 0; c < 4; c++) {
    for (let j = 0; j < 50; j++) store.set(c * 512 + 4 * j + 1, c * 512 + 4 * j + 2, 1);
  }
  store.checkValid();
  assert.equal(store.runCount, 401);
  assert.equal(store.stats().maps, 1);
  assert.equal(store.stats().denseChunks, 4);
});

Deno.test("store memory: byteSize counts the chunk map, its dense chunk and the span directory", () => {
  const length = 4 * SPAN;
  // The same two index entries with and without a chunk map behind the first.
  const runs = new RangeTreeStore(length, { bits: 1, ...TINY });
  runs.set(0, SPAN, 1);
  const mapped = new RangeTreeStore(length, { bits: 1, ...TINY });
  for (const page of [1, 3, 5]) mapped.set(page, page + 1, 1); // six boundaries in chunk 0
  mapped.checkValid();
  assert.deepEqual(mapped.stats(), {
    entries: 2,
    runContainers: 0,
    maps: 1,
    denseChunks: 1,
    leaves: 1,
  });
  assert.equal(runs.stats().entries, 2);
  // What the store allocates with its first map (see RangeTreeStore.byteSize).
  const maps = new SlotArena(TINY.mapChunks!, Math.ceil(length / SPAN));
  maps.alloc(0);
  const dense = new DenseSlab(TINY.chunkPages!, 1, Math.ceil(length / TINY.chunkPages!));
  dense.alloc(0);
  const directory = new SpanDirectory();
  directory.set(0, 0);
  assert.equal(
    mapped.byteSize() - runs.byteSize(),
    maps.byteSize() + dense.byteSize() + directory.byteSize(),
  );
});
