/**
 * Draws regions' state maps as a standalone SVG: one horizontal band per
 * region, coloured by state, with a byte scale, labels and a legend.
 *
 * A 16 GiB region has four million 4 KiB pages and a churned one can have a
 * million runs, far more than a picture has pixels. The band is therefore cut
 * into a fixed number of pixel columns, and each column is split top to bottom
 * by the share of pages in each state (shared on top, legend order), with every
 * state it holds at least a few pixels tall: a single shared 4 KiB page in
 * 16 GiB of private memory still shows, while a column that is 10% shared
 * still looks mostly private (colouring whole columns by "any shared page"
 * made scattered churn look fully shared, which misleads more).
 *
 * Adjacent columns with the same split merge into one rectangle per state, so
 * a band costs at most `4 x columns + 2` rectangles whatever the number of
 * runs, and `maxRects` bounds the columns when there are many regions.
 *
 * @module
 */

import { formatSize } from "../sizes.ts";

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
  /** Guest physical base address in bytes (label). */
  base: number;
  /** Size in bytes: a positive multiple of `pageSize`. */
  size: number;
  /** Page size in bytes; runs count pages of this size. */
  pageSize: number;
  /** The region's runs in page units, any order, not overlapping. */
  runs: Iterable<SvgRun>;
}

/** What to draw. */
export interface StateSvgInput {
  /** Title at the top of the picture. */
  title: string;
  /** The regions, drawn top to bottom. */
  regions: SvgRegion[];
}

/** Drawing options. */
export interface StateSvgOptions {
  /** Picture width in pixels (default 960, at least 320). */
  width?: number;
  /** Upper bound on the rectangles of all bands together (default 4000). */
  maxRects?: number;
}

interface StateStyle {
  state: number;
  label: string;
  color: string;
}

/** Legend order; also the top-to-bottom order of a column's split. */
const STYLES: readonly StateStyle[] = [
  { state: SHARED | PLUGGED, label: "shared + plugged", color: "#f28e2b" },
  { state: SHARED, label: "shared + unplugged", color: "#f7cf9f" },
  { state: 0, label: "private + unplugged", color: "#c5d0dc" },
  { state: PLUGGED, label: "private + plugged", color: "#4e79a7" },
];
const COLOR_BY_STATE = new Map(STYLES.map((s) => [s.state, s.color]));
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

const MARGIN = 20;
const BAND_HEIGHT = 26;
/** Smallest height of a state in a mixed column: one page in millions still shows. */
const MIN_SEGMENT = 4;
const REGION_BLOCK = 86;

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
  const maxRects = Math.max(2, Math.floor(opts.maxRects ?? 4000));
  const bandWidth = width - 2 * MARGIN;
  const regionCount = Math.max(1, input.regions.length);
  // A column stacks at most 4 segments, so a band costs at most 4 rects per
  // column (+2 for background and outline), whatever the number of runs.
  const columns = Math.max(
    1,
    Math.min(bandWidth, Math.floor((maxRects / regionCount - 2) / 4)),
  );

  const parts: string[] = [];
  let y = MARGIN + 14;
  parts.push(
    `<text x="${MARGIN}" y="${y}" font-size="16" font-weight="bold">${
      escapeXml(input.title)
    }</text>`,
  );
  y += 14;
  y = legend(parts, y, width);
  for (const region of input.regions) {
    y = band(parts, region, y, bandWidth, columns);
  }
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

/** Draws the legend from `y`; returns the next free y. */
function legend(parts: string[], y: number, width: number): number {
  const itemWidth = 170;
  let x = MARGIN;
  y += 12;
  parts.push(`<g font-size="12">`);
  for (const style of STYLES) {
    if (x + itemWidth > width - MARGIN) {
      x = MARGIN;
      y += 18;
    }
    parts.push(
      `<rect x="${x}" y="${
        y - 10
      }" width="12" height="12" fill="${style.color}" stroke="#555555" stroke-width="0.5"/>`,
      `<text x="${x + 17}" y="${y}">${escapeXml(style.label)}</text>`,
    );
    x += itemWidth;
  }
  y += 18;
  parts.push(
    `<text x="${MARGIN}" y="${y}" fill="#333333">A pixel column holding several states is split ` +
      `top to bottom by their share, each at least ${MIN_SEGMENT} px tall.</text>`,
    `</g>`,
  );
  return y + 8;
}

/** Per-column page coverage by the two drawn bits, and run statistics. */
interface Coverage {
  /** `columns * 4` page fractions, indexed `column * 4 + (state & 3)`. */
  cover: Float64Array;
  runs: number;
  sharedPages: number;
}

function measure(region: SvgRegion, pages: number, columns: number): Coverage {
  const cover = new Float64Array(columns * 4);
  let runs = 0;
  let sharedPages = 0;
  const scale = columns / pages;
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
    const state = run.state & (SHARED | PLUGGED);
    runs++;
    if (state & SHARED) sharedPages += end - start;
    const a = start * scale;
    const b = end * scale;
    const last = Math.min(columns - 1, Math.ceil(b) - 1);
    for (let c = Math.floor(a); c <= last; c++) {
      cover[c * 4 + state] += Math.min(b, c + 1) - Math.max(a, c);
    }
  }
  return { cover, runs, sharedPages };
}

/** Draws one region's label, band and scale; returns the next free y. */
function band(
  parts: string[],
  region: SvgRegion,
  top: number,
  bandWidth: number,
  columns: number,
): number {
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
  const pages = size / pageSize;
  const { cover, runs, sharedPages } = measure(region, pages, columns);
  const columnWidth = bandWidth / columns;
  const x0 = MARGIN;
  const labelY = top + 22;
  const bandY = labelY + 8;
  const sharedPct = (100 * sharedPages / pages).toFixed(
    sharedPages > 0 && sharedPages / pages < 0.001 ? 4 : 1,
  );
  const label =
    `${name}  ${formatSize(size)} at 0x${base.toString(16)}  ·  ${formatSize(pageSize)} ` +
    `pages  ·  ${runs.toLocaleString("en-US")} extent${
      runs === 1 ? "" : "s"
    }  ·  ${sharedPct}% shared`;
  parts.push(
    `<text x="${x0}" y="${labelY}" font-size="13"><tspan font-weight="bold">${
      escapeXml(name)
    }</tspan>` +
      `${escapeXml(label.slice(name.length))}</text>`,
  );

  parts.push(`<g shape-rendering="crispEdges">`);
  parts.push(
    `<rect x="${x0}" y="${bandY}" width="${
      fmt(bandWidth)
    }" height="${BAND_HEIGHT}" fill="#ffffff"/>`,
  );
  // Adjacent columns with the same stack merge into one rect per segment.
  let groupStart = 0;
  let groupStack = columnStack(cover, 0);
  for (let c = 1; c <= columns; c++) {
    const stack = c < columns ? columnStack(cover, c) : undefined;
    if (stack !== undefined && sameStack(stack, groupStack)) continue;
    // Whole-pixel edges: adjacent rects share an edge exactly, so no hairline
    // gaps appear between them under crispEdges.
    const left = Math.round(x0 + groupStart * columnWidth);
    const right = Math.round(x0 + c * columnWidth);
    let segmentY = bandY;
    for (const { state, height } of groupStack) {
      parts.push(
        `<rect x="${left}" y="${segmentY}" width="${
          Math.max(1, right - left)
        }" height="${height}" fill="${COLOR_BY_STATE.get(state)}"/>`,
      );
      segmentY += height;
    }
    groupStart = c;
    if (stack !== undefined) groupStack = stack;
  }
  parts.push(
    `<rect x="${x0}" y="${bandY}" width="${
      fmt(bandWidth)
    }" height="${BAND_HEIGHT}" fill="none" stroke="#555555" stroke-width="0.75"/>`,
    `</g>`,
  );
  scale(parts, size, x0, bandWidth, bandY + BAND_HEIGHT + 3);
  return top + REGION_BLOCK;
}

/** One state's share of a pixel column, in whole pixels of band height. */
interface StackSegment {
  state: number;
  height: number;
}

/**
 * The vertical split of column `c`: each state it holds gets a height
 * proportional to its pages, but at least {@link MIN_SEGMENT} pixels so that
 * one page among millions stays visible; the largest share absorbs rounding.
 * Segments follow legend order (shared on top). Empty for a column no run covers.
 */
function columnStack(cover: Float64Array, c: number): StackSegment[] {
  let total = 0;
  for (let s = 0; s < 4; s++) total += cover[c * 4 + s];
  if (total === 0) return [];
  const stack: StackSegment[] = [];
  let largest = 0;
  let sum = 0;
  for (const style of STYLES) {
    const share = cover[c * 4 + style.state];
    if (share <= 0) continue;
    const height = Math.max(MIN_SEGMENT, Math.round(share / total * BAND_HEIGHT));
    stack.push({ state: style.state, height });
    sum += height;
    if (height > stack[largest].height) largest = stack.length - 1;
  }
  stack[largest].height -= sum - BAND_HEIGHT;
  return stack;
}

function sameStack(a: StackSegment[], b: StackSegment[]): boolean {
  return a.length === b.length &&
    a.every((seg, i) => seg.state === b[i].state && seg.height === b[i].height);
}

/** Draws a byte scale under a band: ticks at power-of-two offsets with sizes as labels. */
function scale(parts: string[], size: number, x0: number, bandWidth: number, y: number): void {
  let step = 1;
  while (size / step > 8) step *= 2;
  const ticks: number[] = [];
  for (let offset = 0; offset <= size; offset += step) ticks.push(offset);
  const minGap = 48 * size / bandWidth;
  if (ticks[ticks.length - 1] !== size) {
    // Keep the end label; drop a step tick that would collide with it.
    if (size - ticks[ticks.length - 1] < minGap && ticks.length > 1) ticks.pop();
    ticks.push(size);
  }
  parts.push(`<g font-size="10" fill="#333333" stroke="#555555" stroke-width="0.75">`);
  ticks.forEach((offset, i) => {
    const x = x0 + offset / size * bandWidth;
    const anchor = i === 0 ? "start" : i === ticks.length - 1 ? "end" : "middle";
    parts.push(
      `<line x1="${fmt(x)}" y1="${y}" x2="${fmt(x)}" y2="${y + 5}"/>`,
      `<text x="${fmt(x)}" y="${y + 16}" text-anchor="${anchor}" stroke="none">${
        escapeXml(formatSize(offset))
      }</text>`,
    );
  });
  parts.push(`</g>`);
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
