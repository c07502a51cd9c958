/**
 * Where workload events land: page-aligned byte spans inside one region, and
 * the small pieces every generator shares (event builders, line numbering,
 * uniform choices of sizes, offsets and regions).
 *
 * Every helper keeps two promises the generators rely on: a span is aligned to
 * its region's page size and lies inside that region (so no event ever spans
 * two regions), and every random choice comes from the caller's `Prng`, so the
 * same seed gives the same events.
 *
 * @module
 */

import type { Prng } from "../../util/prng.ts";
import type { RegionConfig } from "../config/schema.ts";
import type { ConvertEvent } from "../trace/event.ts";
import { type HostEvent, WorkloadError } from "./workload.ts";

/** 1 KiB in bytes. */
export const KiB = 1024;
/** 1 MiB in bytes. */
export const MiB = 1024 * KiB;

/** A host event before the generator numbers it: every field but `line`. */
export type Unnumbered<E extends HostEvent = HostEvent> = E extends unknown ? Omit<E, "line">
  : never;

/** `[offset, offset + size)` of `region`, in bytes; both multiples of its page size. */
export interface Span {
  /** The region the span lies in. */
  region: RegionConfig;
  /** Byte offset from the region's base. */
  offset: number;
  /** Bytes (> 0). */
  size: number;
}

/** Numbers `events` from 1, as trace lines are numbered. */
export function* numbered(events: Iterable<Unnumbered>): Generator<HostEvent> {
  let line = 0;
  for (const event of events) {
    // The generators build a fresh object per event, so completing it in place is safe.
    const out = event as HostEvent;
    out.line = ++line;
    yield out;
  }
}

/** The conversion of `span` to `to`. */
export function convert(span: Span, to: "shared" | "private"): Unnumbered<ConvertEvent> {
  return { op: "convert", gpa: span.region.base + span.offset, size: span.size, to };
}

/** `n` rounded up to a multiple of `align`. */
export function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/** `n` rounded down to a multiple of `align`. */
export function alignDown(n: number, align: number): number {
  return Math.floor(n / align) * align;
}

/**
 * `bytes` as a span length of `region`: rounded up to its page size, at least
 * one page, at most `limit` (a multiple of the page size, default the region).
 */
export function pageBytes(region: RegionConfig, bytes: number, limit = region.size): number {
  return Math.min(Math.max(alignUp(bytes, region.pageSize), region.pageSize), limit);
}

/** A uniform size in `[min, max]` bytes, in steps of 4 KiB (`min`, `max` multiples of 4 KiB). */
export function randomBytes(rng: Prng, min: number, max: number): number {
  const unit = 4 * KiB;
  return min + rng.int((max - min) / unit + 1) * unit;
}

/**
 * A uniform offset in `[lo, hi - size]` that is a multiple of `align`. When
 * no such multiple exists it returns `lo`: callers pass a page-aligned `lo`
 * with `lo + size <= hi`, so `lo` is always a valid, page-aligned answer.
 */
export function randomOffset(
  rng: Prng,
  lo: number,
  hi: number,
  size: number,
  align: number,
): number {
  const first = alignUp(lo, align);
  const last = alignDown(hi - size, align);
  if (last < first) return lo;
  return first + rng.int((last - first) / align + 1) * align;
}

/** The largest of `regions` (the first of equals); `regions` must not be empty. */
export function largestRegion(regions: readonly RegionConfig[]): RegionConfig {
  let best = regions[0];
  for (const r of regions) if (r.size > best.size) best = r;
  return best;
}

/** The region with the lowest guest physical base: where firmware lives. */
export function lowestRegion(regions: readonly RegionConfig[]): RegionConfig {
  let best = regions[0];
  for (const r of regions) if (r.base < best.base) best = r;
  return best;
}

/** Throws unless the workload has at least one region to work in. */
export function needRegions(workload: string, regions: readonly RegionConfig[]): void {
  if (regions.length === 0) {
    throw new WorkloadError(`workload "${workload}" needs at least one region, got none`);
  }
}

/**
 * Picks pages uniformly over all of `regions` together, so a region gets
 * events in proportion to its size ("anywhere in guest memory").
 */
export class PagePicker {
  readonly #regions: readonly RegionConfig[];
  readonly #ends: number[] = [];
  readonly #total: number;

  /** Prepares the cumulative sizes of `regions` (not empty). */
  constructor(regions: readonly RegionConfig[]) {
    this.#regions = regions;
    let total = 0;
    for (const r of regions) this.#ends.push(total += r.size);
    this.#total = total;
  }

  /** One random page: its region and its byte offset in it. */
  page(rng: Prng): Span {
    const at = rng.int(this.#total);
    let i = 0;
    while (at >= this.#ends[i]) i++;
    const region = this.#regions[i];
    const start = this.#ends[i] - region.size;
    return { region, offset: alignDown(at - start, region.pageSize), size: region.pageSize };
  }

  /**
   * A random span of `bytes` (rounded to the page size of the region it lands
   * in, at most that region) at a uniformly chosen page-aligned place.
   */
  span(rng: Prng, bytes: number): Span {
    const { region } = this.page(rng);
    const size = pageBytes(region, bytes);
    return {
      region,
      offset: randomOffset(rng, 0, region.size, size, region.pageSize),
      size,
    };
  }
}
