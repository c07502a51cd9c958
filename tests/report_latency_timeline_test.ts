// The latency histogram (exact count, min, max and mean; percentiles within a bucket) and the
// timeline sampler (bounded rows, evenly spaced after halving, the last sample kept).
import assert from "node:assert/strict";
import {
  conversionWeight,
  formatMicros,
  LatencyHistogram,
  SAMPLE_EVERY,
  TIMED_IN_FULL,
} from "../src/host/report/latency.ts";
import { ratePerSecond, TimelineSampler } from "../src/host/report/timeline.ts";

Deno.test("latency: exact count, min, max, mean; p50 and p99 within a bucket", () => {
  const h = new LatencyHistogram();
  // 1..1000 µs, each once.
  for (let us = 1; us <= 1000; us++) h.record(us / 1000);
  const r = h.report();
  assert.equal(r.count, 1000);
  assert.equal(r.represents, 1000, "every conversion timed stands for itself");
  assert.equal(r.minUs, 1);
  assert.equal(r.maxUs, 1000);
  assert.ok(Math.abs(r.meanUs - 500.5) < 1e-6);
  const near = (got: number, want: number) =>
    assert.ok(Math.abs(got - want) / want < 0.05, `${got} vs ${want}`);
  near(r.p50Us, 500);
  near(r.p90Us, 900);
  near(r.p99Us, 990);
  assert.equal(r.buckets.reduce((n, b) => n + b.count, 0), 1000);
  for (const b of r.buckets) assert.ok(b.fromUs < b.toUs);
  assert.ok(r.p50Us <= r.p90Us && r.p90Us <= r.p99Us && r.p99Us <= r.maxUs);
});

Deno.test("latency: one outlier sets max and p100 but not p50; empty and odd inputs", () => {
  const h = new LatencyHistogram();
  for (let i = 0; i < 999; i++) h.record(0.005);
  h.record(40);
  const r = h.report();
  assert.equal(r.maxUs, 40_000);
  assert.ok(Math.abs(r.p50Us - 5) / 5 < 0.05);
  assert.equal(h.quantile(1), 40);
  const empty = new LatencyHistogram().report();
  assert.deepEqual(
    [empty.count, empty.p50Us, empty.p99Us, empty.maxUs, empty.buckets.length],
    [0, 0, 0, 0, 0],
  );
  const odd = new LatencyHistogram();
  odd.record(-1);
  odd.record(Number.NaN);
  odd.record(1e12);
  assert.equal(odd.count, 3);
  assert.equal(odd.report().minUs, 0);
  assert.throws(() => odd.quantile(0), /q: must be in \(0, 1\]/);
});

Deno.test("latency: formatMicros picks the unit", () => {
  assert.equal(formatMicros(0.25), "250 ns");
  assert.equal(formatMicros(12.34), "12.3 µs");
  assert.equal(formatMicros(4560), "4.56 ms");
  assert.equal(formatMicros(2_500_000), "2.50 s");
});

Deno.test("timeline: rows stay within capacity, evenly spaced, first and last kept", () => {
  let reads = 0;
  const s = new TimelineSampler(2, (row) => {
    reads++;
    row[0] = current * 2;
    row[1] = -current;
  }, 8);
  let current = 0;
  s.sample(0, 0);
  for (current = 1; current <= 1000; current++) s.tick(current, current);
  current = 1000;
  s.sample(1000, 1000);
  const c = s.columns();
  assert.ok(c.events.length >= 4 && c.events.length <= 8, `${c.events.length} rows`);
  assert.equal(c.events[0], 0);
  assert.equal(c.events[c.events.length - 1], 1000);
  // Every row but the last (taken on demand) is `every` after the previous one.
  for (let i = 1; i < c.events.length - 1; i++) {
    assert.equal(c.events[i] - c.events[i - 1], c.every, `${c.events}`);
  }
  c.events.forEach((e, i) => {
    assert.equal(c.values[0][i], e * 2);
    assert.equal(c.values[1][i], -e);
    assert.equal(c.conversions[i], e);
  });
  // Sampling cost: reads are logarithmic in the run length, not one per event.
  assert.ok(reads < 100, `${reads} reads for 1000 events`);
  assert.throws(() => new TimelineSampler(1, () => {}, 5), /capacity/);
});

Deno.test("timeline: a second sample at the same event replaces the first", () => {
  let v = 1;
  const s = new TimelineSampler(1, (row) => (row[0] = v), 4);
  s.sample(5, 0);
  v = 2;
  s.sample(5, 0);
  assert.deepEqual(s.columns().values[0], [2]);
});

Deno.test("timeline: conversions per second over a window", () => {
  assert.deepEqual(ratePerSecond([0, 10, 30], [0, 10, 20], 1), [0, 1000, 2000]);
  assert.deepEqual(ratePerSecond([0, 10, 30], [0, 10, 20], 2), [0, 1000, 1500]);
  assert.deepEqual(ratePerSecond([0, 5], [3, 3], 1), [0, 0]);
});

Deno.test("latency sampling: every conversion up to 16,384, then one in 32 counted for 32, spread evenly", () => {
  for (let i = 0; i < TIMED_IN_FULL; i += 97) assert.equal(conversionWeight(i), 1);
  assert.equal(conversionWeight(TIMED_IN_FULL - 1), 1, "the last one timed in full");
  assert.equal(TIMED_IN_FULL, 16384);
  let timed = 0, represented = 0;
  const buckets = new Array(16).fill(0);
  const n = 1_000_000;
  for (let i = TIMED_IN_FULL; i < TIMED_IN_FULL + n; i++) {
    const w = conversionWeight(i);
    assert.ok(w === 0 || w === SAMPLE_EVERY, `weight ${w}`);
    if (w > 0) {
      timed++;
      represented += w;
      buckets[i % 16]++; // no residue of a short period is left out
    }
  }
  assert.ok(timed > 30_000 && timed < 32_500, `${timed} of 1,000,000`);
  // The weights add up to the conversions they stand for (within 1%).
  assert.ok(Math.abs(represented - n) / n < 0.01, `${represented} for ${n}`);
  for (const b of buckets) assert.ok(b > 1700, `${buckets}`);
});

Deno.test("latency: a sampled conversion counts for the conversions it stands for", () => {
  // A run of 1M conversions: the first 16,384 take 10 µs (cold code), the rest 1 µs.
  const h = new LatencyHistogram();
  const n = 1_000_000;
  for (let i = 0; i < n; i++) {
    const w = conversionWeight(i);
    if (w > 0) h.record(i < TIMED_IN_FULL ? 0.01 : 0.001, w);
  }
  const r = h.report();
  assert.ok(r.count < 50_000, `${r.count} timed`);
  assert.ok(Math.abs(r.represents - n) / n < 0.01, `represents ${r.represents}`);
  // The true mean is (16,384 * 10 + 983,616 * 1) / 1M = 1.147 µs; counting
  // each timed conversion once would say about 4 µs.
  assert.ok(Math.abs(r.meanUs - 1.147) < 0.02, `mean ${r.meanUs}`);
  // The slow 1.6% sits above p98 only: p97 is the fast time, p99 the slow one.
  assert.ok(Math.abs(h.quantile(0.97) - 0.001) / 0.001 < 0.05, `p97 ${h.quantile(0.97)}`);
  assert.ok(Math.abs(r.p99Us - 10) / 10 < 0.05, `p99 ${r.p99Us}`);
  const total = r.buckets.reduce((sum, b) => sum + b.count, 0);
  assert.equal(total, r.represents);
  assert.throws(() => h.record(1, 0), /weight: must be a positive finite number, got 0/);
  assert.throws(() => h.record(1, NaN), /weight: must be a positive finite number, got NaN/);
  const after = h.report();
  assert.deepEqual(
    [after.count, after.represents, after.buckets],
    [r.count, r.represents, r.buckets],
    "a refused record changes nothing",
  );
});
