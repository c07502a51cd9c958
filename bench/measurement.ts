/**
 * A {@link Measurement} from the milliseconds of each repetition, for rows
 * whose variants run one after another in every repetition (the real-kernel
 * and replay rows).
 *
 * @module
 */

import type { Measurement } from "./report.ts";

/** The median of `values` (the upper one of an even count). */
export function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
}

/**
 * `store`'s best and median time over `ms` (milliseconds, one per repetition,
 * in the order run) for `units` conversions. Every repetition is kept: the
 * variants ran side by side in each, so report.ts pairs them and marks a
 * verdict the machine's noise can flip.
 */
export function timedMeasurement(
  store: string,
  ms: number[],
  units: number,
  note?: string,
): Measurement {
  return {
    store,
    seconds: Math.min(...ms) / 1000,
    medianSeconds: median(ms) / 1000,
    repetitions: ms.length,
    times: ms.map((x) => x / 1000),
    units,
    bytes: 0,
    runs: null,
    ...(note ? { note } : {}),
  };
}
