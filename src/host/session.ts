/**
 * One run of a host configuration, end to end: build the host, pick the
 * input (a replayed trace or a named workload), run it, check the invariants
 * and build the report. The CLI and the tests both go through here.
 *
 * @module
 */

import { Prng } from "../util/prng.ts";
import { buildHost, type BuildOptions, type Host } from "./build.ts";
import type { HostConfig, StoreKind, WorkloadName } from "./config/schema.ts";
import { checkInvariants } from "./invariants.ts";
import { buildReport, type Report } from "./report/report.ts";
import { renderStateSvg } from "./report/svg.ts";
import { renderHostHtml } from "./report/html.ts";
import { RunRecorder } from "./report/recorder.ts";
import { runEvents } from "./run.ts";
import { loadHostState } from "./state_file.ts";
import { readTrace, type TraceProblem } from "./trace/read.ts";
import { checkParams, WORKLOADS } from "./workloads/registry.ts";
import type { HostEvent } from "./workloads/workload.ts";

/** What to run and how; every field overrides the configuration. */
export interface SessionOptions {
  /** Replay this trace file instead of the configured workload. */
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
  /** Stop at the first bad event. */
  strict?: boolean;
  /** Accept capacity problems at start. */
  continueOnCapacityError?: boolean;
  /** Progress: called with (events done, events expected). */
  onProgress?: (done: number, total: number) => void;
  /** Saved state (`saveHostState`) to load after building the host, before any event. */
  loadState?: Uint8Array;
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

/** The events the session will run, with parse errors and the input's name. */
interface Input {
  events: Iterable<HostEvent>;
  total: number;
  name: string;
  parseErrors: TraceProblem[];
}

/** Runs `config` once; see {@link SessionOptions}. */
export async function runSession(
  config: HostConfig,
  options: SessionOptions = {},
): Promise<SessionResult> {
  const tracePath = options.trace ??
    (!options.workload && config.workload.kind === "trace" ? config.workload.trace : undefined);
  const traceText = tracePath === undefined ? undefined : await Deno.readTextFile(tracePath);
  const host = buildHost(config, options);
  try {
    if (options.loadState) loadHostState(host, options.loadState);
    const input = traceText !== undefined
      ? traceInput(tracePath!, traceText)
      : workloadInput(host, config, options);
    let report: Report;
    const recorder = new RunRecorder(host);
    if (options.strict && input.parseErrors.length > 0) {
      // Under --strict a malformed trace changes nothing at all.
      const first = input.parseErrors[0];
      const run = runEvents(host, [], {});
      run.stoppedAt = first;
      report = buildReport(
        host,
        run,
        checkInvariants(host.regions, host.plugins),
        input.name,
        input.parseErrors,
      );
    } else {
      const run = runEvents(host, input.events, {
        strict: options.strict,
        onProgress: options.onProgress && ((done) => options.onProgress!(done, input.total)),
        probe: recorder,
      });
      recorder.finish(run.events, run.conversions.requested);
      const invariants = checkInvariants(host.regions, host.plugins);
      report = buildReport(host, run, invariants, input.name, input.parseErrors);
    }
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
          regions: host.regions.map((r) => ({
            name: r.name,
            base: r.base,
            size: r.size,
            pageSize: r.pageSize,
            runs: r.store.runs(),
            implied: r.impliedBits,
          })),
        }),
    };
  } finally {
    host.close();
  }
}

function traceInput(path: string, text: string): Input {
  const trace = readTrace(text);
  return {
    events: trace.events,
    total: trace.events.length,
    name: path,
    parseErrors: trace.errors,
  };
}

function workloadInput(host: Host, config: HostConfig, options: SessionOptions): Input {
  const configured = config.workload.kind === "generator" ? config.workload : undefined;
  const name = options.workload ?? configured?.name;
  if (!name) {
    throw new Error(`${config.source}: no workload to run: give --workload NAME or --trace FILE`);
  }
  const workload = WORKLOADS[name];
  if (!workload) {
    throw new Error(
      `unknown workload ${JSON.stringify(name)}; known: ${Object.keys(WORKLOADS).join(", ")}`,
    );
  }
  const base = configured?.name === name ? configured.params : {};
  const params = checkParams(name, { ...base, ...options.params });
  const seed = options.seed ?? configured?.seed ?? 1;
  const ctx = () => ({
    regions: config.regions,
    devices: host.config.devices,
    rng: new Prng(seed),
    params,
  });
  return {
    events: workload.generate(ctx()),
    total: workload.estimate(ctx()),
    name: `${name} (seed ${seed})`,
    parseErrors: [],
  };
}
