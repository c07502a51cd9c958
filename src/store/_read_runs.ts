/**
 * Reading a state store on hot paths. A 4 KiB conversion touches one page of
 * the region's store and one page of each simulated kernel table; for one page
 * `get` answers with a single lookup, where `runs` builds an iterator and a
 * result object per step. These helpers take that shortcut, and for longer
 * ranges ask `uniformState` where the store has it (a range in one state is
 * the usual case), falling back to `runs`, so callers read the same runs
 * either way.
 *
 * @module
 */

import type { Run, StateStore } from "./state_store.ts";

/** The maximal runs of `store` inside pages `[start, end)` (non-empty), as an array. */
export function readRuns(store: StateStore, start: number, end: number): Run[] {
  if (end - start === 1) return [{ start, end, state: store.get(start) }];
  const state = uniformState(store, start, end);
  if (state >= 0) return [{ start, end, state }];
  return [...store.runs(start, end)];
}

/** How many pages of `[start, end)` (non-empty) have a state with any bit of `mask` set. */
export function countPagesWith(
  store: StateStore,
  start: number,
  end: number,
  mask: number,
): number {
  if (end - start === 1) return (store.get(start) & mask) !== 0 ? 1 : 0;
  const state = uniformState(store, start, end);
  if (state >= 0) return (state & mask) !== 0 ? end - start : 0;
  let pages = 0;
  for (const run of store.runs(start, end)) {
    if ((run.state & mask) !== 0) pages += run.end - run.start;
  }
  return pages;
}

/** `store.uniformState(start, end)`, or -1 (not known) for a store without it. */
function uniformState(store: StateStore, start: number, end: number): number {
  return store.uniformState === undefined ? -1 : store.uniformState(start, end);
}
