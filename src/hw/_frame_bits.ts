/**
 * One bit per guest frame, for the attribute table of a VM that supports a
 * single attribute (KVM defines only PRIVATE): a {@link RangeTreeStore} of
 * one bit holds the long runs, and a block of {@link BLOCK_FRAMES} frames
 * that keeps taking one-frame sets becomes a plain bitmap, where such a set
 * is a word's bit and a count.
 *
 * Why: a one-frame set in the range tree's crowded span costs 39-40 ns
 * where a bitmap's bit costs 5.5 ns (the tree keeps its run counts exact at
 * every edit), and the table takes one per 4 KiB conversion, on every
 * simulated VM and on /dev/kvm where the kernel has no private memory. The
 * attribute table's one-frame set over the `linux 4k` rows' pages went from
 * 46-47 ns to 16-17 ns (README, "What round 13 changed").
 *
 * Invariant: the store holds 0 for every frame of a bitmap block, whose bits
 * are the truth there; a block whose bits all agree goes back to the store
 * as one run, so no block is uniform. Memory: the store's, plus 516 bytes
 * per block that is not uniform and took {@link BLOCK_AFTER} one-frame sets
 * counted in the same slot (sets scattered over many blocks make none).
 *
 * @module
 */

import { RangeTreeStore } from "../store/range_tree_store.ts";
import type { Run } from "../store/state_store.ts";
import { checkRange } from "../store/validate.ts";
import { countPagesWith } from "../store/_read_runs.ts";
import { clearBitRange, countBits, findNextBit, popcount, setBitRange } from "../store/_bit_ops.ts";

/** Frames per bitmap block: 4,096 (16 MiB of 4 KiB frames), 512 bytes of bits. */
export const BLOCK_FRAMES = 4096;
const WORDS = BLOCK_FRAMES / 32;
/** Where a block keeps its count of set bits, after its words. */
const ONES = WORDS;
/**
 * One-frame sets into a block before it becomes a bitmap: a frame set once
 * (a scattered buffer) stays in the range tree, which holds it in a few
 * bytes; a block that keeps taking them is converting 4 KiB at a time.
 */
export const BLOCK_AFTER = 16;
/** Blocks kept at hand for one-frame sets, a power of two: 256 MiB of 4 KiB frames. */
const CACHED = 16;
/** Blocks whose one-frame sets are counted at once, a power of two: 4 GiB of 4 KiB frames. */
const HIT_SLOTS = 256;

/** A bit per frame over `length` frames (a multiple of {@link BLOCK_FRAMES}); see the module. */
export class FrameBits {
  /** Frames held. */
  readonly length: number;
  #store: RangeTreeStore;
  #blocks = new Map<number, Int32Array>();
  /** Set bits over every block. */
  #blockOnes = 0;
  /**
   * The blocks one-frame sets went to lately, by key modulo {@link CACHED}
   * (-1: none): a `Map` lookup cost a one-frame set about 20 ns, as much as
   * the rest of it, when four blocks took turns (the `linux 4k` rows' 64 MiB).
   */
  #cachedKeys = new Float64Array(CACHED).fill(-1);
  #cachedBlocks: (Int32Array | undefined)[] = new Array(CACHED).fill(undefined);
  /**
   * One-frame sets counted per block that is not a bitmap yet, by key
   * modulo {@link HIT_SLOTS}: a key that meets another's count starts its
   * own, so sets scattered over many blocks (a 1 TiB guest's) make none,
   * and cost a compare, where a `Map` of counts made such sets 1.2x-1.4x
   * slower than the range tree alone.
   */
  #hitKeys = new Float64Array(HIT_SLOTS).fill(-1);
  #hitCounts = new Uint8Array(HIT_SLOTS);
  /**
   * Block keys ascending, kept in order as blocks come and go (a binary
   * search and a splice): sorting them afresh after each change cost a
   * two-frame set 78 µs with 1,024 blocks and 1.3 ms with 65,536.
   */
  #sorted: number[] = [];

  /** `length` frames, every bit clear. */
  constructor(length: number) {
    if (!Number.isSafeInteger(length / BLOCK_FRAMES) || length <= 0) {
      throw new RangeError(
        `length: a positive multiple of ${BLOCK_FRAMES} frames, got ${length}`,
      );
    }
    this.length = length;
    this.#store = new RangeTreeStore(length, { bits: 1 });
  }

  /** The bit of `frame` (0 or 1); `frame` is an integer in `[0, length)`, unchecked. */
  get(frame: number): number {
    if (this.#blocks.size === 0) return this.#store.get(frame);
    const key = Math.floor(frame / BLOCK_FRAMES);
    const block = this.#blocks.get(key);
    if (block === undefined) return this.#store.get(frame);
    const off = frame - key * BLOCK_FRAMES;
    return (block[off >>> 5] >>> (off & 31)) & 1;
  }

  /** Bitmap blocks held now. */
  get blocks(): number {
    return this.#blocks.size;
  }

  /** Frames whose bit is set. */
  get ones(): number {
    return this.#blockOnes + countPagesWith(this.#store, 0, this.length, 1);
  }

  /**
   * Maximal runs of equal bits over the whole table (at least 1): the range
   * store's count while no block is held, counted over every run when some are.
   */
  get runCount(): number {
    if (this.#blocks.size === 0) return this.#store.runCount;
    let n = 0;
    for (const _ of this.runs(0, this.length)) n++;
    return n;
  }

  /**
   * Sets the bit of every frame of `[start, end)` to `state` (0 or 1); the
   * range lies in `[0, length)` and is not empty, unchecked (the attribute
   * table checks its calls with the kernel's rules first).
   */
  set(start: number, end: number, state: number): void {
    if (end - start === 1) {
      const key = Math.floor(start / BLOCK_FRAMES);
      // `key & mask` keeps the low bits of any integer below 2^53.
      const at = key & (CACHED - 1);
      const block = this.#cachedKeys[at] === key ? this.#cachedBlocks[at] : this.#blockFor(key);
      if (block !== undefined) this.#setBit(key, block, start - key * BLOCK_FRAMES, state);
      else this.#store.set(start, end, state);
    } else this.#setRange(start, end, state);
  }

  /**
   * {@link set} of more than one frame, out of `set` so that `set`, which
   * every 4 KiB conversion calls, stays small enough to be inlined: with this
   * inside it, a one-frame set of the attribute table took 29 ns, without it
   * 16-17 ns (a scratch loop over the `linux 4k` rows' pages).
   */
  #setRange(start: number, end: number, state: number): void {
    let from = start, to = end;
    if (this.#blocks.size > 0) {
      // A block the range covers in part takes its part; the rest goes to the store.
      // The head: a block the range starts inside (one it starts at is the tail's, or whole).
      const headKey = Math.floor(start / BLOCK_FRAMES);
      const headStart = headKey * BLOCK_FRAMES;
      const head = start > headStart ? this.#blocks.get(headKey) : undefined;
      if (head !== undefined) {
        from = Math.min(end, headStart + BLOCK_FRAMES);
        this.#fill(headKey, head, start - headStart, from - headStart, state);
      }
      if (from < end) {
        const tailKey = Math.floor((end - 1) / BLOCK_FRAMES);
        const tailStart = tailKey * BLOCK_FRAMES;
        const tail = this.#blocks.get(tailKey);
        if (tail !== undefined && end < tailStart + BLOCK_FRAMES) {
          // `from` is at most `tailStart`: a range inside one block ended with its head.
          to = tailStart;
          this.#fill(tailKey, tail, to - tailStart, end - tailStart, state);
        }
      }
      // The blocks left in [from, to) are covered whole: the store takes them with the range.
      // A range shorter than a block covers none whole.
      if (to - from >= BLOCK_FRAMES) { for (const key of this.#keysIn(from, to)) this.#drop(key); }
    }
    if (from < to) this.#store.set(from, to, state);
  }

  /**
   * Maximal runs of equal bits over `[start, end)`, in order, cut to the
   * window; the range is checked as the range store checks it. Each run is
   * read afresh from where the last one ended, as the range store's are, so
   * a consumer may edit the table between runs.
   */
  runs(start: number, end: number): Iterable<Run> {
    checkRange(start, end, this.length);
    return this.#runs(start, end);
  }

  *#runs(start: number, end: number): Generator<Run> {
    let pos = start;
    while (pos < end) {
      // The maximal run that starts at `pos`: pieces of the store and of blocks, while they agree.
      let state = -1, runEnd = pos;
      while (runEnd < end) {
        const piece = this.#pieceAt(runEnd, end);
        if (state >= 0 && piece.state !== state) break;
        state = piece.state;
        runEnd = piece.end;
      }
      yield { start: pos, end: runEnd, state };
      pos = runEnd;
    }
  }

  /**
   * The run of equal bits that starts at `pos`, read now: inside a block,
   * up to the block's end (or `end`); in the store, up to the next block's
   * start (or `end`).
   */
  #pieceAt(pos: number, end: number): { end: number; state: number } {
    if (this.#blocks.size > 0) {
      const key = Math.floor(pos / BLOCK_FRAMES);
      const block = this.#blocks.get(key);
      const blockStart = key * BLOCK_FRAMES;
      if (block !== undefined) {
        return runInBlock(block, blockStart, pos, Math.min(end, blockStart + BLOCK_FRAMES));
      }
      end = Math.min(end, this.#nextBlockStart(pos));
    }
    for (const run of this.#store.runs(pos, end)) return { end: run.end, state: run.state };
    throw new Error(`FrameBits: internal: no run at frame ${pos}`);
  }

  /**
   * The first frame of the first block that starts after `pos`, which no
   * block holds (Infinity when none does).
   */
  #nextBlockStart(pos: number): number {
    const k = this.#firstEndingAfter(pos);
    return k < this.#sorted.length ? this.#sorted[k] * BLOCK_FRAMES : Infinity;
  }

  /** The block of `key` for a one-frame set, made once it has taken enough; undefined before. */
  #blockFor(key: number): Int32Array | undefined {
    let block = this.#blocks.size === 0 ? undefined : this.#blocks.get(key);
    if (block === undefined) {
      const slot = key & (HIT_SLOTS - 1);
      if (this.#hitKeys[slot] !== key) {
        this.#hitKeys[slot] = key;
        this.#hitCounts[slot] = 1;
        return undefined;
      }
      if (++this.#hitCounts[slot] < BLOCK_AFTER) return undefined;
      this.#hitKeys[slot] = -1;
      block = this.#make(key);
    }
    const at = key & (CACHED - 1);
    this.#cachedKeys[at] = key;
    this.#cachedBlocks[at] = block;
    return block;
  }

  /** Turns the store's frames of block `key` into a bitmap, leaving 0 in the store there. */
  #make(key: number): Int32Array {
    const block = new Int32Array(WORDS + 1);
    const blockStart = key * BLOCK_FRAMES;
    for (const run of this.#store.runs(blockStart, blockStart + BLOCK_FRAMES)) {
      if (run.state !== 0) {
        block[ONES] += fillWords(block, run.start - blockStart, run.end - blockStart, 1);
      }
    }
    this.#store.set(blockStart, blockStart + BLOCK_FRAMES, 0);
    this.#blocks.set(key, block);
    this.#blockOnes += block[ONES];
    this.#sorted.splice(this.#firstEndingAfter(blockStart), 0, key);
    return block;
  }

  #setBit(key: number, block: Int32Array, off: number, state: number): void {
    const i = off >>> 5, bit = 1 << (off & 31), word = block[i];
    if (((word & bit) !== 0 ? 1 : 0) === state) {
      // Made uniform by the one-frame sets that made it: it goes back to the store.
      const ones = block[ONES];
      if (ones === 0 || ones === BLOCK_FRAMES) this.#collapse(key);
      return;
    }
    block[i] = word ^ bit;
    const d = state === 0 ? -1 : 1;
    const ones = block[ONES] += d;
    this.#blockOnes += d;
    if (ones === 0 || ones === BLOCK_FRAMES) this.#collapse(key);
  }

  /** Sets bits `[a, b)` of block `key` to `state`; a block made uniform goes back to the store. */
  #fill(key: number, block: Int32Array, a: number, b: number, state: number): void {
    const d = fillWords(block, a, b, state);
    const ones = block[ONES] += d;
    this.#blockOnes += d;
    if (ones === 0 || ones === BLOCK_FRAMES) this.#collapse(key);
  }

  /** Block `key`, uniform, back to the store as one run. */
  #collapse(key: number): void {
    const state = this.#blocks.get(key)![ONES] === 0 ? 0 : 1;
    this.#drop(key);
    this.#store.set(key * BLOCK_FRAMES, (key + 1) * BLOCK_FRAMES, state);
  }

  /** Forgets block `key`: the store's 0 stands for its frames until the caller sets them. */
  #drop(key: number): void {
    this.#blockOnes -= this.#blocks.get(key)![ONES];
    this.#blocks.delete(key);
    this.#sorted.splice(this.#firstEndingAfter(key * BLOCK_FRAMES), 1);
    const at = key & (CACHED - 1);
    if (this.#cachedKeys[at] === key) {
      this.#cachedKeys[at] = -1;
      this.#cachedBlocks[at] = undefined;
    }
  }

  /**
   * Throws unless the invariants hold (for tests): the store holds 0 over
   * every block, no block is uniform, each block's count is its bits', the
   * total is theirs, and the cache names only blocks that are there.
   */
  checkValid(): void {
    const fail = (why: string) => {
      throw new Error(`FrameBits: ${why}`);
    };
    let total = 0;
    for (const [key, block] of this.#blocks) {
      const ones = countBits(bitsOf(block));
      if (ones !== block[ONES]) fail(`block ${key} counts ${block[ONES]} bits, has ${ones}`);
      if (ones === 0 || ones === BLOCK_FRAMES) fail(`block ${key} is uniform`);
      total += ones;
      const start = key * BLOCK_FRAMES;
      for (const run of this.#store.runs(start, start + BLOCK_FRAMES)) {
        if (run.state !== 0) fail(`the store holds 1 under block ${key}`);
      }
    }
    if (total !== this.#blockOnes) fail(`blocks hold ${total} bits, counted ${this.#blockOnes}`);
    this.#cachedKeys.forEach((key, at) => {
      if (key !== -1 && this.#blocks.get(key) !== this.#cachedBlocks[at]) {
        fail(`the cache names block ${key}, which is not there`);
      }
    });
    this.#store.checkValid();
  }

  /** Where in the sorted keys the first block that ends after frame `pos` is (or would be). */
  #firstEndingAfter(pos: number): number {
    const sorted = this.#sorted;
    let lo = 0, hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((sorted[mid] + 1) * BLOCK_FRAMES <= pos) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Keys of the blocks that overlap `[start, end)`, ascending (a copy: the caller drops them). */
  #keysIn(start: number, end: number): number[] {
    const sorted = this.#sorted;
    const keys: number[] = [];
    for (
      let k = this.#firstEndingAfter(start);
      k < sorted.length && sorted[k] * BLOCK_FRAMES < end;
      k++
    ) {
      keys.push(sorted[k]);
    }
    return keys;
  }
}

/**
 * A block's words as the bitmap's range operations take them (store/_bit_ops.ts):
 * the block itself is an `Int32Array`, as a one-frame set reads and writes
 * its words faster so (15-16 ns against 22-23 ns for a `Uint32Array`, a
 * scratch loop over the `linux 4k` rows' pages).
 */
function bitsOf(block: Int32Array): Uint32Array {
  return new Uint32Array(block.buffer, block.byteOffset, WORDS);
}

/**
 * Sets bits `[a, b)` of `block`'s words to `state` (0 or 1) with the
 * bitmap's own range operations; returns how many set bits that added
 * (negative when it cleared some), from the words it touched.
 */
function fillWords(block: Int32Array, a: number, b: number, state: number): number {
  const first = a >>> 5, last = (b - 1) >>> 5;
  let added = 0;
  for (let w = first; w <= last; w++) added -= popcount(block[w]);
  if (state === 0) clearBitRange(bitsOf(block), a, b);
  else setBitRange(bitsOf(block), a, b);
  for (let w = first; w <= last; w++) added += popcount(block[w]);
  return added;
}

/**
 * The run of equal bits of `block` (whose first frame is `base`) that starts
 * at frame `start`, cut at frame `end` (inside the block).
 */
function runInBlock(
  block: Int32Array,
  base: number,
  start: number,
  end: number,
): { end: number; state: number } {
  const pos = start - base, stop = end - base;
  const state = (block[pos >>> 5] >>> (pos & 31)) & 1;
  // The next bit that differs: a set one after clear ones, a clear one after set ones.
  return { end: base + findNextBit(bitsOf(block), pos + 1, stop, state === 0), state };
}
