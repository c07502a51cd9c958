/**
 * The SWIOTLB pool and the DMA-buffer churn that `boot`, `swiotlb-churn` and
 * `hotplug` share.
 *
 * A confidential guest bounces device I/O through a SWIOTLB pool that it
 * converts to shared once, at boot, 2 MiB at a time. Drivers that allocate
 * coherent DMA buffers convert those to shared when they allocate them and
 * back to private when they free them; that is the churn. Buffers live in a
 * *DMA window* (the part of memory the drivers' allocations come from), each
 * in its own 256 KiB slot so in-flight buffers never overlap, and at most
 * `inflight` are shared at once: the number of shared extents stays bounded
 * however long the churn runs, which is what makes it a steady-state workload
 * rather than a fragmentation one.
 *
 * Sizes are decided from the configuration alone (never from the generator),
 * so the event count is known before the first event: `estimate` is exact.
 *
 * @module
 */

import type { Prng } from "../../util/prng.ts";
import type { RegionConfig } from "../config/schema.ts";
import type { ConvertEvent } from "../trace/event.ts";
import type { ParamLimit } from "./workload.ts";
import {
  alignUp,
  convert,
  KiB,
  MiB,
  pageBytes,
  randomBytes,
  randomOffset,
  type Span,
  type Unnumbered,
} from "./layout.ts";

/** Linux converts the SWIOTLB pool in 2 MiB steps (one huge page at a time). */
export const POOL_CHUNK = 2 * MiB;
/** Smallest DMA buffer. */
export const BUFFER_MIN = 4 * KiB;
/** Largest churned DMA buffer, and the size of a window slot. */
export const BUFFER_MAX = 256 * KiB;

/** `swiotlbBytes` fits the region the pool goes in. */
export function poolLimit(region: RegionConfig): ParamLimit {
  return {
    param: "swiotlbBytes",
    max: region.size,
    why: `the SWIOTLB pool goes in region "${region.name}" (the largest), of ${region.size} bytes`,
    multipleOf: pagesOf(region, "the SWIOTLB pool is shared in whole pages"),
  };
}

/** A multiple of `region`'s page size, with `why` (a default is rounded up to one instead). */
function pagesOf(region: RegionConfig, why: string): { value: number; why: string } {
  return { value: region.pageSize, why: `${why} of region "${region.name}"` };
}

/** The churn's parameters against the region it runs in: pool, window and buffers in flight. */
export function churnLimits(region: RegionConfig, windowBytes: number): ParamLimit[] {
  const window = pageBytes(region, windowBytes);
  const slots = Math.floor(window / Math.min(alignUp(BUFFER_MAX, region.pageSize), window));
  return [
    poolLimit(region),
    {
      param: "windowBytes",
      max: region.size,
      why: `the DMA window goes in region "${region.name}" (the largest), of ${region.size} bytes`,
      min: { value: region.pageSize, why: "the DMA window holds at least one page" },
      multipleOf: pagesOf(region, "the DMA window is made of whole pages"),
    },
    {
      param: "inflight",
      max: slots,
      why: `each buffer in flight takes one ${BUFFER_MAX / KiB} KiB slot of the ${window}-byte ` +
        `window (windowBytes)`,
      min: { value: 1, why: "a buffer is shared before it can be freed" },
    },
  ];
}

/** The SWIOTLB pool of one region: how big it is and how it is converted. */
export interface PoolShape {
  /** Pool bytes: the requested size rounded to pages, at most the region; 0 for none. */
  size: number;
  /** Bytes per conversion: 2 MiB, or one page when pages are larger. */
  chunk: number;
  /** Conversions the pool takes. */
  conversions: number;
}

/** The pool `bytes` asks for in `region` (deterministic: no randomness). */
export function poolShape(region: RegionConfig, bytes: number): PoolShape {
  const size = bytes === 0 ? 0 : pageBytes(region, bytes);
  const chunk = alignUp(POOL_CHUNK, region.pageSize);
  return { size, chunk, conversions: Math.ceil(size / chunk) };
}

/** The to-shared conversions of a pool placed at `offset` of `region`. */
export function* poolConversions(
  region: RegionConfig,
  offset: number,
  pool: PoolShape,
): Generator<Unnumbered<ConvertEvent>> {
  for (let done = 0; done < pool.size; done += pool.chunk) {
    const size = Math.min(pool.chunk, pool.size - done);
    yield convert({ region, offset: offset + done, size }, "shared");
  }
}

/** What a churn will do, fixed before any random choice. */
export interface ChurnPlan {
  /** The region the pool and the window are in. */
  region: RegionConfig;
  /** The SWIOTLB pool, converted to shared first. */
  pool: PoolShape;
  /** Bytes of the DMA window (at least one page, at most the region). */
  window: number;
  /** Bytes of one slot of the window. */
  slot: number;
  /** Slots in the window. */
  slots: number;
  /** Buffers shared at once (1 to `slots`). */
  inflight: number;
  /** Buffers allocated (each converted to shared, later back to private). */
  steps: number;
}

/** Parameters of a churn. */
export interface ChurnParams {
  /** Pool bytes (0: no pool). */
  swiotlbBytes: number;
  /** Window bytes. */
  windowBytes: number;
  /** Buffers in flight at most (0 is taken as 1: each buffer is freed before the next). */
  inflight: number;
  /** Buffers to allocate and free. */
  steps: number;
}

/** Plans a churn in `region`. */
export function churnPlan(region: RegionConfig, params: ChurnParams): ChurnPlan {
  const window = pageBytes(region, params.windowBytes);
  const slot = Math.min(alignUp(BUFFER_MAX, region.pageSize), window);
  const slots = Math.floor(window / slot);
  return {
    region,
    pool: poolShape(region, params.swiotlbBytes),
    window,
    slot,
    slots,
    inflight: Math.min(Math.max(params.inflight, 1), slots),
    steps: params.steps,
  };
}

/** Events a churn yields: the pool's conversions and two per buffer. */
export function churnEventCount(plan: ChurnPlan): number {
  return plan.pool.conversions + 2 * plan.steps;
}

/**
 * The churn's conversions: the pool to shared, then `steps` buffers each
 * converted to shared and, once `inflight` buffers are out, a random one of
 * them back to private; the last ones are freed at the end, so every buffer
 * ends private again.
 */
export function* churnConversions(rng: Prng, plan: ChurnPlan): Generator<Unnumbered<ConvertEvent>> {
  const { region, pool, window, slot, slots, inflight } = plan;
  const page = region.pageSize;
  // Pool then window side by side when both fit, else each on its own (they may overlap).
  let poolAt: number, windowAt: number;
  if (pool.size + window <= region.size) {
    poolAt = randomOffset(rng, 0, region.size, pool.size + window, pool.chunk);
    windowAt = poolAt + pool.size;
  } else {
    poolAt = randomOffset(rng, 0, region.size, pool.size, pool.chunk);
    windowAt = randomOffset(rng, 0, region.size, window, page);
  }
  yield* poolConversions(region, poolAt, pool);

  const out: (Span & { slot: number })[] = [];
  const busy = new Set<number>();
  for (let step = 0; step < plan.steps; step++) {
    if (out.length === inflight) {
      // Completions come in any order: free a random in-flight buffer.
      const k = rng.int(out.length);
      const done = out[k];
      out[k] = out[out.length - 1];
      out.pop();
      busy.delete(done.slot);
      yield convert(done, "private");
    }
    // Fewer than `inflight <= slots` slots are busy, so probing finds a free one.
    let s = rng.int(slots);
    while (busy.has(s)) s = (s + 1) % slots;
    const size = pageBytes(region, randomBytes(rng, BUFFER_MIN, BUFFER_MAX), slot);
    const lo = windowAt + s * slot;
    const buffer = {
      region,
      offset: randomOffset(rng, lo, lo + slot, size, page),
      size,
      slot: s,
    };
    busy.add(s);
    out.push(buffer);
    yield convert(buffer, "shared");
  }
  for (const buffer of out) yield convert(buffer, "private");
}
