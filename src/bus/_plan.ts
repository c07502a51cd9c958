/**
 * Planning a change: from the store's runs over the changed range and the
 * registered listeners, compute exactly which sub-ranges flip under each
 * listener's view, in the order they must be notified.
 *
 * This runs on every conversion, so it builds the call list in one pass per
 * direction and allocates nothing but the calls themselves and the list,
 * which starts as an array of one (see {@link planCalls}).
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
  /** One call per change over the span of its flips (see `Listener.coalesce`). */
  coalesce: boolean;
  /**
   * One discard per change over the span of its discarded runs: `coalesce`, or a listener
   * that accepts double discards (`Listener.acceptsDoubleDiscard`), for which a discard over
   * pages it never saw populated is harmless. A change makes a listener discard or populate,
   * never both (a view is a mask and a value, and the change forces the same bits on every
   * page), so no page inside such a span stays populated.
   */
  coalesceDiscards: boolean;
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
  /**
   * For a coalesced call: the page ranges that actually flip, as flat
   * `[start, end, start, end, ...]`, so a rollback undoes exactly those.
   */
  parts?: number[];
  /** True when the call covers pages that do not flip (a whole-section discard at unregister). */
  mixed?: boolean;
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
  implied = 0,
): PlannedCall[] {
  // No list until the first call: it then starts as `[call]`, room for one.
  // `[]` and a push would reserve room for 17 (V8 grows an empty array to
  // 17 slots), and most changes make one call: that was most of the bytes a
  // 4 KiB conversion allocated (V8's --trace-gc, region with one listener).
  let calls: PlannedCall[] | undefined;
  for (let i = registrations.length - 1; i >= 0; i--) {
    calls = addFlips(calls, runs, setBits, clearBits, registrations[i], false, implied);
  }
  for (let i = 0; i < registrations.length; i++) {
    calls = addFlips(calls, runs, setBits, clearBits, registrations[i], true, implied);
  }
  return calls ?? [];
}

/**
 * Appends to `calls` the ranges of `runs` where `reg`'s view flips towards
 * `populated` (populates when true, discards when false), clipped to its
 * section, and returns the list (a new one when `calls` was undefined and a
 * call was made). `implied` holds the built-in bits no source claimed: every
 * page has them set. A coalescing listener gets one call over the span of
 * its flips, with the flips themselves kept for a rollback.
 */
function addFlips(
  calls: PlannedCall[] | undefined,
  runs: readonly Run[],
  setBits: number,
  clearBits: number,
  reg: Registration,
  populated: boolean,
  implied: number,
): PlannedCall[] | undefined {
  const view = reg.view;
  const kind = populated ? "populate" : "discard";
  const firstCall = calls === undefined ? 0 : calls.length;
  for (let i = 0; i < runs.length; i++) {
    const run = runs[i];
    const start = run.start > reg.startPage ? run.start : reg.startPage;
    const end = run.end < reg.endPage ? run.end : reg.endPage;
    if (start >= end) continue;
    const state = run.state | implied;
    const before = isPopulatedState(state, view);
    const after = isPopulatedState((state | setBits) & ~clearBits, view);
    if (before === after || after !== populated) continue;
    // Runs are maximal in the old state, but two of them may flip the same way
    // under this view: tell the listener once.
    const last = calls !== undefined && calls.length > firstCall
      ? calls[calls.length - 1]
      : undefined;
    if (last !== undefined && last.endPage === start) {
      last.endPage = end;
      if (last.parts) last.parts[last.parts.length - 1] = end;
    } else if (last !== undefined && (populated ? reg.coalesce : reg.coalesceDiscards)) {
      // Only a call that covers more than one flip needs its parts remembered.
      if (!last.parts) last.parts = [last.startPage, last.endPage];
      last.parts.push(start, end);
      last.endPage = end;
    } else {
      const call: PlannedCall = { registration: reg, kind, startPage: start, endPage: end };
      if (calls === undefined) calls = [call];
      else calls.push(call);
    }
  }
  return calls;
}
