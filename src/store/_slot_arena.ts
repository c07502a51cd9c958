/**
 * Fixed-size slots carved out of ONE shared `Int32Array`, for the containers
 * of {@link RangeTreeStore} (chunk maps and dense bit planes).
 *
 * Why one array and not one typed array per container: a V8 typed array costs
 * about 208 bytes of headers (view, buffer, backing-store record) before its
 * first element, more than the 64-byte bit plane of a 512-page chunk. In an
 * arena a container costs its own words plus 4 bytes (its change count), and
 * 8 more where the arena keeps owners.
 *
 * Why so little metadata: a region claims one bit when it has no virtio-mem
 * device, and a 1-bit dense chunk of 512 pages is 64 bytes, so every byte of
 * metadata is 1.6% on top of the bitmap. With the owner (8 bytes) and a free
 * list (4 bytes) per slot as well, scattered 4 KiB churn (the report's
 * `dma-scatter` row) cost 1.32 times the 1-bit bitmap; the target is 1.2.
 * So the free list lives in the free slots' own first word, and only an
 * arena whose owner must find its containers again after compaction (the
 * chunk maps) keeps owners; the dense arena's owner rewrites references by
 * scanning its chunk maps instead (see `RangeTreeStore`).
 *
 * Slots are small integers; an owner refers to slot `s` by the value
 * `-(s + 1)` so that a reference and a state word (always `>= 0`) can share
 * one number. Freed slots are reused; when at most a quarter of the arena is
 * in use, {@link SlotArena.compact} moves the live slots down and shrinks it.
 *
 * @module
 */

/** Estimated bytes of a V8 typed array before its elements (view, buffer, backing-store record). */
export const TYPED_ARRAY_OVERHEAD_BYTES = 208;

/** The change count of a free slot: live slots count changes, so never hold a negative one. */
const FREE = -1;

/** The end of the free list. */
const NO_SLOT = -1;

/**
 * Slots up to this many words are zeroed with a loop: `fill` is a call into
 * the runtime that costs more than writing a 64-byte dense chunk word by word
 * (it showed in the profile of the report's `swiotlb-churn` row).
 */
export const LOOP_FILL_WORDS = 64;

// Shared empty arrays: an arena with no slots allocates nothing of its own.
const NO_INTS = new Int32Array(0);
const NO_DOUBLES = new Float64Array(0);

/** An arena of `stride`-word slots with a per-slot change count and, optionally, owner. */
export class SlotArena {
  /** Words per slot. */
  stride: number;
  /** The slots: slot `s` is `data[s * stride, (s + 1) * stride)`. */
  data: Int32Array = NO_INTS;
  /** Per slot: the state changes between neighbouring pages inside what it holds; -1 when free. */
  changes: Int32Array = NO_INTS;
  /**
   * Per slot: the first page of what it holds (for relocation); -1 when free.
   * Empty unless the arena was made with `owners`.
   */
  owner: Float64Array = NO_DOUBLES;
  /** Slots in use. */
  live = 0;
  /** Slots handed out since the last compaction: `[0, top)`. */
  top = 0;
  /** First free slot below `top` (the next one is in its first word), or -1. */
  #freeHead = NO_SLOT;
  readonly #owners: boolean;

  /** Most slots the owner can ever need: capacity never grows past it. */
  readonly maxSlots: number;

  /**
   * An empty arena of `stride`-word slots (at least one word), never more
   * than `maxSlots` of them, keeping each slot's owner page when `owners`;
   * it allocates nothing until the first slot.
   */
  constructor(stride: number, maxSlots: number, owners = true) {
    this.stride = stride;
    this.maxSlots = maxSlots;
    this.#owners = owners;
  }

  /** Slots the arrays have room for. */
  get capacity(): number {
    return this.changes.length;
  }

  /**
   * Estimated bytes: the typed arrays with their headers, by capacity: per
   * slot its words and 4 bytes of change count, plus 8 of owner where kept.
   */
  byteSize(): number {
    if (this.capacity === 0) return 0;
    const arrays = this.#owners ? 3 : 2;
    const perSlot = this.stride * 4 + 4 + (this.#owners ? 8 : 0);
    return arrays * TYPED_ARRAY_OVERHEAD_BYTES + this.capacity * perSlot;
  }

  /** True when `slot` (below {@link top}) is in use. */
  isLive(slot: number): boolean {
    return this.changes[slot] !== FREE;
  }

  /** A zeroed slot for what starts at page `owner` (recorded only where owners are kept). */
  alloc(owner = -1): number {
    let slot: number;
    if (this.#freeHead !== NO_SLOT) {
      slot = this.#freeHead;
      const data = this.data;
      const from = slot * this.stride, to = from + this.stride;
      this.#freeHead = data[from];
      if (this.stride <= LOOP_FILL_WORDS) { for (let w = from; w < to; w++) data[w] = 0; }
      else data.fill(0, from, to);
    } else {
      if (this.top === this.capacity) {
        // Grow by half (not double) and never past the most the owner can use,
        // so slack stays within 50% and a store whose every chunk is dense
        // holds exactly as many slots as it has chunks.
        this.#resize(Math.min(this.maxSlots, Math.max(4, Math.ceil(this.capacity * 1.5))));
      }
      slot = this.top++;
    }
    this.changes[slot] = 0;
    if (this.#owners) this.owner[slot] = owner;
    this.live++;
    return slot;
  }

  /** Gives `slot` back. */
  release(slot: number): void {
    this.changes[slot] = FREE;
    if (this.#owners) this.owner[slot] = -1;
    this.live--;
    if (this.live === 0) {
      // Nothing left: drop the arrays entirely.
      this.top = 0;
      this.#freeHead = NO_SLOT;
      this.#resize(0);
      return;
    }
    this.data[slot * this.stride] = this.#freeHead;
    this.#freeHead = slot;
  }

  /** True when at most a quarter of the slots are in use: compacting would give memory back. */
  get sparse(): boolean {
    return this.capacity > 8 && this.live * 4 <= this.capacity;
  }

  /**
   * Moves live slots down into free holes and shrinks the arrays to 1.5 times
   * the live count. `moved(from, to)` is called for every relocated slot so
   * the caller can repoint its reference (the owner, where kept, is already
   * in `owner[to]`).
   */
  compact(moved: (from: number, to: number) => void): void {
    const target = this.live;
    const stride = this.stride;
    let hole = 0;
    for (let from = this.top - 1; from >= target; from--) {
      if (this.changes[from] === FREE) continue;
      while (this.changes[hole] !== FREE) hole++;
      this.data.copyWithin(hole * stride, from * stride, (from + 1) * stride);
      this.changes[hole] = this.changes[from];
      this.changes[from] = FREE;
      if (this.#owners) {
        this.owner[hole] = this.owner[from];
        this.owner[from] = -1;
      }
      moved(from, hole);
      hole++;
    }
    this.top = target;
    this.#freeHead = NO_SLOT;
    this.#resize(Math.min(this.maxSlots, Math.max(4, Math.ceil(target * 1.5))));
  }

  /**
   * Gives every slot `stride` words (more than now): each slot's words move to
   * the start of its new, larger slot and the rest is zero. Slot numbers stay.
   */
  protected restride(stride: number): void {
    const old = this.stride;
    if (this.data.length > 0) {
      const data = new Int32Array(this.capacity * stride);
      for (let s = 0; s < this.top; s++) {
        data.set(this.data.subarray(s * old, (s + 1) * old), s * stride);
      }
      this.data = data;
    }
    this.stride = stride;
  }

  #resize(slots: number): void {
    if (slots === 0) {
      this.data = this.changes = NO_INTS;
      this.owner = NO_DOUBLES;
      return;
    }
    const keep = Math.min(this.top, slots);
    const data = new Int32Array(slots * this.stride);
    data.set(this.data.subarray(0, keep * this.stride));
    const changes = new Int32Array(slots).fill(FREE);
    changes.set(this.changes.subarray(0, keep));
    this.data = data;
    this.changes = changes;
    if (this.#owners) {
      const owner = new Float64Array(slots).fill(-1);
      owner.set(this.owner.subarray(0, keep));
      this.owner = owner;
    }
  }
}
