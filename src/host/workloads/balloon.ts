/**
 * `balloon`: virtio-mem memory coming and going under a confidential guest.
 * Every cycle, for every virtio-mem device of the configuration, the guest
 *
 * 1. plugs blocks until the device's requested size is plugged (`plugs`
 *    requests, each a run of unplugged blocks in the usable region);
 * 2. converts parts of the plugged memory to shared, then some of those parts
 *    back to private (`converts` conversions, half each way);
 * 3. unplugs part of what is plugged (`unplugs` requests, about half of it in
 *    all), so the next cycle has something to plug again;
 *
 * and every `unplugAllEvery` cycles it ends with an UNPLUG_ALL of the device.
 *
 * The generator keeps its own model of which blocks are plugged so that every
 * request follows virtio-mem's rules (block aligned, inside the usable region
 * of `requestedSize + 256 MiB`, never more than `requestedSize` plugged, only
 * unplugged blocks plugged and only plugged ones unplugged): on a host whose
 * listeners accept everything, every request is ACKed. When a phase has
 * nothing to do (everything already plugged, nothing plugged to convert or
 * unplug) its slot becomes a harmless single-page conversion to private inside
 * the device, so the event count stays exact.
 *
 * @module
 */

import type { Prng } from "../../util/prng.ts";
import { VIRTIO_MEM_USABLE_EXTENT } from "../../plugins/virtio_mem.ts";
import { RangeTreeStore } from "../../store/range_tree_store.ts";
import type { Run } from "../../store/state_store.ts";
import type { RegionConfig, VirtioMemDeviceConfig } from "../config/schema.ts";
import {
  alignUp,
  convert,
  KiB,
  MiB,
  numbered,
  pageBytes,
  randomBytes,
  randomOffset,
  type Span,
  type Unnumbered,
} from "./layout.ts";
import { type HostEvent, type Workload, type WorkloadContext, WorkloadError } from "./workload.ts";

/** Largest part of plugged memory converted in one go. */
const CONVERT_MAX = 4 * MiB;

/** The generator's view of one virtio-mem device. */
interface Balloon {
  device: VirtioMemDeviceConfig;
  region: RegionConfig;
  /** Blocks of the usable region, which the model covers. */
  blocks: number;
  /** Requested size in blocks. */
  requested: number;
  /** Blocks plugged now. */
  plugged: number;
  /** State 1 = plugged, per block of the usable region (absent when it is empty). */
  model?: RangeTreeStore;
}

/** The `balloon` workload. */
export const balloon: Workload = {
  name: "balloon",
  description:
    "virtio-mem cycles: plug up to the requested size, convert some of it, unplug part of it",
  params: {
    cycles: { default: 20, description: "plug / convert / unplug cycles per virtio-mem device" },
    plugs: {
      default: 8,
      description: "PLUG requests per cycle (together: up to the requested size)",
    },
    converts: {
      default: 16,
      description: "conversions of plugged memory per cycle, half to shared and half back",
    },
    unplugs: {
      default: 4,
      description: "UNPLUG requests per cycle (together: about half the plugged memory)",
    },
    unplugAllEvery: {
      default: 5,
      description: "an UNPLUG_ALL ends every this many cycles (0: never)",
    },
  },
  estimate(ctx: WorkloadContext): number {
    const devices = balloonDevices(ctx).length;
    const p = ctx.params;
    const perCycle = p.plugs + p.converts + p.unplugs;
    const unplugAlls = p.unplugAllEvery > 0 ? Math.floor(p.cycles / p.unplugAllEvery) : 0;
    return devices * (p.cycles * perCycle + unplugAlls);
  },
  generate(ctx: WorkloadContext): Iterable<HostEvent> {
    const devices = balloonDevices(ctx);
    return numbered(cycles(ctx, devices));
  },
};

/** The virtio-mem devices with their regions; throws when there is none. */
function balloonDevices(ctx: WorkloadContext): [VirtioMemDeviceConfig, RegionConfig][] {
  const out: [VirtioMemDeviceConfig, RegionConfig][] = [];
  for (const device of ctx.devices) {
    if (device.type !== "virtio-mem") continue;
    const region = ctx.regions.find((r) => r.name === device.region);
    if (region === undefined) {
      throw new WorkloadError(
        `the balloon workload: virtio-mem device "${device.name}" names region ` +
          `"${device.region}", which is not in the configuration`,
      );
    }
    out.push([device, region]);
  }
  if (out.length === 0) {
    throw new WorkloadError(
      `the balloon workload needs a virtio-mem device in the configuration's "devices", found none`,
    );
  }
  return out;
}

/** The usable region's size in bytes, as virtio-mem computes it. */
function usableBytes(d: VirtioMemDeviceConfig): number {
  if (d.requestedSize === 0) return 0;
  return alignUp(Math.min(d.size, d.requestedSize + VIRTIO_MEM_USABLE_EXTENT), d.blockSize);
}

function* cycles(
  ctx: WorkloadContext,
  devices: [VirtioMemDeviceConfig, RegionConfig][],
): Generator<Unnumbered> {
  const { rng, params: p } = ctx;
  const balloons = devices.map(([device, region]): Balloon => {
    const blocks = usableBytes(device) / device.blockSize;
    return {
      device,
      region,
      blocks,
      requested: device.requestedSize / device.blockSize,
      plugged: 0,
      model: blocks > 0 ? new RangeTreeStore(blocks, { bits: 1 }) : undefined,
    };
  });
  for (let c = 1; c <= p.cycles; c++) {
    for (const b of balloons) {
      yield* plugPhase(rng, b, p.plugs);
      yield* convertPhase(rng, b, p.converts);
      yield* unplugPhase(rng, b, p.unplugs);
      if (p.unplugAllEvery > 0 && c % p.unplugAllEvery === 0) {
        b.model?.set(0, b.blocks, 0);
        b.plugged = 0;
        yield { op: "unplug-all", device: b.device.name };
      }
    }
  }
}

function* plugPhase(rng: Prng, b: Balloon, plugs: number): Generator<Unnumbered> {
  for (let k = 0; k < plugs; k++) {
    const want = b.requested - b.plugged;
    // Unplugged blocks in the usable region >= want, as usable >= requested.
    const run = want > 0 ? pickRun(rng, b, 0) : undefined;
    if (run === undefined) {
      yield filler(rng, b);
      continue;
    }
    // Spread what is missing over the remaining requests.
    const n = Math.min(Math.ceil(want / (plugs - k)), run.end - run.start);
    yield blockRequest(rng, b, run, n, "plug");
  }
}

function* convertPhase(rng: Prng, b: Balloon, converts: number): Generator<Unnumbered> {
  const page = b.region.pageSize;
  const shared: Span[] = [];
  for (let k = 0; k < Math.ceil(converts / 2); k++) {
    const run = pickRun(rng, b, 1);
    if (run === undefined) {
      yield filler(rng, b);
      continue;
    }
    const lo = b.device.offset + run.start * b.device.blockSize;
    const hi = b.device.offset + run.end * b.device.blockSize;
    const size = pageBytes(b.region, randomBytes(rng, 4 * KiB, CONVERT_MAX), hi - lo);
    const span = { region: b.region, offset: randomOffset(rng, lo, hi, size, page), size };
    shared.push(span);
    yield convert(span, "shared");
  }
  for (let k = 0; k < Math.floor(converts / 2); k++) {
    if (shared.length === 0) {
      yield filler(rng, b);
      continue;
    }
    const from = shared[rng.int(shared.length)];
    const size = pageBytes(b.region, randomBytes(rng, 4 * KiB, from.size), from.size);
    const offset = randomOffset(rng, from.offset, from.offset + from.size, size, page);
    yield convert({ region: b.region, offset, size }, "private");
  }
}

function* unplugPhase(rng: Prng, b: Balloon, unplugs: number): Generator<Unnumbered> {
  // About half of what is plugged leaves in a cycle.
  const cap = Math.max(1, Math.ceil(b.plugged / (2 * unplugs)));
  for (let k = 0; k < unplugs; k++) {
    const run = pickRun(rng, b, 1);
    if (run === undefined) {
      yield filler(rng, b);
      continue;
    }
    const n = 1 + rng.int(Math.min(run.end - run.start, cap));
    yield blockRequest(rng, b, run, n, "unplug");
  }
}

/** A random run of blocks in `state` (1 plugged, 0 unplugged), or none. */
function pickRun(rng: Prng, b: Balloon, state: number): Run | undefined {
  if (b.model === undefined) return undefined;
  const runs: Run[] = [];
  for (const run of b.model.runs()) if (run.state === state) runs.push(run);
  return runs.length === 0 ? undefined : runs[rng.int(runs.length)];
}

/** PLUG or UNPLUG of `n` blocks somewhere in `run`, recorded in the model. */
function blockRequest(
  rng: Prng,
  b: Balloon,
  run: Run,
  n: number,
  op: "plug" | "unplug",
): Unnumbered {
  const start = run.start + rng.int(run.end - run.start - n + 1);
  b.model!.set(start, start + n, op === "plug" ? 1 : 0);
  b.plugged += op === "plug" ? n : -n;
  const block = b.device.blockSize;
  return { op, gpa: b.region.base + b.device.offset + start * block, size: n * block };
}

/** A single-page conversion to private inside the device: keeps the count when a phase is idle. */
function filler(rng: Prng, b: Balloon): Unnumbered {
  const page = b.region.pageSize;
  const { offset, size } = b.device;
  return convert(
    { region: b.region, offset: randomOffset(rng, offset, offset + size, page, page), size: page },
    "private",
  );
}
