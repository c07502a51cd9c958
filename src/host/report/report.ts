/**
 * The run report as one JSON-ready object (what `--json` prints); the text
 * report renders the same object.
 *
 * @module
 */

import { PLUGGED, SHARED } from "../../bus/state_bits.ts";
import type { Region } from "../../bus/region.ts";
import type { Host } from "../build.ts";
import type { InvariantReport } from "../invariants.ts";
import type { ConversionCounts, RunResult } from "../event_runner.ts";
import type { TraceProblem } from "../trace/read.ts";
import type { VirtioMemResponse } from "../../plugins/virtio_mem.ts";
import type { Plugin, PluginStats } from "../../plugins/plugin.ts";
import { callSync } from "../../util/_sync.ts";
import type { TraceMemoryMap } from "../trace/memory_map.ts";
import type { TraceStats } from "../trace/stats.ts";
import type { LatencyReport } from "./latency.ts";
import type { TimelineReport } from "./recorder.ts";

/** One region's line in the report. */
export interface RegionReport {
  /** Region name. */
  name: string;
  /** Guest physical base. */
  base: number;
  /** Size in bytes. */
  size: number;
  /** Maximal runs of equal state (extents). */
  extents: number;
  /** Bytes the store holds (its own estimate). */
  storeBytes: number;
  /**
   * Bytes QEMU's own bitmaps take for the region's state sources: guest_memfd's
   * one bit per page (system/ram-block-attributes.c `ram_block_attributes_create`)
   * plus each virtio-mem device's one bit per block
   * (hw/virtio/virtio-mem.c `virtio_mem_device_realize`), in 8-byte words.
   */
  bitmapBytes: number;
  /** Shared bytes. */
  sharedBytes: number;
  /** Private bytes. */
  privateBytes: number;
  /** Plugged bytes. */
  pluggedBytes: number;
}

/** One plugin's line in the report: its stats at the end of the run. */
export type PluginReport = PluginStats & {
  /** For a DMA container's plugin: the devices that share the container, in configuration order. */
  devices?: string[];
};

/** The whole report (`memstate run --json`). */
export interface Report {
  /** Configuration name. */
  name: string;
  /** Configuration file. */
  source: string;
  /** `"sim"` or `"linux"`. */
  backend: string;
  /** Which parts ran on real hardware (linux backend); absent for the simulator. */
  realParts?: Record<string, boolean>;
  /**
   * Backend notices (e.g. what the real kernel could not do), then the
   * configuration's (devices QEMU would put in one container).
   */
  notices: string[];
  /** The store kind. */
  store: string;
  /** The VMM policy the run followed. */
  vmm: string;
  /** The kernel the run modelled. */
  kernel: string;
  /** The IOMMU whose page table the run's DMA containers mapped into. */
  iommu: string;
  /** The input: workload name or trace file. */
  input: string;
  /** Conversion outcomes. */
  conversions: ConversionCounts;
  /** virtio-mem responses. */
  requests: Record<VirtioMemResponse, number>;
  /** Device attach / detach events. */
  hotplug: number;
  /** Events processed. */
  events: number;
  /** Wall time applying events (ms). */
  elapsedMs: number;
  /** Conversion events per second. */
  conversionsPerSecond: number;
  /** Per region. */
  regions: RegionReport[];
  /**
   * Per plugin (virtio-mem devices included). A plugin whose `stats` threw is
   * left out, and its failure is one of the `invariants` violations.
   */
  plugins: PluginReport[];
  /**
   * Problems with line numbers (record numbers for a binary trace, event
   * numbers for a generated workload: see {@link positionUnit}), in input
   * order: unreadable lines, refused and failed events. At most the first
   * 1000; `errorsOmitted` counts the rest.
   */
  errors: TraceProblem[];
  /** Problems beyond those listed in `errors`. */
  errorsOmitted?: number;
  /** Capacity warnings accepted at start. */
  warnings: string[];
  /** Invariants checked after the run. */
  invariants: InvariantReport;
  /** Set when the run stopped early. */
  stoppedAt?: TraceProblem;
  /** True when the run was interrupted (Ctrl-C): the report covers what was applied. */
  interrupted?: boolean;
  /** What was read from the trace, when the input was one. */
  trace?: TraceStats;
  /** The regions the trace's `kvm_set_user_memory` events gave (`"regions": "from-trace"`). */
  regionsFromTrace?: TraceMemoryMap;
  /** Per-conversion latency histogram with p50 / p99 / max (set by the session). */
  latency?: LatencyReport;
  /** Counters sampled during the run (set by the session). */
  timeline?: TimelineReport;
}

/**
 * What a problem's `line` counts in `report`'s input: lines of a trace log or
 * JSON-lines file, records of a binary simpletrace file, or events of a
 * generated workload (which has no lines).
 */
export function positionUnit(report: Pick<Report, "trace">): "line" | "record" | "event" {
  if (report.trace === undefined) return "event";
  return report.trace.unit === "record" ? "record" : "line";
}

/** What {@link buildReport} adds about the input, when it was a trace. */
export interface ReportInput {
  /** What was read from the trace. */
  trace?: TraceStats;
  /** The regions the trace gave. */
  memoryMap?: TraceMemoryMap;
}

/** Builds the report of `run` on `host`. */
export function buildReport(
  host: Host,
  run: RunResult,
  invariants: InvariantReport,
  input: string,
  parseErrors: TraceProblem[] = [],
  extra: ReportInput = {},
): Report {
  const vm = host.vm as { realParts?: Record<string, boolean>; notices?: string[] };
  const seconds = run.elapsedMs / 1000;
  const unreadable: string[] = [];
  const plugins = host.plugins.flatMap((p) => {
    const stats = readStats(p);
    if (typeof stats === "string") unreadable.push(stats);
    if (typeof stats === "string") return [];
    const container = host.containers.get(p.name);
    const devices = container?.plugin === p ? { devices: [...container.devices] } : {};
    return [{ ...pluginReport(stats), ...devices }];
  });
  return {
    name: host.config.name,
    source: host.config.source,
    backend: host.vm.kind,
    ...(vm.realParts ? { realParts: { ...vm.realParts } } : {}),
    notices: [...(vm.notices ?? []), ...host.notices],
    store: host.store,
    vmm: host.vmm,
    kernel: host.kernel,
    iommu: host.config.iommu,
    input,
    conversions: { ...run.conversions },
    requests: { ...run.requests },
    hotplug: run.hotplug,
    events: run.events,
    elapsedMs: round(run.elapsedMs),
    conversionsPerSecond: seconds > 0 ? Math.round(run.conversions.requested / seconds) : 0,
    regions: host.regions.map((region) => regionReport(region, host)),
    plugins: [...plugins, ...[...host.virtioMem.values()].map((d) => pluginReport(d.stats()))],
    errors: [...parseErrors, ...run.errors],
    ...(run.errorsOmitted ? { errorsOmitted: run.errorsOmitted } : {}),
    warnings: [...host.warnings],
    invariants: unreadable.length === 0 ? invariants : {
      checked: invariants.checked,
      violations: [...invariants.violations, ...unreadable],
    },
    ...(run.stoppedAt ? { stoppedAt: run.stoppedAt } : {}),
    ...(run.interrupted ? { interrupted: true } : {}),
    ...(extra.trace ? { trace: { ...extra.trace } } : {}),
    ...(extra.memoryMap ? { regionsFromTrace: extra.memoryMap } : {}),
  };
}

function regionReport(region: Region, host: Host): RegionReport {
  let shared = 0, plugged = 0;
  for (const run of region.store.runs()) {
    const bytes = (run.end - run.start) * region.pageSize;
    const state = run.state | region.impliedBits;
    if (state & SHARED) shared += bytes;
    if (state & PLUGGED) plugged += bytes;
  }
  return {
    name: region.name,
    base: region.base,
    size: region.size,
    extents: region.store.runCount,
    storeBytes: region.store.byteSize(),
    bitmapBytes: qemuBitmapBytes(region, [...host.virtioMem.values()]),
    sharedBytes: shared,
    privateBytes: region.size - shared,
    pluggedBytes: plugged,
  };
}

/**
 * QEMU's bitmaps for `region`: guest_memfd's shared bitmap, one bit per page,
 * and one bit per block for each virtio-mem device in it; `bitmap_new` rounds
 * each to whole `unsigned long` words (8 bytes).
 */
export function qemuBitmapBytes(
  region: Region,
  devices: readonly {
    readonly addr: number;
    readonly regionSize: number;
    readonly blockSize: number;
  }[],
): number {
  const words = (bits: number) => Math.ceil(bits / 64) * 8;
  let bytes = words(region.pages);
  for (const d of devices) {
    if (d.addr >= region.base && d.addr < region.base + region.size) {
      bytes += words(d.regionSize / d.blockSize);
    }
  }
  return bytes;
}

/**
 * `plugin.stats()`, or the violation that replaces them when they cannot be
 * read (they threw, or came as a promise or no object): the plugin is then
 * left out of the report's plugins, and the run counts as having a problem
 * (exit status 1), its report kept. A plugin of the user's own is the user's
 * code: its failure is named, not reported as a memstate bug.
 */
function readStats(plugin: Plugin): PluginStats | string {
  const where = `plugin ${plugin.name}: stats`;
  const called = callSync(() => plugin.stats(), "stats");
  if ("problem" in called) {
    return `${where} ${called.problem}; its statistics are left out of the report`;
  }
  const stats = called.value;
  if (typeof stats !== "object" || stats === null || Array.isArray(stats)) {
    return `${where} returned ${
      stats === null ? "null" : Array.isArray(stats) ? "a list" : typeof stats
    }, not an object of statistics`;
  }
  return stats as PluginStats;
}

function pluginReport(s: PluginStats): PluginReport {
  return { ...s, calls: { ...s.calls } };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
