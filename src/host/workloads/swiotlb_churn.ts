/**
 * `swiotlb-churn`: the steady state of a guest doing I/O. It shares its
 * SWIOTLB pool (as at boot), then allocates and frees `steps` DMA buffers of
 * 4 KiB to 256 KiB inside a DMA window of the largest region: each is
 * converted to shared when allocated and back to private when freed, with at
 * most `inflight` shared at once, so the extent count stays bounded while the
 * conversion count grows. See `churn.ts` for the shape of the churn.
 *
 * @module
 */

import {
  churnConversions,
  churnEventCount,
  churnLimits,
  type ChurnPlan,
  churnPlan,
} from "./churn.ts";
import { largestRegion, MiB, needRegions, numbered } from "./layout.ts";
import type { HostEvent, ParamLimit, Workload, WorkloadContext } from "./workload.ts";

function plan(ctx: WorkloadContext): ChurnPlan {
  needRegions("swiotlb-churn", ctx.regions);
  const p = ctx.params;
  return churnPlan(largestRegion(ctx.regions), {
    swiotlbBytes: p.swiotlbBytes,
    windowBytes: p.windowBytes,
    inflight: p.inflight,
    steps: p.steps,
  });
}

/** The `swiotlb-churn` workload. */
export const swiotlbChurn: Workload = {
  name: "swiotlb-churn",
  description:
    "steady I/O: a SWIOTLB pool, then DMA buffers shared and freed again in a DMA window",
  params: {
    steps: {
      default: 100_000,
      description: "DMA buffers allocated (shared) and later freed (private): two events each",
    },
    swiotlbBytes: {
      default: 64 * MiB,
      description: "bytes of the SWIOTLB pool shared first, 2 MiB at a time (0: none)",
      unit: "bytes",
    },
    windowBytes: {
      default: 256 * MiB,
      description: "bytes of the DMA window the buffers come from (next to the pool)",
      unit: "bytes",
    },
    inflight: {
      default: 64,
      description: "buffers shared at once at most (at least 1, at most one per 256 KiB of window)",
    },
  },
  limits(ctx: WorkloadContext): ParamLimit[] {
    needRegions("swiotlb-churn", ctx.regions);
    return churnLimits(largestRegion(ctx.regions), ctx.params.windowBytes);
  },
  estimate(ctx: WorkloadContext): number {
    return churnEventCount(plan(ctx));
  },
  generate(ctx: WorkloadContext): Iterable<HostEvent> {
    return numbered(churnConversions(ctx.rng, plan(ctx)));
  },
};
