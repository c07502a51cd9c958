/**
 * Helpers for plugins' `verify`: compare what the hardware holds with what
 * the region's store says, as sorted lists of byte ranges, and describe every
 * difference.
 *
 * @module
 */

import type { Range } from "../bus/listener.ts";
import type { Region } from "../bus/region.ts";
import type { View } from "../bus/view.ts";
import { hex } from "../util/_hex.ts";

/** A half-open byte range `[start, end)`. */
export type Span = [start: number, end: number];

/** The populated parts of `range` under `view`, as region byte offsets. */
export function populatedSpans(region: Region, range: Range, view: View): Span[] {
  const out: Span[] = [];
  region.replayPopulated(range, view, (s) => {
    out.push([s.offset, s.offset + s.size]);
  });
  return out;
}

/** Sorts and merges touching spans. */
export function mergeSpans(spans: Span[]): Span[] {
  const sorted = [...spans].sort((a, b) => a[0] - b[0]);
  const out: Span[] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/**
 * The parts in `a` and not in `b` (both merged and sorted), as spans: a
 * sweep over both lists, linear in their lengths.
 */
export function subtractSpans(a: Span[], b: Span[]): Span[] {
  const out: Span[] = [];
  let j = 0;
  for (const [s0, e] of a) {
    let s = s0;
    while (j < b.length && b[j][1] <= s) j++;
    let k = j;
    while (s < e && k < b.length && b[k][0] < e) {
      if (b[k][0] > s) out.push([s, b[k][0]]);
      s = Math.max(s, b[k][1]);
      k++;
    }
    if (s < e) out.push([s, e]);
  }
  return out;
}

/**
 * Describes how `actual` (what the hardware maps) differs from `expected` (what
 * the store says must be mapped), at most `limit` lines.
 */
export function describeDifferences(
  who: string,
  expected: Span[],
  actual: Span[],
  base: number,
  limit = 10,
): string[] {
  const want = mergeSpans(expected), have = mergeSpans(actual);
  const lines: string[] = [];
  const gpa = (n: number) => hex(base + n);
  for (const [s, e] of subtractSpans(have, want)) {
    lines.push(
      `${who}: [${gpa(s)}, ${gpa(e)}) is mapped but not populated (not plugged-and-shared)`,
    );
  }
  for (const [s, e] of subtractSpans(want, have)) {
    lines.push(`${who}: [${gpa(s)}, ${gpa(e)}) is populated but not mapped`);
  }
  if (lines.length > limit) {
    return [...lines.slice(0, limit), `${who}: ... and ${lines.length - limit} more differences`];
  }
  return lines;
}
