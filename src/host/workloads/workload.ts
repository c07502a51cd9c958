/**
 * The workload contract: a named, seeded generator of host events (guest
 * conversions, virtio-mem requests, device hot-plug) over a host
 * configuration's regions and devices. The runner applies the events exactly
 * as it applies a replayed trace.
 *
 * @module
 */

import type { Prng } from "../../util/prng.ts";
import type { DeviceConfig, RegionConfig, WorkloadName } from "../config/schema.ts";
import type { TraceEvent } from "../trace/event.ts";

/** A device is attached (registered, replaying what is populated) or detached mid-run. */
export interface DeviceEvent {
  /** What happens to the device. */
  op: "attach" | "detach";
  /** The device's name in the configuration. */
  device: string;
  /** The event's number in the stream (1-based), reported like a trace line. */
  line: number;
}

/** Everything the runner applies: trace events plus device hot-plug. */
export type HostEvent = TraceEvent | DeviceEvent;

/** What a generator sees. */
export interface WorkloadContext {
  /** The configuration's regions (sizes in bytes, guest physical bases). */
  regions: readonly RegionConfig[];
  /** The configuration's devices. */
  devices: readonly DeviceConfig[];
  /** The seeded generator: all randomness comes from here. */
  rng: Prng;
  /** Parameters from the configuration, already validated by `checkParams`. */
  params: Record<string, number>;
}

/**
 * A configuration a workload cannot run on (no region, no virtio-mem device
 * for `balloon`, ...): a user error, one line naming what is missing.
 */
export class WorkloadError extends Error {
  /** Builds the error; `message` names the workload and what it needs. */
  constructor(message: string) {
    super(message);
    this.name = "WorkloadError";
  }
}

/**
 * The values a parameter may take on a host, and why. A default outside them
 * is fitted to the host; a value given explicitly is refused.
 */
export interface ParamLimit {
  /** The parameter. */
  param: string;
  /** Its largest allowed value. */
  max: number;
  /** Why, naming the part of the host that bounds it. */
  why: string;
  /** Its smallest allowed value (default 0), and why. */
  min?: { value: number; why: string };
  /** What it must be a multiple of (default 1), and why. */
  multipleOf?: { value: number; why: string };
}

/** A workload parameter. */
export interface WorkloadParam {
  /** Its default. */
  default: number;
  /** One line for `--help` and messages. */
  description: string;
  /** `"bytes"`: a byte size, written as a number or a size string like `"64MiB"`. */
  unit?: "bytes";
}

/** A named workload. */
export interface Workload {
  /** Its name, as written in configurations and on the command line. */
  name: WorkloadName;
  /** One line for `--help` and reports. */
  description: string;
  /** Parameters it accepts, with defaults and one-line meanings. */
  params: Record<string, WorkloadParam>;
  /**
   * The largest values the host allows for some parameters (a SWIOTLB pool
   * no larger than the region it goes in); checked before the run.
   */
  limits?(ctx: WorkloadContext): ParamLimit[];
  /** How many events `generate` will yield (for the progress bar). */
  estimate(ctx: WorkloadContext): number;
  /** The events, lazily: a million-event workload must not be built as an array. */
  generate(ctx: WorkloadContext): Iterable<HostEvent>;
}
