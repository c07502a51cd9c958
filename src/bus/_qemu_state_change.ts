/**
 * QEMU's state change, notification by notification, for the `qemu-10.1` and
 * `qemu-11.1` policies. The memstate policy plans a change once and runs it
 * as a transaction (_plan.ts, _transaction.ts); QEMU does neither, and the
 * differences are what a user compares:
 *
 * - The changed source's bitmap is classified first
 *   (system/ram-block-attributes.c `ram_block_attributes_state_change`):
 *   already in the target state, nothing; entirely in the opposite state, one
 *   notification round over the whole range; a mixture, one round per page
 *   that changes ("Unexpected mixture: process individual blocks"). Only
 *   guest_memfd's state change splits a mixture ({@link QemuChangeSpec.perPageMixtures});
 *   any other change is one round.
 * - A source that drops all its memory at once (virtio-mem's UNPLUG_ALL)
 *   sends listeners one discard of their whole section instead of the runs
 *   that flip ({@link QemuChangeSpec.discardAll}).
 * - guest_memfd's bitmap is written before the listeners hear of a round
 *   (`bitmap_set` / `clear_bit` precede the notify calls) and stays written
 *   when a populate is refused; virtio-mem writes its bitmap only after every
 *   listener accepted a plug (hw/virtio/virtio-mem.c
 *   `virtio_mem_set_block_state`).
 * - Listeners are called newest-registered first (`QLIST_INSERT_HEAD` at
 *   registration), each on its own section of the round; priorities play no
 *   part.
 * - A refused populate stops the round. What is undone depends on the
 *   version and the source ({@link QemuRollback}). A discard cannot be
 *   refused (`notify_discard` returns void): an exception from one is
 *   recorded and ignored, the way QEMU reports a failed unmap and goes on.
 *
 * @module
 */

import type { Run, StateStore } from "../store/state_store.ts";
import { readRuns } from "../store/_read_runs.ts";
import type { Notification, Section } from "./listener.ts";
import type { PlannedCall, Registration } from "./_plan.ts";
import { isPopulatedState } from "./view.ts";
import { invoke } from "./_transaction.ts";

/**
 * What QEMU undoes when a listener refuses a populate.
 *
 * - `"none"`: nothing (QEMU 10.1 guest_memfd, system/ram-block-attributes.c
 *   `ram_block_attributes_notify_populate` breaks out of its loop).
 * - `"notified"`: the listeners notified before the failing one get a discard
 *   (QEMU 10.1 virtio-mem, hw/virtio/virtio-mem.c `virtio_mem_notify_plug`).
 * - `"notified-and-failing"`: those and the failing one, over every run it
 *   gets in the round, told or not (QEMU 11.1, system/ram-discard-manager.c
 *   `ram_discard_manager_notify_populate`: "including the failing listener
 *   which may have been partially notified", by replaying the whole range to
 *   it; `ram_discard_manager_del_source` replays the source's runs the same way).
 */
export type QemuRollback = "none" | "notified" | "notified-and-failing";

/** How one QEMU state change is to run. */
export interface QemuChangeSpec {
  /** The region's store. */
  store: StateStore;
  /** Listeners in QEMU's list order (newest first). */
  registrations: readonly Registration[];
  /** Bits every page counts as having set (built-in bits nobody claimed). */
  implied: number;
  /** First page and one past the last. */
  startPage: number;
  /** One past the last page. */
  endPage: number;
  /** Bits the change sets. */
  setBits: number;
  /** Bits the change clears. */
  clearBits: number;
  /**
   * Split a mixed range into one round per changing page: only for a change
   * of guest_memfd's SHARED bit (system/ram-block-attributes.c
   * `ram_block_attributes_state_change`).
   */
  perPageMixtures: boolean;
  /**
   * Set for a source dropping all its memory at once (the change only clears
   * bits): a listener whose view needs those bits set gets one discard of its
   * section inside the range, populated or not: every such listener with
   * `"whole-section"` (QEMU 11.1, system/ram-discard-manager.c
   * `ram_discard_manager_notify_discard_all`), one that accepts double
   * discards with `"double-discard"` (QEMU 10.1, hw/virtio/virtio-mem.c
   * `virtio_mem_notify_unplug_all`). The others get the runs that flip.
   */
  discardAll?: "whole-section" | "double-discard";
  /** Write the store before notifying (guest_memfd) or after success (virtio-mem). */
  commitFirst: boolean;
  /** What a refused populate undoes. */
  rollback: QemuRollback;
  /** Builds the section of a call. */
  toSection(call: PlannedCall): Section;
}

/** How a QEMU state change ended. */
export interface QemuChangeOutcome {
  /** Every notification that was accepted, rollbacks included, in order. */
  notifications: Notification[];
  /** The refused populate, if one was; the change stopped there. */
  refusal?: { call: PlannedCall; cause: unknown };
  /** Discards that threw: QEMU cannot refuse a discard, so they were ignored. */
  ignored: { call: PlannedCall; cause: unknown }[];
  /** Whether any round was committed to the store. */
  committed: boolean;
}

/** Runs one state change the way QEMU does; see the module documentation. */
export function qemuStateChange(spec: QemuChangeSpec): QemuChangeOutcome {
  const outcome: QemuChangeOutcome = { notifications: [], ignored: [], committed: false };
  const { store, startPage, endPage, setBits, clearBits } = spec;
  const changed = setBits | clearBits;
  const runs = readRuns(store, startPage, endPage);
  let inTarget = 0, pages = 0;
  for (const run of runs) {
    const n = run.end - run.start;
    pages += n;
    if ((((run.state | setBits) & ~clearBits) & changed) === (run.state & changed)) inTarget += n;
  }
  if (inTarget === pages) return outcome; // "Already shared" / "Already private"
  if (inTarget === 0 || !spec.perPageMixtures) {
    round(spec, runs, startPage, endPage, outcome);
    return outcome;
  }
  for (const run of runs) {
    const after = (run.state | setBits) & ~clearBits;
    if ((after & changed) === (run.state & changed)) continue;
    for (let page = run.start; page < run.end; page++) {
      round(spec, [{ start: page, end: page + 1, state: run.state }], page, page + 1, outcome);
      if (outcome.refusal) return outcome;
    }
  }
  return outcome;
}

/** One notification round over `[start, end)`, whose runs before the change are `runs`. */
function round(
  spec: QemuChangeSpec,
  runs: readonly Run[],
  start: number,
  end: number,
  outcome: QemuChangeOutcome,
): void {
  const { store, setBits, clearBits } = spec;
  if (spec.commitFirst) {
    store.update(start, end, setBits, clearBits);
    outcome.committed = true;
  }
  const notified: PlannedCall[] = [];
  for (const reg of spec.registrations) {
    const calls = wholeSection(spec, reg, start, end) ?? flips(spec, reg, runs);
    for (let i = 0; i < calls.length; i++) {
      const call = calls[i];
      const section = spec.toSection(call);
      try {
        invoke(call, call.kind, section);
      } catch (cause) {
        if (call.kind === "discard") {
          outcome.ignored.push({ call, cause });
          continue;
        }
        undo(spec, notified, calls.slice(i), outcome);
        outcome.refusal = { call, cause };
        return;
      }
      notified.push(call);
      outcome.notifications.push(notification(call, section));
    }
  }
  if (!spec.commitFirst) {
    store.update(start, end, setBits, clearBits);
    outcome.committed = true;
  }
}

/** The calls `reg` gets in one round: where its view flips, clipped to its section. */
function flips(spec: QemuChangeSpec, reg: Registration, runs: readonly Run[]): PlannedCall[] {
  const calls: PlannedCall[] = [];
  for (const run of runs) {
    const start = Math.max(run.start, reg.startPage);
    const end = Math.min(run.end, reg.endPage);
    if (start >= end) continue;
    const state = run.state | spec.implied;
    const before = isPopulatedState(state, reg.view);
    const after = isPopulatedState((state | spec.setBits) & ~spec.clearBits, reg.view);
    if (before === after) continue;
    const kind = after ? "populate" : "discard";
    const last = calls[calls.length - 1];
    if (last !== undefined && last.endPage === start && last.kind === kind) last.endPage = end;
    else calls.push({ registration: reg, kind, startPage: start, endPage: end });
  }
  return calls;
}

/**
 * The one discard `reg` gets in a discard-all round ({@link QemuChangeSpec.discardAll}): its
 * section inside `[start, end)`, marked mixed (it may cover pages that were
 * not populated); none when its section misses the range; undefined when the
 * listener gets the runs that flip instead.
 */
function wholeSection(
  spec: QemuChangeSpec,
  reg: Registration,
  start: number,
  end: number,
): PlannedCall[] | undefined {
  if (spec.discardAll === undefined) return undefined;
  if (spec.discardAll === "double-discard" && reg.listener.acceptsDoubleDiscard !== true) {
    return undefined; // virtio_mem_for_each_plugged_section: one discard per plugged run
  }
  // Only a view that needs the dropped bits set loses pages when they clear.
  if ((reg.view.mask & reg.view.value & spec.clearBits) === 0) return undefined;
  const from = Math.max(start, reg.startPage);
  const to = Math.min(end, reg.endPage);
  if (from >= to) return [];
  return [{ registration: reg, kind: "discard", startPage: from, endPage: to, mixed: true }];
}

/**
 * Sends the discards QEMU sends after a refused populate; see {@link QemuRollback}.
 * `failing` is the refused call and the calls the failing listener was still to get
 * in the round.
 */
function undo(
  spec: QemuChangeSpec,
  notified: readonly PlannedCall[],
  failing: readonly PlannedCall[],
  outcome: QemuChangeOutcome,
): void {
  if (spec.rollback === "none") return;
  const calls = spec.rollback === "notified-and-failing" ? [...notified, ...failing] : notified;
  for (const call of calls) {
    if (call.kind !== "populate") continue;
    const inverse: PlannedCall = { ...call, kind: "discard" };
    const section = spec.toSection(inverse);
    try {
      invoke(call, "discard", section);
      outcome.notifications.push(notification(inverse, section));
    } catch (cause) {
      outcome.ignored.push({ call: inverse, cause });
    }
  }
}

function notification(call: PlannedCall, section: Section): Notification {
  return {
    listener: call.registration.listener.name,
    kind: call.kind,
    offset: section.offset,
    size: section.size,
  };
}
