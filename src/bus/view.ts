/**
 * Views: what "populated" means to a listener, as a predicate over the state
 * word. A page is populated for a view when `(state & mask) === value`.
 *
 * @module
 */

import { PLUGGED, SHARED } from "./state_bits.ts";
import { hex } from "../util/_hex.ts";

/** A predicate over the state word: populated when `(state & mask) === value`. */
export interface View {
  /** The bits the view looks at. */
  readonly mask: number;
  /** The value those bits must have. */
  readonly value: number;
}

/**
 * The DMA view: populated only when every source says populated (shared AND
 * plugged), QEMU 11's multi-source rule. VFIO and iommufd follow it.
 */
export const DMA_VIEW: View = Object.freeze({ mask: SHARED | PLUGGED, value: SHARED | PLUGGED });

/** The KVM view: populated (for KVM, "shared") when the SHARED bit is set. */
export const KVM_VIEW: View = Object.freeze({ mask: SHARED, value: SHARED });

/** The virtio-mem view: populated when plugged (QEMU's plugged bitmap), whatever is shared. */
export const PLUGGED_VIEW: View = Object.freeze({ mask: PLUGGED, value: PLUGGED });

/** True when `state` is populated under `view`. */
export function isPopulatedState(state: number, view: View): boolean {
  return (state & view.mask) === view.value;
}

/** Throws unless `view` is a well-formed view; `name` says whose view it is. */
export function checkView(view: View, name: string): void {
  if (
    typeof view !== "object" || view === null || !Number.isInteger(view.mask) ||
    !Number.isInteger(view.value) || view.mask < 0 || view.value < 0
  ) {
    throw new TypeError(`${name}: must be { mask, value } with non-negative integers`);
  }
  if ((view.value & ~view.mask) !== 0) {
    throw new RangeError(
      `${name}: value ${hex(view.value)} has bits outside mask ${
        hex(view.mask)
      }, so no page could ever match`,
    );
  }
}
