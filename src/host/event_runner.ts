/**
 * Running events against a host: conversions, virtio-mem requests and device
 * hot-plug, from a workload generator or a replayed trace. Every outcome is
 * counted; a bad event is reported with its line number and skipped (or ends
 * the run under `strict`), and never changes state.
 *
 * @module
 */

import { conversionWeight } from "./report/latency.ts";
import { ConversionError, InvalidChangeError, RegionFailedError } from "../bus/errors.ts";
import type { Region } from "../bus/region.ts";
import { KVM_MEMORY_ATTRIBUTE_PRIVATE } from "../hw/backend.ts";
import {
  VIRTIO_MEM_MAX_NB_BLOCKS,
  type VirtioMemDevice,
  type VirtioMemResponse,
} from "../plugins/virtio_mem.ts";
import type { Host, HostDevice } from "./build.ts";
import type { TraceProblem } from "./trace/read.ts";
import type { TraceItem } from "./trace/event.ts";
import { locate, regionHolding } from "./trace/locate.ts";
import { directionAt, forEachInOrder, type WorkerBatch } from "./trace/_read_on_worker.ts";
import type { BadLine, MemslotEvent } from "./trace/event.ts";
import type { RunProbe } from "./report/recorder.ts";
import type { HostEvent } from "./workloads/workload.ts";

/** How conversions ended. */
export interface ConversionCounts {
  /** Conversion events seen. */
  requested: number;
  /** Applied: state changed and every component followed. */
  applied: number;
  /** Already in the requested state: nobody was notified. */
  noop: number;
  /** To-shared conversions of ranges in no region (MMIO holes), ignored as QEMU does. */
  ignored: number;
  /** Refused by a component and rolled back. */
  failed: number;
  /** Invalid (malformed, misaligned, out of range, spanning regions): skipped. */
  rejected: number;
}

/** What a run did. */
export interface RunResult {
  /** Conversion outcomes. */
  conversions: ConversionCounts;
  /** virtio-mem responses by type. */
  requests: Record<VirtioMemResponse, number>;
  /** Device attach / detach events applied. */
  hotplug: number;
  /**
   * Problems, each with the event's line number, in order; at most
   * {@link MAX_REPORTED_ERRORS} (the rest are counted in `errorsOmitted`).
   */
  errors: TraceProblem[];
  /** Problems beyond the first {@link MAX_REPORTED_ERRORS}, counted but not kept. */
  errorsOmitted?: number;
  /** Events processed. */
  events: number;
  /** Wall time spent applying events, in milliseconds (reading the input excluded). */
  elapsedMs: number;
  /** Set when the run stopped early (strict mode, a region that failed, QEMU stopping the VM). */
  stoppedAt?: TraceProblem;
  /** True when `signal` stopped the run before its input ended. */
  interrupted?: boolean;
}

/** Problems a run keeps with their messages; later ones are only counted. */
export const MAX_REPORTED_ERRORS = 1000;

/** Options for {@link runEvents} and {@link runEventStream}. */
export interface RunOptions {
  /** Stop at the first bad event instead of skipping it. */
  strict?: boolean;
  /** Called every `progressEvery` events with the number done. */
  onProgress?: (done: number) => void;
  /** How often to call `onProgress` (default 4096 events). */
  progressEvery?: number;
  /**
   * Told each conversion's time and the end of each event that went through,
   * or of those it asks for with `nextEvent` (latency and timelines).
   */
  probe?: RunProbe;
  /**
   * Stops {@link runEventStream} between events (Ctrl-C): the result so far
   * is returned with `interrupted` set. A trace reader stops on its own.
   */
  signal?: AbortSignal;
}

/** What the runner applies: events, and the trace's memslots and bad lines in their places. */
export type RunItem = HostEvent | MemslotEvent | BadLine;

/** {@link EventRunner}'s column loop, for {@link runBatchStream} (set in the class's static block). */
let stepColumns: (runner: EventRunner, batch: WorkerBatch, first: number, end: number) => boolean;

/**
 * Applies items to a host one at a time, counting every outcome; the engine
 * under {@link runEvents} and {@link runEventStream}.
 */
export class EventRunner {
  /** The outcome so far. */
  readonly result: RunResult;
  #host: Host;
  #options: RunOptions;
  #every: number;
  #stopped = false;
  #problem: Problem;
  /** The devices configured to attach or detach at an event number (most hosts: none). */
  #timed: [string, HostDevice][];
  /** The event count at which the probe next wants `afterEvent` (see {@link RunProbe}). */
  #probeDue = 0;

  /** A runner for `host` with nothing applied yet. */
  constructor(host: Host, options: RunOptions = {}) {
    this.#host = host;
    this.#options = options;
    this.#every = options.progressEvery ?? 4096;
    // Looked up once: walking host.devices (a Map) for every event showed in the replay's profile.
    this.#timed = [...host.devices].filter(([, d]) =>
      d.config.attachAt !== undefined || d.config.detachAt !== undefined
    );
    this.result = {
      conversions: { requested: 0, applied: 0, noop: 0, ignored: 0, failed: 0, rejected: 0 },
      requests: { ACK: 0, NACK: 0, BUSY: 0, ERROR: 0 },
      hotplug: 0,
      errors: [],
      events: 0,
      elapsedMs: 0,
    };
    this.#problem = (line, message) => {
      record(this.result, line, message);
      if (options.strict) this.result.stoppedAt = { line, message };
      return !options.strict;
    };
  }

  /** True once an item stopped the run; later items are not applied. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Applies `item`; false when the run must stop here. */
  step(item: RunItem): boolean {
    if (item.op === "convert") return this.stepConversion(item.gpa, item.size, item.to, item.line);
    if (this.#stopped) return false;
    if (item.op === "memslot") return true; // the layout, not an event (see session.ts)
    if (item.op === "bad-line") return this.#settle(this.#problem(item.line, item.message), false);
    return this.#settle(
      this.#beginEvent() && apply(this.#host, item, this.result, this.#problem),
      true,
    );
  }

  /**
   * Applies the conversion of `[gpa, gpa + size)` to `to`, from `line`, as
   * {@link step} applies a convert event, with no event object: for
   * conversions held in columns (a trace read on a worker hands them over so).
   */
  stepConversion(gpa: number, size: number, to: "shared" | "private", line: number): boolean {
    if (this.#stopped) return false;
    if (!this.#beginEvent()) return this.#settle(false, true);
    const result = this.result;
    // probe: time conversions, sample timelines (no allocation per event).
    const probe = this.#options.probe;
    const weight = probe === undefined ? 0 : conversionWeight(result.conversions.requested);
    const t0 = weight > 0 ? performance.now() : -1;
    const go = convert(this.#host, gpa, size, to, line, result, this.#problem);
    if (t0 >= 0) probe!.conversionTime(performance.now() - t0, weight);
    return this.#settle(go, true);
  }

  static {
    // The column loop for runBatchStream, without making it part of the class's API.
    stepColumns = (runner, batch, first, end) => runner.#stepColumns(batch, first, end);
  }

  /**
   * Applies conversions `[first, end)` of `batch`'s columns, as
   * {@link stepConversion} applies each. One loop rather than a call of
   * `stepConversion` per conversion: that call and the ones inside it
   * (counting the event, settling with the probe) cost the runner about 5%
   * of the direct conversions' time (`bench/replay_rows.ts --parts`, "runner,
   * no probe", four process pairs taking turns: 1.09x-1.14x direct before,
   * 1.04x-1.07x after). Devices timed to an event, and an `onProgress`, take
   * the one-by-one way. Called only while the run goes on: runBatchStream
   * stops at the first step that stops it.
   */
  #stepColumns(batch: WorkerBatch, first: number, end: number): boolean {
    const { gpa, size, line } = batch;
    if (this.#timed.length > 0 || this.#options.onProgress !== undefined) {
      for (let k = first; k < end; k++) {
        if (!this.stepConversion(gpa[k], size[k], directionAt(batch, k), line[k])) return false;
      }
      return true;
    }
    const result = this.result;
    const c = result.conversions;
    const probe = this.#options.probe;
    const host = this.#host;
    for (let k = first; k < end; k++) {
      result.events++;
      const weight = probe === undefined ? 0 : conversionWeight(c.requested);
      const t0 = weight > 0 ? performance.now() : -1;
      const to = directionAt(batch, k);
      const go = convert(host, gpa[k], size[k], to, line[k], result, this.#problem);
      if (t0 >= 0) probe!.conversionTime(performance.now() - t0, weight);
      if (!go) {
        this.#stopped = true;
        return false;
      }
      if (probe !== undefined && result.events >= this.#probeDue) this.#askProbe(probe);
    }
    return true;
  }

  /** Tells `probe` of the events so far and asks when it next wants to be told. */
  #askProbe(probe: RunProbe): void {
    const result = this.result;
    probe.afterEvent(result.events, result.conversions.requested);
    // A probe that samples every N events says when it next wants a call,
    // which spares the calls between (`bench/replay_rows.ts --parts`:
    // "runner with probe" against "probe told every event").
    const due = probe.nextEvent?.();
    this.#probeDue = typeof due === "number" && due > result.events ? due : result.events + 1;
  }

  /** Counts an event and makes the device changes timed for it; false when one stopped the run. */
  #beginEvent(): boolean {
    const result = this.result;
    result.events++;
    return this.#timed.length === 0 ||
      hotplugByTiming(this.#host, this.#timed, result.events, result, this.#problem);
  }

  /**
   * Ends a step: an event (`counted`) is told to the probe when it went
   * through and to `onProgress` every `progressEvery` events; `go` false
   * stops the run.
   */
  #settle(go: boolean, counted: boolean): boolean {
    if (counted) {
      const result = this.result;
      const probe = this.#options.probe;
      if (go && probe !== undefined && result.events >= this.#probeDue) this.#askProbe(probe);
      if (this.#options.onProgress && result.events % this.#every === 0) {
        this.#options.onProgress(result.events);
      }
    }
    if (!go) this.#stopped = true;
    return go;
  }
}

/** Applies `events` to `host` in order; see {@link RunResult}. */
export function runEvents(
  host: Host,
  events: Iterable<RunItem>,
  options: RunOptions = {},
): RunResult {
  const runner = new EventRunner(host, options);
  const started = performance.now();
  for (const event of events) {
    if (!runner.step(event)) break;
  }
  runner.result.elapsedMs = performance.now() - started;
  return runner.result;
}

/** How long the stream runner works before it lets the event loop run (signals, timers). */
const SLICE_MS = 50;

/**
 * Applies a stream of items to `host`: batches from a trace reader (each
 * applied at once, the reading in between not counted in `elapsedMs`), or a
 * workload's lazy events, during which the event loop gets a turn every
 * {@link SLICE_MS} ms so that `signal` (Ctrl-C) can stop the run.
 */
export function runEventStream(
  host: Host,
  input: AsyncIterable<readonly RunItem[]> | Iterable<RunItem>,
  options: RunOptions = {},
): Promise<RunResult> {
  return runBatchStream(host, input, options);
}

/**
 * {@link runEventStream} that also takes the batches a trace reader's worker
 * posts as they are (trace/_read_on_worker.ts: conversions in columns,
 * `trace/stream.ts` `runnerBatches`), applying each conversion without
 * building the object `TraceStream.batches` would: a million of them took
 * 26-40 ms of the `replay 1 TiB` row's main thread. Internal: the session
 * uses it; the column layout is not part of the public API.
 */
export async function runBatchStream(
  host: Host,
  input: AsyncIterable<readonly RunItem[] | WorkerBatch> | Iterable<RunItem>,
  options: RunOptions = {},
): Promise<RunResult> {
  const runner = new EventRunner(host, options);
  const result = runner.result;
  const signal = options.signal;
  let elapsed = 0;
  if (Symbol.asyncIterator in input) {
    const onItem = (item: TraceItem) => runner.step(item as RunItem);
    for await (const batch of input) {
      const t0 = performance.now();
      if (!Array.isArray(batch)) {
        const columns = batch as WorkerBatch;
        forEachInOrder(columns, onItem, (first, end) => stepColumns(runner, columns, first, end));
      } else for (const item of batch) if (!runner.step(item)) break;
      elapsed += performance.now() - t0;
      if (runner.stopped) break;
    }
  } else {
    let t0 = performance.now();
    let n = 0;
    for (const item of input) {
      if (!runner.step(item)) break;
      if (signal && (++n & 1023) === 0 && performance.now() - t0 >= SLICE_MS) {
        elapsed += performance.now() - t0;
        await new Promise((resolve) => setTimeout(resolve, 0));
        t0 = performance.now();
        if (signal.aborted) break;
      }
    }
    elapsed += performance.now() - t0;
  }
  if (signal?.aborted && !runner.stopped) result.interrupted = true;
  result.elapsedMs = elapsed;
  return result;
}

/** Keeps `message` for `line` (up to {@link MAX_REPORTED_ERRORS}), else counts it. */
function record(result: RunResult, line: number, message: string): void {
  if (result.errors.length < MAX_REPORTED_ERRORS) result.errors.push({ line, message });
  else result.errorsOmitted = (result.errorsOmitted ?? 0) + 1;
}

type Problem = (line: number, message: string) => boolean;

function apply(host: Host, event: HostEvent, result: RunResult, problem: Problem): boolean {
  switch (event.op) {
    case "attach":
    case "detach":
      try {
        host[event.op](event.device);
        result.hotplug++;
        return true;
      } catch (e) {
        if (e instanceof RegionFailedError) {
          record(result, event.line, e.message);
          result.stoppedAt = { line: event.line, message: e.message };
          return false;
        }
        return problem(event.line, `${event.op} ${event.device}: ${message(e)}`);
      }
    case "unplug-all": {
      const devices = event.device === undefined
        ? [...host.virtioMem.values()]
        : [host.virtioMem.get(event.device)];
      if (devices.length === 0 || devices.includes(undefined)) {
        return problem(event.line, `unplug-all: no virtio-mem device ${event.device ?? ""}`.trim());
      }
      for (const d of devices) result.requests[d!.unplugAll()]++;
      return true;
    }
    case "plug":
    case "unplug": {
      const device = deviceAt(host, event.gpa);
      if (!device) {
        return problem(
          event.line,
          `${event.op}: 0x${event.gpa.toString(16)} is in no virtio-mem device`,
        );
      }
      if (event.size % device.blockSize !== 0) {
        return problem(
          event.line,
          `${event.op}: size 0x${event.size.toString(16)} is not a multiple of ${device.name}'s ` +
            `block size 0x${device.blockSize.toString(16)}`,
        );
      }
      // A guest names at most VIRTIO_MEM_MAX_NB_BLOCKS per request (le16 nb_blocks:
      // hw/virtio/virtio-mem.c virtio_mem_plug_request), so a bigger event is several
      // requests, in address order, each counted; the first answer other than ACK ends it.
      // An empty event is still one request, which the device answers ERROR.
      const chunk = VIRTIO_MEM_MAX_NB_BLOCKS * device.blockSize;
      let at = 0;
      do {
        const n = Math.min(chunk, event.size - at) / device.blockSize;
        const answer = device[event.op](event.gpa + at, n);
        result.requests[answer]++;
        if (answer !== "ACK") break;
        at += chunk;
      } while (at < event.size);
      return true;
    }
    case "convert":
      return convert(host, event.gpa, event.size, event.to, event.line, result, problem);
  }
}

function convert(
  host: Host,
  gpa: number,
  size: number,
  to: "shared" | "private",
  line: number,
  result: RunResult,
  problem: Problem,
): boolean {
  const c = result.conversions;
  c.requested++;
  // The usual event: inside one region, aligned (nothing allocated to say so).
  const region = regionHolding(gpa, size, host.regions);
  if (region === undefined) return convertUnheld(host, gpa, size, to, line, result, problem);
  try {
    const r = region.convert(gpa - region.base, size, to);
    if (r.noop) c.noop++;
    else c.applied++;
    if (r.ignoredErrors !== undefined) recordIgnored(result, line, region, r.ignoredErrors);
    return true;
  } catch (e) {
    return conversionThrew(host, e, gpa, size, to, line, result, problem);
  }
}

/**
 * {@link convert} of a range no region holds whole and aligned: a
 * conversion to shared of a hole is ignored as QEMU ignores it; anything
 * else is rejected (memstate) or fails as `kvm_convert_memory` fails.
 */
function convertUnheld(
  host: Host,
  gpa: number,
  size: number,
  to: "shared" | "private",
  line: number,
  result: RunResult,
  problem: Problem,
): boolean {
  const c = result.conversions;
  const event = { op: "convert" as const, gpa, size, to, line };
  const where = locate(event, host.regions);
  if (where === "ignored") {
    c.ignored++;
    return true;
  }
  if ("error" in where) {
    if (host.vmm === "memstate") {
      c.rejected++;
      return problem(line, where.error);
    }
    // QEMU has no validation step of its own: kvm_convert_memory fails.
    return qemuConversionFailed(host, event, result, problem, qemuMisfit(host, event, where.error));
  }
  // locate finds no region that regionHolding did not: both take a whole, aligned range, and
  // regions do not overlap (config/validate.ts), so the region holding it is the one there is.
  throw new Error(`internal: [${gpa}, +${size}) located in ${where.region.name} but not held`);
}

/** Keeps the discard errors a QEMU policy ignored during a conversion, with the region's name. */
function recordIgnored(result: RunResult, line: number, region: Region, ignored: string[]): void {
  for (const message of ignored) record(result, line, `${region.name}: ${message}`);
}

/** What a conversion that threw `e` counts as, and whether the run goes on. */
function conversionThrew(
  host: Host,
  e: unknown,
  gpa: number,
  size: number,
  to: "shared" | "private",
  line: number,
  result: RunResult,
  problem: Problem,
): boolean {
  const c = result.conversions;
  if (e instanceof ConversionError) {
    if (host.vmm !== "memstate") {
      return qemuConversionFailed(
        host,
        { op: "convert", gpa, size, to, line },
        result,
        problem,
        e.message,
      );
    }
    c.failed++;
    return problem(line, e.message);
  }
  if (e instanceof InvalidChangeError) {
    c.rejected++;
    return problem(line, e.message);
  }
  if (e instanceof RegionFailedError) {
    c.failed++;
    problem(line, e.message);
    // A failed region refuses everything after: stop rather than report it N times.
    result.stoppedAt = { line, message: e.message };
    return false;
  }
  throw e;
}

/**
 * What `kvm_convert_memory` does with a range that is misaligned, in no
 * RAM, or runs past the end of its RAM section (accel/kvm/kvm-all.c): -EINVAL,
 * after setting the KVM attributes of the whole range in the last case (the
 * state change's bounds check comes after the ioctl). Returns the message.
 */
function qemuMisfit(host: Host, event: HostEvent & { op: "convert" }, why: string): string {
  const start = event.gpa, end = event.gpa + event.size;
  const aligned = start % 4096 === 0 && event.size % 4096 === 0 && event.size > 0;
  const first = host.regions.find((r) => r.base <= start && start < r.base + r.size);
  if (aligned && first !== undefined && end > first.base + first.size) {
    const attributes = event.to === "private" ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
    try {
      host.vm.setMemoryAttributes(start, event.size, attributes);
    } catch (e) {
      return `kvm_convert_memory: KVM_SET_MEMORY_ATTRIBUTES failed: ${message(e)}`;
    }
    return `kvm_convert_memory: the attributes of the whole range were set, then the state ` +
      `change failed its bounds check (-EINVAL): ${why}`;
  }
  return `kvm_convert_memory: -EINVAL: ${why}`;
}

/**
 * A failed conversion under a QEMU policy: the guest's request fails, and
 * after a KVM memory-fault exit QEMU stops the VM (accel/kvm/kvm-all.c
 * `kvm_cpu_exec`: `vm_stop(RUN_STATE_INTERNAL_ERROR)`), so the run ends; a
 * TDX MapGPA caller is answered TDG_VP_VMCALL_INVALID_OPERAND and runs on
 * (target/i386/kvm/tdx.c `tdx_handle_map_gpa`).
 */
function qemuConversionFailed(
  host: Host,
  event: HostEvent & { op: "convert" },
  result: RunResult,
  problem: Problem,
  why: string,
): boolean {
  result.conversions.failed++;
  if (host.config.conversionExit === "tdx-mapgpa") {
    return problem(event.line, `${why}; the guest gets TDG_VP_VMCALL_INVALID_OPERAND`);
  }
  const stop = `${why}; QEMU stops the VM (vm_stop(RUN_STATE_INTERNAL_ERROR))`;
  record(result, event.line, stop);
  result.stoppedAt = { line: event.line, message: `VM stopped (${host.vmm}): ${stop}` };
  return false;
}

/** Devices configured with `attachAt` / `detachAt` come and go at those event numbers. */
function hotplugByTiming(
  host: Host,
  timed: readonly [string, HostDevice][],
  index: number,
  result: RunResult,
  problem: Problem,
): boolean {
  // At one event, every device leaving goes before any arriving, so two devices never
  // overlap where one's detachAt is the other's attachAt: a container whose one device
  // leaves as another arrives is emptied and made again, as QEMU's would be.
  for (const op of ["detach", "attach"] as const) {
    for (const [name, dev] of timed) {
      if ((op === "detach" ? dev.config.detachAt : dev.config.attachAt) !== index) continue;
      try {
        host[op](name);
        result.hotplug++;
      } catch (e) {
        if (e instanceof RegionFailedError) {
          // QEMU 10.1 exits when a replay fails (ram_block_attributes_rdm_register_listener).
          record(result, index, e.message);
          result.stoppedAt = { line: index, message: e.message };
          return false;
        }
        if (!problem(index, `${op} ${name} (configured at event ${index}): ${message(e)}`)) {
          return false;
        }
      }
    }
  }
  return true;
}

function deviceAt(host: Host, gpa: number): VirtioMemDevice | undefined {
  for (const d of host.virtioMem.values()) {
    if (gpa >= d.addr && gpa < d.addr + d.regionSize) return d;
  }
  return undefined;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
