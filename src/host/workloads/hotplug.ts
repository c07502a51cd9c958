/**
 * `hotplug`: DMA devices leaving and coming back while the guest converts.
 * The conversions are a smaller `swiotlb-churn` (a pool, then DMA buffers
 * shared and freed in a window of the largest region the devices cover).
 * Every `interval` conversions each VFIO device (type1 or iommufd) is
 * detached; `interval / 2` conversions later it is attached again. The
 * conversions in between change what is shared behind the devices' backs, so
 * each attach must replay the current state, not the one it left: the
 * workload exercises listener registration and its replay.
 *
 * Devices begin attached. Devices that the configuration already hot-plugs
 * (`attachAt` / `detachAt`) are left to that schedule.
 *
 * @module
 */

import type { IommufdDeviceConfig, RegionConfig, Type1DeviceConfig } from "../config/schema.ts";
import {
  churnConversions,
  churnEventCount,
  churnLimits,
  type ChurnPlan,
  churnPlan,
} from "./churn.ts";
import { largestRegion, MiB, numbered, type Unnumbered } from "./layout.ts";
import {
  type HostEvent,
  type ParamLimit,
  type Workload,
  type WorkloadContext,
  WorkloadError,
} from "./workload.ts";

type DmaDevice = Type1DeviceConfig | IommufdDeviceConfig;

/** What the hot-plug run works with: the devices it cycles and the churn. */
interface HotplugPlan {
  devices: DmaDevice[];
  churn: ChurnPlan;
  /** Detach points: after every `interval` conversions (0: never). */
  interval: number;
}

/** The `hotplug` workload. */
export const hotplug: Workload = {
  name: "hotplug",
  description: "DMA buffer churn with every VFIO device detached and re-attached periodically",
  params: {
    steps: {
      default: 20_000,
      description: "DMA buffers shared and freed again (two conversions each)",
    },
    interval: {
      default: 2000,
      description: "conversions between detaches; each device is back after half of it (0: never)",
    },
    swiotlbBytes: {
      default: 16 * MiB,
      description: "bytes of the SWIOTLB pool shared first, 2 MiB at a time (0: none)",
      unit: "bytes",
    },
    windowBytes: {
      default: 64 * MiB,
      description: "bytes of the DMA window the buffers come from",
      unit: "bytes",
    },
    inflight: { default: 16, description: "buffers shared at once at most (at least 1)" },
  },
  limits(ctx: WorkloadContext): ParamLimit[] {
    return churnLimits(hotplugPlan(ctx).churn.region, ctx.params.windowBytes);
  },
  estimate(ctx: WorkloadContext): number {
    const plan = hotplugPlan(ctx);
    const conversions = churnEventCount(plan.churn);
    return conversions + 2 * plan.devices.length * detachPoints(conversions, plan.interval);
  },
  generate(ctx: WorkloadContext): Iterable<HostEvent> {
    const plan = hotplugPlan(ctx);
    return numbered(withHotplug(ctx, plan));
  },
};

function hotplugPlan(ctx: WorkloadContext): HotplugPlan {
  const dma = ctx.devices.filter((d): d is DmaDevice => d.type === "type1" || d.type === "iommufd");
  if (dma.length === 0) {
    throw new WorkloadError(
      `the hotplug workload needs a type1 or iommufd device in the configuration's "devices", ` +
        `found none`,
    );
  }
  const devices = dma.filter((d) => d.attachAt === undefined && d.detachAt === undefined);
  if (devices.length === 0) {
    throw new WorkloadError(
      `the hotplug workload needs a type1 or iommufd device without attachAt / detachAt; ` +
        `${dma.map((d) => d.name).join(", ")} already follow their own schedule`,
    );
  }
  const covered = new Set(devices.flatMap((d) => d.regions));
  const regions: RegionConfig[] = ctx.regions.filter((r) => covered.has(r.name));
  if (regions.length === 0) {
    throw new WorkloadError(
      `the hotplug workload: devices ${devices.map((d) => d.name).join(", ")} cover no region ` +
        `of the configuration`,
    );
  }
  const p = ctx.params;
  return {
    devices,
    interval: p.interval,
    churn: churnPlan(largestRegion(regions), {
      swiotlbBytes: p.swiotlbBytes,
      windowBytes: p.windowBytes,
      inflight: p.inflight,
      steps: p.steps,
    }),
  };
}

/** Detach points among `conversions`: every `interval`, but not after the last conversion. */
function detachPoints(conversions: number, interval: number): number {
  return interval > 0 && conversions > 0 ? Math.floor((conversions - 1) / interval) : 0;
}

function* withHotplug(ctx: WorkloadContext, plan: HotplugPlan): Generator<Unnumbered> {
  const conversions = churnEventCount(plan.churn);
  const { interval, devices } = plan;
  const gap = Math.floor(interval / 2);
  const all = (op: "attach" | "detach"): Unnumbered[] =>
    devices.map((d) => ({ op, device: d.name }));
  let done = 0;
  let attachAfter = -1;
  for (const event of churnConversions(ctx.rng, plan.churn)) {
    yield event;
    done++;
    if (done === attachAfter) {
      yield* all("attach");
      attachAfter = -1;
    }
    if (interval > 0 && done % interval === 0 && done < conversions) {
      yield* all("detach");
      // gap < interval, so the devices are back before the next detach point.
      if (gap === 0) yield* all("attach");
      else attachAfter = done + gap;
    }
  }
  if (attachAfter !== -1) yield* all("attach");
}
