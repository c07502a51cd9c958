/**
 * Per-conversion latency as a log-bucket histogram: a fixed array of counters,
 * {@link BUCKETS_PER_OCTAVE} buckets per power of two of nanoseconds, so
 * recording is one `Math.log2`, one array increment and no allocation, and a
 * quantile is read off the buckets to within half a bucket (about ±4.4%).
 * The minimum and maximum of the timed conversions are kept exactly, and
 * their weighted sum.
 *
 * Times come from `performance.now()` differences (milliseconds, sub-microsecond
 * resolution in Deno); what the report calls the latency of a conversion is
 * the wall time the run loop spent on that conversion event, every component
 * it notified included.
 *
 * A long run times a sample of its conversions ({@link conversionWeight}),
 * and each timed conversion counts for the conversions it stands for: the
 * buckets, the percentiles and the mean are estimates for the whole run, so the
 * conversions timed in full at the start (often slower: the code is still
 * cold) weigh no more than their share of it.
 *
 * @module
 */

/** Conversions of a run that are all timed; later ones are sampled ({@link conversionWeight}). */
export const TIMED_IN_FULL: number = 16384;

/** After {@link TIMED_IN_FULL}, one conversion in this many is timed. */
export const SAMPLE_EVERY: number = 32;

/**
 * How many conversions the run's timing of conversion `index` (0-based)
 * stands for: 1 for each of the first {@link TIMED_IN_FULL}, then
 * {@link SAMPLE_EVERY} for one in {@link SAMPLE_EVERY} (picked by a
 * multiplicative hash of the index, so that no periodic pattern of the input
 * lines up with it), and 0 for the rest, which are not timed.
 *
 * Why sample: the clock reads and the record are most of what the report
 * adds to a replay. `bench/replay_rows.ts --parts`, two runs each (paired
 * medians): timing all of the first 65,536 and then one in eight, the
 * runner with the probe took 1.15x and 1.19x the direct conversions
 * against 1.07x and 1.10x without it; with 16,384 and one in 32, 1.11x and
 * 1.13x against 1.07x and 1.09x. A run of 1M conversions still times about
 * 47,000 (47,122: the hash is fixed), and the slowest 1% of it is estimated
 * from about 300 sampled timings.
 */
export function conversionWeight(index: number): number {
  if (index < TIMED_IN_FULL) return 1;
  return (Math.imul(index, 0x9e3779b1) >>> 27) === 0 ? SAMPLE_EVERY : 0;
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
  /**
   * Conversions that took a time in `[fromUs, toUs)`: the timed ones, each
   * counted for as many as it represents (so not always an integer).
   */
  count: number;
}

/** Per-conversion latency in the report (`latency` in the JSON report). */
export interface LatencyReport {
  /**
   * Conversions timed: every one up to {@link TIMED_IN_FULL}, then one in
   * {@link SAMPLE_EVERY} ({@link conversionWeight}).
   */
  count: number;
  /**
   * The conversions the histogram stands for: each timed one counted for as
   * many as it represents ({@link conversionWeight}); `count` when every
   * conversion was timed.
   */
  represents: number;
  /** Shortest of the timed conversions (µs). */
  minUs: number;
  /** Mean over the conversions represented, each timed one weighted (µs). */
  meanUs: number;
  /** Median, from the histogram (µs, within about ±4.4%). */
  p50Us: number;
  /** 90th percentile, from the histogram (µs). */
  p90Us: number;
  /** 99th percentile, from the histogram (µs). */
  p99Us: number;
  /** Longest of the timed conversions (µs). */
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
  #weight = 0;
  #sumMs = 0;
  #minMs = Infinity;
  #maxMs = 0;

  /**
   * Records one duration in milliseconds (negative or NaN counts as 0) that
   * stands for `weight` conversions (a positive finite number, default 1; see
   * {@link conversionWeight}).
   */
  record(ms: number, weight = 1): void {
    if (!(weight > 0 && weight < Infinity)) {
      throw new RangeError(`weight: must be a positive finite number, got ${weight}`);
    }
    const t = ms > 0 ? ms : 0;
    const ns = t * 1e6;
    let i = ns < 1 ? 0 : 1 + Math.floor(Math.log2(ns) * BUCKETS_PER_OCTAVE);
    if (i >= BUCKET_COUNT) i = BUCKET_COUNT - 1;
    this.#counts[i] += weight;
    this.#count++;
    this.#weight += weight;
    this.#sumMs += t * weight;
    if (t < this.#minMs) this.#minMs = t;
    if (t > this.#maxMs) this.#maxMs = t;
  }

  /** Durations recorded. */
  get count(): number {
    return this.#count;
  }

  /** The conversions the recorded durations stand for: the sum of their weights. */
  get represents(): number {
    return this.#weight;
  }

  /**
   * The `q` quantile in milliseconds (`0 < q <= 1`) of the conversions
   * represented: the geometric middle of the bucket where the weights
   * reach `q` of their sum, clamped to the shortest and longest recorded. 0
   * when nothing was recorded.
   */
  quantile(q: number): number {
    if (!(q > 0 && q <= 1)) throw new RangeError(`q: must be in (0, 1], got ${q}`);
    if (this.#count === 0) return 0;
    const rank = Math.ceil(q * this.#weight);
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
      represents: this.#weight,
      minUs: n === 0 ? 0 : us(this.#minMs),
      meanUs: n === 0 ? 0 : us(this.#sumMs / this.#weight),
      p50Us: us(this.quantile(0.5)),
      p90Us: us(this.quantile(0.9)),
      p99Us: us(this.quantile(0.99)),
      maxUs: us(this.#maxMs),
      bucketsPerOctave: BUCKETS_PER_OCTAVE,
      buckets,
    };
  }
}

/** True when the run behind `lat` timed a sample of its conversions, not every one. */
export function isSampled(lat: LatencyReport): boolean {
  return lat.represents !== lat.count;
}

/**
 * How many conversions `lat` timed, for people: `"900 timed"`, or
 * `"47,122 timed, standing for 1,000,000"` when the run timed a sample.
 */
export function timedSummary(lat: LatencyReport): string {
  const n = (v: number) => v.toLocaleString("en-US");
  const timed = `${n(lat.count)} timed`;
  return isSampled(lat) ? `${timed}, standing for ${n(lat.represents)}` : timed;
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
