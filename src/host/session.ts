/**
 * One run of a host configuration, end to end: check that the machine can
 * run it, read the regions from the trace when the configuration asks for
 * that, build the host, stream the input (a trace, read a chunk at a time,
 * or a named workload's lazy events) through the runner, check the
 * invariants and build the report. The CLI and the tests both go through
 * here.
 *
 * Everything a person can get wrong is refused before the first event:
 * configuration and parameters, what the machine can hold (limits.ts), a
 * trace that cannot be opened. What can only be known by reading the whole
 * trace (that it holds no event at all) is refused at its end with a
 * {@link TraceInputError}.
 *
 * @module
 */

import { HwError } from "../hw/errors.ts";
import { Prng } from "../util/prng.ts";
import { buildHost, type BuildOptions, type Host } from "./build.ts";
import { withTraceRegions } from "./config/load.ts";
import type { HostConfig, StoreKind, WorkloadName } from "./config/schema.ts";
import { checkInvariants } from "./invariants.ts";
import { checkHostLimits, HostLimitError } from "./limits.ts";
import { loadPluginModules } from "./plugin_modules.ts";
import { buildReport, type Report } from "./report/report.ts";
import { renderStateSvg, svgRegionOf } from "./report/svg.ts";
import { renderHostHtml } from "./report/html.ts";
import { RunRecorder } from "./report/recorder.ts";
import { runBatchStream, runEvents, runEventStream, type RunResult } from "./event_runner.ts";
import { loadHostState } from "./state_file.ts";
import { type MemslotEvent, TraceInputError } from "./trace/event.ts";
import { memoryMapFromMemslots, type TraceMemoryMap } from "./trace/memory_map.ts";
import type { TraceProblem } from "./trace/read.ts";
import { openTraceStream, runnerBatches, type TraceStream } from "./trace/stream.ts";
import { type ColumnsOrItems, unpack } from "./trace/_read_on_worker.ts";
import {
  checkParamLimits,
  checkParams,
  checkWorkloadEvents,
  workloadByName,
} from "./workloads/registry.ts";
import { type HostEvent, WorkloadError } from "./workloads/workload.ts";
import { displayPath } from "../util/text.ts";

/** What to run and how; every field overrides the configuration. */
export interface SessionOptions {
  /** Replay this trace file (`-`: standard input) instead of the configured workload. */
  trace?: string;
  /** Run this workload instead of the configured one. */
  workload?: WorkloadName;
  /** Workload parameters (merged over the configuration's when the workload is the same). */
  params?: Record<string, unknown>;
  /** Seed for the workload (default: the configuration's, else 1). */
  seed?: number;
  /** Store kind for every region. */
  store?: StoreKind;
  /** Swap DMA devices to this kind (for comparisons). */
  dmaKind?: BuildOptions["dmaKind"];
  /** The VMM policy (overrides the configuration's). */
  vmm?: BuildOptions["vmm"];
  /** The kernel (overrides the configuration's). */
  kernel?: BuildOptions["kernel"];
  /** The IOMMU (overrides the configuration's). */
  iommu?: BuildOptions["iommu"];
  /**
   * Stop at the first bad event. A trace file is read once beforehand, so a
   * malformed line changes nothing at all; standard input and a followed log
   * stop at the first bad line as they come.
   */
  strict?: boolean;
  /** Accept capacity problems at start. */
  continueOnCapacityError?: boolean;
  /**
   * Progress: called with (events done, events expected) for a workload, and
   * (bytes read, file size) for a trace file.
   */
  onProgress?: (done: number, total: number) => void;
  /** Saved state (`saveHostState`) to load after building the host, before any event. */
  loadState?: Uint8Array;
  /** Follow a growing trace file until `signal` aborts (`tail -f`). */
  follow?: boolean;
  /**
   * Called once everything that can be refused was checked (the input is open, the host built
   * and any saved state loaded), just before the first event: where `--follow` says it waits.
   */
  onStart?: () => void;
  /**
   * Stops the run (Ctrl-C): the report covers what was applied, with
   * `interrupted` set. A followed trace is read up to the moment of the abort.
   */
  signal?: AbortSignal;
  /** Standard input for `trace: "-"` (default `Deno.stdin.readable`). */
  stdin?: ReadableStream<Uint8Array>;
  /** Memory available for bitmap stores, in bytes (default: the machine's). */
  availableMemory?: number;
  /**
   * Plugin modules to load besides the configuration's (`--plugin FILE`):
   * each follows every region, with no options.
   */
  plugins?: readonly string[];
}

/** The outcome of {@link runSession}. */
export interface SessionResult {
  /** The report. */
  report: Report;
  /** The host after the run (closed: read-only). */
  host: Host;
  /** An SVG state map of every region, drawn on demand. */
  svg(): string;
  /** The self-contained interactive HTML report, built on demand. */
  html(): string;
}

/** Items held back while the memory map is read from the start of a trace. */
const MEMORY_MAP_HOLD = 100_000;

/** Runs `config` once; see {@link SessionOptions}. */
export async function runSession(
  config: HostConfig,
  options: SessionOptions = {},
): Promise<SessionResult> {
  const tracePath = options.trace ??
    (!options.workload && config.workload.kind === "trace" ? config.workload.trace : undefined);
  if (tracePath === undefined) {
    if (config.regionsFrom === "trace") {
      throw new WorkloadError(
        `${
          displayPath(config.source)
        }: "regions": "from-trace" takes the regions from a trace: give ` +
          `--trace FILE or "workload": {"trace": FILE}`,
      );
    }
    if (options.follow) throw new WorkloadError("--follow follows a trace: give --trace FILE");
  } else {
    // A trace is replayed as it is: parameters and a seed would be ignored without a word.
    if (Object.keys(options.params ?? {}).length > 0) {
      throw new WorkloadError("--param: the input is a trace, which takes no parameters");
    }
    if (options.seed !== undefined) {
      throw new WorkloadError("--seed: the input is a trace, which draws no random numbers");
    }
  }
  const limits = { store: options.store, availableMemory: options.availableMemory };
  // Permissions and machine limits first: nothing is read before they hold.
  checkHostLimits(config, limits);
  let trace: TraceStream | undefined;
  try {
    let items: AsyncIterable<ColumnsOrItems> | undefined;
    let memoryMap: TraceMemoryMap | undefined;
    if (tracePath !== undefined) {
      trace = await openTraceStream(tracePath, {
        follow: options.follow,
        signal: options.signal,
        stdin: options.stdin,
      });
      // A worker's batches keep their conversions in columns: the runner applies them so.
      items = runnerBatches(trace);
      if (config.regionsFrom === "trace") {
        const scanned = await scanMemoryMap(trace, items as AsyncGenerator<ColumnsOrItems>);
        memoryMap = scanned.map;
        items = scanned.items;
        config = withTraceRegions(config, memoryMap, tracePath);
        checkHostLimits(config, limits);
      }
    }
    const workload = trace === undefined ? workloadInput(config, options) : undefined;
    const extra = options.plugins ?? [];
    const plugins = await loadPluginModules(
      config,
      [
        ...config.plugins,
        ...extra.map((module) => ({
          module,
          options: {},
          regions: config.regions.map((r) => r.name),
        })),
      ],
      [
        ...config.plugins.map((p, i) => `plugins[${i}] (${displayPath(p.module)})`),
        ...extra.map((m) => `--plugin ${displayPath(m)}`),
      ],
    );
    const host = build(config, { ...options, plugins });
    try {
      if (options.loadState) loadHostState(host, options.loadState);
      let run: RunResult;
      let input: string;
      const recorder = new RunRecorder(host);
      const stop = trace !== undefined && options.strict && trace.seekable && !options.follow
        ? await firstBadLine(tracePath!)
        : undefined;
      options.onStart?.();
      if (trace !== undefined) {
        input = tracePath!;
        if (stop) {
          // Under --strict a malformed trace file changes nothing at all.
          run = runEvents(host, []);
          run.errors.push(stop);
          run.stoppedAt = stop;
        } else {
          run = await runBatchStream(host, withProgress(items!, trace, options.onProgress), {
            strict: options.strict,
            probe: recorder,
          });
          if (options.signal?.aborted) run.interrupted = true;
          if (trace.stats.events === 0) throw noEvents(trace, run);
        }
      } else {
        input = workload!.name;
        run = await runEventStream(host, workload!.events, {
          strict: options.strict,
          signal: options.signal,
          onProgress: options.onProgress && ((done) => options.onProgress!(done, workload!.total)),
          probe: recorder,
        });
      }
      recorder.finish(run.events, run.conversions.requested);
      const invariants = checkInvariants(host.regions, host.plugins);
      const report = buildReport(host, run, invariants, input, [], {
        ...(trace ? { trace: trace.stats } : {}),
        ...(memoryMap ? { memoryMap } : {}),
      });
      report.latency = recorder.latencyReport();
      report.timeline = recorder.timeline();
      return {
        report,
        host,
        html: () => renderHostHtml(host, report),
        svg: () =>
          renderStateSvg({
            title:
              `${config.name}: ${report.input} (${report.store}, ${report.vmm}, ${report.kernel})`,
            regions: host.regions.map(svgRegionOf),
          }),
      };
    } finally {
      host.close();
    }
  } finally {
    trace?.close();
  }
}

/** Builds the host; a machine that cannot set it up (no room to map a region) is a user error. */
function build(config: HostConfig, options: BuildOptions): Host {
  try {
    return buildHost(config, options);
  } catch (e) {
    if (e instanceof HwError) {
      throw new HostLimitError([
        `${displayPath(config.source)}: the host cannot be set up here: ${e.message}`,
      ]);
    }
    throw e;
  }
}

/**
 * Reads the start of the trace up to its first event (at most
 * {@link MEMORY_MAP_HOLD} items), keeping what it read, and returns the memory
 * map its memslots give with the items to replay: those held, then the rest.
 */
async function scanMemoryMap(
  trace: TraceStream,
  batches: AsyncGenerator<ColumnsOrItems>,
): Promise<{ map: TraceMemoryMap; items: AsyncIterable<ColumnsOrItems> }> {
  const held: ColumnsOrItems[] = [];
  const memslots: MemslotEvent[] = [];
  let count = 0;
  let ended = false;
  while (true) {
    const next = await batches.next();
    if (next.done) {
      ended = true;
      break;
    }
    held.push(next.value);
    const batch = Array.isArray(next.value) ? next.value : unpack(next.value);
    count += batch.length;
    let event = false;
    for (const item of batch) {
      if (item.op === "memslot") memslots.push(item);
      else if (item.op !== "bad-line") {
        // The map is the memslots as they stand at the first event: a later one in the
        // same batch is not taken as a region (the runner skips memslots).
        event = true;
        break;
      }
    }
    if (event || count >= MEMORY_MAP_HOLD) break;
  }
  const map = memoryMapFromMemslots(memslots);
  if (map.regions.length === 0) {
    const seen = memslots.length === 0
      ? "it has no kvm_set_user_memory event"
      : `none of its ${memslots.length} kvm_set_user_memory events sets a guest_memfd ` +
        `memslot of address space 0`;
    throw new TraceInputError(
      trace.name,
      `${displayPath(trace.name)}: no regions to take from the trace: ${seen} before its first ` +
        `conversion (run QEMU with -trace kvm_set_user_memory, or give a CONFIG with "regions")`,
    );
  }
  async function* items(): AsyncGenerator<ColumnsOrItems> {
    yield* held.splice(0);
    if (!ended) yield* batches;
  }
  return { map, items: items() };
}

/**
 * The first bad line of the trace file at `path` (a whole read, flat in
 * memory), if any; a trace without a single event is refused all the same.
 */
async function firstBadLine(path: string): Promise<TraceProblem | undefined> {
  const trace = await openTraceStream(path);
  let first: TraceProblem | undefined;
  try {
    for await (const batch of trace.batches()) {
      if (first) continue; // read on: the event count decides whether it is a trace at all
      for (const item of batch) {
        if (item.op === "bad-line") {
          first = { line: item.line, message: item.message };
          break;
        }
      }
    }
    if (trace.stats.events === 0) {
      throw noEvents(trace, first ? { errors: [first] } : undefined);
    }
    return first;
  } finally {
    trace.close();
  }
}

/** The error for a trace that held no event: empty, or nothing but other output and bad lines. */
function noEvents(trace: TraceStream, run?: Pick<RunResult, "errors">): TraceInputError {
  const s = trace.stats;
  const unit = s.unit === "record" ? "records" : "lines";
  const parts = [
    s.blank > 0 ? `${s.blank} blank or comments` : "",
    s.other > 0 ? `${s.other} other trace output` : "",
    s.memslots > 0 ? `${s.memslots} kvm_set_user_memory` : "",
    s.unreadable > 0 ? `${s.unreadable} unreadable` : "",
  ].filter((p) => p !== "");
  const first = run?.errors[0];
  return new TraceInputError(
    trace.name,
    `${displayPath(trace.name)}: no events to replay: ` +
      (s.lines === 0
        ? `the trace is empty`
        : `${s.lines} ${unit} read (${parts.join(", ")}), none a kvm_convert_memory event ` +
          `or a JSON event`) +
      (first ? `; ${s.unit} ${first.line}: ${first.message}` : ""),
  );
}

/** `items`, calling `onProgress` with the bytes read after each batch when the size is known. */
async function* withProgress(
  items: AsyncIterable<ColumnsOrItems>,
  trace: TraceStream,
  onProgress: SessionOptions["onProgress"],
): AsyncGenerator<ColumnsOrItems> {
  for await (const batch of items) {
    yield batch;
    if (onProgress && trace.size) onProgress(Math.min(trace.stats.bytes, trace.size), trace.size);
  }
}

/** The events of a named workload, its expected count and name. */
interface WorkloadInput {
  events: Iterable<HostEvent>;
  total: number;
  name: string;
}

/** The workload `config` and `options` ask for, its parameters checked against the host. */
function workloadInput(config: HostConfig, options: SessionOptions): WorkloadInput {
  const configured = config.workload.kind === "generator" ? config.workload : undefined;
  const name = options.workload ?? configured?.name;
  if (!name) {
    throw new WorkloadError(
      `${displayPath(config.source)}: no workload to run: give --workload NAME or --trace FILE`,
    );
  }
  const workload = workloadByName(name);
  const base = configured?.name === name ? configured.params : {};
  const cli = options.params ?? {};
  const given = { ...base, ...cli };
  const field = (p: string) =>
    Object.hasOwn(cli, p) ? `--param ${p}` : `${displayPath(config.source)}: workload.params.${p}`;
  const params = checkParams(name, given, field);
  const seed = options.seed ?? configured?.seed ?? 1;
  const ctx = () => ({
    regions: config.regions,
    devices: config.devices,
    rng: new Prng(seed),
    params,
  });
  checkParamLimits(name, ctx(), Object.keys(given), field);
  const total = workload.estimate(ctx());
  const asked = Object.keys(given).map((p) => `${field(p)} = ${params[p]}`);
  checkWorkloadEvents(name, total, asked);
  return { events: workload.generate(ctx()), total, name: `${name} (seed ${seed})` };
}
