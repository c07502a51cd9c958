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

/** A named workload. */
export interface Workload {
  /** Its name, as written in configurations and on the command line. */
  name: WorkloadName;
  /** One line for `--help` and reports. */
  description: string;
  /** Parameters it accepts, with defaults and one-line meanings. */
  params: Record<string, { default: number; description: string }>;
  /** How many events `generate` will yield (for the progress bar). */
  estimate(ctx: WorkloadContext): number;
  /** The events, lazily: a million-event workload must not be built as an array. */
  generate(ctx: WorkloadContext): Iterable<HostEvent>;
}
