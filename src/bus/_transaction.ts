/**
 * Running a planned change as a transaction: call each participant in order;
 * if one refuses, send every participant already called the inverse call in
 * reverse order. Nothing is half-applied.
 *
 * @module
 */

import type { Notification, Section } from "./listener.ts";
import type { PlannedCall } from "./_plan.ts";
import { refusePromise } from "../util/_sync.ts";
import { ListenerUndoError } from "./errors.ts";

/** How a transaction ended when a participant refused. */
export interface Refusal {
  /** The call that was refused. */
  call: PlannedCall;
  /** What the participant threw. */
  cause: unknown;
  /** Set when an inverse call failed too: the listeners may now disagree with the store. */
  rollbackFailure?: { call: PlannedCall; cause: unknown };
}

/**
 * Calls `calls` in order; returns undefined when every call was accepted, or
 * a {@link Refusal} after rolling back every call that had succeeded. Nothing
 * is allocated on the way: on success the calls themselves say what was sent.
 */
export function runTransaction(
  calls: readonly PlannedCall[],
  toSection: (call: PlannedCall) => Section,
): Refusal | undefined {
  for (let i = 0; i < calls.length; i++) {
    const call = calls[i];
    try {
      invoke(call, call.kind, toSection(call));
    } catch (cause) {
      const rollbackFailure = rollBack(calls.slice(0, i), toSection) ?? undoneItself(call, cause);
      return rollbackFailure ? { call, cause, rollbackFailure } : { call, cause };
    }
  }
  return undefined;
}

/** The notifications `calls` (all accepted) sent, for observers: one per call, in order. */
export function notificationsOf(calls: readonly PlannedCall[], pageSize: number): Notification[] {
  return calls.map((call) => ({
    listener: call.registration.listener.name,
    kind: call.kind,
    offset: call.startPage * pageSize,
    size: (call.endPage - call.startPage) * pageSize,
  }));
}

/** Sends the inverse of each call in `done`, newest first; returns the first failure. */
export function rollBack(
  done: readonly PlannedCall[],
  toSection: (call: PlannedCall) => Section,
): { call: PlannedCall; cause: unknown } | undefined {
  let failure: { call: PlannedCall; cause: unknown } | undefined;
  for (let i = done.length - 1; i >= 0; i--) {
    const call = done[i];
    const inverse = call.kind === "populate" ? "discard" : "populate";
    // A coalesced call covered pages already in the target state: undo only the flips.
    const parts = call.parts ?? [call.startPage, call.endPage];
    for (let p = parts.length - 2; p >= 0; p -= 2) {
      const part = parts.length === 2
        ? call
        : { ...call, startPage: parts[p], endPage: parts[p + 1] };
      try {
        invoke(call, inverse, toSection(part));
      } catch (cause) {
        // Keep undoing the others: the fewer listeners out of step, the better.
        failure ??= { call, cause };
      }
    }
  }
  return failure;
}

/**
 * The refusing call itself as a rollback failure when its listener says it
 * could not undo its own part ({@link ListenerUndoError}), else undefined.
 */
export function undoneItself(
  call: PlannedCall,
  cause: unknown,
): { call: PlannedCall; cause: unknown } | undefined {
  return cause instanceof ListenerUndoError ? { call, cause } : undefined;
}

/**
 * Makes `call`'s listener's `kind` call over `section`: every path of the bus
 * calls a listener through here, so a promise it returns is refused alike.
 */
export function invoke(call: PlannedCall, kind: "populate" | "discard", section: Section): void {
  const listener = call.registration.listener;
  if (kind === "populate") refusePromise(listener.populate(section), kind);
  else refusePromise(listener.discard(section), kind);
}
