// The range tree's building blocks against plain models: the ExtentIndex (a
// cursor over npm sorted-btree), the SpanDirectory (an open
// addressing hash table), the RunContainers' shared heap and the DenseSlab's
// change counting.
// Reproduce a failure with MEMSTATE_SEED=<seed>.
import assert from "node:assert/strict";
import { DenseSlab } from "../src/store/_dense_slab.ts";
import { ExtentIndex } from "../src/store/_extent_index.ts";
import { KEEP_CONTAINERS, KEEP_PAIRS, RunContainers } from "../src/store/_run_containers.ts";
import { SpanDirectory } from "../src/store/_span_directory.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";

function seeded(name: string): Prng {
  const seed = seedFromEnv();
  console.log(`${name}: seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  return new Prng(seed);
}

/** Every (key, value) of the index in key order, checking the tree's own bookkeeping. */
function entries(index: ExtentIndex): [number, number][] {
  index.checkValid();
  const out = [...index.entries()];
  assert.equal(out.length, index.size);
  return out;
}

for (const limit of [5000, 2 ** 40]) {
  Deno.test(`extent index: random edits and lookups match a sorted model (keys < ${limit})`, () => {
    const rng = seeded("extent index");
    const index = new ExtentIndex(limit, 7);
    const model = new Map<number, number>([[0, 7]]);
    // Keys drawn from a few clusters and the whole range, so leaves both crowd and stay sparse.
    const key = () =>
      rng.chance(0.7) ? 1 + rng.int(Math.min(limit - 1, 3000)) : 1 + rng.int(limit - 1);
    for (let step = 0; step < 6000; step++) {
      const note = `step ${step}`;
      const k = key();
      const r = rng.next();
      if (r < 0.5 && !model.has(k)) {
        index.insert(k, step);
        model.set(k, step);
        assert.equal(index.key(), k, `${note}: cursor after insert`);
      } else if (r < 0.8 && model.size > 1) {
        const keys = [...model.keys()].filter((x) => x !== 0);
        const victim = rng.pick(keys);
        index.remove(victim);
        model.delete(victim);
      } else if (model.size > 1) {
        // Move a key within its gap with setKeyHere.
        const sorted = [...model.keys()].sort((a, b) => a - b);
        const i = 1 + rng.int(sorted.length - 1);
        const lo = sorted[i - 1] + 1, hi = i + 1 < sorted.length ? sorted[i + 1] - 1 : limit - 1;
        const to = lo + rng.int(hi - lo + 1);
        index.seek(sorted[i]);
        index.setKeyHere(to);
        const value = model.get(sorted[i])!;
        model.delete(sorted[i]);
        model.set(to, value);
      }
      if (step % 25 === 0) {
        const sorted = [...model.entries()].sort((a, b) => a[0] - b[0]);
        assert.deepEqual(entries(index), sorted, note);
      }
      // seek: the last key <= probe, and its neighbours.
      const probe = rng.chance(0.5) ? key() : rng.int(limit);
      index.seek(probe);
      let expect = 0;
      for (const x of model.keys()) if (x <= probe && x > expect) expect = x;
      assert.equal(index.key(), expect, `${note}: seek(${probe})`);
      assert.equal(index.value(), model.get(expect), `${note}: value`);
      let next = limit;
      for (const x of model.keys()) if (x > expect && x < next) next = x;
      assert.equal(index.nextKey(), next, `${note}: nextKey`);
      if (step % 10 === 0) {
        // countInside, exact or capped, and a short walk both ways from the probe.
        const sorted = [...model.keys()].sort((a, b) => a - b);
        const lo = rng.int(limit - 1), hi = lo + 1 + rng.int(limit - lo);
        const inside = sorted.filter((x) => x > lo && x < hi).length;
        assert.equal(index.countInside(lo, hi, Infinity), inside, `${note}: countInside`);
        const cap = rng.int(8);
        const capped = index.countInside(lo, hi, cap);
        if (inside <= cap) assert.equal(capped, inside, `${note}: countInside capped`);
        else assert.ok(capped > cap, `${note}: countInside capped at ${cap}: ${capped}`);
        index.seek(probe);
        let at = sorted.indexOf(expect);
        for (let i = 0; i < 40 && index.stepNext(); i++) {
          at++;
          assert.equal(index.key(), sorted[at], `${note}: stepNext ${i}`);
          assert.equal(index.prevKey(), sorted[at - 1], `${note}: prevKey after stepNext ${i}`);
        }
        for (let i = 0; i < 5 && index.stepPrev(); i++) {
          at--;
          assert.equal(index.key(), sorted[at], `${note}: stepPrev ${i}`);
          assert.equal(index.nextKey(), sorted[at + 1], `${note}: nextKey after stepPrev ${i}`);
        }
      }
    }
  });
}

Deno.test("extent index: walks of two indexes in turn, with edits between steps, match a model", () => {
  // Forward walks read ahead into a buffer all indexes share: taking turns and
  // editing mid-walk must never hand one index another's (or stale) entries.
  const rng = seeded("extent index walks");
  const indexes = [new ExtentIndex(100_000, 1), new ExtentIndex(100_000, 2)];
  const models = [new Map([[0, 1]]), new Map([[0, 2]])];
  for (const [i, index] of indexes.entries()) {
    // The same keys in both, with different values: a mix-up shows.
    index.seek(0);
    for (let k = 1; k <= 500; k++) {
      index.insertAfter(k * 97, k * 10 + i);
      models[i].set(k * 97, k * 10 + i);
    }
  }
  for (let round = 0; round < 300; round++) {
    const i = rng.int(2);
    const index = indexes[i], model = models[i];
    const sorted = [...model.keys()].sort((a, b) => a - b);
    let at = rng.int(sorted.length);
    index.seek(sorted[at]);
    for (let step = 0; step < 60; step++) {
      if (rng.chance(0.1)) {
        // Edit: insert a fresh key right after the cursor (when there is room).
        const next = at + 1 < sorted.length ? sorted[at + 1] : 100_000;
        if (next - sorted[at] > 1) {
          const key = sorted[at] + 1;
          index.insertAfter(key, -key);
          model.set(key, -key);
          sorted.splice(++at, 0, key);
        }
      }
      if (rng.chance(0.1) && at + 1 < sorted.length) {
        // Edit: remove the entry after the cursor, or change its value.
        const next = sorted[at + 1];
        if (rng.chance(0.5)) {
          index.removeAfter();
          model.delete(next);
          sorted.splice(at + 1, 1);
        } else {
          index.setValue(next, -next);
          model.set(next, -next);
          index.seek(sorted[at]);
        }
      }
      if (rng.chance(0.1)) {
        // The other index walks a little meanwhile, from this cursor's key.
        const other = indexes[1 - i];
        other.seek(sorted[at]);
        other.stepNext();
        other.stepNext();
      }
      const moved = index.stepNext();
      assert.equal(moved, at + 1 < sorted.length, `round ${round} step ${step}: stepNext`);
      if (!moved) break;
      at++;
      assert.equal(index.key(), sorted[at], `round ${round} step ${step}: key`);
      assert.equal(index.value(), model.get(sorted[at]), `round ${round} step ${step}: value`);
    }
  }
  for (const [i, index] of indexes.entries()) {
    assert.deepEqual(entries(index), [...models[i].entries()].sort((a, b) => a[0] - b[0]));
  }
});

Deno.test("extent index: inserting and removing after the cursor keeps it on its entry", () => {
  const index = new ExtentIndex(10_000, 0);
  index.seek(0);
  for (let k = 1; k <= 1000; k++) index.insertAfter(k * 3, k); // forces many splits
  assert.equal(index.key(), 3000);
  assert.equal(index.size, 1001);
  index.seek(1500);
  index.removeAfter(); // 1503 goes, the cursor stays on 1500
  assert.equal(index.key(), 1500);
  index.removeHere(); // 1500 goes, the cursor moves back to 1497
  assert.equal(index.key(), 1497);
  for (let k = 1; k < 1000; k++) {
    index.seek(k * 3);
    if (index.key() === k * 3) index.removeHere(); // merges leaves as they empty
  }
  assert.deepEqual(entries(index), [[0, 0], [3000, 1000]]);
  assert.equal(index.leafCount(), 1);
});

Deno.test("span directory: matches a Map under random sets and deletes", () => {
  const rng = seeded("span directory");
  const directory = new SpanDirectory();
  const model = new Map<number, number>();
  for (let step = 0; step < 20_000; step++) {
    // Small spans, and huge ones whose low 32 bits collide.
    const span = rng.chance(0.5) ? rng.int(300) : rng.int(8) * 2 ** 32 + rng.int(4);
    if (rng.chance(0.6)) {
      directory.set(span, step);
      model.set(span, step);
    } else if (model.has(span)) {
      directory.delete(span);
      model.delete(span);
    }
    assert.equal(directory.size, model.size, `step ${step}: size`);
    const probe = rng.chance(0.5) ? span : rng.int(400);
    assert.equal(directory.get(probe), model.get(probe) ?? -1, `step ${step}: get(${probe})`);
  }
  for (const [span, slot] of model) assert.equal(directory.get(span), slot);
  for (const span of [...model.keys()]) directory.delete(span);
  assert.equal(directory.size, 0);
  assert.equal(directory.byteSize(), 0);
});

Deno.test("dense slab: change counts and next-change scans match page-by-page reads", () => {
  const rng = seeded("dense slab");
  for (const bits of [1, 2, 5]) {
    const slab = new DenseSlab(64, bits, 4);
    const a = slab.alloc(0), b = slab.alloc(64);
    for (let step = 0; step < 300; step++) {
      const slot = rng.chance(0.5) ? a : b;
      const from = rng.int(64), to = from + 1 + rng.int(64 - from);
      const keep = rng.int(2 ** bits), put = rng.int(2 ** bits) & ~keep;
      if (to - from === 1 && rng.chance(0.5)) slab.flip(slot, from, rng.int(2 ** bits));
      else slab.apply(slot, from, to, keep, put);
      const states = Array.from({ length: 64 }, (_, i) => slab.read(slot, i));
      const lo = 1 + rng.int(63), hi = lo + rng.int(64 - lo);
      let changes = 0;
      for (let i = lo; i <= hi; i++) if (states[i] !== states[i - 1]) changes++;
      assert.equal(slab.changesIn(slot, lo, hi), changes, `bits ${bits} step ${step}`);
      const start = rng.int(64), limit = start + 1 + rng.int(64 - start);
      let next = start + 1;
      while (next < limit && states[next] === states[start]) next++;
      assert.equal(slab.nextChange(slot, start, limit), Math.min(next, limit));
    }
  }
});

Deno.test("run containers: pairs survive inserts, removals, moves, releases and compaction", () => {
  // _run_containers.ts: rooms grow fourfold and move to the heap's top, the garbage is compacted
  // away when it outweighs half the live rooms; container numbers never change.
  const rng = seeded("run containers");
  const arena = new RunContainers();
  const model = new Map<number, [number, number][]>();
  const read = (id: number): [number, number][] => {
    const out: [number, number][] = [];
    for (let k = 0; k < arena.count[id]; k++) {
      out.push([arena.heap[2 * (arena.base[id] + k)], arena.heap[2 * (arena.base[id] + k) + 1]]);
    }
    return out;
  };
  let heapsSeen = 0, lastHeap = arena.heap;
  for (let step = 0; step < 4000; step++) {
    const ids = [...model.keys()];
    const r = rng.next();
    if (ids.length === 0 || r < 0.05) {
      const id = arena.alloc(1);
      arena.heap[2 * arena.base[id]] = 0;
      arena.heap[2 * arena.base[id] + 1] = rng.int(100);
      arena.count[id] = 1;
      assert.ok(!model.has(id), `step ${step}: number ${id} handed out twice`);
      model.set(id, [[0, arena.heap[2 * arena.base[id] + 1]]]);
    } else if (r < 0.08) {
      const id = ids[rng.int(ids.length)];
      arena.release(id);
      model.delete(id);
    } else {
      const id = ids[rng.int(ids.length)];
      const pairs = model.get(id)!;
      const at = 1 + rng.int(pairs.length);
      if (r < 0.7) {
        const k = 1 + rng.int(2);
        const fresh: [number, number][] = [];
        for (let j = 0; j < k; j++) fresh.push([rng.int(1 << 20), rng.int(100)]);
        arena.insert(id, at, fresh[0][0], fresh[0][1], fresh[k - 1][0], fresh[k - 1][1], k);
        pairs.splice(at, 0, ...fresh);
      } else if (pairs.length > 1) {
        const from = 1 + rng.int(pairs.length - 1);
        const k = Math.min(1 + rng.int(2), pairs.length - from);
        arena.remove(id, from, k);
        pairs.splice(from, k);
      }
    }
    if (arena.heap !== lastHeap) {
      heapsSeen++;
      lastHeap = arena.heap;
    }
    for (const [id, pairs] of model) {
      assert.deepEqual(read(id), pairs, `step ${step}: container ${id}`);
      assert.ok(arena.count[id] <= arena.room[id], `step ${step}: container ${id} over its room`);
      // Rooms shrink: at most eight times the pairs (or the first room of 8).
      assert.ok(
        arena.room[id] <= Math.max(8, 8 * arena.count[id]),
        `step ${step}: container ${id} keeps a room of ${arena.room[id]} for ${arena.count[id]}`,
      );
    }
    assert.equal(arena.live, model.size);
  }
  assert.ok(heapsSeen > 5, `the heap was replaced ${heapsSeen} times: no growth or compaction`);
  // Rooms never overlap: every live container's room is its own.
  const owner = new Map<number, number>();
  for (const id of model.keys()) {
    for (let p = arena.base[id]; p < arena.base[id] + arena.room[id]; p++) {
      assert.ok(!owner.has(p), `pair ${p} in the rooms of ${owner.get(p)} and ${id}`);
      owner.set(p, id);
    }
  }
  assert.ok(arena.byteSize() > 0);
  for (const id of [...model.keys()]) arena.release(id);
  assert.equal(arena.byteSize(), 0, "an arena with no container holds no arrays");
});

Deno.test("run containers: a full room grows fourfold, and shrinks only at an eighth full", () => {
  // _run_containers.ts RunContainers.reserve: a container that fills its room moves to one four
  // times as big (8, 32, 128 pairs), so a crowded span's container moves twice on its way to 94
  // pairs, not four times; #shrink: it moves back down only at an eighth of its room or less.
  const arena = new RunContainers();
  const id = arena.create([0], [0]);
  const rooms = [arena.room[id]];
  for (let k = 1; k < 100; k++) {
    arena.insert(id, k, k, k & 1);
    if (arena.room[id] !== rooms.at(-1)) rooms.push(arena.room[id]);
  }
  assert.deepEqual(rooms, [8, 32, 128]);
  // 100 pairs in 128: removing down to 17 keeps the room; at 16 (an eighth) it shrinks to 32.
  arena.remove(id, 17, 83);
  assert.equal(arena.room[id], 128);
  arena.remove(id, 16, 1);
  assert.equal(arena.room[id], 32);
  assert.deepEqual(
    Array.from({ length: arena.count[id] }, (_, k) => arena.offsetAt(id, k)),
    Array.from({ length: 16 }, (_, k) => k),
  );
});

Deno.test("run containers: a room just grown does not move again as pairs come and go", () => {
  // _run_containers.ts #shrink: a room grown fourfold holds a quarter of it plus one pair; one
  // removal then must not move it back down (at a quarter it did), nor the next insert up.
  for (const full of [8, 32, 128]) {
    const arena = new RunContainers();
    const id = arena.create([0], [0]);
    for (let k = 1; k <= full; k++) arena.insert(id, k, k, k & 1);
    assert.equal(arena.room[id], 4 * full, `${full} + 1 pairs: the room grew`);
    const room = arena.room[id], base = arena.base[id];
    for (let round = 0; round < 4; round++) {
      arena.remove(id, full, 1);
      arena.insert(id, full, full, full & 1);
      assert.equal(arena.room[id], room, `${full}, round ${round}: the room stays`);
      assert.equal(arena.base[id], base, `${full}, round ${round}: the container stays put`);
    }
  }
});

Deno.test("run containers: the per-container arrays share one buffer and double as numbers run out", () => {
  // _run_containers.ts RunContainers #grow: base, count and room are views of one buffer (one
  // allocation per growth, not three), grown twofold; every number keeps its pairs and the
  // numbers not handed out yet read as free.
  const arena = new RunContainers();
  const capacities = new Set<number>();
  for (let n = 0; n < 300; n++) {
    const id = arena.create([0, 5 + n], [1, n & 1 ? 2 : 0]);
    assert.equal(id, n);
    assert.equal(arena.base.buffer, arena.count.buffer, `${n}: base and count share a buffer`);
    assert.equal(arena.room.buffer, arena.count.buffer, `${n}: room and count share a buffer`);
    const capacity = arena.count.length;
    capacities.add(capacity);
    for (let k = arena.top; k < capacity; k++) assert.equal(arena.isLive(k), false, `${n}: ${k}`);
  }
  assert.deepEqual([...capacities], [8, 16, 32, 64, 128, 256, 512]);
  for (let id = 0; id < 300; id++) {
    assert.deepEqual(
      [arena.offsetAt(id, 0), arena.stateAt(id, 0), arena.offsetAt(id, 1), arena.stateAt(id, 1)],
      [0, 1, 5 + id, id & 1 ? 2 : 0],
      `container ${id} after the growths`,
    );
    assert.equal(arena.room[id], 8);
  }
});

Deno.test("run containers: a last release to reopen keeps at most KEEP_PAIRS pairs and numbers", () => {
  // _run_containers.ts RunContainers.release: once no container is left, and the span went back
  // to runs (`reopen`), a small heap and the per-container arrays stay for the next container
  // (numbered from 0 again); a big heap goes, and so does every array without `reopen`.
  // One container of `pairs` alternating pairs, released to reopen as the last one.
  const releasedWith = (pairs: number): RunContainers => {
    const arena = new RunContainers();
    const offsets = Array.from({ length: pairs }, (_, k) => k);
    arena.release(arena.create(offsets, offsets.map((k) => k & 1)), true);
    return arena;
  };
  // `numbers` one-pair containers, all released to reopen but the last, then containers made and
  // released until the rooms given up (garbage) are compacted away around that one; returns it.
  const compactedAround = (numbers: number): [RunContainers, number] => {
    const arena = new RunContainers();
    const ids = Array.from({ length: numbers }, () => arena.create([0, 1], [0, 1]));
    const last = ids.pop()!;
    for (const id of ids) arena.release(id, true);
    for (let k = 0; k < 50 && arena.heap.length > 2 * KEEP_PAIRS; k++) {
      arena.release(arena.create([0, 1], [0, 1]), true);
    }
    assert.ok(arena.heap.length <= 2 * KEEP_PAIRS, `a small heap: ${arena.heap.length} words`);
    return [arena, last];
  };
  const small = new RunContainers();
  for (let round = 0; round < 3; round++) {
    const id = small.create([0, 10, 20], [1, 2, 1]);
    assert.equal(id, 0, `round ${round}: numbers start again at 0`);
    small.insert(id, 3, 30, 2);
    assert.deepEqual(
      [0, 1, 2, 3].map((k) => [small.offsetAt(id, k), small.stateAt(id, k)]),
      [[0, 1], [10, 2], [20, 1], [30, 2]],
    );
    small.release(id, true);
    assert.equal(small.live, 0);
    assert.equal(small.top, 0);
    assert.ok(small.heap.length > 0 && small.heap.length <= 2 * KEEP_PAIRS);
    assert.ok(small.byteSize() > 0, `round ${round}: the small heap is kept`);
    assert.equal(small.isLive(0), false);
  }
  small.release(small.create([0, 10], [1, 2]));
  assert.equal(small.byteSize(), 0, "without reopen, the last release drops every array");
  // At the bounds: a heap of exactly KEEP_PAIRS pairs is kept, a bigger one is not.
  const atBound = releasedWith(KEEP_PAIRS / 2);
  assert.equal(atBound.heap.length, 2 * KEEP_PAIRS, "a room of KEEP_PAIRS / 2 in a doubled heap");
  assert.ok(atBound.byteSize() > 0, "a heap of exactly KEEP_PAIRS pairs is kept");
  assert.equal(
    releasedWith(KEEP_PAIRS / 2 + 1).byteSize(),
    0,
    "a heap of twice KEEP_PAIRS pairs is dropped",
  );
  // A first container that grew once (room 8, then 32) leaves a heap of 80 pairs: kept, so
  // that a pool emptying between bursts does not allocate its arrays again each time.
  const grown = new RunContainers();
  const id = grown.create([0], [0]);
  for (let k = 1; k <= 8; k++) grown.insert(id, k, k, k & 1);
  assert.equal(grown.room[id], 32);
  assert.equal(grown.heap.length, 2 * 80, "the heap doubles: 4 words per pair of room needed");
  const heap = grown.heap;
  grown.release(id, true);
  assert.ok(grown.byteSize() > 0, `a heap of ${heap.length / 2} pairs is kept`);
  assert.equal(grown.create([0, 1], [0, 1]), 0);
  assert.equal(grown.heap, heap, "the next container opens in the kept heap");
  const big = releasedWith(2 * KEEP_PAIRS);
  assert.equal(big.byteSize(), 0, "a heap over KEEP_PAIRS pairs is dropped");
  assert.equal(big.heap.length, 0);
  // Many small containers: the heap compacts as they go, but the per-container arrays grew
  // past KEEP_PAIRS numbers (a store whose 16,384 spans each held one buffer kept 220 KB).
  const [many, last] = compactedAround(2 * KEEP_CONTAINERS);
  assert.ok(many.count.length > KEEP_CONTAINERS);
  many.release(last, true);
  assert.equal(many.byteSize(), 0, "arrays for more than KEEP_CONTAINERS containers are dropped");
  // Exactly KEEP_CONTAINERS numbers, the heap compacted small the same way: kept.
  const [enough, lastOne] = compactedAround(KEEP_CONTAINERS);
  assert.equal(enough.count.length, KEEP_CONTAINERS);
  enough.release(lastOne, true);
  assert.ok(enough.byteSize() > 0, "arrays for exactly KEEP_CONTAINERS containers are kept");
});

Deno.test("run containers: apply keeps a container's pairs maximal and equal to a page model", () => {
  // _run_containers.ts apply: a range inside one pair splits or recolours it, merging with
  // its neighbours; a range over several pairs is rebuilt. Pairs start at 0, rise, and
  // neighbours differ.
  const rng = seeded("run container apply");
  const size = 96;
  const arena = new RunContainers();
  const id = arena.alloc(1);
  arena.heap[2 * arena.base[id]] = 0;
  arena.heap[2 * arena.base[id] + 1] = 0;
  arena.count[id] = 1;
  const pages = new Int32Array(size);
  for (let step = 0; step < 3000; step++) {
    const a = rng.int(size), b = Math.min(size, a + 1 + rng.int(rng.chance(0.7) ? 4 : size));
    const keep = rng.chance(0.5) ? 0 : rng.int(8), put = rng.int(8) & ~keep;
    arena.apply(id, a, b, size, keep, put);
    for (let p = a; p < b; p++) pages[p] = (pages[p] & keep) | put;
    const pairs: [number, number][] = [];
    for (let k = 0; k < arena.count[id]; k++) {
      pairs.push([arena.heap[2 * (arena.base[id] + k)], arena.heap[2 * (arena.base[id] + k) + 1]]);
    }
    const want: [number, number][] = [];
    for (let p = 0; p < size; p++) {
      if (p === 0 || pages[p] !== pages[p - 1]) want.push([p, pages[p]]);
    }
    assert.deepEqual(pairs, want, `step ${step}: [${a}, ${b}) keep ${keep} put ${put}`);
  }
});
