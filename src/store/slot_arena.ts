/**
 * Fixed-size slots carved out of ONE shared `Int32Array`, for the containers
 * of {@link RangeTreeStore} (chunk maps and dense bit planes).
 *
 * Why one array and not one typed array per container: a V8 typed array costs
 * about 208 bytes of headers (view, buffer, backing-store record) before its
 * first element, more than the 64-byte bit plane of a 512-page chunk. In an
 * arena a container costs its own words plus 12 bytes of metadata.
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

// Shared empty arrays: an arena with no slots allocates nothing of its own.
const NO_INTS = new Int32Array(0);
const NO_DOUBLES = new Float64Array(0);

/** An arena of `stride`-word slots with per-slot owner and change count. */
export class SlotArena {
  /** Words per slot. */
  stride: number;
  /** The slots: slot `s` is `data[s * stride, (s + 1) * stride)`. */
  data: Int32Array = NO_INTS;
  /** Per slot: the state changes between neighbouring pages inside what it holds. */
  changes: Int32Array = NO_INTS;
  /** Per slot: the first page of what it holds (for relocation); -1 when free. */
  owner: Float64Array = NO_DOUBLES;
  /** Slots in use. */
  live = 0;
  /** Slots handed out since the last compaction: `[0, top)`. */
  top = 0;
  #free: Int32Array = NO_INTS;
  #freeCount = 0;

  /** Most slots the owner can ever need: capacity never grows past it. */
  readonly maxSlots: number;

  /**
   * An empty arena of `stride`-word slots, never more than `maxSlots` of them;
   * it allocates nothing until the first slot.
   */
  constructor(stride: number, maxSlots: number) {
    this.stride = stride;
    this.maxSlots = maxSlots;
  }

  /** Slots the arrays have room for. */
  get capacity(): number {
    return this.changes.length;
  }

  /** Estimated bytes: the four typed arrays with their headers, by capacity. */
  byteSize(): number {
    if (this.capacity === 0) return 0;
    return 4 * TYPED_ARRAY_OVERHEAD_BYTES + this.capacity * (this.stride * 4 + 4 + 8 + 4);
  }

  /** A zeroed slot for what starts at page `owner`. */
  alloc(owner: number): number {
    let slot: number;
    if (this.#freeCount > 0) {
      slot = this.#free[--this.#freeCount];
      this.data.fill(0, slot * this.stride, (slot + 1) * this.stride);
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
    this.owner[slot] = owner;
    this.live++;
    return slot;
  }

  /** Gives `slot` back. */
  release(slot: number): void {
    this.owner[slot] = -1;
    this.live--;
    if (this.live === 0) {
      // Nothing left: drop the arrays entirely.
      this.top = 0;
      this.#freeCount = 0;
      this.#resize(0);
      return;
    }
    this.#free[this.#freeCount++] = slot;
  }

  /** True when at most a quarter of the slots are in use: compacting would give memory back. */
  get sparse(): boolean {
    return this.capacity > 8 && this.live * 4 <= this.capacity;
  }

  /**
   * Moves live slots down into free holes and shrinks the arrays to 1.5 times
   * the live count. `moved(owner, to)` is called for every relocated slot so the
   * caller can repoint its reference.
   */
  compact(moved: (owner: number, to: number) => void): void {
    const target = this.live;
    let hole = 0;
    for (let from = this.top - 1; from >= target; from--) {
      if (this.owner[from] < 0) continue;
      while (this.owner[hole] >= 0) hole++;
      this.data.copyWithin(hole * this.stride, from * this.stride, (from + 1) * this.stride);
      this.changes[hole] = this.changes[from];
      this.owner[hole] = this.owner[from];
      this.owner[from] = -1;
      moved(this.owner[hole], hole);
    }
    this.top = target;
    this.#freeCount = 0;
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
      this.data = this.changes = this.#free = NO_INTS;
      this.owner = NO_DOUBLES;
      return;
    }
    const keep = Math.min(this.top, slots);
    const data = new Int32Array(slots * this.stride);
    data.set(this.data.subarray(0, keep * this.stride));
    const changes = new Int32Array(slots);
    changes.set(this.changes.subarray(0, keep));
    const owner = new Float64Array(slots).fill(-1);
    owner.set(this.owner.subarray(0, keep));
    const free = new Int32Array(slots);
    free.set(this.#free.subarray(0, Math.min(this.#freeCount, slots)));
    this.data = data;
    this.changes = changes;
    this.owner = owner;
    this.#free = free;
  }
}
