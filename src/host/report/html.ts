/**
 * The interactive HTML report (`memstate run --html FILE`): one self-contained
 * file, no network at view time (a Content-Security-Policy forbids it).
 *
 * Built here, in Deno: the page's static parts (header, device gauges against
 * their limits, region and plugin tables, the latency histogram as SVG,
 * problems) and one JSON data element with each region's runs and each DMA
 * device's IOMMU mappings, compactly encoded (base64 varints, mappings
 * coalesced into records of equal, adjacent mappings). Drawn in the browser
 * by the inlined script: the address space, density per pixel column from
 * cumulative counts ({@link ./density.ts}), zoom, exact extents, tooltips, and
 * the timelines with uPlot (inlined from npm, see `_uplot.ts`).
 *
 * A region with more runs than the budget allows is sent as counts per bin
 * instead (density stays right to a bin; exact extents are not available), and
 * so are a device's mappings; the page says so.
 *
 * @module
 */

import { PLUGGED, SHARED } from "../../bus/state_bits.ts";
import type { Host } from "../build.ts";
import {
  cssColor,
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
  knotBelow,
  luminance,
  MAPPED_RAMP,
  type PageRun,
  pagesIn,
  PLUGGED_RAMP,
  rampColor,
  runPairs,
  scalePosition,
  SHARED_RAMP,
  toBase64,
} from "./density.ts";
import { type PageData, type PageDevice, type PageRegion, reportClient } from "./html_client.ts";
import { formatMicros, isSampled, type LatencyReport, timedSummary } from "./latency.ts";
import { positionUnit, type Report } from "./report.ts";
import { svgRegionOf } from "./svg.ts";
import { UPLOT_CSS, UPLOT_JS, UPLOT_LICENSE } from "./_uplot.ts";

/** One region to show. */
export interface HtmlRegion {
  /** Name. */
  name: string;
  /** Guest physical base address in bytes. */
  base: number;
  /** Size in bytes (a multiple of `pageSize`). */
  size: number;
  /** Page size in bytes. */
  pageSize: number;
  /** Its runs in page units (any order, not overlapping). */
  runs: Iterable<PageRun>;
  /** State bits every page has on top of its run's (PLUGGED where no virtio-mem decides it). */
  implied?: number;
  /** Whether a virtio-mem device decides the PLUGGED bit here. */
  virtioMem?: boolean;
}

/** One IOMMU mapping (a type1 entry or an iommufd area). */
export interface HtmlMapping {
  /** IO virtual address (the GPA), 4 KiB aligned. */
  iova: number;
  /** Bytes, a multiple of 4 KiB. */
  size: number;
}

/** One DMA device to show. */
export interface HtmlDevice {
  /** Name (as in the report's plugins). */
  name: string;
  /** Plugin kind. */
  kind: string;
  /** Its IOMMU mappings at the end of the run, if known. */
  mappings?: Iterable<HtmlMapping>;
  /** Its limit on live mappings, if known and not in the report's plugin stats. */
  limit?: number;
}

/** What {@link renderHtmlReport} draws. */
export interface HtmlReportInput {
  /** The run report (its latency and timeline are drawn when present). */
  report: Report;
  /** Regions, any order. */
  regions: HtmlRegion[];
  /** DMA devices. */
  devices: HtmlDevice[];
}

/** Size budgets of the page's data. */
export interface HtmlReportOptions {
  /** Most runs, all regions together, sent one by one (default 250,000). */
  runBudget?: number;
  /** Most mapping records, all devices together, sent one by one (default 250,000). */
  mappingBudget?: number;
  /** Bins per region (or device) when over budget (default 65,536). */
  bins?: number;
  /** Most extents in view that are drawn one by one (default 600). */
  exactLimit?: number;
}

const PAGE4K = 4096;

/** Renders the report of a finished run on `host` (see {@link renderHtmlReport}). */
export function renderHostHtml(
  host: Host,
  report: Report,
  options: HtmlReportOptions = {},
): string {
  const regions: HtmlRegion[] = host.regions.map((r) => ({
    ...svgRegionOf(r),
    // A region whose PLUGGED bit is not implied has a virtio-mem device deciding it.
    virtioMem: (r.impliedBits & PLUGGED) === 0,
  }));
  // One row per container: the devices that share one share its mappings.
  const devices: HtmlDevice[] = [...host.containers.values()].map((d) => {
    const hw = d.hardware as unknown as {
      mappings?: () => HtmlMapping[];
      areas?: () => HtmlMapping[];
      dmaEntryLimit?: number;
    };
    const mappings = typeof hw.mappings === "function"
      ? hw.mappings()
      : typeof hw.areas === "function"
      ? hw.areas()
      : undefined;
    const limit = typeof hw.dmaEntryLimit === "number" ? hw.dmaEntryLimit : undefined;
    return { name: d.plugin.name, kind: d.plugin.kind, mappings, limit };
  });
  return renderHtmlReport({ report, regions, devices }, options);
}

/**
 * Renders the interactive HTML report: a standalone document with its data,
 * script (uPlot included) and styles inline.
 *
 * @throws {RangeError} naming the region when its geometry or runs are invalid
 */
export function renderHtmlReport(input: HtmlReportInput, options: HtmlReportOptions = {}): string {
  const data = pageData(input, options);
  const report = input.report;
  const json = JSON.stringify(data).replace(/</g, "\\u003c");
  const script = [
    scalePosition,
    rampColor,
    cssColor,
    luminance,
    cumulativeFromRuns,
    cumulativeFromBins,
    knotBelow,
    cumAt,
    pagesIn,
    hexGpa,
    formatBytes,
    formatPercent,
    gpaTicks,
    decodeVarints,
    fromBase64,
    reportClient,
  ].map(String).join("\n");
  const title = `memstate · ${report.name}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="memstate">
<title>${esc(title)}</title>
<style>${UPLOT_CSS}</style>
<style>${PAGE_CSS}</style>
</head>
<body>
<main>
${header(report)}
${addressSpace(data, input)}
${devicesSection(report, data)}
${timelineSection(report)}
${latencySection(report.latency)}
${tables(report)}
${problems(report)}
<footer>
  <p>Generated by memstate from <span class="mono">${esc(report.source)}</span>.
  This file is self-contained: it loads nothing from the network.</p>
  <details><summary>Third-party licence: uPlot 1.6.32 (MIT), used for the timelines</summary>
  <pre>${esc(UPLOT_LICENSE)}</pre></details>
</footer>
</main>
<script type="application/json" id="memstate-data">${json}</script>
<script>${scriptSafe(UPLOT_JS)}</script>
<script>
"use strict";
(function () {
${scriptSafe(script)}
try {
  reportClient();
} catch (e) {
  console.error("memstate report: " + (e && e.stack || e));
}
})();
</script>
</body>
</html>
`;
}

/** The page's data element: regions and devices encoded within the budgets. */
function pageData(input: HtmlReportInput, options: HtmlReportOptions): PageData {
  const runBudget = options.runBudget ?? 250_000;
  const mappingBudget = options.mappingBudget ?? 250_000;
  const bins = Math.max(1, Math.floor(options.bins ?? 65_536));
  const sorted = [...input.regions].sort((a, b) => a.base - b.base);
  const encoded = sorted.map((r) => {
    checkGeometry(r);
    const pages = r.size / r.pageSize;
    return {
      region: r,
      pages,
      ...runPairs(r.runs, pages, SHARED | PLUGGED, JSON.stringify(r.name)),
    };
  });
  const totalRuns = encoded.reduce((n, e) => n + e.pairs.length / 2, 0);
  const regions: PageRegion[] = encoded.map(({ region: r, pages, pairs, runs }) => {
    const implied = (r.implied ?? 0) & (SHARED | PLUGGED);
    const base = {
      name: r.name,
      base: r.base,
      size: r.size,
      pageSize: r.pageSize,
      pages,
      extents: runs,
      implied,
      virtioMem: r.virtioMem ?? false,
    };
    if (totalRuns <= runBudget) {
      return { ...base, mode: "exact" as const, runs: toBase64(encodeVarints(pairs)) };
    }
    const binPages = Math.max(1, Math.ceil(pages / bins));
    return {
      ...base,
      mode: "binned" as const,
      binPages,
      bins: toBase64(encodeVarints(binCounts(pairs, pages, binPages, implied))),
    };
  });
  const end = Math.max(0, ...sorted.map((r) => r.base + r.size));
  const plugins = new Map(input.report.plugins.map((p) => [p.name, p]));
  const lists = input.devices.map((d) =>
    d.mappings === undefined ? undefined : [...d.mappings].sort((a, b) => a.iova - b.iova)
  );
  const records = lists.map((l) => (l === undefined ? undefined : coalesce(l)));
  const totalRecords = records.reduce((n, r) => n + (r?.length ?? 0) / 3, 0);
  const devices: PageDevice[] = input.devices.map((d, i) => {
    const stats = (plugins.get(d.name) ?? {}) as Record<string, unknown>;
    const limit = numberField(stats, "mappingLimit", "dmaEntryLimit") ?? d.limit ??
      input.report.timeline?.devices.find((t) => t.name === d.name)?.limit;
    const base = {
      name: d.name,
      kind: d.kind,
      mappings: numberField(stats, "mappings") ?? lists[i]?.length ?? 0,
      peakMappings: numberField(stats, "peakMappings") ?? 0,
      ...(limit !== undefined ? { limit } : {}),
    };
    const rec = records[i];
    if (rec === undefined) return { ...base, mode: "none" as const };
    if (totalRecords <= mappingBudget) {
      return { ...base, mode: "exact" as const, records: toBase64(encodeVarints(rec)) };
    }
    const binPages = Math.max(1, Math.ceil(end / PAGE4K / bins));
    return {
      ...base,
      mode: "binned" as const,
      binPages,
      bins: toBase64(encodeVarints(mappingBins(lists[i]!, binPages, end / PAGE4K))),
    };
  });
  return {
    title: input.report.name,
    space: { start: 0, end: Math.max(end, 1) },
    bits: { shared: SHARED, plugged: PLUGGED },
    ramps: { shared: SHARED_RAMP, plugged: PLUGGED_RAMP, mapped: MAPPED_RAMP },
    regions,
    devices,
    ...(input.report.timeline ? { timeline: input.report.timeline } : {}),
    exactLimit: Math.max(1, Math.floor(options.exactLimit ?? 600)),
  };
}

function checkGeometry(r: HtmlRegion): void {
  const who = JSON.stringify(r.name);
  if (!Number.isSafeInteger(r.pageSize) || r.pageSize <= 0) {
    throw new RangeError(`regions: pageSize of ${who} must be positive, got ${r.pageSize}`);
  }
  if (!Number.isSafeInteger(r.size) || r.size <= 0 || r.size % r.pageSize !== 0) {
    throw new RangeError(
      `regions: size of ${who} must be a positive multiple of ${r.pageSize}, got ${r.size}`,
    );
  }
  if (!Number.isSafeInteger(r.base) || r.base < 0) {
    throw new RangeError(`regions: base of ${who} must be a non-negative integer, got ${r.base}`);
  }
}

/** Per bin of `binPages`: covered, shared, plugged and DMA pages (flat, four per bin). */
function binCounts(pairs: number[], pages: number, binPages: number, implied: number): number[] {
  const n = Math.ceil(pages / binPages);
  const out = new Array<number>(n * 4).fill(0);
  let at = 0;
  for (let k = 0; k < pairs.length; k += 2) {
    const len = pairs[k], raw = pairs[k + 1];
    if (raw !== 255) {
      const st = raw | implied;
      let p = at;
      const end = at + len;
      while (p < end) {
        const bin = Math.floor(p / binPages);
        const stop = Math.min(end, (bin + 1) * binPages);
        const c = stop - p;
        out[4 * bin] += c;
        if (st & SHARED) out[4 * bin + 1] += c;
        if (st & PLUGGED) out[4 * bin + 2] += c;
        if ((st & SHARED) && (st & PLUGGED)) out[4 * bin + 3] += c;
        p = stop;
      }
    }
    at += len;
  }
  return out;
}

/**
 * Sorted mappings as records `[gap, size, count]` in 4 KiB pages: a record is
 * `count` adjacent mappings of `size` each, starting `gap` pages after the
 * previous record's end.
 */
function coalesce(mappings: HtmlMapping[]): number[] {
  const out: number[] = [];
  let recStart = 0, recSize = 0, recCount = 0, prevEnd = 0;
  const flush = () => {
    if (recCount === 0) return;
    out.push(recStart - prevEnd, recSize, recCount);
    prevEnd = recStart + recSize * recCount;
  };
  for (const m of mappings) {
    const start = Math.floor(m.iova / PAGE4K);
    const size = Math.max(1, Math.ceil(m.size / PAGE4K));
    if (recCount > 0 && size === recSize && start === recStart + recSize * recCount) {
      recCount++;
      continue;
    }
    flush();
    if (start < prevEnd) throw new RangeError(`mappings overlap at iova ${hexGpa(m.iova)}`);
    recStart = start;
    recSize = size;
    recCount = 1;
  }
  flush();
  return out;
}

/** Per bin of `binPages` 4 KiB pages from 0: mapped pages and mapping starts. */
function mappingBins(mappings: HtmlMapping[], binPages: number, pages: number): number[] {
  const n = Math.max(1, Math.ceil(pages / binPages));
  const out = new Array<number>(n * 2).fill(0);
  for (const m of mappings) {
    const start = Math.floor(m.iova / PAGE4K), end = start + Math.ceil(m.size / PAGE4K);
    const first = Math.min(n - 1, Math.floor(start / binPages));
    out[2 * first + 1]++;
    for (let p = start; p < end;) {
      const bin = Math.min(n - 1, Math.floor(p / binPages));
      const stop = Math.min(end, (bin + 1) * binPages);
      out[2 * bin] += stop - p;
      p = stop;
    }
  }
  return out;
}

function numberField(o: Record<string, unknown>, ...names: string[]): number | undefined {
  for (const n of names) if (typeof o[n] === "number") return o[n] as number;
  return undefined;
}

/** Escapes text for HTML content and attribute values. */
function esc(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]!,
  );
}

/** Makes script text safe inside `<script>`: no `</script` or `<!--` sequences. */
function scriptSafe(js: string): string {
  return js.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");
}

const num = (n: number) => n.toLocaleString("en-US");

function header(report: Report): string {
  const extra = report as unknown as Record<string, unknown>;
  const settings: string[] = [];
  for (const key of ["vmm", "kernel", "iommu"]) {
    const v = extra[key];
    if (v === undefined) continue;
    settings.push(`${key} ${typeof v === "string" ? v : describe(v)}`);
  }
  const inv = report.invariants;
  const badges = [
    inv.violations.length === 0
      ? `<span class="badge ok">invariants: ${num(inv.checked)} checked, none violated</span>`
      : `<span class="badge bad">${num(inv.violations.length)} invariant violation${
        inv.violations.length === 1 ? "" : "s"
      }</span>`,
  ];
  if (report.errors.length > 0) {
    badges.push(
      `<span class="badge warn">${num(report.errors.length)} problem${
        report.errors.length === 1 ? "" : "s"
      } in the input</span>`,
    );
  }
  if (report.stoppedAt) {
    badges.push(
      `<span class="badge bad">stopped at ${positionUnit(report)} ${report.stoppedAt.line}</span>`,
    );
  }
  const c = report.conversions;
  const lat = report.latency;
  const stat = (value: string, label: string) =>
    `<div class="stat"><div class="value">${value}</div><div class="label">${label}</div></div>`;
  const stats = [
    stat(num(report.events), "events"),
    stat(`${report.elapsedMs.toFixed(1)} ms`, "elapsed"),
    stat(num(report.conversionsPerSecond), "conversions / s"),
    stat(
      num(c.applied),
      `applied of ${num(c.requested)} conversions (${num(c.noop)} no-op, ${
        num(c.ignored)
      } ignored, ${num(c.failed)} failed, ${num(c.rejected)} rejected)`,
    ),
  ];
  if (lat && lat.count > 0) {
    stats.push(
      stat(
        `${formatMicros(lat.p50Us)} / ${formatMicros(lat.p99Us)}`,
        `conversion latency p50 / p99 (max ${formatMicros(lat.maxUs)})`,
      ),
    );
  }
  return `<header>
  <h1>memstate <span class="name">${esc(report.name)}</span></h1>
  <p class="sub">input <b>${esc(report.input)}</b> · backend ${esc(report.backend)} · store ${
    esc(report.store)
  }${settings.map((s) => ` · ${esc(s)}`).join("")}</p>
  <p class="badges">${badges.join(" ")}</p>
  <div class="stats">${stats.join("")}</div>
</header>`;
}

function describe(v: unknown): string {
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    if (typeof o.name === "string") return o.name;
    return Object.entries(o).map(([k, x]) =>
      `${k}=${typeof x === "object" ? JSON.stringify(x) : x}`
    )
      .join(", ");
  }
  return String(v);
}

function addressSpace(data: PageData, input: HtmlReportInput): string {
  const buttons = data.regions.map((r) =>
    `<button type="button" data-zoom-start="${r.base}" data-zoom-end="${r.base + r.size}" title="${
      esc(`${hexGpa(r.base)} – ${hexGpa(r.base + r.size)}`)
    }">${esc(r.name)}</button>`
  ).join("");
  const binned = data.regions.filter((r) => r.mode === "binned").map((r) => r.name);
  const note = binned.length > 0
    ? `<p class="note">Too many extents to send one by one: ${esc(binned.join(", "))} ${
      binned.length === 1 ? "is" : "are"
    } sent as counts per bin (${
      formatBytes(
        (data.regions.find((r) => r.mode === "binned")!.binPages ?? 1) *
          data.regions[0].pageSize,
      )
    } per bin), so zooming shows density but not single extents.</p>`
    : "";
  const virtio = data.regions.some((r) => r.virtioMem);
  const legends = [
    rampLegend("shared pages per pixel column", SHARED_RAMP, "all private"),
    virtio ? rampLegend("plugged pages (virtio-mem)", PLUGGED_RAMP, "unplugged") : "",
    input.devices.length > 0 ? rampLegend("IOMMU-mapped bytes", MAPPED_RAMP, "none mapped") : "",
  ].join("");
  return `<section class="card" id="space">
  <div class="section-head">
    <h2>Address space</h2>
    <div class="toolbar">
      <button type="button" id="zoom-reset">Whole space</button>
      <button type="button" id="zoom-out">Zoom out</button>
      <span class="sep"></span>${buttons}
    </div>
  </div>
  <p class="hint">Every region at its guest physical address, to scale, with the holes between them.
  Drag across the picture (or the overview) to zoom into a range, click to zoom in 4×, hover for details.
  Colour shows the share of the pixel column's pages on a log-odds scale; once few enough extents are in view
  they are drawn one by one.</p>
  <div class="view-line"><span id="space-view" class="mono"></span><span id="space-mode"></span></div>
  <div id="space-wrap">
    <canvas id="space-overview" class="space"></canvas>
    <canvas id="space-main" class="space"></canvas>
    <div id="space-selection"></div>
    <div id="space-tooltip" role="tooltip"></div>
  </div>
  <div class="legends">${legends}
    <div class="legend"><span class="swatch hole"></span> hole (no RAM)</div>
  </div>
  ${note}
</section>`;
}

/** A colour-scale legend: a gradient bar with ticks at fractions on the log-odds scale. */
function rampLegend(title: string, ramp: typeof SHARED_RAMP, none: string): string {
  const width = 470, bar = 12, left = 112, swatch = 68;
  const stops: string[] = [];
  for (let i = 0; i <= 48; i++) {
    const t = i / 48;
    // The fraction at scale position t: inverse of the log-odds placement.
    const odds = 10 ** (t * 10 - 5);
    const f = odds / (1 + odds);
    stops.push(
      `<stop offset="${(t * 100).toFixed(2)}%" stop-color="${cssColor(rampColor(ramp, f))}"/>`,
    );
  }
  const id = `g${Math.abs(hash(title))}`;
  const ticks = [1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.5, 0.9, 0.99, 0.999, 0.99999].map((f) => {
    const x = left + scalePosition(f) * width;
    const label = f === 1e-5 ? "≤0.001%" : f === 0.99999 ? "≥99.999%" : formatPercent(f);
    return `<line x1="${x.toFixed(1)}" y1="${16 + bar}" x2="${x.toFixed(1)}" y2="${
      20 + bar
    }" stroke="#4c566a"/><text x="${x.toFixed(1)}" y="${32 + bar}" text-anchor="middle">${
      esc(label)
    }</text>`;
  }).join("");
  return `<div class="legend"><svg width="${left + width + 34}" height="${
    36 + bar
  }" role="img" aria-label="${esc(title)}">
  <defs><linearGradient id="${id}">${stops.join("")}</linearGradient></defs>
  <text x="0" y="10" class="lt">${esc(title)}</text>
  <rect x="0" y="16" width="${swatch}" height="${bar}" fill="${
    cssColor(ramp.none)
  }" stroke="#8a94a6" stroke-width="0.5"/>
  <text x="0" y="${32 + bar}">${esc(none)}</text>
  <rect x="${left}" y="16" width="${width}" height="${bar}" fill="url(#${id})" stroke="#8a94a6" stroke-width="0.5"/>
  ${ticks}
</svg></div>`;
}

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return h;
}

function devicesSection(report: Report, data: PageData): string {
  if (data.devices.length === 0) return "";
  const cards = data.devices.map((d) => {
    const stats = (report.plugins.find((p) => p.name === d.name) ?? {}) as Record<string, unknown>;
    const table = numberField(stats, "tableBytes", "ioPageTableBytes");
    const peakTable = numberField(stats, "peakTableBytes");
    let gauge = `<p class="muted">no mapping limit known for ${esc(d.kind)}</p>`;
    if (d.limit !== undefined && d.limit > 0) {
      const ratio = d.peakMappings / d.limit;
      const level = ratio >= 0.9 ? "bad" : ratio >= 0.5 ? "warn" : "ok";
      const width = Math.min(100, Math.max(ratio > 0 ? 0.6 : 0, ratio * 100));
      const nowWidth = Math.min(100, d.mappings / d.limit * 100);
      gauge = `<div class="gauge ${level}" title="peak ${num(d.peakMappings)} of ${num(d.limit)}">
        <div class="peak" style="width:${width.toFixed(3)}%"></div>
        <div class="now" style="width:${nowWidth.toFixed(3)}%"></div>
      </div>
      <p class="gauge-label"><b>peak ${num(d.peakMappings)}</b> of limit ${num(d.limit)} (${
        formatPercent(ratio)
      }) · ${num(d.mappings)} live at the end</p>`;
    }
    const members = Array.isArray(stats.devices) ? (stats.devices as unknown[]).map(String) : [];
    const rows = [
      ["kind", esc(d.kind)],
      ...(members.length > 1 ? [["devices", esc(members.join(", "))]] : []),
      ["live mappings", num(d.mappings)],
      ["peak mappings", num(d.peakMappings)],
      ["mapped", formatBytes(numberField(stats, "mappedBytes") ?? 0)],
    ];
    if (table !== undefined) {
      rows.push([
        "IO page tables",
        `${formatBytes(table)}${
          peakTable !== undefined ? ` (peak ${formatBytes(peakTable)})` : ""
        }`,
      ]);
    }
    const warnings = Array.isArray(stats.warnings)
      ? (stats.warnings as unknown[]).map((w) => `<p class="warn-line">${esc(String(w))}</p>`).join(
        "",
      )
      : "";
    return `<div class="device" data-device="${esc(d.name)}">
      <h3>${esc(d.name)}</h3>
      ${gauge}
      <table class="kv">${
      rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join("")
    }</table>
      ${warnings}
    </div>`;
  }).join("");
  return `<section class="card" id="devices">
  <h2>DMA containers against their limits</h2>
  <div class="devices">${cards}</div>
</section>`;
}

function timelineSection(report: Report): string {
  const t = report.timeline;
  if (!t) return "";
  const notes = t.notes.map((n) => `<p class="note">${esc(n)}</p>`).join("");
  const card = (id: string) =>
    `<div class="chart-card hidden"><div id="${id}" class="chart"></div></div>`;
  return `<section class="card" id="timelines">
  <h2>Over time</h2>
  <p class="hint">Sampled during the run every ${num(t.every)} event${t.every === 1 ? "" : "s"} (${
    num(t.events.length)
  } samples). Drag across a chart to zoom, double-click to reset.</p>
  <div class="charts">${card("chart-extents")}${card("chart-mappings")}${card("chart-tables")}${
    card("chart-rate")
  }</div>
  ${notes}
</section>`;
}

function latencySection(lat: LatencyReport | undefined): string {
  if (!lat) return "";
  if (lat.count === 0) {
    return `<section class="card" id="latency"><h2>Conversion latency</h2>
    <p class="muted">No conversion was timed.</p></section>`;
  }
  const cells = [
    ["p50", lat.p50Us],
    ["p90", lat.p90Us],
    ["p99", lat.p99Us],
    ["max", lat.maxUs],
    ["mean", lat.meanUs],
    ["min", lat.minUs],
  ].map(([k, v]) =>
    `<div class="stat"><div class="value">${
      formatMicros(v as number)
    }</div><div class="label">${k}</div></div>`
  ).join("");
  return `<section class="card" id="latency">
  <h2>Conversion latency</h2>
  <p class="hint">Wall time per conversion event (every component it notified included), ${
    esc(timedSummary(lat))
  }${
    isSampled(lat) ? " (a sampled conversion counts for those it stands for)" : ""
  }, in a log-bucket histogram (${lat.bucketsPerOctave} buckets per doubling; percentiles within about ±4.4%).</p>
  <div class="stats">${cells}</div>
  ${latencySvg(lat)}
</section>`;
}

/** The latency histogram: bars on a log time axis, with p50 / p99 / max marked. */
export function latencySvg(lat: LatencyReport): string {
  const W = 960, H = 240, L = 56, R = 20, T = 26, B = 40;
  const buckets = lat.buckets.filter((b) => b.toUs > 0);
  if (buckets.length === 0) return "";
  const lo = Math.max(1e-3, Math.min(...buckets.map((b) => Math.max(b.fromUs, 1e-3))));
  const hi = Math.max(...buckets.map((b) => b.toUs), lat.maxUs);
  const l0 = Math.floor(Math.log10(lo)), l1 = Math.max(l0 + 1, Math.ceil(Math.log10(hi)));
  const x = (us: number) => L + (Math.log10(Math.max(us, 10 ** l0)) - l0) / (l1 - l0) * (W - L - R);
  const maxCount = Math.max(...buckets.map((b) => b.count));
  const y = (c: number) => H - B - c / maxCount * (H - T - B);
  const parts: string[] = [];
  for (let d = l0; d <= l1; d++) {
    const xx = x(10 ** d).toFixed(1);
    parts.push(
      `<line x1="${xx}" y1="${T}" x2="${xx}" y2="${H - B}" stroke="#e5e9f0"/>`,
      `<text x="${xx}" y="${H - B + 16}" text-anchor="${
        d === l1 ? "end" : d === l0 ? "start" : "middle"
      }">${formatMicros(10 ** d)}</text>`,
    );
  }
  for (const b of buckets) {
    const x0 = x(Math.max(b.fromUs, 10 ** l0)), x1 = x(b.toUs);
    parts.push(
      `<rect class="bar" x="${x0.toFixed(2)}" y="${y(b.count).toFixed(2)}" width="${
        Math.max(1, x1 - x0 - 0.5).toFixed(2)
      }" height="${(H - B - y(b.count)).toFixed(2)}" fill="#4e79a7"><title>${
        formatMicros(b.fromUs)
      } – ${formatMicros(b.toUs)}: ${num(b.count)}</title></rect>`,
    );
  }
  const marks: [string, number, string][] = [
    ["p50", lat.p50Us, "#59a14f"],
    ["p99", lat.p99Us, "#f28e2b"],
    ["max", lat.maxUs, "#e15759"],
  ];
  let lastX = -Infinity, row = 0;
  for (const [label, v, color] of marks) {
    const xx = x(v);
    row = xx - lastX < 90 ? row + 1 : 0;
    lastX = xx;
    // Near the right edge the label goes to the left of its line.
    const flip = xx + 110 > W - R;
    parts.push(
      `<line x1="${xx.toFixed(1)}" y1="${T - 6}" x2="${xx.toFixed(1)}" y2="${
        H - B
      }" stroke="${color}" stroke-width="2" stroke-dasharray="5 3"/>`,
      `<text x="${(flip ? xx - 4 : xx + 4).toFixed(1)}" y="${T - 10 + row * 13}" text-anchor="${
        flip ? "end" : "start"
      }" fill="${color}" font-weight="600">${label} ${formatMicros(v)}</text>`,
    );
  }
  parts.push(
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#4c566a"/>`,
    `<text x="${L - 8}" y="${T + 4}" text-anchor="end">${num(maxCount)}</text>`,
    `<text x="${L - 8}" y="${H - B}" text-anchor="end">0</text>`,
    `<text x="${(L + W - R) / 2}" y="${
      H - 6
    }" text-anchor="middle">time per conversion (log scale)</text>`,
  );
  return `<svg class="latency" viewBox="0 0 ${W} ${H}" role="img" aria-label="conversion latency histogram">${
    parts.join("")
  }</svg>`;
}

function tables(report: Report): string {
  const regionRows = report.regions.map((g) =>
    `<tr><td>${esc(g.name)}</td><td class="mono">${hexGpa(g.base)} – ${
      hexGpa(g.base + g.size)
    }</td>` +
    `<td>${formatBytes(g.size)}</td><td>${num(g.extents)}</td><td>${
      formatBytes(g.sharedBytes)
    } <span class="muted">(${formatPercent(g.sharedBytes / g.size)})</span></td><td>${
      formatBytes(g.privateBytes)
    }</td><td>${formatBytes(g.pluggedBytes)}</td><td>${formatBytes(g.storeBytes)}</td><td>${
      formatBytes(g.bitmapBytes)
    }</td></tr>`
  ).join("");
  const pluginRows = report.plugins.map((p) =>
    `<tr><td>${esc(p.name)}</td><td>${esc(p.kind)}</td><td>${num(p.mappings)}</td><td>${
      num(p.peakMappings)
    }</td><td>${formatBytes(p.mappedBytes)}</td><td>${num(p.failures)}</td><td class="calls">${
      esc(Object.entries(p.calls).map(([k, v]) => `${k} ${num(v)}`).join(", "))
    }</td></tr>`
  ).join("");
  return `<section class="card" id="tables">
  <h2>Regions</h2>
  <table class="grid"><thead><tr><th>region</th><th>GPA range</th><th>size</th><th>extents</th><th>shared</th><th>private</th><th>plugged</th><th>store</th><th>QEMU bitmaps</th></tr></thead>
  <tbody>${regionRows}</tbody></table>
  <h2>Plugins</h2>
  <table class="grid"><thead><tr><th>plugin</th><th>kind</th><th>mappings</th><th>peak</th><th>mapped</th><th>failures</th><th>calls</th></tr></thead>
  <tbody>${pluginRows}</tbody></table>
</section>`;
}

function problems(report: Report): string {
  const items: string[] = [];
  for (const v of report.invariants.violations) {
    items.push(`<li class="bad">violation: ${esc(v)}</li>`);
  }
  for (const e of report.errors.slice(0, 100)) {
    items.push(`<li>${positionUnit(report)} ${e.line}: ${esc(e.message)}</li>`);
  }
  if (report.errors.length > 100) {
    items.push(`<li class="muted">… ${num(report.errors.length - 100)} more (see --json)</li>`);
  }
  for (const w of report.warnings) {
    items.push(`<li class="warn-line">warning (accepted): ${esc(w)}</li>`);
  }
  for (const n of report.notices) items.push(`<li class="muted">notice: ${esc(n)}</li>`);
  if (report.stoppedAt) {
    items.push(
      `<li class="bad">stopped at ${positionUnit(report)} ${report.stoppedAt.line}: ${
        esc(report.stoppedAt.message)
      }</li>`,
    );
  }
  if (items.length === 0) return "";
  return `<section class="card" id="problems"><h2>Problems and notices</h2><ul>${
    items.join("")
  }</ul></section>`;
}

const PAGE_CSS = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f4f7; color: #2e3440;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 1320px; margin: 0 auto; padding: 20px 24px 40px; }
header h1 { font-size: 22px; margin: 0 0 4px; font-weight: 600; color: #4c566a; }
header h1 .name { color: #2e3440; }
.sub { margin: 0 0 8px; color: #4c566a; }
.badges { margin: 0 0 14px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-size: 12.5px;
  font-weight: 600; margin-right: 6px; }
.badge.ok { background: #e3f4e1; color: #24692a; }
.badge.warn { background: #fff1d6; color: #8a5a00; }
.badge.bad { background: #fde2e1; color: #a4161a; }
.stats { display: flex; flex-wrap: wrap; gap: 10px; margin-bottom: 18px; }
.stat { background: #fff; border: 1px solid #e1e5eb; border-radius: 8px; padding: 8px 14px; min-width: 130px; }
.stat .value { font-size: 19px; font-weight: 600; font-variant-numeric: tabular-nums; }
.stat .label { font-size: 12px; color: #5e6779; max-width: 260px; }
.card { background: #fff; border: 1px solid #e1e5eb; border-radius: 10px; padding: 16px 20px 18px;
  margin-bottom: 18px; box-shadow: 0 1px 2px rgba(46,52,64,0.04); }
.card .stats .stat { background: #f8f9fb; }
h2 { font-size: 17px; margin: 0 0 8px; font-weight: 600; }
h3 { font-size: 15px; margin: 0 0 8px; }
.section-head { display: flex; align-items: center; justify-content: space-between; flex-wrap: wrap; gap: 8px; }
.toolbar { display: flex; gap: 6px; flex-wrap: wrap; align-items: center; }
.toolbar .sep { width: 1px; height: 20px; background: #d8dde5; margin: 0 4px; }
button { font: inherit; font-size: 13px; padding: 3px 10px; border-radius: 6px; border: 1px solid #c9d0da;
  background: #f8f9fb; color: #2e3440; cursor: pointer; }
button:hover { background: #eef1f5; border-color: #aab3c0; }
.hint { color: #5e6779; font-size: 13px; margin: 4px 0 10px; max-width: 980px; }
.note { color: #8a5a00; font-size: 13px; }
.muted { color: #7b8494; }
.mono { font-family: ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
.view-line { display: flex; justify-content: space-between; gap: 12px; flex-wrap: wrap; font-size: 13px;
  color: #3b4252; margin-bottom: 4px; }
#space-mode { color: #5e6779; }
#space-wrap { position: relative; user-select: none; }
canvas.space { display: block; width: 100%; cursor: crosshair; }
#space-overview { margin-bottom: 6px; }
#space-selection { position: absolute; display: none; background: rgba(94,129,172,0.18);
  border-left: 1px solid #5e81ac; border-right: 1px solid #5e81ac; pointer-events: none; }
#space-tooltip { position: absolute; display: none; z-index: 5; pointer-events: none; max-width: 420px;
  background: rgba(255,255,255,0.97); border: 1px solid #c9d0da; border-radius: 6px; padding: 7px 10px;
  box-shadow: 0 4px 14px rgba(46,52,64,0.16); font-size: 12.5px; line-height: 1.5; }
.legends { display: flex; flex-wrap: wrap; gap: 6px 28px; align-items: flex-end; margin-top: 12px; }
.legend { font-size: 11px; color: #3b4252; display: flex; align-items: center; gap: 6px; }
.legend svg text { font-size: 10.5px; fill: #3b4252; }
.legend svg text.lt { font-size: 12px; font-weight: 600; }
.swatch { display: inline-block; width: 22px; height: 12px; border: 1px solid #8a94a6; }
.swatch.hole { background: repeating-linear-gradient(135deg, #fff 0 3px, #d5d9df 3px 4px); }
.devices { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 14px; }
.device { border: 1px solid #e1e5eb; border-radius: 8px; padding: 12px 14px; background: #fbfcfd; }
.gauge { position: relative; height: 14px; border-radius: 7px; background: #e8ebf0; overflow: hidden; }
.gauge .peak { position: absolute; inset: 0 auto 0 0; border-radius: 7px; }
.gauge .now { position: absolute; inset: 4px auto 4px 0; background: rgba(46,52,64,0.45); border-radius: 3px; }
.gauge.ok .peak { background: #59a14f; }
.gauge.warn .peak { background: #f28e2b; }
.gauge.bad .peak { background: #e15759; }
.gauge-label { margin: 6px 0 8px; font-size: 13px; }
table.kv th { text-align: left; font-weight: 500; color: #5e6779; padding: 1px 14px 1px 0; }
table.kv td { font-variant-numeric: tabular-nums; }
table.grid { border-collapse: collapse; width: 100%; margin-bottom: 16px; font-size: 13px; }
table.grid th { text-align: left; font-weight: 600; border-bottom: 2px solid #e1e5eb; padding: 5px 10px 5px 0; }
table.grid td { border-bottom: 1px solid #eef0f3; padding: 5px 10px 5px 0; font-variant-numeric: tabular-nums; }
td.calls { color: #5e6779; font-size: 12px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 16px; }
.chart-card { border: 1px solid #e1e5eb; border-radius: 8px; padding: 8px 8px 4px; min-width: 0; }
.chart-card.hidden { display: none; }
.chart { width: 100%; }
.uplot .u-title { font-size: 14px; font-weight: 600; color: #2e3440; }
.uplot .u-legend { font-size: 12px; }
svg.latency { width: 100%; height: auto; max-width: 960px; display: block; }
svg.latency text { font-size: 12px; fill: #3b4252; }
svg.latency rect.bar:hover { fill: #2f5d8a; }
#problems ul { margin: 0; padding-left: 20px; }
li.bad { color: #a4161a; }
.warn-line { color: #8a5a00; font-size: 13px; margin: 4px 0; }
footer { color: #7b8494; font-size: 12.5px; margin-top: 8px; }
footer pre { white-space: pre-wrap; font-size: 11.5px; }
`;
