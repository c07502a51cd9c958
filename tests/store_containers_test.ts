// Differential tests that force every representation of RangeTreeStore: runs,
// chunk maps with uniform and dense chunks, and the way back, against the
// BitmapStore oracle, with checkValid() after every step.
// Reproduce a failure with MEMSTATE_SEED=<seed>.
import assert from "node:assert/strict";
import { BitmapStore } from "../src/store/bitmap_store.ts";
import { type RangeTreeOptions, RangeTreeStore } from "../src/store/range_tree_store.ts";
import type { StateStore } from "../src/store/state_store.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";

/** Small containers so that a few hundred operations exercise every form. */
const SMALL: RangeTreeOptions = { chunkPages: 32, mapChunks: 4, mapAt: 4 };

/** `stats()` of a store back to a single run: one index entry, no container of any kind. */
const ONE_RUN = { entries: 1, runContainers: 0, maps: 0, denseChunks: 0, leaves: 1 };

function seeded(name: string): Prng {
  const seed = seedFromEnv();
  console.log(`${name}: seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  return new Prng(seed);
}

/** Compares everything observable, plus the tree's own invariants. */
function assertSame(tree: RangeTreeStore, oracle: StateStore, rng: Prng, note: string): void {
  tree.checkValid();
  assert.deepEqual([...tree.runs()], [...oracle.runs()], `${note}: runs`);
  assert.equal(tree.runCount, oracle.runCount, `${note}: runCount`);
  const start = rng.int(tree.length);
  const end = start + rng.int(tree.length - start + 1);
  assert.deepEqual([...tree.runs(start, end)], [...oracle.runs(start, end)], `${note}: window`);
  if (start < end) {
    // uniformState: the window's one state, or -1 when it holds more than one run.
    const inWindow = [...oracle.runs(start, end)];
    const expected = inWindow.length === 1 ? inWindow[0].state : -1;
    // A short range too (the size of a DMA buffer), where the one-lookup cases apply.
    const s = rng.int(tree.length - 1), e = Math.min(tree.length, s + 1 + rng.int(40));
    const short = [...oracle.runs(s, e)];
    for (const store of [tree, oracle]) {
      const kind = store === tree ? "tree" : "bitmap";
      assert.equal(store.uniformState!(start, end), expected, `${note}: ${kind} uniformState`);
      assert.equal(
        store.uniformState!(s, e),
        short.length === 1 ? short[0].state : -1,
        `${note}: ${kind} uniformState [${s}, ${e})`,
      );
    }
  }
  for (let i = 0; i < 3; i++) {
    const page = rng.int(tree.length);
    assert.equal(tree.get(page), oracle.get(page), `${note}: get(${page})`);
  }
}

/** Applies the same random set or update of `[start, end)` to both stores. */
function randomEdit(rng: Prng, stores: StateStore[], start: number, end: number, bits: number) {
  if (rng.chance(0.3)) {
    const state = rng.int(2 ** bits);
    for (const s of stores) s.set(start, end, state);
  } else {
    const setBits = rng.int(2 ** bits), clearBits = rng.chance(0.5) ? 0 : rng.int(2 ** bits);
    for (const s of stores) s.update(start, end, setBits, clearBits);
  }
  return `[${start}, ${end})`;
}

Deno.test("containers: chunks go dense inside maps, then everything turns back into runs", () => {
  const rng = seeded("dense and back");
  const length = 2048;
  const tree = new RangeTreeStore(length, { bits: 2, ...SMALL });
  const oracle = new BitmapStore(length, { bits: 2 });
  let maps = 0, dense = 0;
  // Phase 1: scattered single pages in the first 512 pages: spans crowd, chunks fragment.
  for (let step = 0; step < 600; step++) {
    const page = rng.int(512);
    const what = randomEdit(rng, [tree, oracle], page, page + 1, 2);
    assertSame(tree, oracle, rng, `phase 1 step ${step} ${what}`);
    maps = Math.max(maps, tree.stats().maps);
    dense = Math.max(dense, tree.stats().denseChunks);
  }
  assert.ok(maps > 0, "no chunk map was ever made");
  assert.ok(dense > 0, "no chunk ever went dense");
  // Phase 2: wide sets calm the spans down again.
  for (let step = 0; step < 40; step++) {
    const start = rng.int(512);
    const end = Math.min(length, start + 32 + rng.int(256));
    const state = rng.int(4);
    tree.set(start, end, state);
    oracle.set(start, end, state);
    assertSame(tree, oracle, rng, `phase 2 step ${step} [${start}, ${end})`);
  }
  tree.set(0, length, 1);
  oracle.set(0, length, 1);
  assertSame(tree, oracle, rng, "reset");
  assert.deepEqual(tree.stats(), ONE_RUN);
});

Deno.test("containers: random edits concentrated in a few chunks and across their edges", () => {
  const rng = seeded("concentrated");
  const length = 32 * 64 + 7; // 64 chunks and a partial one
  const hot = [0, 3, 4, 17, 63, 64]; // neighbours, a span edge (4), the partial last chunk
  const tree = new RangeTreeStore(length, { bits: 3, ...SMALL });
  const oracle = new BitmapStore(length, { bits: 3 });
  for (let step = 0; step < 1500; step++) {
    const chunk = rng.pick(hot);
    const base = Math.min(length - 1, chunk * 32);
    const kind = rng.int(3);
    let start: number, end: number;
    if (kind === 0) { // one page
      start = Math.min(length - 1, base + rng.int(32));
      end = start + 1;
    } else if (kind === 1) { // a short span inside or around the chunk
      start = Math.min(length - 1, Math.max(0, base - 4 + rng.int(36)));
      end = Math.min(length, start + 1 + rng.int(12));
    } else { // across the chunk's edge into its neighbours
      start = Math.max(0, base - rng.int(40));
      end = Math.min(length, base + 32 + rng.int(40));
    }
    const what = randomEdit(rng, [tree, oracle], start, end, 3);
    assertSame(tree, oracle, rng, `step ${step} ${what}`);
  }
});

Deno.test("containers: uniform random edits over many spans, all option shapes", () => {
  const rng = seeded("option shapes");
  const shapes: [number, RangeTreeOptions, number][] = [
    [1, SMALL, 2],
    [37, SMALL, 3],
    [1000, { chunkPages: 32, mapChunks: 2, mapAt: 2 }, 1],
    [4096 + 13, { chunkPages: 64, mapChunks: 8, mapAt: 8 }, 2],
    [3000, { chunkPages: 32, mapChunks: 16, mapAt: 6 }, 8],
    [2000, { chunkPages: 32, mapChunks: 4, mapAt: 4 }, 31],
    [5000, {}, 2], // the defaults: one partial chunk map at most
  ];
  // Every shape with run containers from the first boundary (the default, 0), from the
  // second, fourth and ninth (runs first, then a container), and at mapAt (a container
  // that may be crowded enough for a map from the start), never past mapAt.
  for (const [length, options, bits] of shapes) {
    const mapAt = options.mapAt ?? 64;
    for (const runContainerAt of new Set([0, 1, 3, 8, mapAt].map((v) => Math.min(v, mapAt)))) {
      const tree = new RangeTreeStore(length, { bits, ...options, runContainerAt });
      const oracle = new BitmapStore(length, { bits });
      for (let step = 0; step < 600; step++) {
        const r = rng.next();
        const size = r < 0.5
          ? 1
          : r < 0.8
          ? 1 + rng.int(16)
          : 1 + rng.int(Math.max(1, length >> 2));
        const start = rng.int(length - Math.min(size, length) + 1);
        const end = Math.min(length, start + size);
        const what = randomEdit(rng, [tree, oracle], start, end, bits);
        const shape = `length ${length} bits ${bits} runContainerAt ${runContainerAt}`;
        assertSame(tree, oracle, rng, `${shape} step ${step} ${what}`);
      }
    }
  }
});

Deno.test("containers: a span goes runs, run container, chunk map, run container, runs", () => {
  // range_tree_store.ts: with runContainerAt 2 an edit that would take a span past 2
  // boundaries makes it a run container first (#edit, #toContainer); more than mapAt boundaries a chunk map (#mapIfCrowded, the span of
  // 128 pages is over MAP_FLOOR at once); at mapAt / 2 back to a run container (#toRuns);
  // at runContainerAt / 2 back to runs (#containerToRuns). Each step checked against the
  // bitmap, and the kinds seen are asserted, so a path that silently stays in one form fails.
  const rng = seeded("span life");
  const tree = new RangeTreeStore(512, { bits: 1, ...SMALL, runContainerAt: 2 });
  const oracle = new BitmapStore(512, { bits: 1 });
  const flip = (page: number, on: boolean) => {
    for (const s of [tree, oracle]) s.update(page, page + 1, on ? 1 : 0, on ? 0 : 1);
    assertSame(tree, oracle, rng, `page ${page} ${on ? "on" : "off"}`);
    const { runContainers, maps } = tree.stats();
    return runContainers > 0 ? "container" : maps > 0 ? "map" : "runs";
  };
  assert.equal(flip(130, true), "runs"); // 2 boundaries in span 1
  assert.equal(flip(140, true), "container"); // 4 > 2
  assert.equal(flip(150, true), "map"); // 6 > mapAt 4
  assert.equal(flip(140, false), "map"); // 4: still a map
  assert.equal(flip(150, false), "container"); // 2 = mapAt / 2: a container (2 > 1)
  assert.equal(flip(130, false), "runs"); // 0 <= runContainerAt / 2
  assert.deepEqual(tree.stats(), ONE_RUN);
});

Deno.test("containers: with runContainerAt 0 a boundary never enters the index inside a span", () => {
  // range_tree_store.ts #edit: the span becomes a container before the edit; checkValid
  // fails on a run key strictly inside a span when runContainerAt is 0.
  const rng = seeded("no inside keys");
  const tree = new RangeTreeStore(1024, { bits: 2, ...SMALL, runContainerAt: 0 });
  const oracle = new BitmapStore(1024, { bits: 2 });
  for (let step = 0; step < 300; step++) {
    const start = rng.int(1024), end = Math.min(1024, start + 1 + rng.int(300));
    const what = randomEdit(rng, [tree, oracle], start, end, 2);
    assertSame(tree, oracle, rng, `step ${step} ${what}`);
    // Keys only on the 8 span edges (and the store's start): at most 8 entries.
    assert.ok(tree.stats().entries <= 8, `step ${step}: ${JSON.stringify(tree.stats())}`);
  }
});

Deno.test("containers: recolouring whole chunks keeps runs maximal across map edges", () => {
  // A map whose uniform chunks share their neighbours' states: runs must merge over them.
  const tree = new RangeTreeStore(1024, { bits: 2, ...SMALL });
  const oracle = new BitmapStore(1024, { bits: 2 });
  // Crowd span [128, 256) with chunk-aligned boundaries: it becomes a map of uniform chunks.
  for (let c = 4; c < 8; c++) {
    for (const s of [tree, oracle]) {
      s.set(c * 32, c * 32 + 32, c % 2);
      s.set(c * 32 + 8, c * 32 + 16, 2); // and a fragment inside: dense chunks
    }
  }
  assert.ok(tree.stats().maps >= 1, `expected a map: ${JSON.stringify(tree.stats())}`);
  // Now make the whole span one colour chunk by chunk, and equal to the run around it.
  for (let c = 4; c < 8; c++) {
    for (const s of [tree, oracle]) s.set(c * 32, c * 32 + 32, 0);
    tree.checkValid();
    assert.deepEqual([...tree.runs()], [...oracle.runs()], `after chunk ${c}`);
  }
  assert.deepEqual([...tree.runs()], [{ start: 0, end: 1024, state: 0 }]);
  assert.equal(tree.runCount, 1);
  assert.deepEqual(tree.stats().maps, 0);
});

Deno.test("containers: a run is maximal from a run entry through uniform and dense chunks", () => {
  const tree = new RangeTreeStore(512, { bits: 2, ...SMALL });
  const oracle = new BitmapStore(512, { bits: 2 });
  for (const s of [tree, oracle]) {
    for (let p = 130; p < 256; p += 3) s.set(p, p + 1, 2); // span [128, 256) crowds
    s.set(100, 190, 1); // one run: a run entry, uniform chunk 4, most of dense chunk 5
  }
  tree.checkValid();
  const stats = tree.stats();
  assert.ok(stats.maps === 1 && stats.denseChunks >= 2, JSON.stringify(stats));
  const runs = [...tree.runs()];
  assert.deepEqual(runs, [...oracle.runs()]);
  assert.deepEqual(runs.slice(0, 3), [
    { start: 0, end: 100, state: 0 },
    { start: 100, end: 190, state: 1 },
    { start: 190, end: 191, state: 2 }, // 130 + 3k pages stay 2
  ]);
  assert.equal(tree.runCount, runs.length);
});

Deno.test("containers: editing while iterating runs() behaves like the bitmap", () => {
  const rng = seeded("edit while iterating");
  const length = 1500;
  const tree = new RangeTreeStore(length, { bits: 2, ...SMALL });
  const oracle = new BitmapStore(length, { bits: 2 });
  for (let i = 0; i < 300; i++) {
    const p = rng.int(length);
    const state = rng.int(4);
    tree.set(p, p + 1, state);
    oracle.set(p, p + 1, state);
  }
  const edits: [number, number, number][] = [];
  for (let i = 0; i < 400; i++) {
    const p = rng.int(length);
    edits.push([p, Math.min(length, p + 1 + rng.int(40)), rng.int(4)]);
  }
  const walk = (store: StateStore) => {
    const seen = [];
    let i = 0;
    for (const run of store.runs()) {
      seen.push(run);
      const [s, e, state] = edits[i++ % edits.length];
      store.set(s, e, state); // ahead of, inside or behind the cursor
    }
    return seen;
  };
  assert.deepEqual(walk(tree), walk(oracle));
  tree.checkValid();
  assert.deepEqual([...tree.runs()], [...oracle.runs()]);
});

Deno.test("containers: many maps made and released leave a small, compacted store", () => {
  const rng = seeded("compaction");
  const length = 32 * 4 * 64; // 64 spans of 128 pages
  const tree = new RangeTreeStore(length, { bits: 2, ...SMALL });
  const oracle = new BitmapStore(length, { bits: 2 });
  for (let i = 0; i < 6000; i++) {
    const p = rng.int(length);
    tree.update(p, p + 1, 1, 0);
    oracle.update(p, p + 1, 1, 0);
  }
  const busy = tree.stats();
  assert.ok(busy.maps > 32 && busy.denseChunks > 64, JSON.stringify(busy));
  const peak = tree.byteSize();
  // Calm all spans but three, in random order: slots are freed and the arenas compact.
  const spans = Array.from({ length: 64 }, (_, i) => i);
  for (let i = spans.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [spans[i], spans[j]] = [spans[j], spans[i]];
  }
  for (const span of spans.slice(3)) {
    tree.set(span * 128, span * 128 + 128, 0);
    oracle.set(span * 128, span * 128 + 128, 0);
    assertSame(tree, oracle, rng, `after calming span ${span}`);
  }
  assert.ok(tree.stats().maps <= 3, JSON.stringify(tree.stats()));
  // Without compaction the arenas would keep room for all 64 maps (about the
  // peak); three maps and the index's floor are about a third of it (2.99x for
  // seed 2647117815 since dense chunks carry 4 bytes of metadata).
  assert.ok(tree.byteSize() * 2.5 < peak, `byteSize ${tree.byteSize()} vs peak ${peak}`);
  // Calm the last ones too: nothing of the containers may remain (the last one to go leaves a
  // heap that held many: RunContainers.release keeps nothing of it).
  tree.set(0, length, 2);
  assert.equal(
    tree.byteSize(),
    new RangeTreeStore(length, { bits: 2, ...SMALL, initial: 2 }).byteSize(),
  );
});

Deno.test("range-tree options: bad tuning values throw naming the option", () => {
  assert.throws(
    () => new RangeTreeStore(100, { chunkPages: 48 }),
    /chunkPages: must be a power of two, got 48/,
  );
  assert.throws(() => new RangeTreeStore(100, { chunkPages: 16 }), /chunkPages: must be in \[32, /);
  assert.throws(
    () => new RangeTreeStore(100, { mapChunks: 3 }),
    /mapChunks: must be a power of two, got 3/,
  );
  assert.throws(() => new RangeTreeStore(100, { mapChunks: 1 }), /mapChunks: must be in \[2, /);
  assert.throws(() => new RangeTreeStore(100, { mapAt: 1 }), /mapAt: must be in \[2, /);
  assert.throws(
    () => new RangeTreeStore(100, { chunkPages: 2 ** 20, mapChunks: 2 ** 11 }),
    /mapChunks: chunkPages \* mapChunks must be at most 2\^30/,
  );
  assert.throws(() => new RangeTreeStore(100, { mapAt: 2.5 }), TypeError);
  assert.throws(
    () => new RangeTreeStore(100, { runContainerAt: -1 }),
    /runContainerAt: must be in \[0, /,
  );
  // Only a run container turns into a chunk map: above mapAt it would keep maps away.
  assert.throws(
    () => new RangeTreeStore(100, { mapAt: 8, runContainerAt: 9 }),
    /runContainerAt: must be in \[0, 8\], got 9/,
  );
  assert.throws(() => new RangeTreeStore(100, { runContainerAt: 1.5 }), TypeError);
});

for (
  const [containerAt, after] of [
    // runContainerAt / 2 = 2: the map's 2 boundaries go back into index entries.
    [4, { entries: 3, runContainers: 0, maps: 0, denseChunks: 0, leaves: 1 }],
    // The default (2, half of it 1): 2 boundaries are more, so a run container holds them.
    [undefined, { entries: 2, runContainers: 1, maps: 0, denseChunks: 0, leaves: 1 }],
  ] as const
) {
  Deno.test(`containers: a one-page flip that calms a map turns it back (runContainerAt ${containerAt})`, () => {
    // range_tree_store.ts: a map whose change count falls to mapAt / 2 turns back into a run
    // container, or into runs when that leaves at most runContainerAt / 2 boundaries; also when
    // the flip that calms it is a single page strictly inside a chunk that stays dense (the
    // one-page shortcut, #editDensePage, must leave that case to the full path).
    const rng = seeded("one-page calm");
    const tree = new RangeTreeStore(512, { bits: 1, ...SMALL, runContainerAt: containerAt });
    const oracle = new BitmapStore(512, { bits: 1 });
    for (const page of [5, 9, 13]) for (const s of [tree, oracle]) s.update(page, page + 1, 1, 0);
    assertSame(tree, oracle, rng, "three single pages");
    assert.deepEqual(tree.stats().maps, 1, JSON.stringify(tree.stats())); // 6 boundaries > mapAt 4
    for (const s of [tree, oracle]) s.update(9, 10, 0, 1); // 4 boundaries: still a map
    assertSame(tree, oracle, rng, "page 9 back");
    assert.deepEqual(tree.stats().maps, 1);
    for (const s of [tree, oracle]) s.update(13, 14, 0, 1); // 2 boundaries = mapAt / 2
    assertSame(tree, oracle, rng, "page 13 back");
    assert.deepEqual(tree.stats(), after);
  });
}
