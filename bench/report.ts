/**
 * The benchmark report: runs every registered row source in one process,
 * prints a table (workload, store, time per unit, units per second, store
 * bytes, runs, candidate/baseline ratios for time and bytes, target met) and
 * writes the same as JSON to bench/report.json. Times are the best of several
 * repetitions (the median is in the JSON).
 *
 * Run: `deno run --allow-write --allow-read --allow-env bench/report.ts`
 * (`deno task bench:report`). `MEMSTATE_BENCH_REPS=1` makes a quick pass.
 *
 * Adding rows from another module: export a {@link RowSource} whose rows put
 * the baseline first in `results`, and add it to {@link SOURCES}. Ratios and
 * targets are computed here, the same way for every row.
 *
 * @module
 */

import { endToEndSource } from "./e2e_workloads.ts";
import { snapshotSource } from "./snapshot_rows.ts";
import { storeSource } from "./store_rows.ts";

/** One store (or configuration) measured on one workload. */
export interface Measurement {
  /** What was measured, e.g. `"bitmap"` or `"range-tree"`. */
  store: string;
  /** Seconds for all `units` (the best repetition), or null when not timed. */
  seconds: number | null;
  /** The median repetition's seconds, when there were several. */
  medianSeconds?: number;
  /** How many repetitions were timed. */
  repetitions?: number;
  /** Conversions (or replayed runs) the time covers. */
  units: number;
  /** Store bytes after the workload (`byteSize()`, or computed when not built). */
  bytes: number;
  /** `runCount` after the workload, or null when not built. */
  runs: number | null;
  /** Why something is missing, or anything else a reader must know. */
  note?: string;
}

/** A bound on a candidate/baseline ratio. */
export interface Target {
  /** Which ratio: seconds or bytes. */
  metric: "time" | "bytes";
  /** The largest ratio that meets the target. */
  max: number;
  /** When true the ratio must be strictly below `max` ("faster than"). */
  strict?: boolean;
}

/** One workload's measurements: `results[0]` is the baseline of the ratios. */
export interface ReportRow {
  /** The workload's name. */
  workload: string;
  /** What it does, in one line. */
  description: string;
  /** What one unit of `units` is: `"conversion"` or `"run"`. */
  unit: string;
  /** Baseline first, then the candidates. */
  results: Measurement[];
  /** Bounds on every candidate's ratios. */
  targets: Target[];
}

/** A module's contribution to the report. */
export interface RowSource {
  /** A short name for progress output. */
  name: string;
  /** Measures and returns the rows, in order. */
  rows(): Promise<ReportRow[]>;
}

/** Every row source of the report, in order. Add end-to-end sources here. */
export const SOURCES: RowSource[] = [storeSource, endToEndSource, snapshotSource];

/** A measurement with its ratios to the baseline and the verdict on its targets. */
export interface RatedMeasurement extends Measurement {
  /** This time over the baseline's, or null when either is untimed or this is the baseline. */
  timeRatio: number | null;
  /** These bytes over the baseline's, or null for the baseline. */
  bytesRatio: number | null;
  /** True when every target holds, false when one fails, null when none applies. */
  met: boolean | null;
  /** The targets as text, e.g. `"time <= 5x, bytes <= 2x"`. */
  target: string;
}

/** A row after rating. */
export interface RatedRow extends Omit<ReportRow, "results"> {
  /** The rated results, baseline first. */
  results: RatedMeasurement[];
}

/** The whole report, as written to JSON. */
export interface Report {
  /** ISO time of the run. */
  generated: string;
  /** The command that produced it. */
  command: string;
  /** Runtime versions. */
  versions: { deno: string; v8: string };
  /** The rows. */
  rows: RatedRow[];
}

function describeTargets(targets: Target[]): string {
  return targets.map((t) => `${t.metric} ${t.strict ? "<" : "<="} ${t.max}x`).join(", ");
}

/** Computes ratios and target verdicts for one row. */
export function rate(row: ReportRow): RatedRow {
  const [base] = row.results;
  const results = row.results.map((m, k): RatedMeasurement => {
    if (k === 0) {
      return { ...m, timeRatio: null, bytesRatio: null, met: null, target: "baseline" };
    }
    const timeRatio = m.seconds !== null && base.seconds !== null && base.seconds > 0
      ? m.seconds / base.seconds
      : null;
    const bytesRatio = base.bytes > 0 ? m.bytes / base.bytes : null;
    let met: boolean | null = null;
    for (const t of row.targets) {
      const ratio = t.metric === "time" ? timeRatio : bytesRatio;
      if (ratio === null) continue;
      const ok = t.strict ? ratio < t.max : ratio <= t.max;
      met = (met ?? true) && ok;
    }
    return { ...m, timeRatio, bytesRatio, met, target: describeTargets(row.targets) };
  });
  return { ...row, results };
}

function formatTime(seconds: number | null, units: number): string {
  if (seconds === null || !(units > 0)) return "-";
  const ns = (seconds / units) * 1e9;
  return ns >= 10_000 ? `${(ns / 1000).toFixed(1)} us` : `${ns.toFixed(1)} ns`;
}

function formatRate(seconds: number | null, units: number): string {
  if (seconds === null || !(units > 0) || seconds === 0) return "-";
  const perSecond = units / seconds;
  return perSecond >= 1e6
    ? `${(perSecond / 1e6).toFixed(2)} M`
    : `${(perSecond / 1e3).toFixed(1)} K`;
}

function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return "-";
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
  return `${bytes} B`;
}

function formatRatio(ratio: number | null): string {
  if (ratio === null) return "-";
  return ratio >= 0.01 ? `${ratio.toFixed(2)}x` : `${ratio.toExponential(1)}x`;
}

/** The report as a plain-text table, one line per measurement. */
export function formatTable(rows: RatedRow[]): string {
  const header = [
    "workload",
    "store",
    "time/unit",
    "units/s",
    "bytes",
    "runs",
    "time ratio",
    "bytes ratio",
    "target",
    "met",
  ];
  const lines: string[][] = [header];
  const notes: string[] = [];
  for (const row of rows) {
    row.results.forEach((m, k) => {
      lines.push([
        k === 0 ? `${row.workload} (per ${row.unit})` : "",
        m.store,
        formatTime(m.seconds, m.units),
        formatRate(m.seconds, m.units),
        formatBytes(m.bytes),
        m.runs === null ? "-" : String(m.runs),
        formatRatio(m.timeRatio),
        formatRatio(m.bytesRatio),
        k === 0 ? "" : m.target || "-",
        m.met === null ? "" : m.met ? "yes" : "NO",
      ]);
      if (m.note) notes.push(`${row.workload} / ${m.store}: ${m.note}`);
    });
    const runs = new Set(row.results.filter((m) => m.runs !== null).map((m) => m.runs));
    if (runs.size > 1) notes.push(`${row.workload}: stores disagree on runCount!`);
  }
  const widths = header.map((_, c) => Math.max(...lines.map((l) => l[c].length)));
  const text = lines.map((l) => l.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd());
  text.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
  return [...text, ...notes.map((n) => `note: ${n}`)].join("\n");
}

/** Runs every source and returns the rated report. */
export async function buildReport(
  sources: RowSource[] = SOURCES,
  command = "deno run --allow-write --allow-read --allow-env bench/report.ts",
): Promise<Report> {
  const rows: RatedRow[] = [];
  for (const source of sources) {
    for (const row of await source.rows()) rows.push(rate(row));
  }
  return {
    generated: new Date().toISOString(),
    command,
    versions: { deno: Deno.version.deno, v8: Deno.version.v8 },
    rows,
  };
}

if (import.meta.main) {
  const report = await buildReport();
  console.log(formatTable(report.rows));
  const out = new URL("./report.json", import.meta.url);
  Deno.writeTextFileSync(out, JSON.stringify(report, null, 2) + "\n");
  console.log(`\nwrote ${out.pathname}`);
}
