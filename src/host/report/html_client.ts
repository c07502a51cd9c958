/**
 * The HTML report's script: runs in the browser, not in Deno. `html.ts`
 * inlines the source text of {@link reportClient} after the density functions
 * it calls (`String(fn)`), so it refers to nothing outside itself but those
 * functions, the page's data element and uPlot's global; the imports below
 * exist for the type checker only.
 *
 * What it draws: the address space of all regions at their guest physical
 * addresses (an overview strip and a zoomable main view with lanes for shared
 * density, plugged density and each DMA device's IOMMU mappings, and a hex GPA
 * axis); exact extents once few enough are in view; a tooltip per pixel
 * column or extent; and the timelines with uPlot.
 *
 * @module
 */

import {
  cssColor,
  cumAt,
  type Cumulative,
  cumulativeFromBins,
  cumulativeFromRuns,
  decodeVarints,
  formatBytes,
  formatPercent,
  fromBase64,
  gpaTicks,
  hexGpa,
  knotBelow,
  luminance,
  rampColor,
} from "./density.ts";
import type { ColorRamp } from "./density.ts";
import type { TimelineReport } from "./recorder.ts";

// ---- the browser APIs the script uses (a sliver of the DOM's types) --------

/** A box in CSS pixels. */
interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}
/** A mouse event. */
interface PointerLike {
  clientX: number;
  clientY: number;
  button: number;
  preventDefault(): void;
}
/** An element. */
interface El {
  textContent: string | null;
  innerHTML: string;
  style: Record<string, string>;
  dataset: Record<string, string | undefined>;
  clientWidth: number;
  offsetWidth: number;
  offsetTop: number;
  classList: { add(name: string): void; remove(name: string): void };
  closest(selector: string): El | null;
  getBoundingClientRect(): Box;
  addEventListener(type: string, listener: (event: PointerLike) => void): void;
}
/** An opaque fill pattern. */
interface Pattern {
  readonly __pattern?: never;
}
/** A 2D canvas context. */
interface Ctx {
  fillStyle: string | Pattern;
  strokeStyle: string;
  lineWidth: number;
  font: string;
  textAlign: string;
  textBaseline: string;
  setTransform(a: number, b: number, c: number, d: number, e: number, f: number): void;
  clearRect(x: number, y: number, w: number, h: number): void;
  fillRect(x: number, y: number, w: number, h: number): void;
  strokeRect(x: number, y: number, w: number, h: number): void;
  fillText(text: string, x: number, y: number): void;
  measureText(text: string): { width: number };
  beginPath(): void;
  moveTo(x: number, y: number): void;
  lineTo(x: number, y: number): void;
  stroke(): void;
  createPattern(image: Canvas, repetition: string): Pattern | null;
}
/** A canvas element. */
interface Canvas extends El {
  width: number;
  height: number;
  getContext(kind: "2d"): Ctx | null;
}
/** The document. */
interface Doc {
  body: El;
  getElementById(id: string): El | null;
  createElement(tag: "canvas"): Canvas;
  querySelectorAll(selector: string): Iterable<El>;
}
/** The window. */
interface Win {
  document: Doc;
  devicePixelRatio?: number;
  addEventListener(type: string, listener: (event: PointerLike) => void): void;
  requestAnimationFrame(callback: () => void): number;
}

/** One region as the page receives it. */
export interface PageRegion {
  /** Name. */
  name: string;
  /** Guest physical base. */
  base: number;
  /** Size in bytes. */
  size: number;
  /** Page size in bytes. */
  pageSize: number;
  /** Pages. */
  pages: number;
  /** Extents (maximal runs) in the store. */
  extents: number;
  /** State bits every page has on top of the store's (PLUGGED without virtio-mem). */
  implied: number;
  /** Whether a virtio-mem device decides the PLUGGED bit here. */
  virtioMem: boolean;
  /** `exact`: `runs` holds every run; `binned`: `bins` holds counts per `binPages`. */
  mode: "exact" | "binned";
  /** Base64 varints: `[length, state]` per run, gaps as state 255 (exact mode). */
  runs?: string;
  /** Base64 varints: covered, shared, plugged, DMA pages per bin (binned mode). */
  bins?: string;
  /** Pages per bin (binned mode). */
  binPages?: number;
}

/** One DMA device as the page receives it. */
export interface PageDevice {
  /** Name. */
  name: string;
  /** Plugin kind. */
  kind: string;
  /** Live mappings at the end. */
  mappings: number;
  /** The most live at once. */
  peakMappings: number;
  /** The hardware's limit on live mappings, if known. */
  limit?: number;
  /**
   * `exact`: `records` holds every mapping, coalesced; `binned`: `bins` holds
   * mapped 4 KiB pages and mapping starts per `binPages` 4 KiB pages from GPA 0;
   * `none`: mappings unknown.
   */
  mode: "exact" | "binned" | "none";
  /** Base64 varints: `[gap, size, count]` per record in 4 KiB pages (exact mode). */
  records?: string;
  /** Base64 varints: mapped pages and mapping starts per bin (binned mode). */
  bins?: string;
  /** 4 KiB pages per bin (binned mode). */
  binPages?: number;
}

/** Everything the page's script reads (the JSON in `#memstate-data`). */
export interface PageData {
  /** The page title. */
  title: string;
  /** The full address range shown: `[start, end)`. */
  space: { start: number; end: number };
  /** The state bits. */
  bits: { shared: number; plugged: number };
  /** Colour ramps. */
  ramps: { shared: ColorRamp; plugged: ColorRamp; mapped: ColorRamp };
  /** Regions by base address. */
  regions: PageRegion[];
  /** DMA devices. */
  devices: PageDevice[];
  /** Timelines, if sampled. */
  timeline?: TimelineReport;
  /** Most extents drawn one by one; above that the view shows density. */
  exactLimit: number;
}

/** What the page exposes for tests and the console (`window.memstate`). */
export interface PageApi {
  /** The view `[start, end)` in GPA bytes. */
  view(): { start: number; end: number };
  /** Sets the view (clamped to the address space, at least 16 pages wide). */
  setView(start: number, end: number): void;
  /** `"exact"` or `"density"`. */
  mode(): string;
  /** Extents drawn one by one in the last exact drawing (0 in density mode). */
  extentsDrawn(): number;
  /** The plot's left edge and width within the main canvas, in CSS pixels. */
  plot(): { left: number; width: number; bandTop: number; bandHeight: number };
  /** The charts drawn. */
  charts(): number;
}

/** The page's script; see the module documentation. */
export function reportClient(): void {
  const win = globalThis as unknown as Win;
  const doc = win.document;
  const dataElement = doc.getElementById("memstate-data");
  if (!dataElement?.textContent) throw new Error("memstate: the report data is missing");
  const data = JSON.parse(dataElement.textContent) as PageData;
  const ramps = data.ramps;
  const SHARED = data.bits.shared, PLUGGED = data.bits.plugged;
  const PAGE4K = 4096;

  // ---- models ------------------------------------------------------------
  interface RegionModel extends PageRegion {
    end: number;
    cum: Cumulative;
  }
  const regions: RegionModel[] = data.regions.map((r) => ({
    ...r,
    end: r.base + r.size,
    cum: r.mode === "exact"
      ? cumulativeFromRuns(decodeVarints(fromBase64(r.runs ?? "")), SHARED, PLUGGED, r.implied)
      : cumulativeFromBins(decodeVarints(fromBase64(r.bins ?? "")), r.binPages ?? 1, r.pages),
  }));
  interface DeviceModel extends PageDevice {
    /** Exact: record starts, sizes, counts (4 KiB pages), mappings and pages before each. */
    start?: Float64Array;
    size?: Float64Array;
    count?: Float64Array;
    before?: Float64Array;
    pagesBefore?: Float64Array;
    /** Binned: cumulative mapped pages (channel 0) and starts (channel 1). */
    cum?: Cumulative;
  }
  const devices: DeviceModel[] = data.devices.map((d) => {
    if (d.mode === "exact") {
      const v = decodeVarints(fromBase64(d.records ?? ""));
      const n = v.length / 3;
      const start = new Float64Array(n), size = new Float64Array(n), count = new Float64Array(n);
      const before = new Float64Array(n + 1), pagesBefore = new Float64Array(n + 1);
      let at = 0;
      for (let i = 0; i < n; i++) {
        start[i] = at + v[3 * i];
        size[i] = v[3 * i + 1];
        count[i] = v[3 * i + 2];
        at = start[i] + size[i] * count[i];
        before[i + 1] = before[i] + count[i];
        pagesBefore[i + 1] = pagesBefore[i] + size[i] * count[i];
      }
      return { ...d, start, size, count, before, pagesBefore };
    }
    if (d.mode === "binned") {
      const v = decodeVarints(fromBase64(d.bins ?? ""));
      const n = v.length / 2;
      const pos = new Float64Array(n + 1);
      const ch = [new Float64Array(n + 1), new Float64Array(n + 1)];
      for (let i = 0; i < n; i++) {
        pos[i + 1] = (i + 1) * (d.binPages ?? 1);
        ch[0][i + 1] = ch[0][i] + v[2 * i];
        ch[1][i + 1] = ch[1][i] + v[2 * i + 1];
      }
      return { ...d, cum: { pos, ch } };
    }
    return { ...d };
  });
  const anyVirtioMem = regions.some((r) => r.virtioMem);

  /** Index of the last record starting below `x` (4 KiB pages), or -1. */
  function recordBelow(d: DeviceModel, x: number): number {
    const s = d.start!;
    let lo = -1, hi = s.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (s[mid] < x) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
  /** Mapped 4 KiB pages below GPA page `x`. */
  function mappedBelow(d: DeviceModel, x: number): number {
    if (d.mode === "binned") return cumAt(d.cum!, 0, x);
    if (d.mode !== "exact") return 0;
    const r = recordBelow(d, x);
    if (r < 0) return 0;
    return d.pagesBefore![r] + Math.min(d.size![r] * d.count![r], x - d.start![r]);
  }
  /** Mappings overlapping GPA pages `[a, b)`: exact, or estimated from binned starts. */
  function mappingsIn(d: DeviceModel, a: number, b: number): number {
    if (d.mode === "binned") {
      const starts = cumAt(d.cum!, 1, b) - cumAt(d.cum!, 1, a);
      return Math.round(starts) + (mappedBelow(d, a + 1) - mappedBelow(d, a) > 0 ? 1 : 0);
    }
    if (d.mode !== "exact") return 0;
    const startingBefore = (x: number) => {
      const r = recordBelow(d, x);
      if (r < 0) return 0;
      return d.before![r] + Math.min(d.count![r], Math.ceil((x - d.start![r]) / d.size![r]));
    };
    const endingBy = (x: number) => {
      const r = recordBelow(d, x);
      if (r < 0) return 0;
      return d.before![r] +
        Math.min(d.count![r], Math.max(0, Math.floor((x - d.start![r]) / d.size![r])));
    };
    return startingBefore(b) - endingBy(a);
  }

  /** Bytes of each channel in GPA `[g0, g1)`: covered, shared, plugged, DMA; and the main region. */
  const acc = new Float64Array(4);
  function bytesIn(g0: number, g1: number): RegionModel | undefined {
    acc.fill(0);
    let main: RegionModel | undefined, mainBytes = 0;
    for (const r of regions) {
      const a = Math.max(g0, r.base), b = Math.min(g1, r.end);
      if (a >= b) continue;
      const pa = (a - r.base) / r.pageSize, pb = (b - r.base) / r.pageSize;
      for (let c = 0; c < 4; c++) {
        acc[c] += (cumAt(r.cum, c, pb) - cumAt(r.cum, c, pa)) * r.pageSize;
      }
      if (b - a > mainBytes) {
        mainBytes = b - a;
        main = r;
      }
    }
    return main;
  }

  // ---- DOM ---------------------------------------------------------------
  const $ = <T extends El>(id: string) => doc.getElementById(id) as T;
  const mainCanvas = $<Canvas>("space-main");
  const overCanvas = $<Canvas>("space-overview");
  const wrap = $<El>("space-wrap");
  const tooltip = $<El>("space-tooltip");
  const selection = $<El>("space-selection");
  const viewLabel = $<El>("space-view");
  const modeLabel = $<El>("space-mode");

  const GUTTER = 104, RIGHT = 16;
  const LABEL_H = 22, BAND_H = 46, LANE_H = 14, GAP = 4, AXIS_H = 36;
  const lanes: { kind: "plugged" | "device"; label: string; device?: DeviceModel }[] = [];
  if (anyVirtioMem) lanes.push({ kind: "plugged", label: "plugged" });
  for (const d of devices) lanes.push({ kind: "device", label: d.name, device: d });
  const bandTop = LABEL_H;
  const lanesTop = bandTop + BAND_H + GAP;
  const axisTop = lanesTop + lanes.length * (LANE_H + GAP);
  const mainHeight = axisTop + AXIS_H;

  const full = { start: data.space.start, end: data.space.end };
  const minSpan = Math.max(16 * Math.min(...regions.map((r) => r.pageSize)), 16);
  let view = { start: full.start, end: full.end };
  let mode = "density";
  let drawnExtents = 0;
  let charts = 0;

  function plotWidth(): number {
    return Math.max(50, mainCanvas.clientWidth - GUTTER - RIGHT);
  }
  function xOf(gpa: number): number {
    return GUTTER + (gpa - view.start) / (view.end - view.start) * plotWidth();
  }
  function gpaOf(x: number): number {
    return view.start + (x - GUTTER) / plotWidth() * (view.end - view.start);
  }
  function setup(canvas: Canvas, height: number): Ctx {
    const dpr = win.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    canvas.style.height = height + "px";
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    const ctx = canvas.getContext("2d")!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    return ctx;
  }
  let hatch: Pattern | null = null;
  function holeFill(ctx: Ctx): Pattern | string {
    if (!hatch) {
      const tile = doc.createElement("canvas");
      tile.width = tile.height = 8;
      const t = tile.getContext("2d")!;
      t.fillStyle = "#ffffff";
      t.fillRect(0, 0, 8, 8);
      t.strokeStyle = "#d5d9df";
      t.lineWidth = 1;
      t.beginPath();
      t.moveTo(0, 8);
      t.lineTo(8, 0);
      t.stroke();
      hatch = ctx.createPattern(tile, "repeat");
    }
    return hatch ?? "#ffffff";
  }

  /** Colours of one lane over columns `[x0, x1)`, merged into runs of equal colour. */
  function paintColumns(
    ctx: Ctx,
    x0: number,
    x1: number,
    top: number,
    height: number,
    colorAt: (g0: number, g1: number) => number | undefined,
  ): void {
    const w = plotWidth();
    const span = view.end - view.start;
    let runStart = x0, runColor: number | undefined = undefined, first = true;
    const flush = (end: number) => {
      if (first) return;
      ctx.fillStyle = runColor === undefined ? holeFill(ctx) : cssColor(runColor);
      ctx.fillRect(runStart, top, end - runStart, height);
    };
    for (let x = x0; x < x1; x++) {
      const g0 = view.start + (x - GUTTER) / w * span;
      const g1 = view.start + (x + 1 - GUTTER) / w * span;
      const color = colorAt(g0, g1);
      if (first || color !== runColor) {
        flush(x);
        runStart = x;
        runColor = color;
        first = false;
      }
    }
    flush(x1);
  }

  function visibleExtents(): number {
    let n = 0;
    for (const r of regions) {
      const a = Math.max(view.start, r.base), b = Math.min(view.end, r.end);
      if (a >= b) continue;
      if (r.mode !== "exact") return Infinity;
      const pa = (a - r.base) / r.pageSize, pb = (b - r.base) / r.pageSize;
      n += knotBelow(r.cum.pos, pb - 1e-9) - knotBelow(r.cum.pos, pa) + 1;
    }
    return n;
  }

  function drawMain(): void {
    const ctx = setup(mainCanvas, mainHeight);
    const width = mainCanvas.clientWidth;
    const w = plotWidth();
    const x0 = GUTTER, x1 = GUTTER + w;
    ctx.font = "12px system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
    ctx.textBaseline = "middle";
    // Lane labels.
    ctx.fillStyle = "#3b4252";
    ctx.textAlign = "right";
    ctx.fillText("shared", GUTTER - 10, bandTop + BAND_H / 2);
    lanes.forEach((lane, i) => {
      const y = lanesTop + i * (LANE_H + GAP) + LANE_H / 2;
      ctx.fillText(
        lane.kind === "plugged" ? "plugged" : truncate(ctx, lane.label, GUTTER - 14),
        GUTTER - 10,
        y,
      );
    });
    const extents = visibleExtents();
    mode = extents <= data.exactLimit ? "exact" : "density";
    drawnExtents = 0;
    // Shared band: density per pixel column everywhere (a column inside one
    // extent gets that extent's own colour, 0% or 100%); in exact mode the
    // extents' edges and sizes are drawn on top.
    paintColumns(ctx, x0, x1, bandTop, BAND_H, (g0, g1) => {
      bytesIn(g0, g1);
      return acc[0] > 0 ? rampColor(ramps.shared, acc[1] / acc[0]) : undefined;
    });
    if (mode === "exact") drawExact(ctx, x0, x1);
    // Lanes: plugged, then one per DMA device.
    lanes.forEach((lane, i) => {
      const top = lanesTop + i * (LANE_H + GAP);
      paintColumns(ctx, x0, x1, top, LANE_H, (g0, g1) => {
        const main = bytesIn(g0, g1);
        if (!(acc[0] > 0)) return undefined;
        if (lane.kind === "plugged") {
          return main && !main.virtioMem ? 0xdfe4ea : rampColor(ramps.plugged, acc[2] / acc[0]);
        }
        const d = lane.device!;
        if (d.mode === "none") return 0xdfe4ea;
        const pages = mappedBelow(d, g1 / PAGE4K) - mappedBelow(d, g0 / PAGE4K);
        return rampColor(ramps.mapped, Math.min(1, pages * PAGE4K / acc[0]));
      });
    });
    // Region brackets and names, hole names.
    drawRegionLabels(ctx, x0, x1);
    // Outline of the band and lanes.
    ctx.strokeStyle = "#8a94a6";
    ctx.lineWidth = 1;
    ctx.strokeRect(x0 - 0.5, bandTop - 0.5, w + 1, BAND_H + 1);
    lanes.forEach((_, i) => {
      ctx.strokeRect(x0 - 0.5, lanesTop + i * (LANE_H + GAP) - 0.5, w + 1, LANE_H + 1);
    });
    drawAxis(ctx, x0, x1, width);
    viewLabel.textContent = `${hexGpa(view.start)} – ${hexGpa(view.end)}  (${
      formatBytes(view.end - view.start)
    })`;
    modeLabel.textContent = mode === "exact"
      ? `exact extents: ${drawnExtents.toLocaleString("en-US")} in view`
      : `density per pixel column: 1 px = ${formatBytes((view.end - view.start) / w)}` +
        (Number.isFinite(extents)
          ? ` · ${
            extents.toLocaleString("en-US")
          } extents in view (drawn one by one at ${data.exactLimit} or fewer)`
          : " · binned data: zoom shows density only");
    mainCanvas.dataset.viewStart = String(view.start);
    mainCanvas.dataset.viewEnd = String(view.end);
    mainCanvas.dataset.mode = mode;
    mainCanvas.dataset.extents = String(drawnExtents);
    mainCanvas.dataset.plotLeft = String(GUTTER);
    mainCanvas.dataset.plotWidth = String(w);
    mainCanvas.dataset.bandTop = String(bandTop);
    mainCanvas.dataset.bandHeight = String(BAND_H);
  }

  function drawExact(ctx: Ctx, x0: number, x1: number): void {
    for (const r of regions) {
      const a = Math.max(view.start, r.base), b = Math.min(view.end, r.end);
      if (a >= b) continue;
      const pos = r.cum.pos, state = r.cum.state!;
      const first = knotBelow(pos, (a - r.base) / r.pageSize);
      for (let k = first; k < pos.length - 1; k++) {
        const gs = r.base + pos[k] * r.pageSize, ge = r.base + pos[k + 1] * r.pageSize;
        if (gs >= view.end) break;
        if (state[k] === 255) continue;
        drawnExtents++;
        const left = Math.max(x0, xOf(gs)), right = Math.min(x1, xOf(ge));
        const shared = (state[k] & SHARED) !== 0;
        const color = shared ? rampColor(ramps.shared, 1) : ramps.shared.none;
        const px = Math.round(left), pw = Math.round(right) - px;
        if (pw < 4 && shared) {
          // Too narrow to show as a rectangle: a tick at the band's foot marks it.
          ctx.fillStyle = "#2e3440";
          ctx.fillRect(Math.floor(left), bandTop + BAND_H - 6, 1, 6);
        }
        const prevWide = k > 0 && xOf(gs) - xOf(r.base + pos[k - 1] * r.pageSize) >= 4;
        if (pw >= 4 && prevWide && gs > view.start && gs > r.base) {
          // The edge between two extents wide enough to show one: a white line
          // (never over a narrower neighbour, whose pixel column shows its share).
          ctx.fillStyle = "#ffffff";
          ctx.fillRect(px, bandTop, 1, BAND_H);
        }
        if (pw >= 90) {
          const text = `${formatBytes(ge - gs)} ${shared ? "shared" : "private"}`;
          ctx.fillStyle = luminance(color) < 0.35 ? "#ffffff" : "#3b4252";
          ctx.textAlign = "center";
          ctx.fillText(
            truncate(ctx, text, pw - 8),
            px + pw / 2,
            bandTop + BAND_H / 2,
          );
        }
      }
    }
  }

  function drawRegionLabels(ctx: Ctx, x0: number, x1: number): void {
    ctx.textAlign = "center";
    let prevEnd = full.start;
    const holes: [number, number][] = [];
    for (const r of regions) {
      if (r.base > prevEnd) holes.push([prevEnd, r.base]);
      prevEnd = Math.max(prevEnd, r.end);
      const a = Math.max(view.start, r.base), b = Math.min(view.end, r.end);
      if (a >= b) continue;
      const left = Math.max(x0, xOf(a)), right = Math.min(x1, xOf(b));
      ctx.strokeStyle = "#4c566a";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(Math.round(left) + 0.5, LABEL_H - 2);
      ctx.lineTo(Math.round(left) + 0.5, LABEL_H - 7);
      ctx.lineTo(Math.round(right) - 0.5, LABEL_H - 7);
      ctx.lineTo(Math.round(right) - 0.5, LABEL_H - 2);
      ctx.stroke();
      if (right - left >= 40) {
        const label = `${r.name} · ${formatBytes(r.size)}`;
        const text = truncate(ctx, label, right - left - 8);
        const tw = ctx.measureText(text).width;
        ctx.fillStyle = "#ffffff";
        ctx.fillRect((left + right) / 2 - tw / 2 - 4, 0, tw + 8, LABEL_H - 7);
        ctx.fillStyle = "#2e3440";
        ctx.font = "600 12px system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
        ctx.fillText(text, (left + right) / 2, (LABEL_H - 7) / 2 + 1);
        ctx.font = "12px system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
      }
    }
    if (full.end > prevEnd) holes.push([prevEnd, full.end]);
    ctx.fillStyle = "#7b8494";
    for (const [hs, he] of holes) {
      const a = Math.max(view.start, hs), b = Math.min(view.end, he);
      if (a >= b) continue;
      const left = Math.max(x0, xOf(a)), right = Math.min(x1, xOf(b));
      if (right - left >= 70) {
        ctx.fillText(
          truncate(ctx, `hole · ${formatBytes(he - hs)}`, right - left - 8),
          (left + right) / 2,
          bandTop + BAND_H / 2,
        );
      }
    }
  }

  function drawAxis(ctx: Ctx, x0: number, x1: number, width: number): void {
    const w = x1 - x0;
    const ticks = gpaTicks(view.start, view.end, Math.max(2, Math.floor(w / 120)));
    ctx.strokeStyle = "#4c566a";
    ctx.fillStyle = "#3b4252";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(x0, axisTop + 0.5);
    ctx.lineTo(x1, axisTop + 0.5);
    ctx.stroke();
    ctx.font = "11px ui-monospace, 'SF Mono', Menlo, Consolas, 'DejaVu Sans Mono', monospace";
    ctx.textBaseline = "top";
    const placed: { gpa: number; x: number }[] = [];
    let lastRight = -Infinity;
    for (const t of ticks) {
      const x = Math.round(xOf(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, axisTop);
      ctx.lineTo(x, axisTop + 6);
      ctx.stroke();
      const label = hexGpa(t);
      const tw = ctx.measureText(label).width;
      const left = Math.min(Math.max(x - tw / 2, 2), width - tw - 2);
      if (left > lastRight + 8) {
        ctx.textAlign = "left";
        ctx.fillText(label, left, axisTop + 10);
        lastRight = left + tw;
        placed.push({ gpa: t, x: x - 0.5 });
      }
    }
    ctx.textBaseline = "middle";
    mainCanvas.dataset.ticks = JSON.stringify(placed);
  }

  function drawOverview(): void {
    const height = 30;
    const ctx = setup(overCanvas, height);
    const w = plotWidth();
    const saved = view;
    view = full;
    paintColumns(ctx, GUTTER, GUTTER + w, 4, height - 8, (g0, g1) => {
      bytesIn(g0, g1);
      return acc[0] > 0 ? rampColor(ramps.shared, acc[1] / acc[0]) : undefined;
    });
    view = saved;
    const fx = (g: number) => GUTTER + (g - full.start) / (full.end - full.start) * w;
    const left = fx(view.start), right = Math.max(fx(view.end), left + 2);
    ctx.fillStyle = "rgba(46, 52, 64, 0.28)";
    ctx.fillRect(GUTTER, 4, left - GUTTER, height - 8);
    ctx.fillRect(right, 4, GUTTER + w - right, height - 8);
    ctx.strokeStyle = "#2e3440";
    ctx.lineWidth = 2;
    ctx.strokeRect(left, 1, right - left, height - 2);
    ctx.fillStyle = "#3b4252";
    ctx.font = "12px system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillText("overview", GUTTER - 10, height / 2);
  }

  function truncate(ctx: Ctx, text: string, max: number): string {
    if (ctx.measureText(text).width <= max) return text;
    let t = text;
    while (t.length > 1 && ctx.measureText(t + "…").width > max) t = t.slice(0, -1);
    return t.length > 1 ? t + "…" : "";
  }

  function draw(): void {
    drawMain();
    drawOverview();
  }

  function setView(start: number, end: number): void {
    let s = Math.min(start, end), e = Math.max(start, end);
    if (e - s < minSpan) {
      const mid = (s + e) / 2;
      s = mid - minSpan / 2;
      e = mid + minSpan / 2;
    }
    const span = Math.min(e - s, full.end - full.start);
    s = Math.max(full.start, Math.min(s, full.end - span));
    view = { start: s, end: s + span };
    hideTooltip();
    draw();
  }

  // ---- tooltip -------------------------------------------------------------
  function esc(text: string): string {
    return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  }
  function hideTooltip(): void {
    tooltip.style.display = "none";
  }
  function showTooltip(x: number, y: number): void {
    const w = plotWidth();
    if (x < GUTTER || x >= GUTTER + w) return hideTooltip();
    const col = Math.floor(x);
    let g0 = gpaOf(col), g1 = gpaOf(col + 1);
    let exactState: number | undefined;
    let region: RegionModel | undefined;
    const gpa = gpaOf(x);
    if (mode === "exact") {
      region = regions.find((r) => gpa >= r.base && gpa < r.end);
      if (region) {
        const p = (gpa - region.base) / region.pageSize;
        const k = knotBelow(region.cum.pos, p);
        g0 = region.base + region.cum.pos[k] * region.pageSize;
        g1 = region.base + region.cum.pos[k + 1] * region.pageSize;
        exactState = region.cum.state![k];
      }
    }
    const main = bytesIn(g0, g1);
    region = region ?? main;
    const rows: string[] = [];
    if (!region || acc[0] === 0) {
      let hs = full.start, he = full.end;
      for (const r of regions) {
        if (r.end <= gpa) hs = Math.max(hs, r.end);
        else if (r.base > gpa) he = Math.min(he, r.base);
      }
      rows.push(`<b>hole</b> (no RAM)`);
      rows.push(
        `<span class="mono">${hexGpa(hs)} – ${hexGpa(he)}</span> · ${formatBytes(he - hs)}`,
      );
    } else {
      rows.push(`<b>${esc(region.name)}</b>`);
      rows.push(
        `<span class="mono">${hexGpa(g0)} – ${hexGpa(g1)}</span> · ${formatBytes(g1 - g0)}` +
          (exactState !== undefined ? " (one extent)" : " (this pixel column)"),
      );
      if (exactState !== undefined) {
        const parts = [(exactState & SHARED) ? "shared" : "private"];
        if (region.virtioMem) parts.push((exactState & PLUGGED) ? "plugged" : "unplugged");
        rows.push(`state: <b>${parts.join(" + ")}</b>`);
      } else {
        const cov = acc[0];
        rows.push(
          `shared <b>${formatPercent(acc[1] / cov)}</b> (${formatBytes(acc[1])}) · private ${
            formatPercent(1 - acc[1] / cov)
          }`,
        );
        if (anyVirtioMem) {
          rows.push(
            region.virtioMem
              ? `plugged ${formatPercent(acc[2] / cov)} (${formatBytes(acc[2])})`
              : "no virtio-mem: every page counts as plugged",
          );
        }
        if (region.mode === "exact") {
          const pa = (Math.max(g0, region.base) - region.base) / region.pageSize;
          const pb = (Math.min(g1, region.end) - region.base) / region.pageSize;
          const n = knotBelow(region.cum.pos, pb - 1e-9) - knotBelow(region.cum.pos, pa) + 1;
          rows.push(`extents here: ${n.toLocaleString("en-US")}`);
        }
      }
      for (const d of devices) {
        if (d.mode === "none") {
          rows.push(`IOMMU ${esc(d.name)}: mappings not recorded`);
          continue;
        }
        const a = g0 / PAGE4K, b = g1 / PAGE4K;
        const n = mappingsIn(d, a, b);
        const bytes = (mappedBelow(d, b) - mappedBelow(d, a)) * PAGE4K;
        rows.push(
          `IOMMU ${esc(d.name)}: <b>${n.toLocaleString("en-US")}</b> mapping${n === 1 ? "" : "s"}${
            d.mode === "binned" ? " (est.)" : ""
          } · ${formatBytes(bytes)} mapped`,
        );
      }
    }
    tooltip.innerHTML = rows.map((r) => `<div>${r}</div>`).join("");
    tooltip.style.display = "block";
    const box = wrap.getBoundingClientRect();
    const tw = tooltip.offsetWidth;
    tooltip.style.left = Math.min(Math.max(4, x + 14), box.width - tw - 4) + "px";
    tooltip.style.top = (mainCanvas.offsetTop + y + 16) + "px";
  }

  // ---- interaction -------------------------------------------------------
  function attachZoom(
    canvas: Canvas,
    toGpa: (x: number) => number,
    onClick: (x: number) => void,
  ): void {
    let dragFrom: number | undefined;
    const localX = (e: PointerLike) => e.clientX - canvas.getBoundingClientRect().left;
    canvas.addEventListener("mousedown", (e) => {
      if (e.button !== 0) return;
      const x = localX(e);
      if (x < GUTTER || x > GUTTER + plotWidth()) return;
      dragFrom = x;
      e.preventDefault();
    });
    win.addEventListener("mousemove", (e) => {
      if (dragFrom === undefined) return;
      const x = Math.min(Math.max(localX(e), GUTTER), GUTTER + plotWidth());
      const rect = canvas.getBoundingClientRect(), box = wrap.getBoundingClientRect();
      selection.style.display = "block";
      selection.style.left = (rect.left - box.left + Math.min(x, dragFrom)) + "px";
      selection.style.width = Math.abs(x - dragFrom) + "px";
      selection.style.top = (rect.top - box.top) + "px";
      selection.style.height = rect.height + "px";
    });
    win.addEventListener("mouseup", (e) => {
      if (dragFrom === undefined) return;
      const from = dragFrom;
      dragFrom = undefined;
      selection.style.display = "none";
      const x = Math.min(Math.max(localX(e), GUTTER), GUTTER + plotWidth());
      if (Math.abs(x - from) >= 4) setView(toGpa(Math.min(x, from)), toGpa(Math.max(x, from)));
      else onClick(x);
    });
  }
  attachZoom(mainCanvas, gpaOf, (x) => {
    const g = gpaOf(x), span = (view.end - view.start) / 4;
    setView(g - span / 2, g + span / 2);
  });
  const overGpa = (x: number) => full.start + (x - GUTTER) / plotWidth() * (full.end - full.start);
  attachZoom(overCanvas, overGpa, (x) => {
    const g = overGpa(x), span = view.end - view.start;
    setView(g - span / 2, g + span / 2);
  });
  mainCanvas.addEventListener("mousemove", (e) => {
    const rect = mainCanvas.getBoundingClientRect();
    showTooltip(e.clientX - rect.left, e.clientY - rect.top);
  });
  mainCanvas.addEventListener("mouseleave", hideTooltip);
  $<El>("zoom-reset").addEventListener("click", () => setView(full.start, full.end));
  $<El>("zoom-out").addEventListener("click", () => {
    const mid = (view.start + view.end) / 2, span = (view.end - view.start) * 4;
    setView(mid - span / 2, mid + span / 2);
  });
  for (const button of doc.querySelectorAll("button[data-zoom-start]")) {
    button.addEventListener("click", () => {
      const s = Number(button.dataset.zoomStart), e = Number(button.dataset.zoomEnd);
      const pad = (e - s) * 0.02;
      setView(s - pad, e + pad);
    });
  }

  // ---- timelines (uPlot) ---------------------------------------------------
  interface UPlotLike {
    setSize(size: { width: number; height: number }): void;
  }
  type UPlotCtor = new (opts: unknown, data: unknown, target: El) => UPlotLike;
  const uPlot = (globalThis as unknown as { uPlot?: UPlotCtor }).uPlot;
  const palette = [
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#b07aa1",
    "#edc948",
    "#9c755f",
  ];
  const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 2 });
  const plots: { plot: UPlotLike; box: El }[] = [];
  const isPowerOfTen = (v: number) =>
    v > 0 && Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9;
  const decades = (_u: unknown, splits: number[]) =>
    splits.map((v) => (isPowerOfTen(v) ? v : null));
  function chart(
    id: string,
    title: string,
    series: { label: string; values: number[]; color: string; dash?: number[] }[],
    yLabel: string,
    log = false,
  ): void {
    const box = doc.getElementById(id);
    const t = data.timeline;
    if (!box || !t || !uPlot || series.length === 0) return;
    box.closest(".chart-card")?.classList.remove("hidden");
    const opts = {
      title,
      width: Math.max(280, box.clientWidth),
      height: 240,
      // A log scale shows a few thousand mappings and a limit of millions in one chart;
      // it cannot show 0, so zeros are left out there (a gap in the line).
      scales: { x: { time: false }, y: log ? { distr: 3, log: 10 } : {} },
      axes: [
        { label: "events", values: (_u: unknown, v: number[]) => v.map((x) => compact.format(x)) },
        {
          label: yLabel,
          size: 62,
          values: (_u: unknown, v: number[]) => v.map((x) => compact.format(x)),
          // On a log scale: ticks, grid lines and labels at powers of ten only.
          ...(log
            ? {
              filter: decades,
              grid: { filter: decades, stroke: "rgba(0,0,0,0.07)", width: 1 },
              ticks: { filter: decades },
              values: (_u: unknown, v: (number | null)[]) =>
                v.map((x) => (x != null && isPowerOfTen(x) ? compact.format(x) : "")),
            }
            : {}),
        },
      ],
      series: [
        { label: "event", value: (_u: unknown, v: number) => v?.toLocaleString("en-US") ?? "" },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 1.75,
          dash: s.dash,
          points: { show: false },
          value: (_u: unknown, v: number | null) => v == null ? "–" : v.toLocaleString("en-US"),
        })),
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    };
    const values = series.map((s) => log ? s.values.map((v) => (v > 0 ? v : null)) : s.values);
    const plot = new uPlot(opts, [t.events, ...values], box);
    plots.push({ plot, box });
    charts++;
  }
  function timelines(): void {
    const t = data.timeline;
    if (!t) return;
    const color = (i: number) => palette[i % palette.length];
    chart(
      "chart-extents",
      "Extents per region",
      t.regions.map((r, i) => ({ label: r.name, values: r.extents, color: color(i) })),
      "extents",
    );
    const mapSeries: { label: string; values: number[]; color: string; dash?: number[] }[] = [];
    let log = false;
    t.devices.forEach((d, i) => {
      mapSeries.push({ label: `${d.name} mappings`, values: d.mappings, color: color(i) });
      if (d.limit !== undefined) {
        mapSeries.push({
          label: `${d.name} limit`,
          values: d.mappings.map(() => d.limit!),
          color: color(i),
          dash: [6, 5],
        });
        const peak = Math.max(0, ...d.mappings);
        if (d.limit > 20 * Math.max(1, peak)) log = true;
      }
    });
    chart(
      "chart-mappings",
      log
        ? "Live IOMMU mappings per container (log scale, dashed: limit)"
        : "Live IOMMU mappings per container (dashed: limit)",
      mapSeries,
      "mappings",
      log,
    );
    chart(
      "chart-tables",
      "IO page-table pages per container",
      t.devices.flatMap((d, i) =>
        d.tablePages ? [{ label: d.name, values: d.tablePages, color: color(i) }] : []
      ),
      "4 KiB pages",
    );
    chart(
      "chart-rate",
      "Conversions per second",
      [{ label: "conversions/s", values: t.conversionsPerSecond, color: "#d7301f" }],
      "per second",
    );
  }

  // ---- start -------------------------------------------------------------
  draw();
  timelines();
  let pending = false;
  win.addEventListener("resize", () => {
    if (pending) return;
    pending = true;
    win.requestAnimationFrame(() => {
      pending = false;
      draw();
      for (const { plot, box } of plots) {
        plot.setSize({ width: Math.max(280, box.clientWidth), height: 240 });
      }
    });
  });
  const api: PageApi = {
    view: () => ({ ...view }),
    setView,
    mode: () => mode,
    extentsDrawn: () => drawnExtents,
    plot: () => ({ left: GUTTER, width: plotWidth(), bandTop, bandHeight: BAND_H }),
    charts: () => charts,
  };
  (globalThis as unknown as { memstate: PageApi }).memstate = api;
  doc.body.dataset.ready = "true";
}
