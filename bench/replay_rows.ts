/**
 * What replaying a trace adds to the conversions it holds.
 *
 * A QEMU trace log of 1M `kvm_convert_memory` lines (4-64 KiB DMA buffers
 * shared and freed in a window of a 1 TiB guest, at most 64 in flight) is
 * written to a temporary file once. Then, in one process:
 *
 * - **reader**: the streaming trace reader alone, in-thread (open, read, classify every
 *   line), applying nothing;
 * - **direct**: the same conversions, parsed beforehand, made on a freshly
 *   built host (the 1 TiB region with the simulated KVM attributes plugin)
 *   with `Region.convert`;
 * - **replay**: `runSession` on the same host configuration with the trace:
 *   reader (on a worker thread: the file is over 16 MiB), runner, counting,
 *   and the invariant check at the end.
 *
 * The target: the replay adds at most 25% to the direct conversions. Each is
 * the best of `reps` runs (median in the JSON). Run alone:
 * `deno run -A bench/replay_rows.ts [--conversions N] [--reps N]`. With
 * `--parts` it takes the gap apart instead ({@link replayParts}).
 *
 * @module
 */

import { integerOption, parseOptions } from "./cli_args.ts";
import { buildHost, type HostConfig, parseHostConfig, runSession } from "../host.ts";
import { openTraceStream, TRACE_CHUNK_SIZE } from "../src/host/trace/stream.ts";
import { WORKER_MODULE, type WorkerBatch } from "../src/host/trace/_read_on_worker.ts";
import { emptyTraceStats } from "../src/host/trace/stats.ts";
import { runBatchStream } from "../src/host/event_runner.ts";
import { type RunProbe, RunRecorder } from "../src/host/report/recorder.ts";
import { Prng } from "../src/util/prng.ts";
import {
  benchReps,
  median,
  pairedMedianRatio,
  type ThreadTimes,
  threadTimes,
  timedMeasurement,
} from "./measurement.ts";
import type { ReportRow, RowSource } from "./report.ts";

const BASE = 2 ** 32;

/** The host every variant runs on: a 1 TiB region with the KVM attributes plugin. */
export const CONFIG = {
  name: "replay",
  regions: [{ name: "ram", size: "1TiB", base: BASE }],
  workload: { name: "boot" },
};

/** A written trace: its file and the conversions it holds, parsed. */
export interface Trace {
  /** The trace file (a temporary file the caller removes). */
  path: string;
  /** Offset of each conversion in the region. */
  offsets: Float64Array;
  /** Size of each conversion. */
  sizes: Float64Array;
  /** 1 where the conversion goes to shared. */
  toShared: Uint8Array;
}

/**
 * Writes the row's trace of `count` conversions (the same for the same
 * `seed`) to a temporary file the caller removes (in `dir`, default the
 * system's); returns its path and the conversions it holds, parsed.
 */
export async function writeTrace(count: number, seed: number, dir?: string): Promise<Trace> {
  const rng = new Prng(seed);
  const path = await Deno.makeTempFile({ dir, prefix: "memstate_replay_", suffix: ".log" });
  const offsets = new Float64Array(count), sizes = new Float64Array(count);
  const toShared = new Uint8Array(count);
  const inflight: [number, number][] = [];
  const window = 512 * 2 ** 30; // the middle of the guest
  const file = await Deno.open(path, { write: true });
  const encoder = new TextEncoder();
  let text = "";
  for (let i = 0; i < count; i++) {
    let gpa: number, size: number, shared: boolean;
    if (inflight.length === 64 || (inflight.length > 0 && rng.chance(0.5))) {
      const k = rng.int(inflight.length);
      [gpa, size] = inflight[k];
      inflight[k] = inflight[inflight.length - 1];
      inflight.pop();
      shared = false;
    } else {
      size = (1 + rng.int(16)) * 4096;
      gpa = BASE + window + rng.int(65536) * 4096;
      inflight.push([gpa, size]);
      shared = true;
    }
    offsets[i] = gpa - BASE;
    sizes[i] = size;
    toShared[i] = shared ? 1 : 0;
    text += `48230@1700000000.${String(i % 1e6).padStart(6, "0")}:kvm_convert_memory start 0x${
      gpa.toString(16)
    } size 0x${size.toString(16)} ${shared ? "private_to_shared" : "shared_to_private"}\n`;
    if (text.length > 1 << 20) {
      await file.write(encoder.encode(text));
      text = "";
    }
  }
  await file.write(encoder.encode(text));
  file.close();
  return { path, offsets, sizes, toShared };
}

/**
 * The direct conversions of `trace` on a fresh host built by `build` (this
 * checkout's `buildHost`, or another revision's in `bench/replay_ab.ts`);
 * returns milliseconds.
 */
export function convertDirect(
  config: HostConfig,
  trace: Trace,
  build: typeof buildHost = buildHost,
): number {
  using host = build(config);
  const region = host.regions[0];
  const t0 = performance.now();
  for (let i = 0; i < trace.offsets.length; i++) {
    region.convert(trace.offsets[i], trace.sizes[i], trace.toShared[i] ? "shared" : "private");
  }
  return performance.now() - t0;
}

/**
 * Starts the replay's own reader worker on `path` with credit for every batch
 * (it never waits for the main thread) and resolves once its first batch is
 * posted; `stop` ends it. The batches queue unread: what is measured beside
 * it is what the reading costs the other thread. Unpaced, the worker reads a
 * 1M-line trace in about half the time the direct conversions take, so this
 * is the reading's cost as a burst, not spread over the run as a replay's
 * credit spreads it. `createMs` is how long the `Worker` constructor held
 * this thread (Deno creates the worker's runtime before it returns);
 * `timeMessages` returns how long posting one credit message to it holds
 * this thread, in microseconds (the mean of {@link MESSAGES_TIMED}, each
 * granting no credit, each after 1.5 ms of spinning).
 */
async function readerBeside(
  path: string,
): Promise<{ stop: () => void; createMs: number; timeMessages: () => number }> {
  const t0 = performance.now();
  const worker = new Worker(WORKER_MODULE.href, { type: "module" });
  const createMs = performance.now() - t0;
  const started = new Promise<void>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<{ kind: string }>) => {
      if (e.data.kind === "batch" || e.data.kind === "end") resolve();
      else reject(new Error(`the reader worker failed: ${JSON.stringify(e.data)}`));
    };
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`the reader worker failed: ${e.message}`));
    };
  });
  worker.postMessage({ path, chunkSize: TRACE_CHUNK_SIZE });
  // A credit for every batch there is (one per chunk read), and one to spare.
  const batches = Math.ceil((await Deno.stat(path)).size / TRACE_CHUNK_SIZE) + 1;
  worker.postMessage(batches);
  try {
    await started;
  } catch (error) {
    worker.terminate();
    throw error;
  }
  const timeMessages = () => {
    // Paced as a replay posts them, one after each batch's conversions (about 1.5 ms): posted
    // back to back, only the first would wake the worker.
    let ms = 0;
    for (let i = 0; i < MESSAGES_TIMED; i++) {
      const until = performance.now() + 1.5;
      while (performance.now() < until) { /* a batch's conversions */ }
      const m0 = performance.now();
      worker.postMessage(0);
      ms += performance.now() - m0;
    }
    return (ms * 1000) / MESSAGES_TIMED;
  };
  return { stop: () => worker.terminate(), createMs, timeMessages };
}

/** Credit messages {@link readerBeside} times. */
const MESSAGES_TIMED = 256;

/** The trace's conversions as the reader's worker posts them: columns of 2,840 (a chunk's worth). */
function columnBatches(
  trace: Trace,
): WorkerBatch[] {
  const batches: WorkerBatch[] = [];
  const count = trace.offsets.length, per = 2840;
  for (let start = 0; start < count; start += per) {
    const n = Math.min(per, count - start);
    const gpa = new Float64Array(n), size = new Float64Array(n), line = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      gpa[i] = BASE + trace.offsets[start + i];
      size[i] = trace.sizes[start + i];
      line[i] = start + i + 1;
    }
    const shared = trace.toShared.slice(start, start + n);
    batches.push({
      kind: "batch",
      count: n,
      gpa,
      size,
      shared,
      line,
      others: [],
      stats: emptyTraceStats(),
    });
  }
  return batches;
}

/**
 * How {@link runColumns} probes: not at all, with the report's recorder as a
 * session does, or with the recorder told of every event (a probe that does
 * not say when it next wants a call, as every probe was before round 10).
 */
type ProbeMode = "none" | "recorder" | "every-event";

/** Runs `batches` through the session's runner on a fresh host, probed as `mode` says. */
async function runColumns(
  config: HostConfig,
  batches: WorkerBatch[],
  mode: ProbeMode,
): Promise<number> {
  using host = buildHost(config);
  const recorder = mode === "none" ? undefined : new RunRecorder(host);
  const probe: RunProbe | undefined = mode === "every-event"
    ? {
      conversionTime: (ms, weight) => recorder!.conversionTime(ms, weight),
      afterEvent: (events, conversions) => void recorder!.afterEvent(events, conversions),
    }
    : recorder;
  async function* input() {
    yield* batches;
  }
  const t0 = performance.now();
  const result = await runBatchStream(host, input(), probe ? { probe } : {});
  const ms = performance.now() - t0;
  const count = batches.reduce((sum, batch) => sum + batch.count, 0);
  const c = result.conversions;
  if (c.applied + c.noop !== count) {
    throw new Error(`runner applied ${c.applied} and skipped ${c.noop} of ${count}`);
  }
  return ms;
}

/** Milliseconds of each repetition of each part of the replay's cost ({@link replayParts}). */
export interface ReplayParts {
  /** The direct conversions. */
  direct: number[];
  /** The same, while the replay's reader worker reads the trace on the other core. */
  readerBeside: number[];
  /** How long `new Worker` held the main thread, as every replay of a large file pays once. */
  workerCreate: number[];
  /**
   * Microseconds one credit message to the reader's worker held the main
   * thread (a replay posts one per `CREDIT_STEP` batches, _read_on_worker.ts).
   */
  creditMessageUs: number[];
  /** The conversions through the session's runner, from columns already in memory, no probe. */
  runner: number[];
  /** The same with the report's probe (latency histogram, timelines), as a session runs it. */
  runnerProbe: number[];
  /** The same with the report's probe told of every event (see `ProbeMode`). */
  runnerProbeEvery: number[];
  /** The whole replay (`runSession` on the trace file), as the replay row times it. */
  replay: number[];
  /**
   * The main thread during each {@link direct} and {@link replay}: its time on
   * a core and waiting for one ({@link threadTimes}); empty where Linux's
   * schedstat cannot be read.
   */
  directThread: ThreadTimes[];
  /** See {@link directThread}. */
  replayThread: ThreadTimes[];
}

/**
 * The replay row's gap taken apart, each part `reps` times after one untimed
 * round, interleaved, in an order that turns by one each repetition (the
 * first part timed in a repetition ran slowest in every run with a fixed
 * order): what reading on the other core costs the conversions, and what the
 * runner and the report's probe add to them. The rest of the gap is outside
 * the runner's batches (the replay row's note).
 */
export async function replayParts(count = 1_000_000, reps = 5): Promise<ReplayParts> {
  const trace = await writeTrace(count, 3);
  const config = parseHostConfig(CONFIG, "replay.json");
  const batches = columnBatches(trace);
  const parts: ReplayParts = {
    direct: [],
    readerBeside: [],
    workerCreate: [],
    creditMessageUs: [],
    runner: [],
    runnerProbe: [],
    runnerProbeEvery: [],
    replay: [],
    directThread: [],
    replayThread: [],
  };
  // `step`'s milliseconds, and the main thread's times during it when Linux tells them.
  const threadDuring = async (step: () => Promise<number> | number, into: ThreadTimes[]) => {
    const before = threadTimes();
    const ms = await step();
    const after = threadTimes();
    if (before && after) {
      into.push({ cpuMs: after.cpuMs - before.cpuMs, waitMs: after.waitMs - before.waitMs });
    }
    return ms;
  };
  const steps: (() => Promise<void>)[] = [
    async () =>
      void parts.direct.push(
        await threadDuring(() => convertDirect(config, trace), parts.directThread),
      ),
    async () => {
      const reader = await readerBeside(trace.path);
      try {
        parts.readerBeside.push(convertDirect(config, trace));
        parts.creditMessageUs.push(reader.timeMessages());
      } finally {
        reader.stop();
      }
      parts.workerCreate.push(reader.createMs);
    },
    async () => void parts.runner.push(await runColumns(config, batches, "none")),
    async () => void parts.runnerProbe.push(await runColumns(config, batches, "recorder")),
    async () => void parts.runnerProbeEvery.push(await runColumns(config, batches, "every-event")),
    async () =>
      void parts.replay.push(
        await threadDuring(async () => {
          const t0 = performance.now();
          await runSession(config, { trace: trace.path });
          return performance.now() - t0;
        }, parts.replayThread),
      ),
  ];
  try {
    for (let r = -1; r < reps; r++) {
      for (let k = 0; k < steps.length; k++) await steps[(k + Math.max(r, 0)) % steps.length]();
      if (r === -1) {
        // The untimed round: its times go.
        for (const times of Object.values(parts) as unknown[][]) times.length = 0;
      }
    }
  } finally {
    await Deno.remove(trace.path);
  }
  return parts;
}

/** The replay row: direct conversions (baseline), full replay, and the reader alone. */
export async function replayRows(count = 1_000_000, reps = 3): Promise<ReportRow[]> {
  const trace = await writeTrace(count, 3);
  const config = parseHostConfig(CONFIG, "replay.json");
  const reader: number[] = [], direct: number[] = [], replay: number[] = [];
  // Of each replay, the milliseconds outside the runner's batches: the worker's
  // start and the waits for its batches, setting up, the checks and the report.
  const outside: number[] = [];
  try {
    for (let r = 0; r < reps; r++) {
      {
        const t0 = performance.now();
        // In-thread: what reading costs the thread that does it (the replay reads on a worker).
        const stream = await openTraceStream(trace.path, { worker: false });
        let items = 0;
        for await (const batch of stream.batches()) items += batch.length;
        reader.push(performance.now() - t0);
        if (items !== count) throw new Error(`reader saw ${items} items, expected ${count}`);
      }
      direct.push(convertDirect(config, trace));
      {
        const t0 = performance.now();
        const { report } = await runSession(config, { trace: trace.path });
        replay.push(performance.now() - t0);
        outside.push(replay[replay.length - 1] - report.elapsedMs);
        // Overlapping buffers make a few conversions no-ops; none may fail or be rejected.
        const c = report.conversions;
        if (c.applied + c.noop !== count) {
          throw new Error(`replay applied ${c.applied} and skipped ${c.noop} of ${count}`);
        }
      }
    }
  } finally {
    await Deno.remove(trace.path);
  }
  const lines = `${count.toLocaleString("en-US")} kvm_convert_memory lines of a 1 TiB guest`;
  return [{
    workload: "replay 1 TiB",
    description: `${lines} (KVM attributes plugin): the whole replay against direct conversions`,
    unit: "conversion",
    results: [
      timedMeasurement("direct", direct, count),
      timedMeasurement(
        "replay",
        replay,
        count,
        "reader, runner and invariant check, from a file; outside the runner's batches " +
          `(the worker's start, waits for batches, setup, checks): ${
            outside.map((ms) => ms.toFixed(0)).join(", ")
          } ms`,
      ),
    ],
    targets: [{ metric: "time", max: 1.25 }],
  }, {
    workload: "replay 1 TiB: reader",
    description: `${lines}: the reader alone (no host), against the direct conversions`,
    unit: "conversion",
    results: [
      timedMeasurement("direct", direct, count),
      timedMeasurement("reader only", reader, count, "read and classify every line, in-thread"),
    ],
    targets: [],
  }];
}

/** The rows for `bench/report.ts`. */
export const replaySource: RowSource = {
  name: "replay",
  rows: () => replayRows(1_000_000, benchReps("replay_rows", 3)),
};

/** Prints the replay's parts ({@link replayParts}). */
async function printParts(count: number, reps: number): Promise<void> {
  const parts = await replayParts(count, reps);
  const names: [
    "direct" | "readerBeside" | "runner" | "runnerProbe" | "runnerProbeEvery" | "replay",
    string,
  ][] = [
    ["direct", "direct"],
    ["readerBeside", "direct, reader beside"],
    ["runner", "runner, no probe"],
    ["runnerProbe", "runner with probe"],
    ["runnerProbeEvery", "probe told every event"],
    ["replay", "whole replay"],
  ];
  for (const [key, name] of names) {
    const times = parts[key];
    const paired = pairedMedianRatio(times, parts.direct);
    console.log(
      `${name.padEnd(22)} ${times.map((t) => t.toFixed(0)).join(", ")} ms; ` +
        `paired median ${paired.toFixed(2)}x direct`,
    );
  }
  const created = parts.workerCreate.map((t) => t.toFixed(0)).join(", ");
  console.log(`new Worker held the main thread ${created} ms`);
  const message = parts.creditMessageUs.map((t) => t.toFixed(1)).join(", ");
  console.log(`a credit message held it ${message} us`);
  const { directThread, replayThread } = parts;
  if (replayThread.length === parts.replay.length && directThread.length === parts.direct.length) {
    // Wall time less time on a core and in the run queue: blocked (new Worker), waiting for a
    // batch, or stolen by the hypervisor (measurement.ts threadTimes).
    const idle = parts.replay.map((ms, r) => ms - replayThread[r].cpuMs - replayThread[r].waitMs);
    // Sums, not paired ratios: each reading may lag by a scheduler tick (measurement.ts).
    const onCore = (times: ThreadTimes[]) => times.reduce((sum, t) => sum + t.cpuMs, 0);
    const cpu = onCore(directThread) > 0
      ? `${(onCore(replayThread) / onCore(directThread)).toFixed(2)}x direct's`
      : "too short to tell";
    const list = (values: number[]) => values.map((v) => v.toFixed(0)).join(", ");
    console.log(
      `whole replay's main thread: on a core ${cpu} (all repetitions); ` +
        `waiting for a core ${list(replayThread.map((t) => t.waitMs))} ms; ` +
        `idle ${list(idle)} ms (median ${median(idle).toFixed(0)})`,
    );
  } else console.log("whole replay's main thread: /proc/thread-self/schedstat cannot be read here");
}

/** Runs the replay rows and prints them. */
async function printRows(count: number, reps: number): Promise<void> {
  const [row, reader] = await replayRows(count, reps);
  const direct = row.results[0].seconds!;
  console.log(row.results[1].note);
  for (const m of [...row.results, reader.results[1]]) {
    const us = (s: number) => ((s * 1e6) / m.units).toFixed(3);
    console.log(
      `${m.store.padEnd(12)} ${us(m.seconds!)} us/conversion (median ${us(m.medianSeconds!)}), ${
        (m.seconds! / direct).toFixed(2)
      }x direct`,
    );
  }
}

if (import.meta.main) {
  const values = parseOptions("replay_rows", {
    conversions: { type: "string" },
    reps: { type: "string" },
    parts: { type: "boolean" },
  });
  const count = integerOption("replay_rows", "conversions", values.conversions, {
    fallback: 1_000_000,
    min: 1,
    max: 10_000_000,
  });
  const reps = (fallback: number) =>
    integerOption("replay_rows", "reps", values.reps, { fallback, min: 1, max: 1000 });
  if (values.parts) await printParts(count, reps(5));
  else await printRows(count, reps(3));
}
