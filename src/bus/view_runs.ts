/**
 * Maximal runs of "populated" / "not populated" under a view: neighbouring
 * store runs whose states differ but agree under the view are merged, so a
 * listener hears about one range, not one per state run.
 *
 * @module
 */

import type { StateStore } from "../store/state_store.ts";
import { isPopulatedState, type View } from "./view.ts";

/** A maximal page range that is uniformly populated or not under a view. */
export interface ViewRun {
  /** First page. */
  start: number;
  /** One past the last page. */
  end: number;
  /** Whether the pages are populated under the view. */
  populated: boolean;
}

/**
 * Yields maximal view runs of `store` inside pages `[start, end)`; `implied`
 * are bits every page counts as having set (built-in bits nobody claimed).
 */
export function* viewRuns(
  store: StateStore,
  start: number,
  end: number,
  view: View,
  implied = 0,
): Generator<ViewRun> {
  let current: ViewRun | undefined;
  for (const run of store.runs(start, end)) {
    const populated = isPopulatedState(run.state | implied, view);
    if (current && current.populated === populated) {
      current.end = run.end;
      continue;
    }
    if (current) yield current;
    current = { start: run.start, end: run.end, populated };
  }
  if (current) yield current;
}
