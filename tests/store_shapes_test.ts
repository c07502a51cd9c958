// Known shapes: merging, window clipping, runCount, huge stores, and byteSize.
import assert from "node:assert/strict";
import { BitmapStore, RangeTreeStore, type StateStore } from "../src/store/mod.ts";

const kinds: [string, (length: number) => StateStore][] = [
  ["range-tree", (n) => new RangeTreeStore(n, { bits: 2 })],
  ["bitmap", (n) => new BitmapStore(n, { bits: 2 })],
];

for (const [kind, make] of kinds) {
  Deno.test(`${kind}: neighbours with equal state merge into one run`, () => {
    const s = make(100);
    s.set(10, 20, 1);
    s.set(30, 40, 1);
    assert.equal(s.runCount, 5);
    s.set(20, 30, 1); // fills the gap: [10, 40) is now one run
    assert.equal(s.runCount, 3);
    assert.deepEqual([...s.runs()], [
      { start: 0, end: 10, state: 0 },
      { start: 10, end: 40, state: 1 },
      { start: 40, end: 100, state: 0 },
    ]);
    s.update(0, 100, 0, 1); // everything back to 0
    assert.equal(s.runCount, 1);
  });

  Deno.test(`${kind}: runs are clipped to the window`, () => {
    const s = make(64);
    s.set(8, 24, 2);
    assert.deepEqual([...s.runs(12, 30)], [
      { start: 12, end: 24, state: 2 },
      { start: 24, end: 30, state: 0 },
    ]);
    assert.deepEqual([...s.runs(9, 10)], [{ start: 9, end: 10, state: 2 }]);
    assert.deepEqual([...s.runs(5, 5)], []);
  });

  Deno.test(`${kind}: runCount on an alternating shape`, () => {
    const s = make(1000);
    for (let p = 0; p < 1000; p += 2) s.set(p, p + 1, 3);
    assert.equal(s.runCount, 1000);
    s.set(0, 1000, 3);
    assert.equal(s.runCount, 1);
  });

  Deno.test(`${kind}: update with a bit in both masks clears it; no-op changes nothing`, () => {
    const s = make(16);
    s.update(0, 16, 1, 1);
    assert.equal(s.get(0), 0);
    s.update(4, 8, 2, 0);
    s.update(4, 8, 2, 0);
    assert.deepEqual([...s.runs()].map((r) => r.state), [0, 2, 0]);
  });
}

Deno.test("range-tree: a 2^40-page store (4 PiB at 4 KiB) with a few runs", () => {
  const n = 2 ** 40;
  const s = new RangeTreeStore(n, { bits: 2 });
  s.set(n - 1, n, 1);
  s.set(2 ** 39, 2 ** 39 + 512, 3);
  s.update(0, n, 2, 0);
  assert.equal(s.get(n - 1), 3);
  assert.equal(s.get(0), 2);
  assert.deepEqual([...s.runs()], [
    { start: 0, end: 2 ** 39, state: 2 },
    { start: 2 ** 39, end: 2 ** 39 + 512, state: 3 },
    { start: 2 ** 39 + 512, end: n - 1, state: 2 },
    { start: n - 1, end: n, state: 3 },
  ]);
  // Kilobytes, not a bitmap's 256 GiB: the index (one leaf) and, since two spans hold a
  // boundary, two run containers with the span directory (their typed arrays' headers, about
  // 1.2 KB, are most of it).
  assert.deepEqual(s.stats().runContainers, 2);
  assert.ok(s.byteSize() < 3 * 1024, `byteSize ${s.byteSize()}`);
});

Deno.test("byteSize: the range tree grows with runs, the bitmap with length", () => {
  const tree = new RangeTreeStore(2 ** 20, { bits: 2 });
  const bitmap = new BitmapStore(2 ** 20, { bits: 2 });
  assert.equal(bitmap.byteSize(), 2 * (2 ** 20 / 32) * 4);
  const small = tree.byteSize();
  for (let p = 0; p < 2000; p += 2) tree.set(p, p + 1, 1);
  assert.ok(tree.byteSize() > small);
  assert.ok(tree.byteSize() < bitmap.byteSize());
});
