/**
 * src/hw/_frame_bits.ts: the attribute table's bit per frame, a range tree
 * with bitmap blocks where one-frame sets keep coming. The rule: whatever
 * the sets, it reads (bits, runs, counts) exactly as a one-bit range store
 * given the same sets, and its invariants hold (the store holds 0 under a
 * block, no block is uniform, the counts are the bits'). MEMSTATE_SEED
 * replays the random part.
 */

import assert from "node:assert/strict";
import { BLOCK_AFTER, BLOCK_FRAMES, FrameBits } from "../src/hw/_frame_bits.ts";
import { KVM_MEMORY_ATTRIBUTE_PRIVATE } from "../src/hw/backend.ts";
import { SimMemoryAttributes } from "../src/hw/sim/mod.ts";
import { RangeTreeStore } from "../src/store/range_tree_store.ts";
import { Prng } from "../src/util/prng.ts";
import { testSeed } from "./helpers/env.ts";

/** Everything the table shows, against the oracle's, and the table's own invariants. */
function assertSame(bits: FrameBits, oracle: RangeTreeStore, rng: Prng, note: string): void {
  bits.checkValid();
  const whole = [...oracle.runs(0, oracle.length)];
  assert.deepEqual([...bits.runs(0, bits.length)], whole, `${note}: runs`);
  assert.equal(bits.runCount, oracle.runCount, `${note}: runCount`);
  let ones = 0;
  for (const run of whole) if (run.state === 1) ones += run.end - run.start;
  assert.equal(bits.ones, ones, `${note}: ones`);
  // A window that starts and ends anywhere near the blocks, and a few frames.
  const start = near(rng, bits.length),
    end = Math.min(bits.length, start + rng.int(3 * BLOCK_FRAMES));
  assert.deepEqual([...bits.runs(start, end)], [...oracle.runs(start, end)], `${note}: window`);
  for (let k = 0; k < 8; k++) {
    const frame = Math.min(bits.length - 1, near(rng, bits.length));
    assert.equal(bits.get(frame), oracle.get(frame), `${note}: frame ${frame}`);
  }
}

/**
 * A frame in one of four busy places four blocks long (the table's start, a
 * place not aligned to a block, one far in, its end), or anywhere now and then.
 */
function near(rng: Prng, length: number): number {
  if (rng.int(20) === 0) return rng.int(length);
  const places = [
    0,
    7 * BLOCK_FRAMES + 100,
    Math.min(2 ** 40, length / 2),
    length - 4 * BLOCK_FRAMES,
  ];
  return Math.min(length - 1, rng.pick(places) + rng.int(4 * BLOCK_FRAMES));
}

/** One random set: mostly single frames (so blocks form), ranges over block edges, whole blocks. */
function randomSet(rng: Prng, length: number): [number, number, number] {
  const state = rng.int(2);
  const kind = rng.int(10);
  const start = near(rng, length);
  if (kind < 7) return [start, start + 1, state];
  if (kind === 7) {
    // A range that may cut a block's head or tail, or reach over several blocks.
    return [start, Math.min(length, start + 1 + rng.int(3 * BLOCK_FRAMES)), state];
  }
  if (kind === 8) {
    // Whole blocks, aligned.
    const first = Math.floor(start / BLOCK_FRAMES) * BLOCK_FRAMES;
    return [first, Math.min(length, first + BLOCK_FRAMES * (1 + rng.int(3))), state];
  }
  // A huge range: to the table's end, or from its start.
  return rng.int(2) === 0 ? [start, length, state] : [0, start + 1, state];
}

Deno.test("FrameBits reads as a one-bit range store given the same sets, random sets", () => {
  const rng = new Prng(testSeed("FrameBits"));
  for (const length of [2 ** 52, 64 * BLOCK_FRAMES]) {
    const bits = new FrameBits(length);
    const oracle = new RangeTreeStore(length, { bits: 1 });
    for (let op = 0; op < 4000; op++) {
      const [start, end, state] = randomSet(rng, length);
      bits.set(start, end, state);
      oracle.set(start, end, state);
      if (op % 200 === 199) assertSame(bits, oracle, rng, `length ${length}, set ${op}`);
    }
    assertSame(bits, oracle, rng, `length ${length}, at the end`);
  }
});

/**
 * A table whose block at `key` took enough one-frame sets to become a
 * bitmap, mixed: every third of its first frames set, and its last.
 */
function withBlock(key: number): { bits: FrameBits; oracle: RangeTreeStore } {
  const bits = new FrameBits(2 ** 52);
  const oracle = new RangeTreeStore(2 ** 52, { bits: 1 });
  const frames = Array.from({ length: 2 * BLOCK_AFTER }, (_, k) => key * BLOCK_FRAMES + 3 * k);
  for (const frame of [...frames, (key + 1) * BLOCK_FRAMES - 1]) {
    bits.set(frame, frame + 1, 1);
    oracle.set(frame, frame + 1, 1);
  }
  return { bits, oracle };
}

Deno.test("FrameBits: a range that covers a block whole drops it; a frame set after goes to the store", () => {
  const { bits, oracle } = withBlock(5);
  const rng = new Prng(1);
  for (
    const [start, end, state] of [
      [5 * BLOCK_FRAMES, 6 * BLOCK_FRAMES, 0], // the block, whole: back to the store
      [5 * BLOCK_FRAMES + 9, 5 * BLOCK_FRAMES + 10, 1], // then one frame of it
      [5 * BLOCK_FRAMES, 5 * BLOCK_FRAMES + 17, 1], // its head only
      [6 * BLOCK_FRAMES - 17, 6 * BLOCK_FRAMES + 5, 1], // its tail and past it
    ]
  ) {
    bits.set(start, end, state);
    oracle.set(start, end, state);
    assertSame(bits, oracle, rng, `after [${start}, ${end}) = ${state}`);
  }
});

Deno.test("FrameBits: ranges inside a block, from and to every edge of its words, and its own edges", () => {
  const rng = new Prng(2);
  const edges = [0, 1, 2, 31, 32, 33, 63, 64, 65, 95, BLOCK_FRAMES - 33, BLOCK_FRAMES - 1];
  for (const a of edges) {
    for (const b of [...edges, BLOCK_FRAMES].filter((b) => b > a)) {
      for (const state of [0, 1]) {
        // A fresh block each time: the range must meet the block, not the store.
        const { bits, oracle } = withBlock(9);
        const start = 9 * BLOCK_FRAMES + a, end = 9 * BLOCK_FRAMES + b;
        bits.set(start, end, state);
        oracle.set(start, end, state);
        assertSame(bits, oracle, rng, `[${a}, ${b}) of the block = ${state}`);
      }
    }
  }
});

Deno.test("FrameBits: a block made uniform goes back to the store as one run", () => {
  const { bits, oracle } = withBlock(2);
  // Clear every frame one at a time: the block ends all clear, and must not stay a block.
  const frames = Array.from({ length: 2 * BLOCK_AFTER }, (_, k) => 2 * BLOCK_FRAMES + 3 * k);
  for (const frame of [...frames, 3 * BLOCK_FRAMES - 1]) {
    bits.set(frame, frame + 1, 0);
    oracle.set(frame, frame + 1, 0);
  }
  bits.checkValid(); // no block is uniform
  assert.equal(bits.runCount, 1);
  assert.equal(bits.ones, 0);
  // And filled by a range that leaves it whole: one run of 1s over the block.
  const again = withBlock(2);
  again.bits.set(2 * BLOCK_FRAMES, 2 * BLOCK_FRAMES + 1, 1);
  again.bits.set(2 * BLOCK_FRAMES + 1, 3 * BLOCK_FRAMES - 1, 1);
  again.bits.set(3 * BLOCK_FRAMES - 1, 3 * BLOCK_FRAMES, 1);
  again.bits.checkValid();
  assert.deepEqual([...again.bits.runs(2 * BLOCK_FRAMES - 1, 3 * BLOCK_FRAMES + 1)], [
    { start: 2 * BLOCK_FRAMES - 1, end: 2 * BLOCK_FRAMES, state: 0 },
    { start: 2 * BLOCK_FRAMES, end: 3 * BLOCK_FRAMES, state: 1 },
    { start: 3 * BLOCK_FRAMES, end: 3 * BLOCK_FRAMES + 1, state: 0 },
  ]);
});

Deno.test("FrameBits: a set over all 2^52 frames takes one step, blocks or none", () => {
  const { bits } = withBlock(2 ** 30);
  bits.set(0, 2 ** 52, 1);
  bits.checkValid();
  assert.deepEqual([...bits.runs(0, 2 ** 52)], [{ start: 0, end: 2 ** 52, state: 1 }]);
  assert.equal(bits.ones, 2 ** 52);
});

Deno.test("FrameBits: a bad window is refused as the range store refuses it; a bad length too", () => {
  const bits = new FrameBits(2 ** 52);
  assert.throws(() => bits.runs(5, 4), /^RangeError: start: must not exceed end/);
  assert.throws(() => bits.runs(0, 2 ** 52 + 1), /^RangeError: end: must be in/);
  assert.throws(() => new FrameBits(BLOCK_FRAMES + 1), /^RangeError: length: a positive multiple/);
  assert.throws(() => new FrameBits(0), /^RangeError: length: a positive multiple/);
});

Deno.test("SimMemoryAttributes: one supported attribute (bits) reads as two (a range store), random calls", () => {
  const rng = new Prng(testSeed("SimMemoryAttributes one bit against two"));
  const PAGE = 4096;
  // PRIVATE alone keeps a bit per frame; PRIVATE and a second bit keep words in a range store.
  const one = new SimMemoryAttributes(KVM_MEMORY_ATTRIBUTE_PRIVATE);
  const two = new SimMemoryAttributes(KVM_MEMORY_ATTRIBUTE_PRIVATE | 16);
  for (let op = 0; op < 3000; op++) {
    const [start, end, state] = randomSet(rng, 2 ** 52);
    const gpa = start * PAGE, size = (end - start) * PAGE;
    // Sizes past 2^53 are not exact doubles: such calls are the whole space's, or skipped.
    if (!Number.isSafeInteger(size) || !Number.isSafeInteger(gpa)) continue;
    if (gpa + size >= 2 ** 64) continue; // the kernel refuses a range that reaches 2^64
    const attributes = state === 1 ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
    one.set(gpa, size, attributes);
    two.set(gpa, size, attributes);
    if (op % 300 === 299) {
      assert.equal(one.privateBytes(), two.privateBytes(), `privateBytes after ${op}`);
      assert.equal(one.runCount, two.runCount, `runCount after ${op}`);
      const at = near(rng, 2 ** 52) * PAGE;
      assert.equal(one.get(at), two.get(at), `get(${at}) after ${op}`);
      const window = near(rng, 2 ** 40) * PAGE;
      assert.deepEqual(
        [...one.runs(window, 2 * BLOCK_FRAMES * PAGE)],
        [...two.runs(window, 2 * BLOCK_FRAMES * PAGE)],
        `runs after ${op}`,
      );
    }
  }
  assert.deepEqual([...one.runs()], [...two.runs()]);
});

Deno.test("FrameBits: one-frame sets make a block only where they keep coming", () => {
  assert.equal(withBlock(3).bits.blocks, 1, "32 sets into one block make it a bitmap");
  // Scattered: one set in each of many blocks, more than the counters hold.
  const scattered = new FrameBits(2 ** 52);
  for (let k = 0; k < 4 * BLOCK_AFTER * 256; k++) {
    const frame = k * 7 * BLOCK_FRAMES + 5;
    scattered.set(frame, frame + 1, 1);
  }
  assert.equal(scattered.blocks, 0, "no block from scattered sets");
  // Two blocks that share a counter take turns: each resets the other's count.
  const turns = new FrameBits(2 ** 52);
  for (let k = 0; k < 2 * BLOCK_AFTER; k++) {
    for (const key of [4, 4 + 256]) {
      turns.set(key * BLOCK_FRAMES + k, key * BLOCK_FRAMES + k + 1, 1);
    }
  }
  assert.equal(turns.blocks, 0, "sets counted in the same slot by turns make no block");
  // The count starts over when a block takes the counter: the next sixteen in a row, not fewer.
  for (let k = 0; k < BLOCK_AFTER - 1; k++) {
    turns.set(4 * BLOCK_FRAMES + 100 + k, 4 * BLOCK_FRAMES + 101 + k, 1);
  }
  assert.equal(turns.blocks, 0, "fifteen in a row make none yet");
  turns.set(4 * BLOCK_FRAMES + 200, 4 * BLOCK_FRAMES + 201, 1);
  assert.equal(turns.blocks, 1, "the sixteenth does");
  turns.checkValid();
});

Deno.test("FrameBits: runs are read afresh from where the last ended, so an edit between them shows", () => {
  // Blocks 0 and 5 are bitmaps; the range store is the oracle, edited at the same point.
  const { bits, oracle } = withBlock(0);
  for (let k = 0; k < 2 * BLOCK_AFTER; k++) {
    const frame = 5 * BLOCK_FRAMES + 2 * k;
    bits.set(frame, frame + 1, 1);
    oracle.set(frame, frame + 1, 1);
  }
  assert.equal(bits.blocks, 2);
  const seen: { bits: unknown[]; oracle: unknown[] } = { bits: [], oracle: [] };
  for (const [table, out] of [[bits, seen.bits], [oracle, seen.oracle]] as const) {
    let first = true;
    for (const run of table.runs(0, 8 * BLOCK_FRAMES)) {
      out.push(run);
      if (first) table.set(5 * BLOCK_FRAMES, 6 * BLOCK_FRAMES, 0); // block 5 goes, mid-iteration
      first = false;
    }
  }
  assert.deepEqual(seen.bits, seen.oracle);
  bits.checkValid();
});

Deno.test("SimMemoryAttributes: with one supported bit that is not PRIVATE, no byte is private", () => {
  // The word's one bit stands for attribute 16 here: privateBytes counts PRIVATE (8) only.
  const table = new SimMemoryAttributes(16);
  table.set(0, 2 ** 30, 16);
  for (let k = 0; k < 2 * BLOCK_AFTER; k++) table.set(2 ** 31 + k * 4096, 4096, 16);
  assert.equal(table.privateBytes(), 0);
  assert.equal(table.get(0), 16);
  const private_ = new SimMemoryAttributes(KVM_MEMORY_ATTRIBUTE_PRIVATE);
  private_.set(0, 2 ** 30, KVM_MEMORY_ATTRIBUTE_PRIVATE);
  for (let k = 0; k < 2 * BLOCK_AFTER; k++) private_.set(2 ** 31 + k * 4096, 4096, 8);
  assert.equal(private_.privateBytes(), 2 ** 30 + 2 * BLOCK_AFTER * 4096);
});
