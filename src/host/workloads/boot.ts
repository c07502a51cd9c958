/**
 * `boot`: what a confidential guest converts while it boots. Memory starts
 * private; firmware shares a few pages (its GHCB-like communication pages) and
 * a 2 MiB chunk at low addresses of the lowest region; the kernel then shares
 * its SWIOTLB pool, 2 MiB at a time, somewhere in the largest region; finally
 * drivers share `buffers` small DMA buffers (4 KiB to 64 KiB) scattered over
 * all of memory.
 *
 * The result is the structured case: a few thousand extents at most, however
 * big the guest is, where a bitmap pays one bit per page.
 *
 * @module
 */

import type { Prng } from "../../util/prng.ts";
import type { ConvertEvent } from "../trace/event.ts";
import { poolConversions, poolLimit, poolShape } from "./churn.ts";
import {
  convert,
  KiB,
  largestRegion,
  lowestRegion,
  MiB,
  needRegions,
  numbered,
  pageBytes,
  PagePicker,
  randomBytes,
  randomOffset,
  type Unnumbered,
} from "./layout.ts";
import type { HostEvent, ParamLimit, Workload, WorkloadContext } from "./workload.ts";

/** Single pages the firmware shares below 1 MiB. */
export const FIRMWARE_PAGES = 8;
/** Firmware shares its pages in the first MiB of the lowest region... */
const FIRMWARE_LOW = 1 * MiB;
/** ...and a 2 MiB chunk in the first 16 MiB. */
const FIRMWARE_CHUNK = 2 * MiB;
const FIRMWARE_CHUNK_LIMIT = 16 * MiB;

/** The `boot` workload. */
export const boot: Workload = {
  name: "boot",
  description:
    "guest boot: firmware pages, a SWIOTLB pool shared 2 MiB at a time, scattered DMA buffers",
  params: {
    swiotlbBytes: {
      default: 64 * MiB,
      description: "bytes of the SWIOTLB pool, shared in 2 MiB steps in the largest region",
      unit: "bytes",
    },
    buffers: {
      default: 1000,
      description: "DMA buffers of 4 KiB to 64 KiB shared anywhere in memory",
    },
  },
  limits(ctx: WorkloadContext): ParamLimit[] {
    needRegions("boot", ctx.regions);
    return [poolLimit(largestRegion(ctx.regions))];
  },
  estimate(ctx: WorkloadContext): number {
    needRegions("boot", ctx.regions);
    const pool = poolShape(largestRegion(ctx.regions), ctx.params.swiotlbBytes);
    return FIRMWARE_PAGES + 1 + pool.conversions + ctx.params.buffers;
  },
  generate(ctx: WorkloadContext): Iterable<HostEvent> {
    needRegions("boot", ctx.regions);
    return numbered(bootConversions(ctx));
  },
};

function* bootConversions(ctx: WorkloadContext): Generator<Unnumbered<ConvertEvent>> {
  const rng: Prng = ctx.rng;
  const low = lowestRegion(ctx.regions);
  const page = low.pageSize;
  const below = Math.min(FIRMWARE_LOW, low.size);
  for (let i = 0; i < FIRMWARE_PAGES; i++) {
    yield convert(
      { region: low, offset: randomOffset(rng, 0, below, page, page), size: page },
      "shared",
    );
  }
  const chunk = pageBytes(low, FIRMWARE_CHUNK);
  const chunkAt = randomOffset(rng, 0, Math.min(FIRMWARE_CHUNK_LIMIT, low.size), chunk, chunk);
  yield convert({ region: low, offset: chunkAt, size: chunk }, "shared");

  const big = largestRegion(ctx.regions);
  const pool = poolShape(big, ctx.params.swiotlbBytes);
  yield* poolConversions(big, randomOffset(rng, 0, big.size, pool.size, pool.chunk), pool);

  const picker = new PagePicker(ctx.regions);
  for (let i = 0; i < ctx.params.buffers; i++) {
    yield convert(picker.span(rng, randomBytes(rng, 4 * KiB, 64 * KiB)), "shared");
  }
}
