/**
 * A {@link Measurement} from the milliseconds of each repetition, for rows
 * whose variants run one after another in every repetition (the real-kernel
 * and replay rows).
 *
 * @module
 */

import process from "node:process";
import type { Measurement } from "./report.ts";
import { integerIn } from "./cli_args.ts";

/**
 * The fewest repetitions of any row (issue 13, target 5: min and median of at
 * least three). A store too big to build more often is still built this
 * many times.
 */
export const MIN_REPS = 3;

/** The most repetitions `MEMSTATE_BENCH_REPS` may ask for. */
const MAX_BENCH_REPS = 1000;

/**
 * The repetitions a report source runs: `MEMSTATE_BENCH_REPS` when it is set
 * (`1` makes the report's quick pass), never fewer than {@link MIN_REPS};
 * otherwise `fallback`, which is also kept without permission to read the
 * environment. A value that is not an integer from 1 to 1000 ends `script`
 * (the script run: `bench/report.ts` checks it before any source) with one
 * line naming the variable and the rule, exit status 2.
 */
export function benchReps(script: string, fallback: number): number {
  let raw: string | undefined;
  try {
    raw = Deno.env.get("MEMSTATE_BENCH_REPS");
  } catch {
    return fallback; // no permission to read it
  }
  if (raw === undefined) return fallback;
  return Math.max(MIN_REPS, integerIn(script, "MEMSTATE_BENCH_REPS", raw, 1, MAX_BENCH_REPS));
}

/** The median of `values` (the upper one of an even count; NaN when there are none). */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
}

/**
 * The {@link median} over repetitions of `a[r] / b[r]`: the two ran side by
 * side in each repetition `r`, so a slow stretch of the machine falls on both.
 */
export function pairedMedianRatio(a: number[], b: number[]): number {
  return median(a.map((t, r) => t / b[r]));
}

/**
 * `store`'s best and median time over `ms` (milliseconds, one per repetition,
 * in the order run) for `units` conversions. Every repetition is kept: the
 * variants ran side by side in each, so report.ts pairs them and marks a
 * verdict the machine's noise can flip.
 */
export function timedMeasurement(
  store: string,
  ms: number[],
  units: number,
  note?: string,
): Measurement {
  return {
    store,
    seconds: Math.min(...ms) / 1000,
    medianSeconds: median(ms) / 1000,
    repetitions: ms.length,
    times: ms.map((x) => x / 1000),
    units,
    bytes: 0,
    runs: null,
    ...(note ? { note } : {}),
  };
}

/**
 * Minor page faults of this process so far (`getrusage`'s `ru_minflt`,
 * through `node:process`, which needs no permission where `/proc/self` does),
 * or NaN where the runtime cannot tell. A repetition that takes page faults
 * got fresh memory from the kernel rather than memory freed before; see the
 * README's performance section for why that happens in phases.
 */
export function minorFaults(): number {
  try {
    return process.resourceUsage().minorPageFault;
  } catch {
    return NaN;
  }
}

/** V8's `gc`, which `--v8-flags=--expose-gc` puts on the global object. */
type ExposedGc = (options: { type: "minor" | "major" }) => void;

/**
 * Collects V8's young generation now and returns true, where the process
 * runs with `--v8-flags=--expose-gc` (as `bench:report` and `bench:runs` run
 * the report); returns false, doing nothing, where it does not.
 *
 * Why the store rows call it before building each repetition's store: V8
 * frees a dropped store's typed arrays only when a collection finds them
 * dead, and until then glibc serves the next store's arrays from fresh
 * memory, each new page faulting on its first write. In a process that has
 * loaded the whole report (a heap of 11 MB), 400 builds of the range tree's
 * `boot` 1 TiB ran in stretches of about 40 at 120-200 faults and 150-280 ns
 * per conversion, between stretches of 0-40 faults and 90-105 ns; a row's
 * twenty timed repetitions could fall inside one, and then its best
 * repetition was slow too (in twelve report runs the `boot` row missed in
 * nine, at 2.04x-2.97x; in five its best repetition took 184-242 ns, about
 * twice its usual time, with no fault note: every repetition faulted
 * alike). With a minor collection before each build: 0 faults after the
 * first twenty repetitions and 88-108 ns throughout (a scratch loop of 400 builds, two
 * processes each at this revision and the one before). A host builds its
 * store once; the stretches are the benchmark's repeated builds, not the
 * store.
 */
export function collectYoungGarbage(): boolean {
  const gc = (globalThis as { gc?: ExposedGc }).gc;
  if (typeof gc !== "function") return false;
  gc({ type: "minor" });
  return true;
}

/**
 * Page faults beyond a row's fewest from which {@link faultNote} speaks up:
 * 64 pages (256 KiB) of fresh memory. A few faults come and go in any
 * repetition (V8's own heap); a store row's slow repetitions take 120-160
 * more than its fast ones. An end-to-end loop takes hundreds to thousands in
 * every repetition (the simulated kernels' tables), so the count is taken
 * beyond the row's fewest, not from zero.
 */
export const FAULT_NOTE_AT = 64;

/**
 * A note on the repetitions that took at least {@link FAULT_NOTE_AT} page
 * faults more than the fewest any repetition took (`faults`, one count per
 * repetition), or undefined when none did or the counts are unknown.
 */
export function faultNote(faults: number[]): string | undefined {
  if (faults.length === 0 || faults.some(Number.isNaN)) return undefined;
  const fewest = Math.min(...faults);
  const hit = faults.filter((f) => f - fewest >= FAULT_NOTE_AT);
  if (hit.length === 0) return undefined;
  return `${hit.length} of ${faults.length} repetitions took ${FAULT_NOTE_AT} page faults or ` +
    `more beyond the fewest (${fewest}; up to ${Math.max(...hit)}): memory fresh from the ` +
    "kernel, slower than reused memory";
}

/** The calling thread's scheduler times so far, in milliseconds. */
export interface ThreadTimes {
  /** Time on a core. */
  cpuMs: number;
  /** Time runnable but waiting for a core (the run queue). */
  waitMs: number;
}

/**
 * The calling thread's time on a core and in the run queue so far, from
 * Linux's `/proc/thread-self/schedstat` (nanoseconds, kept without the
 * `schedstats` switch), or undefined where it cannot be read (another
 * system, no read permission). With the wall time of the same stretch it
 * splits a replay's main thread into work, waiting for a core, and idle
 * (waiting for the reader's batches, or blocked in `new Worker`). The kernel
 * brings the counters up to date at scheduler ticks and switches, so each
 * reading may lag by a tick (a few milliseconds): for stretches of hundreds.
 * On a virtual machine, time the hypervisor steals from the thread's virtual
 * CPU is in neither counter, so it shows as idle.
 */
export function threadTimes(): ThreadTimes | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync("/proc/thread-self/schedstat");
  } catch {
    return undefined;
  }
  const [cpu, wait] = text.trim().split(/\s+/).map(Number);
  if (!Number.isFinite(cpu) || !Number.isFinite(wait)) return undefined;
  return { cpuMs: cpu / 1e6, waitMs: wait / 1e6 };
}
