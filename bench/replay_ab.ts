/**
 * Trace replays of this checkout against its code at another git revision,
 * paired in one process: the replay row's trace (`bench/replay_rows.ts`, 1M
 * conversions of a 1 TiB guest) is replayed with `runSession` by this
 * checkout's code and the base's in turn, repetition by repetition, and the
 * same conversions are made directly by each side's code, the order turned
 * each time, so that a slow stretch of the machine falls on all of them.
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
 * (default 3), each writing its own copy of the trace. The base revision is
 * checked out into a temporary git worktree, removed afterwards; it must
 * have `host.ts` exporting `parseHostConfig` and `runSession`, and
 * `src/host/trace/stream.ts` exporting `openTraceStream`.
 *
 * Run: `deno run -A bench/replay_ab.ts --base <revision> [--mode
 * replay|worker-read|thread-read] [--reps N] [--processes N] [--conversions N]`.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { pathToFileURL } from "node:url";
import { integerOption, parseOptions, usage as usageOf } from "./cli_args.ts";
import { withBaseWorktree } from "./ab_base.ts";
import { median, pairedMedianRatio } from "./measurement.ts";
import { CONFIG, type Trace, writeTrace } from "./replay_rows.ts";
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

/** Milliseconds one side takes for one repetition of `mode` on the trace at `path`. */
async function timeOnce(side: Side, mode: Mode, path: string): Promise<number> {
  const t0 = performance.now();
  if (mode === "replay") {
    await side.runSession(side.parseHostConfig(CONFIG, "replay.json"), { trace: path });
  } else {
    const stream = await side.openTraceStream(path, { worker: mode === "worker-read" });
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
  using host = side.buildHost(side.parseHostConfig(CONFIG, "replay.json"));
  const region = host.regions[0];
  const { offsets, sizes, toShared } = trace;
  const t0 = performance.now();
  for (let i = 0; i < offsets.length; i++) {
    region.convert(offsets[i], sizes[i], toShared[i] ? "shared" : "private");
  }
  return performance.now() - t0;
}

/** One comparison process: writes the trace, times both sides (and direct), removes it. */
async function compareInProcess(
  dir: string,
  mode: Mode,
  count: number,
  reps: number,
): Promise<Timings> {
  const mine: Side = { parseHostConfig, runSession, buildHost, openTraceStream };
  const hostModule = await import(pathToFileURL(join(dir, "host.ts")).href);
  const streamModule = await import(pathToFileURL(join(dir, "src/host/trace/stream.ts")).href);
  const base: Side = {
    parseHostConfig: hostModule.parseHostConfig,
    runSession: hostModule.runSession,
    buildHost: hostModule.buildHost,
    openTraceStream: streamModule.openTraceStream,
  };
  const trace = await writeTrace(count, 3);
  const replay = mode === "replay";
  const timings: Timings = {
    this: [],
    base: [],
    ...(replay ? { thisDirect: [], baseDirect: [] } : {}),
  };
  const steps: [keyof Timings, () => Promise<number>][] = [
    ["this", () => timeOnce(mine, mode, trace.path)],
    ["base", () => timeOnce(base, mode, trace.path)],
  ];
  if (replay) {
    steps.push(["thisDirect", () => Promise.resolve(timeDirect(mine, trace))]);
    steps.push(["baseDirect", () => Promise.resolve(timeDirect(base, trace))]);
  }
  try {
    for (let r = -WARM_ROUNDS; r < reps; r++) {
      for (let k = 0; k < steps.length; k++) {
        const [key, step] = steps[(k + Math.max(r, 0)) % steps.length];
        const ms = await step();
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
    if (!isAbsolute(dir) || !existsSync(join(dir, "host.ts"))) {
      usage(`--worktree: an absolute path to a checkout of this repository, got ${dir}`);
    }
    if (values.base !== undefined) {
      usage("--worktree: a comparison process of replay_ab's own, without --base");
    }
    console.log(JSON.stringify(await compareInProcess(dir, mode, count, reps)));
  } else {
    if (values.base === undefined) usage("--base: a git revision to compare with is required");
    const failed = await withBaseWorktree("replay_ab", values.base, async ({ dir, label, run }) => {
      console.log(
        `${label}: ${mode} of ${count.toLocaleString("en-US")} conversions, ` +
          `${reps} repetitions in each of ${processes} processes`,
      );
      const medians: number[] = [];
      for (let p = 1; p <= processes; p++) {
        const timings = await run<Timings>(import.meta.url, ["--worktree", dir, ...shared]);
        if (!timings) {
          console.error("replay_ab: a comparison process failed (above)");
          return true;
        }
        console.log(describe(p, timings));
        medians.push(pairedMedianRatio(timings.this, timings.base));
      }
      console.log(`median of the paired medians: ${median(medians).toFixed(3)}x`);
      return false;
    });
    if (failed) Deno.exit(1);
  }
}
