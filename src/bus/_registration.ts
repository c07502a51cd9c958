/**
 * Registering and unregistering a listener: the populates replayed to a new
 * listener, what a refused replay leaves behind under each policy, and the
 * discards an unregistering listener gets.
 *
 * @module
 */

import type { StateStore } from "../store/state_store.ts";
import type { Section } from "./listener.ts";
import type { PlannedCall, Registration } from "./_plan.ts";
import { invoke, rollBack, undoneItself } from "./_transaction.ts";
import { viewRuns } from "./view_runs.ts";

/** A refused replay: the call refused, what the listener threw, the populates accepted. */
export interface FailedReplay {
  /** The refused populate. */
  call: PlannedCall;
  /** What the listener threw. */
  cause: unknown;
  /** Notifications sent, rollbacks included. */
  notified: number;
  /**
   * Set when the replay's rollback failed, or the refusing listener could not
   * undo its own part: the listener may hold what the store does not.
   */
  rollbackFailure?: { call: PlannedCall; cause: unknown };
}

/**
 * Replays `calls` (populates of one new listener) in order. When one is
 * refused: `"rollback"` discards what was replayed (memstate); the other
 * modes leave it (QEMU 11.1 keeps the listener with it, system/ram-discard-manager.c
 * `ram_discard_manager_register_listener`; QEMU 10.1 exits,
 * system/ram-block-attributes.c `ram_block_attributes_rdm_register_listener`).
 * Returns the failure, or undefined when every populate was accepted.
 */
export function replayRegistration(
  mode: "rollback" | "stay-registered" | "exit",
  calls: readonly PlannedCall[],
  toSection: (call: PlannedCall) => Section,
): FailedReplay | undefined {
  for (let i = 0; i < calls.length; i++) {
    const call = calls[i];
    try {
      invoke(call, "populate", toSection(call));
    } catch (cause) {
      if (mode !== "rollback") return { call, cause, notified: i };
      const done = calls.slice(0, i);
      const rollbackFailure = rollBack(done, toSection) ?? undoneItself(call, cause);
      if (rollbackFailure) return { call, cause, notified: 2 * i, rollbackFailure };
      return { call, cause, notified: 2 * i };
    }
  }
  return undefined;
}

/**
 * The populates an unregistering listener must have undone (the caller
 * sends their inverse): one over its whole section when `whole`, else one
 * per populated run. `implied` are the bits every page counts as having.
 */
export function unregisterCalls(
  reg: Registration,
  whole: boolean,
  store: StateStore,
  implied: number,
): PlannedCall[] {
  if (whole) {
    return [{
      registration: reg,
      kind: "populate",
      startPage: reg.startPage,
      endPage: reg.endPage,
      mixed: true,
    }];
  }
  const done: PlannedCall[] = [];
  for (const run of viewRuns(store, reg.startPage, reg.endPage, reg.view, implied)) {
    if (run.populated) {
      done.push({ registration: reg, kind: "populate", startPage: run.start, endPage: run.end });
    }
  }
  return done;
}
