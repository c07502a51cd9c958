/**
 * Draws regions' state maps as a standalone SVG, the static companion of the
 * HTML report with the same density colour scale and guest-physical axis.
 *
 * On top, the address space: every region at its guest physical address, to
 * scale, with the holes between them hatched and hex GPA labels. Below, one
 * band per region, full width, with a hex GPA axis; a lane under it shows
 * plugged memory where a virtio-mem device decides it.
 *
 * A region can hold millions of runs and a picture has a few hundred pixel
 * columns, so each column is coloured by the fraction of its pages that are
 * shared, computed from the runs (each run adds its pages to the columns it
 * covers; the runs are read once, never materialised, and no per-page array
 * exists), on the log-odds scale of {@link ./density.ts}: one shared page in
 * 16 GiB, 0.004%, 1% and 50% all get visibly different colours, and more
 * shared pages always give a stronger colour. Adjacent columns of the same
 * colour merge into one rectangle, and `maxRects` bounds the columns, so the
 * size of the picture does not grow with the number of runs.
 *
 * @module
 */

import type { Region } from "../../bus/region.ts";
import { formatSize } from "../sizes.ts";
import {
  cssColor,
  formatPercent,
  gpaTicks,
  hexGpa,
  PLUGGED_RAMP,
  rampColor,
  scalePosition,
  SHARED_RAMP,
} from "./density.ts";
import type { ColorRamp } from "./density.ts";

/** State bit: the page is shared (clear: private). Matches the bus's built-in bit. */
const SHARED = 1;
/** State bit: the page is plugged (virtio-mem). Matches the bus's built-in bit. */
const PLUGGED = 2;

/** A run of pages `[start, end)` in one state, as a state store yields it. */
export interface SvgRun {
  /** First page (index within the region). */
  start: number;
  /** One past the last page. */
  end: number;
  /** The state word; only the SHARED (1) and PLUGGED (2) bits are drawn. */
  state: number;
}

/** One region to draw. */
export interface SvgRegion {
  /** Region name (label). */
  name: string;
  /** Guest physical base address in bytes. */
  base: number;
  /** Size in bytes: a positive multiple of `pageSize`. */
  size: number;
  /** Page size in bytes; runs count pages of this size. */
  pageSize: number;
  /** The region's runs in page units, any order, not overlapping; read once. */
  runs: Iterable<SvgRun>;
  /**
   * State bits every page has on top of its run's state (the region's
   * implied bits: PLUGGED where no virtio-mem device decides it). Default 0:
   * the runs' PLUGGED bits are drawn as they are, in a plugged lane.
   */
  implied?: number;
}

/** A live region as the pictures draw it: its geometry, runs and implied bits. */
export function svgRegionOf(region: Region): SvgRegion {
  return {
    name: region.name,
    base: region.base,
    size: region.size,
    pageSize: region.pageSize,
    runs: region.store.runs(),
    implied: region.impliedBits,
  };
}

/** What to draw. */
export interface StateSvgInput {
  /** Title at the top of the picture. */
  title: string;
  /** The regions (drawn in address order). */
  regions: SvgRegion[];
}

/** Drawing options. */
export interface StateSvgOptions {
  /** Picture width in pixels (default 960, at least 320). */
  width?: number;
  /** Upper bound on the rectangles of all bands together (default 4000). */
  maxRects?: number;
}

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';
const MONO = 'font-family="ui-monospace, Menlo, Consolas, DejaVu Sans Mono, monospace"';
const MARGIN = 20;
const BAND_HEIGHT = 26;
const LANE_HEIGHT = 8;
const SPACE_HEIGHT = 20;

/** Per-column bytes: covered, shared, plugged (flat, three per column). */
type Columns = Float64Array;

/**
 * Renders the state map of `input.regions` as an SVG document.
 *
 * @param input title and regions (runs in page units)
 * @param opts width and element budget
 * @returns a standalone SVG document (with `xmlns` and `viewBox`)
 * @throws {RangeError} naming the region and value when a region's geometry is
 *   invalid or a run lies outside it
 */
export function renderStateSvg(input: StateSvgInput, opts: StateSvgOptions = {}): string {
  const width = Math.max(320, Math.floor(opts.width ?? 960));
  const maxRects = Math.max(8, Math.floor(opts.maxRects ?? 4000));
  const bandWidth = width - 2 * MARGIN;
  const regions = [...input.regions].sort((a, b) => a.base - b.base);
  for (const r of regions) checkGeometry(r);
  const plugLane = regions.map((r) => ((r.implied ?? 0) & PLUGGED) === 0);
  // Bands: the address space, each region, each plugged lane. A band of c
  // columns costs at most c rectangles (+2 for background and outline).
  const bands = 1 + regions.length + plugLane.filter(Boolean).length;
  const columns = Math.max(1, Math.min(bandWidth, Math.floor(maxRects / bands) - 2));
  const spaceEnd = Math.max(1, ...regions.map((r) => r.base + r.size));
  const space: Columns = new Float64Array(columns * 3);
  const measured = regions.map((r) => measure(r, columns, space, spaceEnd));

  const parts: string[] = [];
  let y = MARGIN + 14;
  parts.push(
    `<text x="${MARGIN}" y="${y}" font-size="16" font-weight="bold">${
      escapeXml(input.title)
    }</text>`,
  );
  y += 8;
  y = legend(parts, y, "shared pages per pixel column", SHARED_RAMP, "all private");
  if (plugLane.some(Boolean)) {
    y = legend(parts, y, "plugged pages (virtio-mem)", PLUGGED_RAMP, "unplugged");
  }
  parts.push(
    `<defs><pattern id="hole" width="6" height="6" patternUnits="userSpaceOnUse">` +
      `<rect width="6" height="6" fill="#ffffff"/><path d="M0 6L6 0" stroke="#c8cdd5" stroke-width="1"/>` +
      `</pattern></defs>`,
  );
  y = addressSpace(parts, y + 6, regions, space, spaceEnd, bandWidth, columns);
  regions.forEach((r, i) => {
    y = regionBand(parts, y, r, measured[i], bandWidth, columns, plugLane[i]);
  });
  const height = Math.ceil(y + MARGIN / 2);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" ${FONT}>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    ...parts,
    `</svg>`,
    "",
  ].join("\n");
}

function checkGeometry(region: SvgRegion): void {
  const { name, base, size, pageSize } = region;
  if (!Number.isSafeInteger(pageSize) || pageSize <= 0) {
    throw new RangeError(
      `regions: pageSize of ${JSON.stringify(name)} must be positive, got ${pageSize}`,
    );
  }
  if (!Number.isSafeInteger(size) || size <= 0 || size % pageSize !== 0) {
    throw new RangeError(
      `regions: size of ${
        JSON.stringify(name)
      } must be a positive multiple of ${pageSize}, got ${size}`,
    );
  }
  if (!Number.isSafeInteger(base) || base < 0) {
    throw new RangeError(
      `regions: base of ${JSON.stringify(name)} must be a non-negative integer, got ${base}`,
    );
  }
}

/** A region's columns and run statistics. */
interface Measured {
  cols: Columns;
  runs: number;
  sharedPages: number;
}

/**
 * Reads `region.runs` once, adding each run's pages to the region's own
 * columns and, by guest physical address, to the address-space columns.
 */
function measure(region: SvgRegion, columns: number, space: Columns, spaceEnd: number): Measured {
  const pages = region.size / region.pageSize;
  const implied = region.implied ?? 0;
  const cols = new Float64Array(columns * 3);
  let runs = 0, sharedPages = 0;
  const own = columns / pages;
  const spaceScale = columns / spaceEnd;
  for (const run of region.runs) {
    const { start, end } = run;
    if (
      !Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > pages || start >= end
    ) {
      throw new RangeError(
        `regions: run [${start}, ${end}) of region ${JSON.stringify(region.name)} must lie ` +
          `inside [0, ${pages}) and be non-empty`,
      );
    }
    const state = run.state | implied;
    runs++;
    if (state & SHARED) sharedPages += end - start;
    spread(cols, start * own, end * own, columns, state, region.pageSize / own);
    const g0 = region.base + start * region.pageSize, g1 = region.base + end * region.pageSize;
    spread(space, g0 * spaceScale, g1 * spaceScale, columns, state, 1 / spaceScale);
  }
  return { cols, runs, sharedPages };
}

/** Adds `[a, b)` (in columns) of bytes in `state` to `cols`; `bytesPerColumn` converts. */
function spread(
  cols: Columns,
  a: number,
  b: number,
  columns: number,
  state: number,
  bytesPerColumn: number,
): void {
  const last = Math.min(columns - 1, Math.ceil(b) - 1);
  for (let c = Math.max(0, Math.floor(a)); c <= last; c++) {
    const bytes = (Math.min(b, c + 1) - Math.max(a, c)) * bytesPerColumn;
    if (bytes <= 0) continue;
    cols[3 * c] += bytes;
    if (state & SHARED) cols[3 * c + 1] += bytes;
    if (state & PLUGGED) cols[3 * c + 2] += bytes;
  }
}

/** Draws a colour-scale legend from `y`; returns the next free y. */
function legend(parts: string[], y: number, title: string, ramp: ColorRamp, none: string): number {
  const x0 = MARGIN, swatch = 64, left = x0 + 100, width = 440, bar = 10;
  const id = `ramp-${ramp === SHARED_RAMP ? "shared" : "plugged"}`;
  const stops: string[] = [];
  for (let i = 0; i <= 32; i++) {
    const t = i / 32, odds = 10 ** (t * 10 - 5);
    stops.push(
      `<stop offset="${(t * 100).toFixed(1)}%" stop-color="${
        cssColor(rampColor(ramp, odds / (1 + odds)))
      }"/>`,
    );
  }
  y += 16;
  parts.push(
    `<defs><linearGradient id="${id}">${stops.join("")}</linearGradient></defs>`,
    `<g font-size="10" fill="#333333">`,
    `<text x="${x0}" y="${y}" font-size="12" font-weight="bold">${escapeXml(title)}</text>`,
    `<rect x="${x0}" y="${y + 5}" width="${swatch}" height="${bar}" fill="${
      cssColor(ramp.none)
    }" stroke="#555555" stroke-width="0.5"/>`,
    `<text x="${x0 + swatch / 2}" y="${y + 27}" text-anchor="middle">${escapeXml(none)}</text>`,
    `<rect x="${left}" y="${y + 5}" width="${width}" height="${bar}" fill="url(#${id})" ` +
      `stroke="#555555" stroke-width="0.5"/>`,
  );
  for (const f of [1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.5, 0.9, 0.99, 0.999, 0.99999]) {
    const x = left + scalePosition(f) * width;
    const label = f === 1e-5 ? "≤0.001%" : f === 0.99999 ? "≥99.999%" : formatPercent(f);
    parts.push(
      `<line x1="${fmt(x)}" y1="${y + 5 + bar}" x2="${fmt(x)}" y2="${
        y + 9 + bar
      }" stroke="#555555" stroke-width="0.75"/>`,
      `<text x="${fmt(x)}" y="${y + 27}" text-anchor="middle">${escapeXml(label)}</text>`,
    );
  }
  parts.push(`</g>`);
  return y + 30;
}

/** Draws the address-space band (every region to scale, holes hatched); returns the next y. */
function addressSpace(
  parts: string[],
  top: number,
  regions: SvgRegion[],
  space: Columns,
  spaceEnd: number,
  bandWidth: number,
  columns: number,
): number {
  const x0 = MARGIN;
  const labelY = top + 16;
  parts.push(
    `<text x="${x0}" y="${labelY}" font-size="13"><tspan font-weight="bold">address space</tspan>` +
      `  ${hexGpa(0)} – ${hexGpa(spaceEnd)} (${
        escapeXml(formatSize(spaceEnd))
      }), regions to scale` +
      `</text>`,
  );
  const nameY = labelY + 16;
  const bandY = nameY + 5;
  const xOf = (gpa: number) => x0 + gpa / spaceEnd * bandWidth;
  parts.push(`<g font-size="11" fill="#333333">`);
  for (const r of regions) {
    const left = xOf(r.base), right = xOf(r.base + r.size);
    if (right - left >= 40) {
      parts.push(
        `<text x="${fmt((left + right) / 2)}" y="${nameY}" text-anchor="middle">${
          escapeXml(clip(r.name, (right - left) / 6.5))
        }</text>`,
      );
    }
  }
  parts.push(`</g>`);
  parts.push(`<g shape-rendering="crispEdges">`);
  parts.push(
    `<rect x="${x0}" y="${bandY}" width="${
      fmt(bandWidth)
    }" height="${SPACE_HEIGHT}" fill="url(#hole)"/>`,
  );
  columnRects(parts, columns, x0, bandWidth, bandY, SPACE_HEIGHT, (c) => {
    const covered = space[3 * c];
    return covered > 0 ? rampColor(SHARED_RAMP, space[3 * c + 1] / covered) : undefined;
  });
  for (const r of regions) {
    const left = xOf(r.base), right = xOf(r.base + r.size);
    parts.push(
      `<rect x="${fmt(left)}" y="${bandY}" width="${fmt(Math.max(0.5, right - left))}" ` +
        `height="${SPACE_HEIGHT}" fill="none" stroke="#555555" stroke-width="0.75"/>`,
    );
  }
  parts.push(`</g>`);
  gpaAxis(parts, 0, spaceEnd, x0, bandWidth, bandY + SPACE_HEIGHT + 3);
  return bandY + SPACE_HEIGHT + 26;
}

/** Draws one region's label, band, plugged lane and GPA axis; returns the next free y. */
function regionBand(
  parts: string[],
  top: number,
  region: SvgRegion,
  m: Measured,
  bandWidth: number,
  columns: number,
  plugLane: boolean,
): number {
  const { name, base, size, pageSize } = region;
  const pages = size / pageSize;
  const x0 = MARGIN;
  const labelY = top + 18;
  const bandY = labelY + 7;
  const label = `  ${formatSize(size)} at ${hexGpa(base)} – ${hexGpa(base + size)}  ·  ${
    formatSize(pageSize)
  } pages  ·  ${m.runs.toLocaleString("en-US")} extent${m.runs === 1 ? "" : "s"}  ·  ${
    formatPercent(m.sharedPages / pages)
  } shared`;
  parts.push(
    `<text x="${x0}" y="${labelY}" font-size="13"><tspan font-weight="bold">${
      escapeXml(name)
    }</tspan>${escapeXml(label)}</text>`,
  );
  const cols = m.cols;
  parts.push(`<g shape-rendering="crispEdges">`);
  parts.push(
    `<rect x="${x0}" y="${bandY}" width="${
      fmt(bandWidth)
    }" height="${BAND_HEIGHT}" fill="url(#hole)"/>`,
  );
  columnRects(parts, columns, x0, bandWidth, bandY, BAND_HEIGHT, (c) => {
    const covered = cols[3 * c];
    return covered > 0 ? rampColor(SHARED_RAMP, cols[3 * c + 1] / covered) : undefined;
  });
  parts.push(
    `<rect x="${x0}" y="${bandY}" width="${
      fmt(bandWidth)
    }" height="${BAND_HEIGHT}" fill="none" stroke="#555555" stroke-width="0.75"/>`,
  );
  let bottom = bandY + BAND_HEIGHT;
  if (plugLane) {
    const laneY = bottom + 2;
    columnRects(parts, columns, x0, bandWidth, laneY, LANE_HEIGHT, (c) => {
      const covered = cols[3 * c];
      return covered > 0 ? rampColor(PLUGGED_RAMP, cols[3 * c + 2] / covered) : undefined;
    });
    parts.push(
      `<rect x="${x0}" y="${laneY}" width="${
        fmt(bandWidth)
      }" height="${LANE_HEIGHT}" fill="none" stroke="#555555" stroke-width="0.5"/>`,
    );
    bottom = laneY + LANE_HEIGHT;
  }
  parts.push(`</g>`);
  gpaAxis(parts, base, base + size, x0, bandWidth, bottom + 3);
  return bottom + 26;
}

/**
 * One rectangle per run of adjacent columns of the same colour (`undefined`:
 * nothing drawn, the background shows). Whole-pixel edges, so adjacent
 * rectangles share an edge exactly.
 */
function columnRects(
  parts: string[],
  columns: number,
  x0: number,
  bandWidth: number,
  y: number,
  height: number,
  colorOf: (column: number) => number | undefined,
): void {
  const columnWidth = bandWidth / columns;
  let from = 0;
  let color = colorOf(0);
  for (let c = 1; c <= columns; c++) {
    const next = c < columns ? colorOf(c) : undefined;
    if (c < columns && next === color) continue;
    if (color !== undefined) {
      const left = Math.round(x0 + from * columnWidth);
      const right = Math.round(x0 + c * columnWidth);
      parts.push(
        `<rect x="${left}" y="${y}" width="${Math.max(1, right - left)}" height="${height}" ` +
          `fill="${cssColor(color)}"/>`,
      );
    }
    from = c;
    color = next;
  }
}

/** Draws a hex GPA axis for `[start, end)` under a band. */
function gpaAxis(
  parts: string[],
  start: number,
  end: number,
  x0: number,
  bandWidth: number,
  y: number,
): void {
  const ticks = gpaTicks(start, end, Math.max(2, Math.floor(bandWidth / 110)));
  parts.push(`<g font-size="10" fill="#333333" stroke="#555555" stroke-width="0.75" ${MONO}>`);
  let lastRight = -Infinity;
  for (const t of ticks) {
    const x = x0 + (t - start) / (end - start) * bandWidth;
    const label = hexGpa(t);
    const w = label.length * 6.2;
    const anchor = x - w / 2 < x0 ? "start" : x + w / 2 > x0 + bandWidth ? "end" : "middle";
    const left = anchor === "start" ? x : anchor === "end" ? x - w : x - w / 2;
    parts.push(`<line x1="${fmt(x)}" y1="${y}" x2="${fmt(x)}" y2="${y + 4}"/>`);
    if (left < lastRight + 6) continue;
    lastRight = left + w;
    parts.push(
      `<text x="${fmt(x)}" y="${y + 15}" text-anchor="${anchor}" stroke="none">${label}</text>`,
    );
  }
  parts.push(`</g>`);
}

function clip(text: string, chars: number): string {
  const n = Math.max(1, Math.floor(chars));
  return text.length <= n ? text : text.slice(0, Math.max(1, n - 1)) + "…";
}

/** Coordinates with at most two decimals keep the file small. */
function fmt(n: number): string {
  return String(Math.round(n * 100) / 100);
}

/** Escapes text for XML content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[ch]!,
  );
}
