/**
 * The contract every state store honours: a total map from page index to a
 * small integer state word over `[0, length)`.
 *
 * @module
 */

/** A maximal run of pages that share one state word: pages `[start, end)`. */
export interface Run {
  /** First page of the run. */
  start: number;
  /** One past the last page of the run. */
  end: number;
  /** The state word every page of the run has. */
  state: number;
}

/** Options of {@link StateStore.addBit}. */
export interface AddBitOptions {
  /**
   * Pages one stored bit stands for (default 1): a store may keep a bit that
   * only ever changes in blocks (virtio-mem's plugged bit) at that coarser
   * granularity, as QEMU does. A power of two.
   */
  granularity?: number;
}

/**
 * A total map from page index to state word over `[0, length)`.
 *
 * Ranges are half-open page intervals `[start, end)`. Every method validates its
 * arguments first and throws a `RangeError` or `TypeError` naming the argument
 * and its value, leaving the store unchanged.
 */
export interface StateStore {
  /** Number of pages the store covers. */
  readonly length: number;
  /** Number of state bits the store can hold: states are integers in `[0, 2^bits)`. */
  readonly bits: number;
  /**
   * Starts holding state bit `bit` (an index, at least the current `bits` or a
   * bit not held yet), every page 0 in it. Stores hold only the bits they are
   * given, so a region pays for the state sources it has, not for a fixed
   * width. Optional: a store without it keeps the width it was created with.
   */
  addBit?(bit: number, options?: AddBitOptions): void;
  /** The state word of `page`. */
  get(page: number): number;
  /** Sets every page of `[start, end)` to `state`. */
  set(start: number, end: number, state: number): void;
  /**
   * For every page of `[start, end)`: `state = (state | setBits) & ~clearBits`.
   * A bit in both masks ends up clear.
   */
  update(start: number, end: number, setBits: number, clearBits: number): void;
  /**
   * The maximal runs of equal state inside `[start, end)` (defaults: the whole
   * store), clipped to the window, in ascending order. An empty window yields
   * nothing.
   */
  runs(start?: number, end?: number): Iterable<Run>;
  /**
   * The state every page of `[start, end)` has (`start < end`), or -1 when
   * they differ: the question a conversion asks before it plans (a buffer is
   * usually all private before it goes shared). Optional: without it,
   * callers read {@link runs}.
   */
  uniformState?(start: number, end: number): number;
  /** Number of maximal runs in the whole store. */
  readonly runCount: number;
  /** Estimated bytes of memory the store holds; each implementation documents how. */
  byteSize(): number;
}
