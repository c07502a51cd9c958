/**
 * The benchmark report: runs every registered row source in one process (a
 * source may measure in a process of its own, as the real-kernel rows do),
 * prints a table (workload, store, best and median time per unit, store
 * bytes, runs, candidate/baseline ratios for time and bytes, target met) and
 * writes the same as JSON to bench/report.json.
 *
 * Repeatability (issue 13, target 5): every store row runs at least three
 * times, interleaving the stores, and the table prints the best (min) and
 * median time of each. Ratios are only ever taken within one run, never
 * across runs: the machine (2 shared cores) slows whole stretches of a run
 * down, which hits both stores of a row alike. A verdict that the machine's
 * noise can flip is marked `(noise)`: when the target, judged on the ratio of
 * the best times, on the ratio of the medians, or on the lower or upper
 * quartile of the ratios of repetitions run side by side, does not come out
 * the same every way.
 *
 * Run: `deno run --allow-write --allow-read --allow-env --allow-ffi --allow-run
 * --v8-flags=--expose-gc bench/report.ts [--out FILE]` (the task
 * `bench:report`; `--out` writes the JSON there instead).
 * `MEMSTATE_BENCH_REPS=1` makes a quick pass. Several runs and the spread of
 * their ratios: bench/report_runs.ts.
 *
 * Adding rows from another module: export a {@link RowSource} whose rows put
 * the baseline first in `results`, and add it to {@link SOURCES}. Ratios and
 * targets are computed here, the same way for every row.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { outputFileOption, parseOptions } from "./cli_args.ts";
import { endToEndSource } from "./e2e_workloads.ts";
import { linuxSource } from "./linux_rows.ts";
import { replaySource } from "./replay_rows.ts";
import { snapshotSource } from "./snapshot_rows.ts";
import { storeSource } from "./store_rows.ts";
import { benchReps } from "./measurement.ts";

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
  /**
   * Seconds of every repetition, in the order run. Rows whose stores ran
   * interleaved pair the baseline's k-th with the candidate's k-th.
   */
  times?: number[];
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
export const SOURCES: RowSource[] = [
  storeSource,
  endToEndSource,
  linuxSource,
  replaySource,
  snapshotSource,
];

/** A measurement with its ratios to the baseline and the verdict on its targets. */
export interface RatedMeasurement extends Measurement {
  /** This time over the baseline's, or null when either is untimed or this is the baseline. */
  timeRatio: number | null;
  /** The median time over the baseline's median, when both have one. */
  medianRatio: number | null;
  /**
   * The lower and upper quartile of the ratios of one repetition to the
   * baseline's repetition run beside it, when both kept their times: the
   * spread the machine's noise puts on this row's ratio.
   */
  pairedRatios: { min: number; max: number } | null;
  /** These bytes over the baseline's, or null for the baseline. */
  bytesRatio: number | null;
  /** True when every target holds, false when one fails, null when none applies. */
  met: boolean | null;
  /**
   * True when a time target's verdict differs between the best-time ratio,
   * the median ratio and the quartiles of the paired ratios: the machine's
   * noise can flip it.
   */
  noiseCanFlip: boolean;
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

/** The verdict of one target on one ratio. */
function holds(target: Target, ratio: number): boolean {
  return target.strict ? ratio < target.max : ratio <= target.max;
}

/** The `q`-quantile (0 to 1) of `sorted` values, interpolating between neighbours. */
export function quantile(sorted: number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at), hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

/**
 * The lower and upper quartile of the ratios of `m`'s repetitions to the
 * baseline's repetition run beside each, or null when unpaired. Quartiles,
 * not the extremes: one repetition the scheduler stopped for a few
 * milliseconds (common on this machine: the `boot` rows are 1 ms long) says
 * nothing about either store.
 */
function pairedRatios(base: Measurement, m: Measurement): { min: number; max: number } | null {
  const a = base.times, b = m.times;
  if (a === undefined || b === undefined || a.length !== b.length || a.length === 0) return null;
  const ratios: number[] = [];
  for (let k = 0; k < a.length; k++) {
    if (!(a[k] > 0)) return null;
    ratios.push(b[k] / a[k]);
  }
  ratios.sort((x, y) => x - y);
  return { min: quantile(ratios, 0.25), max: quantile(ratios, 0.75) };
}

/** Computes ratios, target verdicts and whether noise can flip them, for one row. */
export function rate(row: ReportRow): RatedRow {
  const [base] = row.results;
  const results = row.results.map((m, k): RatedMeasurement => {
    if (k === 0) {
      return {
        ...m,
        timeRatio: null,
        medianRatio: null,
        pairedRatios: null,
        bytesRatio: null,
        met: null,
        noiseCanFlip: false,
        target: "baseline",
      };
    }
    const timeRatio = m.seconds !== null && base.seconds !== null && base.seconds > 0
      ? m.seconds / base.seconds
      : null;
    const medianRatio = m.medianSeconds !== undefined && base.medianSeconds !== undefined &&
        base.medianSeconds > 0
      ? m.medianSeconds / base.medianSeconds
      : null;
    const paired = pairedRatios(base, m);
    const bytesRatio = base.bytes > 0 ? m.bytes / base.bytes : null;
    let met: boolean | null = null;
    let noiseCanFlip = false;
    for (const t of row.targets) {
      const ratio = t.metric === "time" ? timeRatio : bytesRatio;
      if (ratio === null) continue;
      const ok = holds(t, ratio);
      met = (met ?? true) && ok;
      if (t.metric !== "time") continue;
      const others = [medianRatio, paired?.min ?? null, paired?.max ?? null];
      if (others.some((r) => r !== null && holds(t, r) !== ok)) noiseCanFlip = true;
    }
    return {
      ...m,
      timeRatio,
      medianRatio,
      pairedRatios: paired,
      bytesRatio,
      met,
      noiseCanFlip,
      target: describeTargets(row.targets),
    };
  });
  return { ...row, results };
}

function formatTime(seconds: number | null, units: number): string {
  if (seconds === null || !(units > 0)) return "-";
  const ns = (seconds / units) * 1e9;
  return ns >= 10_000 ? `${(ns / 1000).toFixed(1)} us` : `${ns.toFixed(1)} ns`;
}

function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return "-";
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/** A ratio as the tables print it: `"1.90x"`, or `"6.6e-3x"` below 0.01. */
export function formatRatio(ratio: number | null): string {
  if (ratio === null) return "-";
  return ratio >= 0.01 ? `${ratio.toFixed(2)}x` : `${ratio.toExponential(1)}x`;
}

/** The report as a plain-text table, one line per measurement. */
export function formatTable(rows: RatedRow[]): string {
  const header = [
    "workload",
    "store",
    "min/unit",
    "median/unit",
    "reps",
    "bytes",
    "runs",
    "ratio min",
    "ratio median",
    "paired IQR",
    "bytes ratio",
    "target",
    "met",
  ];
  const lines: string[][] = [header];
  const notes: string[] = [];
  for (const row of rows) {
    row.results.forEach((m, k) => {
      const paired = m.pairedRatios;
      lines.push([
        k === 0 ? `${row.workload} (per ${row.unit})` : "",
        m.store,
        formatTime(m.seconds, m.units),
        formatTime(m.medianSeconds ?? null, m.units),
        m.repetitions === undefined ? "-" : String(m.repetitions),
        formatBytes(m.bytes),
        m.runs === null ? "-" : String(m.runs),
        formatRatio(m.timeRatio),
        formatRatio(m.medianRatio),
        paired === null ? "-" : `${paired.min.toFixed(2)}-${paired.max.toFixed(2)}x`,
        formatRatio(m.bytesRatio),
        k === 0 ? "" : m.target || "-",
        (m.met === null ? "" : m.met ? "yes" : "NO") + (m.noiseCanFlip ? " (noise)" : ""),
      ]);
      if (m.note) notes.push(`${row.workload} / ${m.store}: ${m.note}`);
    });
    const runs = new Set(row.results.filter((m) => m.runs !== null).map((m) => m.runs));
    if (runs.size > 1) notes.push(`${row.workload}: stores disagree on runCount!`);
  }
  const flippable = rows.filter((row) => row.results.some((m) => m.noiseCanFlip));
  notes.push(
    flippable.length === 0
      ? "no verdict here can be flipped by noise (best, median and paired quartiles agree)"
      : `noise can flip: ${flippable.map((row) => row.workload).join(", ")} ` +
        "(best, median or quartiles of side-by-side ratios disagree on the target)",
  );
  return [...alignColumns(lines), ...notes.map((n) => `note: ${n}`)].join("\n");
}

/**
 * `lines` (the header first) as text, columns two spaces apart, each as wide
 * as its widest cell, with a rule of dashes under the header (this table's
 * and bench/report_runs.ts's summary's).
 */
export function alignColumns(lines: string[][]): string[] {
  const widths = lines[0].map((_, c) => Math.max(...lines.map((l) => l[c].length)));
  const text = lines.map((l) => l.map((cell, c) => cell.padEnd(widths[c])).join("  ").trimEnd());
  text.splice(1, 0, widths.map((w) => "-".repeat(w)).join("  "));
  return text;
}

/**
 * What `bench:report` runs with (deno.json), and `bench:runs` runs each
 * report with: its permissions, which a run needs no more than, and V8's
 * `gc` exposed for the store rows (measurement.ts `collectYoungGarbage`).
 */
export const REPORT_FLAGS: readonly string[] = [
  "--allow-write",
  "--allow-read",
  "--allow-env",
  "--allow-ffi",
  "--allow-run",
  "--v8-flags=--expose-gc",
];

/** Runs every source and returns the rated report. */
export async function buildReport(
  sources: RowSource[] = SOURCES,
  command = `deno run ${REPORT_FLAGS.join(" ")} bench/report.ts`,
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
  // Only --out: any other option given is a mistake, not ignored.
  const values = parseOptions("report", { out: { type: "string" } });
  // A file path, not a URL's: a checkout under a path with a space has it percent-encoded.
  const out = await outputFileOption(
    "report",
    "--out",
    values.out ?? fileURLToPath(new URL("./report.json", import.meta.url)),
  );
  benchReps("report", 0); // a bad MEMSTATE_BENCH_REPS is refused before any row is measured
  const report = await buildReport();
  console.log(formatTable(report.rows));
  Deno.writeTextFileSync(out, JSON.stringify(report, null, 2) + "\n");
  console.log(`\nwrote ${out}`);
}
