/**
 * The benchmark report run several times, each run in a process of its own,
 * and the spread of every target's ratio across the runs: how many runs met
 * each target, the range and median of its ratios, and how many verdicts the
 * report flagged as ones noise can flip. This is where the README's
 * performance table comes from.
 *
 * One run of `bench/report.ts` says what one process measured. On this
 * project's machine kind the same code runs at different speeds from one
 * process to the next, so a target whose ratio sits near its bound is met in
 * some runs and missed in others; only the count over several runs says how
 * near. The runs go one after another, never side by side, so that no run
 * shares the machine with another.
 *
 * Run: `deno run -A bench/report_runs.ts [--runs N] [--save DIR] [--out FILE]`
 * (`deno task bench:runs`), or `--from FILE...` to summarise reports written
 * before (`bench/report.json` files, or those `--save` kept) without running
 * any. The summary is printed and written as JSON to `--out` (default
 * `bench/report_runs.json`). `MEMSTATE_BENCH_REPS` passes on to every run.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeFailure } from "../src/host/report/output_path.ts";
import {
  directoryOption,
  integerOption,
  outputFileOption,
  parseOptions,
  usage,
} from "./cli_args.ts";
import {
  alignColumns,
  formatRatio,
  quantile,
  type RatedMeasurement,
  type Report,
  REPORT_FLAGS,
} from "./report.ts";

/** One candidate's targets over several runs of the report. */
export interface TargetSpread {
  /** The row's workload. */
  workload: string;
  /** The candidate measured against the row's baseline. */
  candidate: string;
  /** The targets as the report states them, e.g. `"time <= 2x, bytes <= 0.01x"`. */
  target: string;
  /** Runs that measured it (a run may skip a row, as without /dev/kvm). */
  measured: number;
  /** Runs whose every target held. */
  met: number;
  /** Runs whose verdict the report marked as one noise can flip. */
  noiseFlagged: number;
  /** Of the runs that missed, those whose miss was marked as one noise can flip. */
  flaggedMisses: number;
  /** The time ratio of each run in the order run: null where it was not measured. */
  timeRatios: (number | null)[];
  /** Each run's verdict in the order run (true: every target held): null where not measured. */
  verdicts: (boolean | null)[];
  /** Smallest, median and largest time ratio over the runs that measured it. */
  time: Spread | null;
  /** Smallest, median and largest bytes ratio over the runs that measured it. */
  bytes: Spread | null;
}

/** A ratio's range over runs; the median interpolates between the middle two of an even count. */
export interface Spread {
  /** The smallest. */
  min: number;
  /** The median. */
  median: number;
  /** The largest. */
  max: number;
}

/** The summary of several runs, as written to JSON. */
export interface RunsSummary {
  /** ISO time of the summary. */
  generated: string;
  /** Each run's report: its `generated` time and where it came from (a file, or "run N"). */
  runs: { source: string; generated: string }[];
  /** Every candidate with a target, in the order of the first report. */
  targets: TargetSpread[];
}

/** A report read from `source`, or an error naming `source` and what is missing. */
export function checkReport(value: unknown, source: string): Report {
  const report = value as Partial<Report> | null;
  if (
    typeof report !== "object" || report === null || !Array.isArray(report.rows) ||
    typeof report.generated !== "string"
  ) {
    throw new RangeError(
      `${source}: not a report of bench/report.ts (no "generated" time and "rows" list)`,
    );
  }
  for (const row of report.rows) {
    if (
      typeof row?.workload !== "string" || !Array.isArray(row.results) ||
      !Array.isArray(row.targets)
    ) {
      throw new RangeError(
        `${source}: a row without a "workload" name, a "results" list or a "targets" list`,
      );
    }
    for (const m of row.results) {
      if (typeof m?.store !== "string") {
        throw new RangeError(`${source}: row "${row.workload}" has a result without a "store"`);
      }
    }
  }
  return report as Report;
}

function spread(values: number[]): Spread | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0], median: quantile(sorted, 0.5), max: sorted[sorted.length - 1] };
}

/** Whether `m` has a verdict in its run: a skipped row has none (no ratio a target applies to). */
function wasMeasured(m: RatedMeasurement): boolean {
  return m.met === true || m.met === false;
}

/**
 * The spread of every targeted candidate over `reports` (one per run, in the
 * order run; `sources` names each). A candidate a run lacks, or that has no
 * verdict in it (skipped), counts as not measured in that run. Throws,
 * naming the source, when a report has two rows of one name or a target
 * other than the first report's.
 */
export function summarise(reports: Report[], sources: string[]): RunsSummary {
  // Per candidate: its spread, its bytes ratios, and the runs that first and last named it.
  const byKey = new Map<
    string,
    { spread: TargetSpread; bytes: number[]; firstRun: number; lastRun: number }
  >();
  reports.forEach((report, run) => {
    for (const row of report.rows) {
      if (row.targets.length === 0) continue;
      for (const m of row.results.slice(1)) {
        const key = `${row.workload}\u0000${m.store}`;
        let entry = byKey.get(key);
        if (entry === undefined) {
          entry = {
            spread: {
              workload: row.workload,
              candidate: m.store,
              target: m.target,
              measured: 0,
              met: 0,
              noiseFlagged: 0,
              flaggedMisses: 0,
              // One place per run, null until a run measures it.
              timeRatios: reports.map(() => null),
              verdicts: reports.map(() => null),
              time: null,
              bytes: null,
            },
            bytes: [],
            firstRun: run,
            lastRun: -1,
          };
          byKey.set(key, entry);
        }
        const s = entry.spread;
        if (m.target !== s.target) {
          throw new RangeError(
            `${sources[run]}: "${row.workload}" / "${m.store}" has the target ${
              JSON.stringify(m.target)
            }, where ${sources[entry.firstRun]} has ${JSON.stringify(s.target)}`,
          );
        }
        // A run that measured it twice (two rows of one name) is a report this cannot read.
        if (entry.lastRun === run) {
          throw new RangeError(
            `${sources[run]}: two rows measure "${row.workload}" / "${m.store}"`,
          );
        }
        entry.lastRun = run;
        if (!wasMeasured(m)) continue;
        s.measured++;
        if (m.met === true) s.met++;
        if (m.noiseCanFlip) {
          s.noiseFlagged++;
          if (m.met === false) s.flaggedMisses++;
        }
        s.timeRatios[run] = m.timeRatio;
        s.verdicts[run] = m.met;
        if (m.bytesRatio !== null) entry.bytes.push(m.bytesRatio);
      }
    }
  });
  const targets = [...byKey.values()].map(({ spread: s, bytes }) => {
    s.time = spread(s.timeRatios.filter((r): r is number => r !== null));
    s.bytes = spread(bytes);
    return s;
  });
  return {
    generated: new Date().toISOString(),
    runs: reports.map((r, k) => ({ source: sources[k], generated: r.generated })),
    targets,
  };
}

function formatSpread(s: Spread | null): string {
  if (s === null) return "-";
  if (s.min === s.max) return formatRatio(s.min);
  return `${formatRatio(s.min)}-${formatRatio(s.max)} (median ${formatRatio(s.median)})`;
}

/** What the `met` column says: the count, and how many misses the report flagged as noise. */
function formatMet(s: TargetSpread): string {
  if (s.measured === 0) return "not measured";
  const misses = s.measured - s.met;
  let text = `${s.met} of ${s.measured}`;
  if (misses > 0) text += ` (${s.flaggedMisses} of the ${misses} misses flagged as noise)`;
  else if (s.noiseFlagged > 0) text += ` (${s.noiseFlagged} flagged as noise)`;
  return text;
}

/** The summary as a plain-text table, with each missed target's ratios run by run. */
export function formatSummary(summary: RunsSummary): string {
  const header = [
    "workload / candidate",
    "time ratio over the runs",
    "bytes ratio",
    "target",
    "met",
  ];
  const lines = [header];
  for (const s of summary.targets) {
    lines.push([
      `${s.workload} / ${s.candidate}`,
      formatSpread(s.time),
      formatSpread(s.bytes),
      s.target,
      formatMet(s),
    ]);
  }
  const text = alignColumns(lines);
  const measured = summary.targets.filter((s) => s.measured > 0);
  const always = measured.filter((s) => s.met === s.measured).length;
  text.push(
    `${summary.runs.length} runs; ${always} of ${measured.length} measured targets met in every run`,
  );
  for (const s of measured) {
    if (s.met === s.measured) continue;
    // A miss is starred: a ratio printed as 1.50x may have missed a bound of 1.5x by a hair.
    const each = s.timeRatios.map((r, k) =>
      (r === null ? "-" : formatRatio(r)) + (s.verdicts[k] === false ? "*" : "")
    );
    text.push(`${s.workload} / ${s.candidate}, run by run (* missed): ${each.join(", ")}`);
  }
  return text.join("\n");
}

/** The report script the runs run. */
export const REPORT_SCRIPT: URL = new URL("./report.ts", import.meta.url);

/** What {@link runReports} tells its caller, and what it runs. */
export interface RunReportsOptions {
  /** Hears of each run as it ends: its number (from 1), its report, its seconds. */
  onRun?: (run: number, report: Report, seconds: number) => void;
  /** Gets each run's process as it starts, so that an interrupt can end it. */
  started?: (child: Deno.ChildProcess) => void;
  /** The script run (default {@link REPORT_SCRIPT}; tests give a stand-in). */
  script?: URL;
}

/**
 * Runs the report `runs` times, one after another, each in a process of its
 * own writing its JSON to `dir`. Returns the reports in the order run;
 * throws, naming the run, when one fails (its output then goes to standard
 * error).
 */
export async function runReports(
  runs: number,
  dir: string,
  options: RunReportsOptions = {},
): Promise<{ reports: Report[]; files: string[] }> {
  const script = options.script ?? REPORT_SCRIPT;
  const reports: Report[] = [], files: string[] = [];
  for (let run = 1; run <= runs; run++) {
    const file = join(dir, `report-${run}.json`);
    const t0 = performance.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...REPORT_FLAGS, script.href, "--out", file],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    options.started?.(child);
    const out = await child.output();
    if (out.code !== 0) {
      const text = new TextDecoder();
      await Deno.stderr.write(out.stdout);
      await Deno.stderr.write(out.stderr);
      throw new Error(
        `run ${run} of ${runs} failed (exit status ${out.code}): ${
          text.decode(out.stderr).trim().split("\n").pop() ?? ""
        }`,
      );
    }
    const report = checkReport(JSON.parse(await Deno.readTextFile(file)), `run ${run}`);
    reports.push(report);
    files.push(file);
    options.onRun?.(run, report, (performance.now() - t0) / 1000);
  }
  return { reports, files };
}

/** One line after each run: how long it took and which targets it missed. */
function progressLine(run: number, runs: number, report: Report, seconds: number): string {
  const verdicts = report.rows.flatMap((row) =>
    row.results.filter((m) => m.met !== null).map((m) => ({ row, m }))
  );
  const misses = verdicts.filter(({ m }) => m.met === false);
  const missed = [...new Set(misses.map(({ row }) => row.workload))];
  const met = verdicts.length - misses.length;
  return `run ${run} of ${runs}: ${
    seconds.toFixed(0)
  } s, ${met} of ${verdicts.length} targets met` +
    (missed.length > 0 ? ` (missed: ${missed.join(", ")})` : "");
}

/** Reads the reports `files` name, each checked; a file that cannot be read ends in {@link usage}. */
function readReports(files: string[]): Report[] {
  return files.map((file) => {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch (e) {
      return usage("report_runs", `--from ${file}: cannot read it (${(e as Error).message})`);
    }
    try {
      return checkReport(JSON.parse(text), file);
    } catch (e) {
      const why = e instanceof SyntaxError ? "not JSON" : (e as Error).message;
      return usage("report_runs", `--from ${file}: ${why.replace(`${file}: `, "")}`);
    }
  });
}

/** How long a run may take to end once told to stop, before it is killed. */
const STOP_WAIT_MS = 5000;

/** The most runs one call makes (each takes about half a minute). */
export const MAX_RUNS = 100;

if (import.meta.main) {
  const values = parseOptions("report_runs", {
    runs: { type: "string" },
    from: { type: "string", multiple: true },
    save: { type: "string" },
    out: { type: "string" },
  });
  const from = values.from ?? [];
  if (from.length > 0 && (values.runs !== undefined || values.save !== undefined)) {
    usage("report_runs", "--from summarises reports already written: without --runs or --save");
  }
  const twice = from.find((file, k) => from.indexOf(file) !== k);
  if (twice !== undefined) {
    usage("report_runs", `--from ${twice}: given twice, it would count twice`);
  }
  const runs = integerOption("report_runs", "runs", values.runs, {
    fallback: 6,
    min: 1,
    max: MAX_RUNS,
  });
  const out = await outputFileOption(
    "report_runs",
    "--out",
    values.out ?? fileURLToPath(new URL("./report_runs.json", import.meta.url)),
  );
  /** Writes the summary to `out`; a path that cannot be written is one line, exit 2. */
  const write = (summary: RunsSummary, kept?: string) => {
    console.log(formatSummary(summary));
    try {
      Deno.writeTextFileSync(out, JSON.stringify(summary, null, 2) + "\n");
    } catch (e) {
      const where = kept === undefined ? "" : `; the runs' reports are kept in ${kept}`;
      usage("report_runs", `--out: cannot write ${out}: ${writeFailure(e)}${where}`);
    }
    console.log(`\nwrote ${out}`);
  };
  if (from.length > 0) {
    const reports = readReports(from);
    try {
      write(summarise(reports, from));
    } catch (e) {
      usage("report_runs", (e as Error).message);
    }
  } else {
    const temporary = values.save === undefined;
    const dir = temporary
      ? Deno.makeTempDirSync({ prefix: "memstate_report_runs_" })
      : directoryOption("report_runs", "--save", values.save!);
    const removeTemporary = () => {
      if (!temporary) return;
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // already gone
      }
    };
    // Ctrl-C or a kill: the run in progress ends first, then the temporary directory goes.
    let child: Deno.ChildProcess | undefined;
    const stop = async (signal: "SIGINT" | "SIGTERM") => {
      try {
        child?.kill(signal);
        const ended = await Promise.race([
          child?.status.then(() => true),
          new Promise<false>((resolve) => setTimeout(() => resolve(false), STOP_WAIT_MS)),
        ]);
        if (ended === false) child?.kill("SIGKILL");
      } catch {
        // it had ended
      }
      removeTemporary();
      console.error(`report_runs: stopped by ${signal}`);
      Deno.exit(signal === "SIGINT" ? 130 : 143);
    };
    const onInt = () => void stop("SIGINT"), onTerm = () => void stop("SIGTERM");
    Deno.addSignalListener("SIGINT", onInt);
    Deno.addSignalListener("SIGTERM", onTerm);
    let reports: Report[];
    try {
      reports = (await runReports(runs, dir, {
        onRun: (run, report, seconds) => console.log(progressLine(run, runs, report, seconds)),
        started: (c) => child = c,
      })).reports;
    } catch (e) {
      removeTemporary();
      console.error(`report_runs: ${(e as Error).message}`);
      Deno.exit(1);
    } finally {
      Deno.removeSignalListener("SIGINT", onInt);
      Deno.removeSignalListener("SIGTERM", onTerm);
    }
    console.log("");
    // Written before the temporary directory goes: a path that fails keeps the runs.
    write(summarise(reports, reports.map((_, k) => `run ${k + 1}`)), temporary ? dir : undefined);
    removeTemporary();
  }
}
