/**
 * Planning a change: from the store's runs over the changed range and the
 * registered listeners, compute exactly which sub-ranges flip under each
 * listener's view, in the order they must be notified.
 *
 * @module
 */

import type { Run } from "../store/state_store.ts";
import type { Listener } from "./listener.ts";
import { isPopulatedState, type View } from "./view.ts";

/** A listener as the region keeps it: defaults resolved, section in pages. */
export interface Registration {
  /** The listener itself. */
  listener: Listener;
  /** Resolved priority. */
  priority: number;
  /** Resolved view. */
  view: View;
  /** Resolved granularity in bytes. */
  granularity: number;
  /** First page of the registered section. */
  startPage: number;
  /** One past the last page of the registered section. */
  endPage: number;
}

/** One call the change will make. */
export interface PlannedCall {
  /** Who is called. */
  registration: Registration;
  /** Which call. */
  kind: "populate" | "discard";
  /** First page. */
  startPage: number;
  /** One past the last page. */
  endPage: number;
}

/**
 * The calls a change makes: discards in descending priority, then populates in
 * ascending priority. `registrations` must be sorted by ascending priority.
 */
export function planCalls(
  runs: readonly Run[],
  setBits: number,
  clearBits: number,
  registrations: readonly Registration[],
): PlannedCall[] {
  const discards: PlannedCall[][] = [];
  const populates: PlannedCall[][] = [];
  for (const reg of registrations) {
    const mine = flipsFor(runs, setBits, clearBits, reg);
    discards.push(mine.filter((c) => c.kind === "discard"));
    populates.push(mine.filter((c) => c.kind === "populate"));
  }
  return [...discards.reverse().flat(), ...populates.flat()];
}

function flipsFor(
  runs: readonly Run[],
  setBits: number,
  clearBits: number,
  reg: Registration,
): PlannedCall[] {
  const calls: PlannedCall[] = [];
  for (const run of runs) {
    const start = Math.max(run.start, reg.startPage);
    const end = Math.min(run.end, reg.endPage);
    if (start >= end) continue;
    const before = isPopulatedState(run.state, reg.view);
    const after = isPopulatedState((run.state | setBits) & ~clearBits, reg.view);
    if (before === after) continue;
    const kind = after ? "populate" : "discard";
    const last = calls[calls.length - 1];
    // Runs are maximal in the old state, but two of them may flip the same way
    // under this view: tell the listener once.
    if (last && last.kind === kind && last.endPage === start) last.endPage = end;
    else calls.push({ registration: reg, kind, startPage: start, endPage: end });
  }
  return calls;
}
