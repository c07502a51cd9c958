/**
 * Density of shared / plugged memory per pixel column, computed from runs,
 * never from a per-page array, and the colour scales that show it. Used by the
 * SVG picture here and, inlined into the page, by the HTML report's script.
 *
 * A region's state is kept as cumulative counts at knots: for knot `k` at page
 * `pos[k]`, channel `c` holds how many pages below `pos[k]` count for `c`
 * ({@link CH_COVERED}, {@link CH_SHARED}, {@link CH_PLUGGED},
 * {@link CH_DMA}). Between knots a count grows linearly; with a knot at every
 * run boundary that is exact (inside a run every page has the same state), with
 * knots every N pages it spreads a bin's pages evenly. The pages of a state in
 * `[a, b)` are then `cumAt(b) - cumAt(a)`: two binary searches per column,
 * whatever the number of runs.
 *
 * Colours: the shared fraction `f` of a column is placed on a log-odds scale,
 * `t = (log10(f / (1 - f)) + 5) / 10` clamped to `[0, 1]`, so 0.001%, 0.01%,
 * 1%, 50%, 99% and 99.999% are evenly apart and 0.004% is as far from 1% as 1%
 * is from 50%. A ramp whose luminance falls strictly as `t` grows turns `t`
 * into a colour: more shared pages, stronger colour. A column with no shared
 * page gets the ramp's own "none" colour, lighter than any shared one.
 *
 * The functions marked "inlined" refer to nothing outside themselves but each
 * other, so the HTML report can include their source text (`String(fn)`) in
 * its script; keep them that way.
 *
 * @module
 */

/** Channel: pages covered by a run (a page outside every run is a gap). */
export const CH_COVERED = 0;
/** Channel: shared pages. */
export const CH_SHARED = 1;
/** Channel: plugged pages (every page, for regions without virtio-mem). */
export const CH_PLUGGED = 2;
/** Channel: pages both shared and plugged, the DMA view's populated pages. */
export const CH_DMA = 3;
/** The run state used for a gap between runs (no state). */
export const GAP_STATE = 255;

/** Cumulative page counts at knots; see the module documentation. */
export interface Cumulative {
  /** Knot positions in pages, strictly increasing, from 0 to the region's pages. */
  pos: Float64Array;
  /** Per channel, the count of pages below each knot. */
  ch: Float64Array[];
  /** When exact: the state of the run starting at each knot (not the last). */
  state?: Uint8Array;
}

/** A colour ramp: the colour of "none" and stops `[t, 0xRRGGBB]` in increasing `t`. */
export interface ColorRamp {
  /** Colour for a fraction of exactly 0. */
  none: number;
  /** Stops as flat pairs `t0, rgb0, t1, rgb1, ...` with `t0 = 0` and the last `t = 1`. */
  stops: number[];
}

/**
 * Shared memory: pale yellow (a single page) through orange and red to a
 * dark wine (all shared); "none" is a light neutral grey.
 */
export const SHARED_RAMP: ColorRamp = {
  none: 0xeef0f3,
  stops: [
    0,
    0xffe07a,
    0.2,
    0xfec44f,
    0.35,
    0xfe9929,
    0.5,
    0xec7014,
    0.62,
    0xd7301f,
    0.75,
    0xb30000,
    0.88,
    0x7f0000,
    1,
    0x4a0010,
  ],
};

/** Plugged memory (virtio-mem): light to deep blue. */
export const PLUGGED_RAMP: ColorRamp = {
  none: 0xeef0f3,
  stops: [0, 0xc6dbef, 0.35, 0x9ecae1, 0.5, 0x6baed6, 0.7, 0x3182bd, 0.85, 0x08519c, 1, 0x08306b],
};

/** IOMMU-mapped memory: light to deep teal. */
export const MAPPED_RAMP: ColorRamp = {
  none: 0xeef0f3,
  stops: [0, 0xc7e9c0, 0.35, 0xa1d99b, 0.5, 0x74c476, 0.7, 0x31a354, 0.85, 0x006d2c, 1, 0x00441b],
};

/**
 * Where fraction `f` sits on the log-odds scale: -1 for `f <= 0`, else
 * `(log10(f / (1 - f)) + 5) / 10` clamped to `[0, 1]` (1 for `f >= 1`). Inlined.
 */
export function scalePosition(f: number): number {
  if (!(f > 0)) return -1;
  if (f >= 1) return 1;
  const t = (Math.log10(f / (1 - f)) + 5) / 10;
  return t < 0 ? 0 : t > 1 ? 1 : t;
}

/** The colour `0xRRGGBB` of fraction `f` on `ramp` (see {@link scalePosition}). Inlined. */
export function rampColor(ramp: ColorRamp, f: number): number {
  const t = scalePosition(f);
  if (t < 0) return ramp.none;
  const s = ramp.stops;
  for (let i = 2; i < s.length; i += 2) {
    if (t <= s[i] || i === s.length - 2) {
      const t0 = s[i - 2], t1 = s[i];
      const u = t1 > t0 ? Math.min(1, Math.max(0, (t - t0) / (t1 - t0))) : 0;
      const a = s[i - 1], b = s[i + 1];
      let rgb = 0;
      for (let shift = 16; shift >= 0; shift -= 8) {
        const ca = (a >> shift) & 255, cb = (b >> shift) & 255;
        rgb |= Math.round(ca + (cb - ca) * u) << shift;
      }
      return rgb;
    }
  }
  return ramp.none;
}

/** `0xRRGGBB` as `#rrggbb`. Inlined. */
export function cssColor(rgb: number): string {
  return "#" + (rgb & 0xffffff).toString(16).padStart(6, "0");
}

/** WCAG relative luminance of `0xRRGGBB`, in `[0, 1]`. Inlined. */
export function luminance(rgb: number): number {
  const lin = (c: number) => {
    const v = c / 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin((rgb >> 16) & 255) + 0.7152 * lin((rgb >> 8) & 255) +
    0.0722 * lin(rgb & 255);
}

/**
 * Builds exact cumulative counts from runs given as flat `[length, state]`
 * pairs in page order, gaps as runs of state {@link GAP_STATE}; `shared` and
 * `plugged` are the state bits, `implied` the bits every page has on top
 * (PLUGGED for a region without virtio-mem). Inlined.
 */
export function cumulativeFromRuns(
  pairs: ArrayLike<number>,
  shared: number,
  plugged: number,
  implied: number,
): Cumulative {
  const n = pairs.length / 2;
  const pos = new Float64Array(n + 1);
  const ch = [
    new Float64Array(n + 1),
    new Float64Array(n + 1),
    new Float64Array(n + 1),
    new Float64Array(n + 1),
  ];
  const state = new Uint8Array(n);
  for (let k = 0; k < n; k++) {
    const len = pairs[2 * k], raw = pairs[2 * k + 1];
    const gap = raw === 255;
    const st = gap ? 0 : raw | implied;
    state[k] = gap ? 255 : st;
    pos[k + 1] = pos[k] + len;
    ch[0][k + 1] = ch[0][k] + (gap ? 0 : len);
    ch[1][k + 1] = ch[1][k] + (!gap && (st & shared) ? len : 0);
    ch[2][k + 1] = ch[2][k] + (!gap && (st & plugged) ? len : 0);
    ch[3][k + 1] = ch[3][k] + (!gap && (st & shared) && (st & plugged) ? len : 0);
  }
  return { pos, ch, state };
}

/**
 * Builds binned cumulative counts: bin `i` covers `[i * binPages, (i + 1) *
 * binPages)` clipped to `pages`, and `counts` holds, per bin, its covered,
 * shared, plugged and DMA pages (flat, four per bin). Inlined.
 */
export function cumulativeFromBins(
  counts: ArrayLike<number>,
  binPages: number,
  pages: number,
): Cumulative {
  const n = counts.length / 4;
  const pos = new Float64Array(n + 1);
  const ch = [
    new Float64Array(n + 1),
    new Float64Array(n + 1),
    new Float64Array(n + 1),
    new Float64Array(n + 1),
  ];
  for (let k = 0; k < n; k++) {
    pos[k + 1] = Math.min(pages, (k + 1) * binPages);
    for (let c = 0; c < 4; c++) ch[c][k + 1] = ch[c][k] + counts[4 * k + c];
  }
  return { pos, ch };
}

/** Index of the last knot at or below `x` (0 when `x` is below every knot). Inlined. */
export function knotBelow(pos: Float64Array, x: number): number {
  let lo = 0, hi = pos.length - 1;
  if (x >= pos[hi]) return hi;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (pos[mid] <= x) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Pages of channel `c` below page `x` (fractional `x` allowed). Inlined. */
export function cumAt(cum: Cumulative, c: number, x: number): number {
  const pos = cum.pos, v = cum.ch[c];
  if (x <= 0) return 0;
  const k = knotBelow(pos, x);
  if (k === pos.length - 1) return v[k];
  return v[k] + (v[k + 1] - v[k]) * (x - pos[k]) / (pos[k + 1] - pos[k]);
}

/**
 * Pages of each channel in `[a, b)` (pages), written to `out[0..3]`:
 * covered, shared, plugged, DMA. Inlined.
 */
export function pagesIn(cum: Cumulative, a: number, b: number, out: Float64Array): void {
  for (let c = 0; c < 4; c++) out[c] = cumAt(cum, c, b) - cumAt(cum, c, a);
}

/**
 * Per pixel column of a band `[0, pages)` drawn `columns` wide: the covered,
 * shared, plugged and DMA pages, flat (four per column). Inlined.
 */
export function columnDensity(cum: Cumulative, pages: number, columns: number): Float64Array {
  const out = new Float64Array(columns * 4);
  const step = pages / columns;
  let prev = [0, 0, 0, 0];
  for (let i = 0; i < columns; i++) {
    const b = i === columns - 1 ? pages : (i + 1) * step;
    const next = [cumAt(cum, 0, b), cumAt(cum, 1, b), cumAt(cum, 2, b), cumAt(cum, 3, b)];
    for (let c = 0; c < 4; c++) out[4 * i + c] = next[c] - prev[c];
    prev = next;
  }
  return out;
}

/** A hex GPA label: `0x` and lowercase hex digits. Inlined. */
export function hexGpa(n: number): string {
  return "0x" + Math.round(n).toString(16);
}

/** A byte count for people, binary units, up to two decimals. Inlined. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let u = 0, v = n;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  let text = v.toFixed(2).replace(/\.?0+$/, "");
  if (text === "1024" && u < units.length - 1) {
    text = "1";
    u++;
  }
  return text + " " + units[u];
}

/**
 * A fraction as a percentage that never rounds a non-zero share to 0% or a
 * share below one to 100%: `"0.004%"`, `"1%"`, `"50%"`, `"99.9996%"`. Inlined.
 */
export function formatPercent(f: number): string {
  if (!(f > 0)) return "0%";
  if (f >= 1) return "100%";
  const p = f * 100;
  if (f > 0.5) {
    const rest = 100 - p;
    const digits = Math.min(10, Math.max(1, Math.ceil(-Math.log10(rest)) + 1));
    const text = p.toFixed(digits).replace(/\.?0+$/, "");
    return text === "100" ? ">99.9999999999%" : text + "%";
  }
  if (p >= 10) return p.toFixed(1).replace(/\.0$/, "") + "%";
  if (p >= 1) return p.toFixed(2).replace(/\.?0+$/, "") + "%";
  return Number(p.toPrecision(2)).toString().replace(/e-(\d+)/, "e-$1") + "%";
}

/**
 * Tick positions for a GPA axis over `[start, end)`: multiples of the power of
 * two that gives at most `maxTicks` ticks. Inlined.
 */
export function gpaTicks(start: number, end: number, maxTicks: number): number[] {
  const span = end - start;
  if (!(span > 0)) return [];
  let step = 1;
  while (span / step > maxTicks) step *= 2;
  const ticks: number[] = [];
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) ticks.push(t);
  return ticks;
}

/**
 * Encodes non-negative integers (up to 2^53) as LEB128-style varints,
 * 7 bits a byte, low bits first.
 */
export function encodeVarints(values: ArrayLike<number>): Uint8Array {
  let out = new Uint8Array(Math.max(16, values.length * 2));
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    let v = values[i];
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new RangeError(`values[${i}]: must be a safe non-negative integer, got ${v}`);
    }
    if (n + 8 > out.length) {
      const grown = new Uint8Array(out.length * 2);
      grown.set(out);
      out = grown;
    }
    while (v >= 128) {
      out[n++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    out[n++] = v;
  }
  return out.subarray(0, n);
}

/** Decodes {@link encodeVarints}' bytes. Inlined. */
export function decodeVarints(bytes: Uint8Array): Float64Array {
  let count = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] < 128) count++;
  const out = new Float64Array(count);
  let k = 0, v = 0, scale = 1;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    v += (b & 127) * scale;
    if (b < 128) {
      out[k++] = v;
      v = 0;
      scale = 1;
    } else scale *= 128;
  }
  return out;
}

/** Base64 of `bytes` (standard alphabet, padded). */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Bytes of a base64 string. Inlined. */
export function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** A run of pages `[start, end)` in one state. */
export interface PageRun {
  /** First page. */
  start: number;
  /** One past the last page. */
  end: number;
  /** The state word. */
  state: number;
}

/**
 * Flat `[length, state]` pairs covering `[0, pages)` from runs in any order
 * (gaps become runs of {@link GAP_STATE}; states are masked with `mask`), and
 * the number of runs. Adjacent runs left equal after masking merge.
 *
 * @throws {RangeError} when a run is empty, outside `[0, pages)` or overlaps another
 */
export function runPairs(
  runs: Iterable<PageRun>,
  pages: number,
  mask: number,
  who: string,
): { pairs: number[]; runs: number } {
  const list: PageRun[] = [];
  let sorted = true;
  for (const r of runs) {
    if (
      !Number.isInteger(r.start) || !Number.isInteger(r.end) || r.start < 0 || r.end > pages ||
      r.start >= r.end
    ) {
      throw new RangeError(
        `regions: run [${r.start}, ${r.end}) of region ${who} must lie inside [0, ${pages}) ` +
          `and be non-empty`,
      );
    }
    if (list.length > 0 && r.start < list[list.length - 1].start) sorted = false;
    list.push({ start: r.start, end: r.end, state: r.state & mask });
  }
  if (!sorted) list.sort((a, b) => a.start - b.start);
  const pairs: number[] = [];
  let at = 0;
  const push = (len: number, state: number) => {
    const n = pairs.length;
    if (n > 0 && pairs[n - 1] === state) pairs[n - 2] += len;
    else pairs.push(len, state);
  };
  for (const r of list) {
    if (r.start < at) {
      throw new RangeError(`regions: runs of region ${who} overlap at page ${r.start}`);
    }
    if (r.start > at) push(r.start - at, GAP_STATE);
    push(r.end - r.start, r.state);
    at = r.end;
  }
  if (at < pages) push(pages - at, GAP_STATE);
  return { pairs, runs: list.length };
}
