// Density from runs: cumulative counts at knots agree with a per-page count, bins keep totals,
// the colour scale separates 0.004% / 1% / 50% and grows strictly darker with the shared
// fraction, percentages never round a share to 0% or 100%, and the compact encodings round-trip.
import assert from "node:assert/strict";
import {
  columnDensity,
  cumAt,
  cumulativeFromBins,
  cumulativeFromRuns,
  decodeVarints,
  encodeVarints,
  formatBytes,
  formatPercent,
  fromBase64,
  gpaTicks,
  hexGpa,
  luminance,
  MAPPED_RAMP,
  pagesIn,
  PLUGGED_RAMP,
  rampColor,
  runPairs,
  scalePosition,
  SHARED_RAMP,
  toBase64,
} from "../src/host/report/density.ts";
import { Prng } from "../src/util/prng.ts";

const SHARED = 1, PLUGGED = 2;

/** Random runs over `pages` pages with states in 0..3 (some gaps when `gaps`). */
function randomRuns(rng: Prng, pages: number, gaps: boolean) {
  const runs: { start: number; end: number; state: number }[] = [];
  for (let at = 0; at < pages;) {
    const len = 1 + Math.floor(rng.next() * 20);
    const end = Math.min(pages, at + len);
    if (!(gaps && rng.next() < 0.2)) {
      runs.push({ start: at, end, state: Math.floor(rng.next() * 4) });
    }
    at = end;
  }
  return runs;
}

Deno.test("density: cumulative counts from runs equal a per-page count anywhere", () => {
  const rng = new Prng(11);
  for (const gaps of [false, true]) {
    const pages = 3000;
    const runs = randomRuns(rng, pages, gaps);
    const implied = gaps ? PLUGGED : 0;
    const { pairs } = runPairs(runs, pages, 3, "r");
    const cum = cumulativeFromRuns(pairs, SHARED, PLUGGED, implied);
    // Oracle: one state per page, -1 for a gap.
    const page = new Int8Array(pages).fill(-1);
    for (const r of runs) page.fill(r.state | implied, r.start, r.end);
    const out = new Float64Array(4);
    for (let i = 0; i < 200; i++) {
      const a = Math.floor(rng.next() * pages), b = a + Math.floor(rng.next() * (pages - a));
      const want = [0, 0, 0, 0];
      for (let p = a; p < b; p++) {
        const s = page[p];
        if (s < 0) continue;
        want[0]++;
        if (s & SHARED) want[1]++;
        if (s & PLUGGED) want[2]++;
        if ((s & SHARED) && (s & PLUGGED)) want[3]++;
      }
      pagesIn(cum, a, b, out);
      assert.deepEqual([...out], want, `[${a}, ${b}) gaps=${gaps}`);
    }
  }
});

Deno.test("density: column density sums to the region's totals; bins keep totals exact at edges", () => {
  const rng = new Prng(5);
  const pages = 10_000;
  const runs = randomRuns(rng, pages, false);
  const { pairs } = runPairs(runs, pages, 3, "r");
  const exact = cumulativeFromRuns(pairs, SHARED, PLUGGED, 0);
  const cols = columnDensity(exact, pages, 37);
  for (let c = 0; c < 4; c++) {
    let sum = 0;
    for (let i = 0; i < 37; i++) sum += cols[4 * i + c];
    assert.ok(Math.abs(sum - cumAt(exact, c, pages)) < 1e-6);
  }
  // Bins of 64 pages: counts at bin edges are exact, in between they are spread evenly.
  const counts: number[] = [];
  for (let b = 0; b * 64 < pages; b++) {
    const out = new Float64Array(4);
    pagesIn(exact, b * 64, Math.min(pages, (b + 1) * 64), out);
    counts.push(...out);
  }
  const binned = cumulativeFromBins(counts, 64, pages);
  for (const x of [0, 64, 640, 6400, 9984, pages]) {
    for (let c = 0; c < 4; c++) assert.equal(cumAt(binned, c, x), cumAt(exact, c, x));
  }
  const mid = cumAt(binned, 1, 32);
  assert.ok(mid >= 0 && mid <= cumAt(binned, 1, 64));
});

Deno.test("density: runs in any order become sorted pairs with gaps; overlaps are refused", () => {
  const { pairs, runs } = runPairs(
    [{ start: 6, end: 8, state: 1 }, { start: 0, end: 2, state: 5 }, {
      start: 2,
      end: 4,
      state: 1,
    }],
    10,
    3,
    "r",
  );
  assert.equal(runs, 3);
  // 5 & 3 = 1: [0, 4) merges into one run of state 1.
  assert.deepEqual(pairs, [4, 1, 2, 255, 2, 1, 2, 255]);
  assert.throws(
    () => runPairs([{ start: 0, end: 3, state: 0 }, { start: 2, end: 4, state: 1 }], 10, 3, '"r"'),
    /runs of region "r" overlap at page 2/,
  );
  assert.throws(() => runPairs([{ start: 0, end: 11, state: 0 }], 10, 3, '"r"'), /\[0, 11\)/);
});

Deno.test("colour scale: 0.004%, 1% and 50% sit far apart; more shared is always darker", () => {
  const t = [0.00004, 0.01, 0.5].map(scalePosition);
  assert.ok(t[1] - t[0] >= 0.2 && t[2] - t[1] >= 0.15, `${t}`);
  assert.equal(scalePosition(0), -1);
  assert.equal(scalePosition(1), 1);
  for (const ramp of [SHARED_RAMP, PLUGGED_RAMP, MAPPED_RAMP]) {
    // Steps of 0.02 on the scale (a factor of about 1.6 in the odds): strictly darker each time.
    let prev = luminance(ramp.none);
    for (let i = 0; i <= 50; i++) {
      const odds = 10 ** (i / 50 * 10 - 5);
      const l = luminance(rampColor(ramp, odds / (1 + odds)));
      assert.ok(l < prev, `luminance must fall at step ${i}: ${l} >= ${prev}`);
      prev = l;
    }
    // And never lighter for more shared pages, however fine the step.
    prev = Infinity;
    for (let e = -12; e <= 0; e += 0.01) {
      const l = luminance(rampColor(ramp, 10 ** e));
      assert.ok(l <= prev, `at 10^${e}`);
      prev = l;
    }
  }
  // Visibly different, not just numerically.
  const lum = [0.00004, 0.01, 0.5].map((f) => luminance(rampColor(SHARED_RAMP, f)));
  assert.ok(lum[0] - lum[1] > 0.1 && lum[1] - lum[2] > 0.1, `${lum}`);
});

Deno.test("formatting: percentages never round to 0% or 100%; sizes; hex; ticks", () => {
  assert.equal(formatPercent(0), "0%");
  assert.equal(formatPercent(0.00004), "0.004%");
  assert.equal(formatPercent(0.01), "1%");
  assert.equal(formatPercent(0.5), "50%");
  assert.equal(formatPercent(0.123), "12.3%");
  assert.equal(formatPercent(0.999996), "99.9996%");
  assert.equal(formatPercent(1), "100%");
  for (const f of [1e-12, 3e-9, 0.9999999999, 1 - 1e-15]) {
    const s = formatPercent(f);
    assert.notEqual(s, "0%", `${f}`);
    assert.notEqual(s, "100%", `${f}`);
  }
  assert.equal(formatBytes(2 ** 40), "1 TiB");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(hexGpa(0x100000000), "0x100000000");
  const ticks = gpaTicks(0x100000000, 0x480000000, 8);
  assert.ok(ticks.length <= 8 && ticks.length >= 4);
  const step = ticks[1] - ticks[0];
  assert.equal(step & (step - 1), 0, "a power of two");
  for (const t of ticks) {
    assert.equal(t % step, 0);
    assert.ok(t >= 0x100000000 && t <= 0x480000000);
  }
});

Deno.test("encoding: varints and base64 round-trip, large values included", () => {
  const values = [0, 1, 127, 128, 300, 2 ** 31, 2 ** 40 + 12345, Number.MAX_SAFE_INTEGER];
  const bytes = encodeVarints(values);
  assert.deepEqual([...decodeVarints(bytes)], values);
  assert.deepEqual([...fromBase64(toBase64(bytes))], [...bytes]);
  const big = new Uint8Array(100_000).map((_, i) => (i * 7) & 255);
  assert.deepEqual(fromBase64(toBase64(big)), big);
  assert.throws(() => encodeVarints([-1]), /values\[0\]/);
});
