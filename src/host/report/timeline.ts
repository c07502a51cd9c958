/**
 * Timelines sampled during a run: a fixed number of rows of counters, taken
 * every `every` events. When the rows are full, every other row is dropped and
 * `every` doubles, so a run of any length ends with between half and all of
 * the capacity, evenly spaced, in preallocated typed arrays: no allocation per
 * event, and an event that is not sampled costs one comparison.
 *
 * @module
 */

/** Fills `row` with the counters to sample (its length is the sampler's `width`). */
export type RowReader = (row: Float64Array) => void;

/** A sampled series set, column by column (what {@link TimelineSampler.columns} returns). */
export interface SampledColumns {
  /** Events between samples when the run ended. */
  every: number;
  /** Events done at each sample. */
  events: number[];
  /** Milliseconds since the sampler was created, at each sample. */
  timeMs: number[];
  /** Conversions requested so far, at each sample. */
  conversions: number[];
  /** The reader's counters: `values[column][sample]`. */
  values: number[][];
}

/** Samples counters every N events into fixed storage; see the module documentation. */
export class TimelineSampler {
  /** Counters per row (besides events, time and conversions). */
  readonly width: number;
  /** Rows kept at most. */
  readonly capacity: number;
  readonly #read: RowReader;
  readonly #events: Float64Array;
  readonly #time: Float64Array;
  readonly #conversions: Float64Array;
  readonly #values: Float64Array;
  readonly #row: Float64Array;
  readonly #start = performance.now();
  #rows = 0;
  #every = 1;
  #next = 0;

  /**
   * Creates a sampler of `width` counters read by `read`, keeping at most
   * `capacity` rows (an even number, at least 4; default 512).
   */
  constructor(width: number, read: RowReader, capacity = 512) {
    if (!Number.isInteger(width) || width < 0) {
      throw new RangeError(`width: must be a non-negative integer, got ${width}`);
    }
    if (!Number.isInteger(capacity) || capacity < 4 || capacity % 2 !== 0) {
      throw new RangeError(`capacity: must be an even integer >= 4, got ${capacity}`);
    }
    this.width = width;
    this.capacity = capacity;
    this.#read = read;
    this.#events = new Float64Array(capacity);
    this.#time = new Float64Array(capacity);
    this.#conversions = new Float64Array(capacity);
    this.#values = new Float64Array(capacity * width);
    this.#row = new Float64Array(width);
  }

  /** Events between samples now. */
  get every(): number {
    return this.#every;
  }

  /** Rows held. */
  get rows(): number {
    return this.#rows;
  }

  /** Called after an event: samples when `events` reached the next sampling point. */
  tick(events: number, conversions: number): void {
    if (events >= this.#next) this.sample(events, conversions);
  }

  /** The event count of the next sampling point: {@link tick} samples at it, not before. */
  get nextSample(): number {
    return this.#next;
  }

  /**
   * Takes a row now (at the start and the end of a run). A second row at the
   * same event count replaces the first.
   */
  sample(events: number, conversions: number): void {
    let r = this.#rows;
    if (r > 0 && this.#events[r - 1] === events) r--;
    else if (r === this.capacity) r = this.#halve();
    this.#events[r] = events;
    this.#time[r] = performance.now() - this.#start;
    this.#conversions[r] = conversions;
    if (this.width > 0) {
      this.#read(this.#row);
      this.#values.set(this.#row, r * this.width);
    }
    this.#rows = r + 1;
    this.#next = events + this.#every;
  }

  /** Keeps rows 0, 2, 4, ... and doubles `every`; returns the first free row. */
  #halve(): number {
    const w = this.width;
    const kept = this.capacity / 2;
    for (let i = 1; i < kept; i++) {
      this.#events[i] = this.#events[2 * i];
      this.#time[i] = this.#time[2 * i];
      this.#conversions[i] = this.#conversions[2 * i];
      this.#values.copyWithin(i * w, 2 * i * w, 2 * i * w + w);
    }
    this.#every *= 2;
    return kept;
  }

  /** The rows taken, column by column. */
  columns(): SampledColumns {
    const n = this.#rows;
    const values: number[][] = [];
    for (let c = 0; c < this.width; c++) {
      const col: number[] = new Array(n);
      for (let r = 0; r < n; r++) col[r] = this.#values[r * this.width + c];
      values.push(col);
    }
    return {
      every: this.#every,
      events: Array.from(this.#events.subarray(0, n)),
      timeMs: Array.from(this.#time.subarray(0, n), (t) => Math.round(t * 1000) / 1000),
      conversions: Array.from(this.#conversions.subarray(0, n)),
      values,
    };
  }
}

/**
 * Conversions per second at each sample, over the window of the last
 * `window` intervals (default: 1/50 of the samples, at least one), so that a
 * run sampled at every event does not show every timer tick as a spike. 0 for
 * the first sample and for windows too short to time.
 */
export function ratePerSecond(
  counts: readonly number[],
  timeMs: readonly number[],
  window: number = Math.max(1, Math.round(counts.length / 50)),
): number[] {
  return counts.map((c, i) => {
    if (i === 0) return 0;
    const j = Math.max(0, i - window);
    const dt = timeMs[i] - timeMs[j];
    return dt > 0 ? Math.round((c - counts[j]) / dt * 1000) : 0;
  });
}
