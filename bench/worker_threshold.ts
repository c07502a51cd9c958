/**
 * Where reading a trace on a worker starts to pay: the replay row's trace
 * (`bench/replay_rows.ts`, 92 bytes a line) at several sizes, replayed by the
 * session's runner with the report's probe on a fresh host, read in-thread
 * and on a worker in turn (the order alternating each repetition), in one
 * process. A worker costs a fixed 20-30 ms (starting it, waiting for its
 * first batch) and then takes the reading off the main thread; in-thread,
 * reading adds about a third of the direct conversions' time. Prints, per
 * size, the best and median of each and the paired median of worker over
 * in-thread (below 1: the worker is faster). `WORKER_MIN_BYTES`
 * (src/host/trace/_read_on_worker.ts) is set from this.
 *
 * Run: `deno run -A bench/worker_threshold.ts [--reps N] [--lines N,N,...]`
 * (default: twenty repetitions, at 50,000 to 400,000 lines).
 *
 * @module
 */

import { integerIn, integerOption, parseOptions } from "./cli_args.ts";
import { median, pairedMedianRatio } from "./measurement.ts";
import { CONFIG, writeTrace } from "./replay_rows.ts";
import { buildHost, type HostConfig, parseHostConfig } from "../host.ts";
import { runBatchStream } from "../src/host/event_runner.ts";
import { RunRecorder } from "../src/host/report/recorder.ts";
import { openTraceStream, runnerBatches } from "../src/host/trace/stream.ts";
import { WORKER_MIN_BYTES } from "../src/host/trace/_read_on_worker.ts";

const SCRIPT = "worker_threshold";
/** Lines per trace by default: 4.4 to 35 MiB, around the threshold (182,000: 16.0 MiB). */
const DEFAULT_LINES = [50_000, 100_000, 137_000, 182_000, 228_000, 273_000, 400_000];

/** Milliseconds to replay `path` on a fresh host, read in-thread or on a worker. */
async function replay(config: HostConfig, path: string, worker: boolean): Promise<number> {
  const t0 = performance.now();
  const stream = await openTraceStream(path, { worker });
  if (stream.worker !== worker) {
    stream.close();
    throw new Error(`${path}: read ${stream.worker ? "on a worker" : "in-thread"}, not as asked`);
  }
  try {
    using host = buildHost(config);
    const result = await runBatchStream(host, runnerBatches(stream), {
      probe: new RunRecorder(host),
    });
    if (result.conversions.applied + result.conversions.noop === 0) {
      throw new Error(`${path}: nothing was replayed`);
    }
  } finally {
    stream.close();
  }
  return performance.now() - t0;
}

/** One size's times, each side's milliseconds per repetition. */
export interface SizeTimes {
  /** Lines (conversions) in the trace. */
  lines: number;
  /** The trace's bytes. */
  bytes: number;
  /** In-thread. */
  thread: number[];
  /** On a worker. */
  worker: number[];
}

/** Replays each size's trace `reps` times each way, after one untimed round. */
export async function measureSizes(lines: number[], reps: number): Promise<SizeTimes[]> {
  const config = parseHostConfig(CONFIG, "replay.json");
  const out: SizeTimes[] = [];
  for (const count of lines) {
    const trace = await writeTrace(count, 3);
    try {
      const times: SizeTimes = {
        lines: count,
        bytes: (await Deno.stat(trace.path)).size,
        thread: [],
        worker: [],
      };
      for (let r = -1; r < reps; r++) {
        for (const worker of r % 2 === 0 ? [false, true] : [true, false]) {
          const ms = await replay(config, trace.path, worker);
          if (r >= 0) (worker ? times.worker : times.thread).push(ms);
        }
      }
      out.push(times);
    } finally {
      await Deno.remove(trace.path);
    }
  }
  return out;
}

if (import.meta.main) {
  const values = parseOptions(SCRIPT, { reps: { type: "string" }, lines: { type: "string" } });
  const reps = integerOption(SCRIPT, "reps", values.reps, { fallback: 20, min: 1, max: 1000 });
  const lines = values.lines === undefined
    ? DEFAULT_LINES
    : values.lines.split(",").map((v) => integerIn(SCRIPT, "--lines", v, 1, 10_000_000));
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  console.log(`WORKER_MIN_BYTES is ${mib(WORKER_MIN_BYTES)} MiB; ${reps} repetitions each way`);
  const ms = (a: number[]) =>
    `best ${Math.min(...a).toFixed(1)} ms, median ${median(a).toFixed(1)}`;
  for (const t of await measureSizes(lines, reps)) {
    const ratio = pairedMedianRatio(t.worker, t.thread).toFixed(3);
    const size = `${t.lines} lines (${mib(t.bytes)} MiB)`;
    console.log(
      `${size}: in-thread ${ms(t.thread)}; worker ${ms(t.worker)}; ` +
        `worker over in-thread, paired median ${ratio}x`,
    );
  }
}
