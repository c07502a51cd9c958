/**
 * Trace replays of this checkout against its code at another git revision,
 * paired in one process: the replay row's trace (`bench/replay_rows.ts`, 1M
 * conversions of a 1 TiB guest) is replayed with `runSession` by this
 * checkout's code and the base's in turn, repetition by repetition, and the
 * same conversions are made directly by each side's code, in two orders
 * taken in turn (each side's direct conversions, then its replay; the
 * second order starts with the base), so that a slow stretch of the machine
 * falls on all of them and each replay follows the same kind of step.
 * Each side's code runs only its own replays and direct conversions: when
 * the direct conversions ran on this checkout's code alone, the replays of
 * the code they warmed read up to 8% faster in an A/A run. Prints each
 * process's best times, the median over repetitions of this checkout's
 * replay time over the base's (below 1: this checkout is faster), and each
 * side's best replay over its best direct conversions (as the replay row
 * computes it). The README's paired figures for replay changes come from
 * this script.
 *
 * `--mode worker-read` times the trace read to its end on a new worker each
 * time (as a replay reads it), `--mode thread-read` in-thread, by each
 * side's reader, with no host.
 *
 * Each process loads each side's modules once, so a process runs each side
 * at one speed throughout and the paired medians of an A/A run spread from
 * process to process: the comparison runs in `--processes` processes
 * (default 3), each writing its own copy of the trace into the base's
 * temporary git worktree, which is removed afterwards (also on Ctrl-C). The
 * base must have `host.ts` exporting `parseHostConfig`, `runSession` and
 * `buildHost` (whose host is disposable), and for the read modes
 * `src/host/trace/stream.ts` exporting `openTraceStream` with its `worker`
 * option; a base without them is refused in one line.
 *
 * Run: `deno run -A bench/replay_ab.ts --base <revision> [--mode
 * replay|worker-read|thread-read] [--reps N] [--processes N] [--conversions N]`.
 *
 * @module
 */

import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { integerOption, parseOptions, usage as usageOf } from "./cli_args.ts";
import { checkWorktree, withBaseWorktree } from "./ab_base.ts";
import { median, pairedMedianRatio } from "./measurement.ts";
import { CONFIG, convertDirect, type Trace, writeTrace } from "./replay_rows.ts";
import { buildHost, parseHostConfig, runSession } from "../host.ts";
import { openTraceStream } from "../src/host/trace/stream.ts";

/** What is timed on each side. */
const MODES = ["replay", "worker-read", "thread-read"] as const;
type Mode = typeof MODES[number];

/** One process's milliseconds per repetition: each side's, and its direct conversions'. */
interface Timings {
  this: number[];
  base: number[];
  /** This checkout's direct conversions; only in `replay` mode. */
  thisDirect?: number[];
  /** The base's direct conversions; only in `replay` mode. */
  baseDirect?: number[];
}

/** The functions each side offers (this checkout's, or the base's loaded from its worktree). */
interface Side {
  parseHostConfig: typeof parseHostConfig;
  runSession: typeof runSession;
  buildHost: typeof buildHost;
  openTraceStream: typeof openTraceStream;
}

/** Untimed rounds before the timed ones (the first replays are still compiling). */
const WARM_ROUNDS = 2;

/** One line of usage error: what was wrong and the rule; exit status 2. */
function usage(message: string): never {
  return usageOf("replay_ab", message);
}

/** A base this script cannot compare with: said in one line by the comparison process. */
class BaseUnfit extends Error {}

/** Milliseconds one side takes for one repetition of `mode` on the trace at `path`. */
async function timeOnce(side: Side, mode: Mode, path: string): Promise<number> {
  const t0 = performance.now();
  if (mode === "replay") {
    await side.runSession(side.parseHostConfig(CONFIG, "replay.json"), { trace: path });
  } else {
    const worker = mode === "worker-read";
    const stream = await side.openTraceStream(path, { worker });
    if (stream.worker !== worker) {
      stream.close();
      throw new BaseUnfit(`a side read the trace ${stream.worker ? "on a worker" : "in-thread"}`);
    }
    try {
      for await (const _ of stream.batches()) { /* read to the end */ }
    } finally {
      stream.close();
    }
  }
  return performance.now() - t0;
}

/** Milliseconds one side takes for the trace's conversions made directly on a new host. */
function timeDirect(side: Side, trace: Trace): number {
  return convertDirect(side.parseHostConfig(CONFIG, "replay.json"), trace, side.buildHost);
}

/** The base's side, checked for what `mode` needs ({@link BaseUnfit} when it lacks it). */
async function loadBase(dir: string, mode: Mode): Promise<Side> {
  const load = async (file: string, names: string[]) => {
    let module: Record<string, unknown>;
    try {
      module = await import(pathToFileURL(join(dir, file)).href);
    } catch (e) {
      throw new BaseUnfit(`its ${file} does not load: ${e instanceof Error ? e.message : e}`);
    }
    for (const name of names) {
      if (typeof module[name] !== "function") {
        throw new BaseUnfit(`its ${file} does not export ${name}`);
      }
    }
    return module;
  };
  const host = await load("host.ts", ["parseHostConfig", "runSession", "buildHost"]);
  const stream = mode === "replay"
    ? { openTraceStream }
    : await load("src/host/trace/stream.ts", ["openTraceStream"]);
  return {
    parseHostConfig: host.parseHostConfig as Side["parseHostConfig"],
    runSession: host.runSession as Side["runSession"],
    buildHost: host.buildHost as Side["buildHost"],
    openTraceStream: stream.openTraceStream as Side["openTraceStream"],
  };
}

/** One comparison process: writes the trace, times both sides (and direct), removes it. */
async function compareInProcess(
  dir: string,
  mode: Mode,
  count: number,
  reps: number,
): Promise<Timings> {
  const mine: Side = { parseHostConfig, runSession, buildHost, openTraceStream };
  const base = await loadBase(dir, mode);
  const trace = await writeTrace(count, 3, dir);
  const replay = mode === "replay";
  const timings: Timings = {
    this: [],
    base: [],
    ...(replay ? { thisDirect: [], baseDirect: [] } : {}),
  };
  const step: Record<keyof Timings, () => Promise<number>> = {
    this: () => timeOnce(mine, mode, trace.path),
    base: () => timeOnce(base, mode, trace.path),
    thisDirect: () => Promise.resolve(timeDirect(mine, trace)),
    baseDirect: () => Promise.resolve(timeDirect(base, trace)),
  };
  // Two orders in turn: every replay follows its own side's direct conversions, every direct
  // run follows one replay of each side; reads follow one read of each side.
  const orders: (keyof Timings)[][] = replay
    ? [["thisDirect", "this", "baseDirect", "base"], ["baseDirect", "base", "thisDirect", "this"]]
    : [["this", "base"], ["base", "this"]];
  try {
    for (let r = -WARM_ROUNDS; r < reps; r++) {
      for (const key of orders[(r + WARM_ROUNDS) % 2]) {
        const ms = await step[key]();
        if (r >= 0) timings[key]!.push(ms);
      }
    }
  } finally {
    await Deno.remove(trace.path);
  }
  return timings;
}

/** The lines the parent prints for one process's timings. */
function describe(n: number, t: Timings): string {
  const best = (times: number[]) => `${Math.min(...times).toFixed(0)} ms`;
  let line = `process ${n}: this ${best(t.this)}, base ${best(t.base)} (best); paired median ` +
    `${pairedMedianRatio(t.this, t.base).toFixed(3)}x`;
  if (t.thisDirect && t.baseDirect) {
    const over = (times: number[], direct: number[]) =>
      (Math.min(...times) / Math.min(...direct)).toFixed(2);
    line += `; best over its best direct: this ${over(t.this, t.thisDirect)}x ` +
      `(${best(t.thisDirect)}), base ${over(t.base, t.baseDirect)}x (${best(t.baseDirect)})`;
  }
  return line;
}

if (import.meta.main) {
  const values = parseOptions("replay_ab", {
    base: { type: "string" },
    mode: { type: "string" },
    reps: { type: "string" },
    processes: { type: "string" },
    conversions: { type: "string" },
    worktree: { type: "string" },
  });
  const reps = integerOption("replay_ab", "reps", values.reps, { fallback: 10, min: 3, max: 1000 });
  const processes = integerOption("replay_ab", "processes", values.processes, {
    fallback: 3,
    min: 1,
    max: 100,
  });
  const count = integerOption("replay_ab", "conversions", values.conversions, {
    fallback: 1_000_000,
    min: 1,
    max: 10_000_000,
  });
  const mode = (values.mode ?? "replay") as Mode;
  if (!MODES.includes(mode)) usage(`--mode: one of ${MODES.join(" ")}, got "${values.mode}"`);
  const shared = ["--mode", mode, "--reps", String(reps), "--conversions", String(count)];
  if (values.worktree !== undefined) {
    // One comparison process of the parent's (below): print its timings as JSON.
    const dir = values.worktree;
    checkWorktree("replay_ab", dir, "host.ts");
    if (values.base !== undefined) {
      usage("--worktree: a comparison process of replay_ab's own, without --base");
    }
    try {
      console.log(JSON.stringify(await compareInProcess(dir, mode, count, reps)));
    } catch (e) {
      if (!(e instanceof BaseUnfit)) throw e;
      console.error(`replay_ab: the base cannot be compared in --mode ${mode}: ${e.message}`);
      Deno.exit(1);
    }
  } else {
    if (values.base === undefined) usage("--base: a git revision to compare with is required");
    await withBaseWorktree("replay_ab", values.base, async ({ dir, label, run }) => {
      console.log(
        `${label}: ${mode} of ${count.toLocaleString("en-US")} conversions, ` +
          `${reps} repetitions in each of ${processes} processes`,
      );
      const medians: number[] = [];
      for (let p = 1; p <= processes; p++) {
        const timings = await run<Timings>(import.meta.url, ["--worktree", dir, ...shared]);
        console.log(describe(p, timings));
        medians.push(pairedMedianRatio(timings.this, timings.base));
      }
      console.log(`median of the paired medians: ${median(medians).toFixed(3)}x`);
    });
  }
}
