/**
 * Running events against a host: conversions, virtio-mem requests and device
 * hot-plug, from a workload generator or a replayed trace. Every outcome is
 * counted; a bad event is reported with its line number and skipped (or ends
 * the run under `strict`), and never changes state.
 *
 * @module
 */

import { ConversionError, InvalidChangeError, RegionFailedError } from "../bus/errors.ts";
import type { Region } from "../bus/region.ts";
import type { VirtioMemDevice, VirtioMemResponse } from "../plugins/virtio_mem.ts";
import type { Host } from "./build.ts";
import type { TraceProblem } from "./trace/read.ts";
import { locate } from "./trace/locate.ts";
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
  /** Problems, each with the event's line number. */
  errors: TraceProblem[];
  /** Events processed. */
  events: number;
  /** Wall time spent applying events, in milliseconds. */
  elapsedMs: number;
  /** Set when the run stopped early (strict mode, or a region that failed). */
  stoppedAt?: TraceProblem;
}

/** Options for {@link runEvents}. */
export interface RunOptions {
  /** Stop at the first bad event instead of skipping it. */
  strict?: boolean;
  /** Called every `progressEvery` events with the number done. */
  onProgress?: (done: number) => void;
  /** How often to call `onProgress` (default 4096 events). */
  progressEvery?: number;
  /** Told each conversion's time and each event's end (latency and timelines). */
  probe?: RunProbe;
}

/** Applies `events` to `host` in order; see {@link RunResult}. */
export function runEvents(
  host: Host,
  events: Iterable<HostEvent>,
  options: RunOptions = {},
): RunResult {
  const result: RunResult = {
    conversions: { requested: 0, applied: 0, noop: 0, ignored: 0, failed: 0, rejected: 0 },
    requests: { ACK: 0, NACK: 0, BUSY: 0, ERROR: 0 },
    hotplug: 0,
    errors: [],
    events: 0,
    elapsedMs: 0,
  };
  const every = options.progressEvery ?? 4096;
  const started = performance.now();
  const problem = (line: number, message: string): boolean => {
    result.errors.push({ line, message });
    if (options.strict) result.stoppedAt = { line, message };
    return !options.strict;
  };
  const probe = options.probe;
  for (const event of events) {
    result.events++;
    if (!hotplugByTiming(host, result.events, result, problem)) break;
    // probe: time conversions, sample timelines (no allocation per event).
    const t0 = probe !== undefined && event.op === "convert" ? performance.now() : -1;
    const go = apply(host, event, result, problem);
    if (t0 >= 0) probe!.conversionTime(performance.now() - t0);
    if (!go) break;
    probe?.afterEvent(result.events, result.conversions.requested);
    if (options.onProgress && result.events % every === 0) options.onProgress(result.events);
  }
  result.elapsedMs = performance.now() - started;
  return result;
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
      result.requests[device[event.op](event.gpa, event.size / device.blockSize)]++;
      return true;
    }
    case "convert":
      return convert(host, event, result, problem);
  }
}

function convert(
  host: Host,
  event: HostEvent & { op: "convert" },
  result: RunResult,
  problem: Problem,
): boolean {
  const c = result.conversions;
  c.requested++;
  const where = locate(event, host.regions);
  if (where === "ignored") {
    c.ignored++;
    return true;
  }
  if ("error" in where) {
    c.rejected++;
    return problem(event.line, where.error);
  }
  const region: Region = where.region;
  try {
    const r = region.convert(where.offset, event.size, event.to);
    if (r.noop) c.noop++;
    else c.applied++;
    return true;
  } catch (e) {
    if (e instanceof ConversionError) {
      c.failed++;
      return problem(event.line, e.message);
    }
    if (e instanceof InvalidChangeError) {
      c.rejected++;
      return problem(event.line, e.message);
    }
    if (e instanceof RegionFailedError) {
      c.failed++;
      problem(event.line, e.message);
      // A failed region refuses everything after: stop rather than report it N times.
      result.stoppedAt = { line: event.line, message: e.message };
      return false;
    }
    throw e;
  }
}

/** Devices configured with `attachAt` / `detachAt` come and go at those event numbers. */
function hotplugByTiming(host: Host, index: number, result: RunResult, problem: Problem): boolean {
  for (const [name, dev] of host.devices) {
    const op = dev.config.attachAt === index
      ? "attach"
      : dev.config.detachAt === index
      ? "detach"
      : undefined;
    if (!op) continue;
    try {
      host[op](name);
      result.hotplug++;
    } catch (e) {
      if (!problem(index, `${op} ${name} (configured at event ${index}): ${message(e)}`)) {
        return false;
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
