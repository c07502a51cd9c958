/**
 * Which region a trace event falls in, by QEMU's rules for
 * `kvm_convert_memory`: a conversion to shared that hits no RAM at all is
 * ignored (a TDX guest asks for shared MMIO, e.g. the local APIC page at
 * 0xfee00000), while a conversion to private, a plug or an unplug outside RAM
 * is an error; a range that is only partly inside a region, or that spans two
 * regions, is an error (QEMU finds one memory section and its size does not
 * match); and the range must be aligned to the region's page size.
 *
 * @module
 */

import { hex } from "../../util/_hex.ts";
import { isMultipleOfPowerOfTwo } from "../../util/_bits.ts";
import type { RangeTraceEvent } from "./event.ts";

/** The geometry of a region that events are located in. */
export interface TraceRegion {
  /** Region name, for messages. */
  name: string;
  /** Guest physical address of the first byte. */
  base: number;
  /** Size in bytes. */
  size: number;
  /** Page size in bytes, a power of two: events must be aligned to it. */
  pageSize: number;
}

/** Where an event landed: its region and the byte offset inside it. */
export interface Located<R extends TraceRegion> {
  /** The region containing the whole event. */
  region: R;
  /** Byte offset of the event's `gpa` inside the region. */
  offset: number;
}

/** Why an event cannot be applied. */
export interface LocateError {
  /** The problem, naming the range and the regions involved. */
  error: string;
}

const span = (start: number, end: number) => `[${hex(start)}, ${hex(end)})`;
const describe = (r: TraceRegion) => `${JSON.stringify(r.name)} ${span(r.base, r.base + r.size)}`;

/**
 * The usual case of {@link locate}, with nothing allocated: the region that
 * holds all of `[gpa, gpa + size)`, aligned to its page size, or undefined
 * when there is none (then {@link locate} says why). Every replayed
 * conversion asks (the `replay 1 TiB` row of `deno task bench:report`), and
 * the runner needs only the region: the offset is `gpa - region.base`.
 */
export function regionHolding<R extends TraceRegion>(
  gpa: number,
  size: number,
  regions: readonly R[],
): R | undefined {
  const end = gpa + size;
  for (let i = 0; i < regions.length; i++) {
    const r = regions[i];
    if (r.base <= gpa && end <= r.base + r.size) {
      const aligned = isMultipleOfPowerOfTwo(gpa - r.base, r.pageSize) &&
        isMultipleOfPowerOfTwo(size, r.pageSize);
      return aligned ? r : undefined;
    }
  }
  return undefined;
}

/**
 * Finds the region holding `event`'s range.
 *
 * @param event a conversion, plug or unplug
 * @param regions the guest's regions (any order, not overlapping)
 * @returns the region and offset; `"ignored"` for a conversion to shared that
 *   touches no region; or `{ error }` when the range is out of range, partly
 *   outside its region, spans regions, or is misaligned
 */
export function locate<R extends TraceRegion>(
  event: RangeTraceEvent,
  regions: readonly R[],
): Located<R> | "ignored" | LocateError {
  const start = event.gpa;
  const end = event.gpa + event.size;
  const inside = regionHolding(event.gpa, event.size, regions);
  if (inside !== undefined) return { region: inside, offset: start - inside.base };
  const hits = regions
    .filter((r) => r.base < end && start < r.base + r.size)
    .sort((a, b) => a.base - b.base);
  if (hits.length === 0) {
    if (event.op === "convert" && event.to === "shared") return "ignored";
    return { error: `out of range: ${span(start, end)} is in no region` };
  }
  if (hits.length > 1) {
    return {
      error: `spans ${hits.length === 2 ? "two" : hits.length} regions: ${span(start, end)} ` +
        `covers parts of ${hits.map(describe).join(" and ")}`,
    };
  }
  const region = hits[0];
  if (start < region.base || end > region.base + region.size) {
    return {
      error: `partly out of range: ${span(start, end)} extends beyond region ${describe(region)}`,
    };
  }
  const offset = start - region.base;
  if (offset % region.pageSize !== 0 || event.size % region.pageSize !== 0) {
    const what = offset % region.pageSize !== 0 ? `gpa ${hex(start)}` : `size ${hex(event.size)}`;
    return {
      error: `misaligned: ${what} is not a multiple of the page size ${region.pageSize} ` +
        `of region ${JSON.stringify(region.name)}`,
    };
  }
  return { region, offset };
}
