/**
 * Per-conversion latency as a log-bucket histogram: a fixed array of counters,
 * {@link BUCKETS_PER_OCTAVE} buckets per power of two of nanoseconds, so
 * recording is one `Math.log2`, one array increment and no allocation, and a
 * quantile is read off the buckets to within half a bucket (about ±4.4%).
 * The minimum, maximum and sum are kept exactly.
 *
 * Times come from `performance.now()` differences (milliseconds, sub-microsecond
 * resolution in Deno); what the report calls the latency of a conversion is
 * the wall time the run loop spent on that conversion event, every component
 * it notified included.
 *
 * @module
 */

/** Conversions of a run that are all timed; later ones are sampled ({@link timesConversion}). */
export const TIMED_IN_FULL = 65536;

/**
 * Whether the run times conversion `index` (0-based): every one of the first
 * {@link TIMED_IN_FULL}, then one in eight, picked by a multiplicative hash of
 * the index so that no periodic pattern of the input lines up with it.
 * Reading the clock twice costs about 0.4 µs here, which on a long replay was
 * a third of what the replay adds to the conversions themselves (the
 * `replay 1 TiB` row of `deno task bench:report`); a histogram of 1M
 * conversions keeps its p50 and p99 from a 1-in-8 sample.
 */
export function timesConversion(index: number): boolean {
  return index < TIMED_IN_FULL || (Math.imul(index, 0x9e3779b1) >>> 29) === 0;
}

/** Buckets per power of two: bucket `i >= 1` holds `[2^((i-1)/8), 2^(i/8))` ns. */
export const BUCKETS_PER_OCTAVE = 8;
/** Octaves covered above 1 ns (2^40 ns is about 18 minutes; longer times land in the last bucket). */
const OCTAVES = 40;
const BUCKET_COUNT = 1 + OCTAVES * BUCKETS_PER_OCTAVE;

/** One non-empty bucket of a {@link LatencyReport}. */
export interface LatencyBucket {
  /** Lower bound in microseconds (inclusive). */
  fromUs: number;
  /** Upper bound in microseconds (exclusive). */
  toUs: number;
  /** Conversions that took a time in `[fromUs, toUs)`. */
  count: number;
}

/** Per-conversion latency in the report (`latency` in the JSON report). */
export interface LatencyReport {
  /**
   * Conversions timed: every one up to {@link TIMED_IN_FULL}, then one in
   * eight ({@link timesConversion}).
   */
  count: number;
  /** Shortest, exact (µs). */
  minUs: number;
  /** Mean, exact (µs). */
  meanUs: number;
  /** Median, from the histogram (µs, within about ±4.4%). */
  p50Us: number;
  /** 90th percentile, from the histogram (µs). */
  p90Us: number;
  /** 99th percentile, from the histogram (µs). */
  p99Us: number;
  /** Longest, exact (µs). */
  maxUs: number;
  /** Buckets per power of two of the histogram. */
  bucketsPerOctave: number;
  /** The non-empty buckets, shortest first. */
  buckets: LatencyBucket[];
}

/** A log-bucket latency histogram; see the module documentation. */
export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKET_COUNT);
  #count = 0;
  #sumMs = 0;
  #minMs = Infinity;
  #maxMs = 0;

  /** Records one duration in milliseconds (negative or NaN counts as 0). */
  record(ms: number): void {
    const t = ms > 0 ? ms : 0;
    const ns = t * 1e6;
    let i = ns < 1 ? 0 : 1 + Math.floor(Math.log2(ns) * BUCKETS_PER_OCTAVE);
    if (i >= BUCKET_COUNT) i = BUCKET_COUNT - 1;
    this.#counts[i]++;
    this.#count++;
    this.#sumMs += t;
    if (t < this.#minMs) this.#minMs = t;
    if (t > this.#maxMs) this.#maxMs = t;
  }

  /** Durations recorded. */
  get count(): number {
    return this.#count;
  }

  /**
   * The `q` quantile in milliseconds (`0 < q <= 1`): the geometric middle of
   * the bucket holding the `ceil(q * count)`-th shortest time, clamped to the
   * exact minimum and maximum. 0 when nothing was recorded.
   */
  quantile(q: number): number {
    if (!(q > 0 && q <= 1)) throw new RangeError(`q: must be in (0, 1], got ${q}`);
    if (this.#count === 0) return 0;
    const rank = Math.ceil(q * this.#count);
    let seen = 0;
    for (let i = 0; i < BUCKET_COUNT; i++) {
      seen += this.#counts[i];
      if (seen >= rank) {
        const [lo, hi] = bucketBoundsNs(i);
        const mid = i === 0 ? 0 : Math.sqrt(lo * hi) / 1e6;
        return Math.min(this.#maxMs, Math.max(this.#minMs, mid));
      }
    }
    return this.#maxMs;
  }

  /** The histogram as it appears in the report (times in microseconds, rounded to ns). */
  report(): LatencyReport {
    const us = (ms: number) => Math.round(ms * 1e6) / 1e3;
    const buckets: LatencyBucket[] = [];
    for (let i = 0; i < BUCKET_COUNT; i++) {
      if (this.#counts[i] === 0) continue;
      const [lo, hi] = bucketBoundsNs(i);
      buckets.push({
        fromUs: Math.round(lo) / 1e3,
        toUs: Math.round(hi) / 1e3,
        count: this.#counts[i],
      });
    }
    const n = this.#count;
    return {
      count: n,
      minUs: n === 0 ? 0 : us(this.#minMs),
      meanUs: n === 0 ? 0 : us(this.#sumMs / n),
      p50Us: us(this.quantile(0.5)),
      p90Us: us(this.quantile(0.9)),
      p99Us: us(this.quantile(0.99)),
      maxUs: us(this.#maxMs),
      bucketsPerOctave: BUCKETS_PER_OCTAVE,
      buckets,
    };
  }
}

/** `[lower, upper)` of bucket `i` in nanoseconds (bucket 0 is `[0, 1)`). */
function bucketBoundsNs(i: number): [number, number] {
  if (i === 0) return [0, 1];
  return [2 ** ((i - 1) / BUCKETS_PER_OCTAVE), 2 ** (i / BUCKETS_PER_OCTAVE)];
}

/**
 * Formats microseconds for people: `"850 ns"`, `"12.3 µs"`, `"4.56 ms"`, `"1.2 s"`.
 *
 * @param us a duration in microseconds
 */
export function formatMicros(us: number): string {
  if (!Number.isFinite(us) || us < 0) return String(us);
  if (us < 1) return `${Math.round(us * 1000)} ns`;
  if (us < 1000) return `${trim(us)} µs`;
  if (us < 1e6) return `${trim(us / 1000)} ms`;
  return `${trim(us / 1e6)} s`;
}

function trim(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}
