/**
 * Typed errors of the bus. Each says what was wrong, and none leaves a region
 * half-changed: an invalid request changes nothing, a refused change is rolled
 * back, and a rollback that itself fails marks the region failed.
 *
 * @module
 */

import { hex } from "../util/_hex.ts";
import { describeValue, errorLine } from "../util/text.ts";

/**
 * A request that breaks a rule (misaligned, out of bounds, empty, unknown
 * bits). Nothing was changed or notified.
 */
export class InvalidChangeError extends RangeError {
  /** The argument at fault, e.g. `"offset"`. */
  readonly argument: string;
  /** The rule it broke, e.g. `"aligned to 4096"`. */
  readonly rule: string;
  /** The value given. */
  readonly value: unknown;

  /** Creates the error for `argument` (given `value`) breaking `rule`, in `region`. */
  constructor(region: string, argument: string, rule: string, value: unknown) {
    super(`region ${region}: ${argument}: must be ${rule}, got ${show(value)}`);
    this.name = "InvalidChangeError";
    this.argument = argument;
    this.rule = rule;
    this.value = value;
  }
}

/**
 * What a refused change left undone. `"all"`: every participant was rolled
 * back and the store is untouched (the memstate policy). `"listeners"`: the
 * listeners were rolled back but the KVM attributes and the state bitmap stay
 * changed (QEMU 11.1). `"none"`: nothing was undone (QEMU 10.1).
 */
export type RolledBack = "all" | "listeners" | "none";

/**
 * A participant refused a change. Under the memstate policy every earlier
 * notification was rolled back; under a QEMU policy `rolledBack` says what was
 * and `vmStopped` is true: QEMU stops the VM.
 */
export class ConversionError extends Error {
  /** The listener that refused. */
  readonly listener: string;
  /** The region. */
  readonly region: string;
  /** Byte offset of the requested change. */
  readonly offset: number;
  /** Byte length of the requested change. */
  readonly size: number;
  /** The notification that was refused. */
  readonly direction: "populate" | "discard";
  /** The part of the change the listener refused. */
  readonly section: { offset: number; size: number };
  /** Guest physical address of the region's first byte: offsets are from it. */
  readonly base: number;
  /** What was undone. */
  readonly rolledBack: RolledBack;
  /** True when the policy stops the VM on this failure (QEMU's). */
  readonly vmStopped: boolean;

  /** Creates the error; `cause` is what the listener threw. */
  constructor(
    init: {
      listener: string;
      region: string;
      offset: number;
      size: number;
      direction: "populate" | "discard";
      section: { offset: number; size: number };
      base?: number;
      rolledBack?: RolledBack;
      vmStopped?: boolean;
    },
    cause: unknown,
  ) {
    const base = init.base ?? 0;
    // Offsets are the region's; a region that does not start at 0 also gets the guest address.
    const gpa = base === 0 ? "" : ` (gpa ${hex(base + init.section.offset)})`;
    const rolledBack = init.rolledBack ?? "all";
    const vmStopped = init.vmStopped ?? false;
    const undone = rolledBack === "all"
      ? "the change was rolled back"
      : rolledBack === "listeners"
      ? "the listeners were rolled back, the KVM attributes and the state bitmap stay changed"
      : "nothing was rolled back";
    super(
      `region ${init.region}: ${init.listener} refused ${init.direction} of ` +
        `[${hex(init.section.offset)}, +${hex(init.section.size)})${gpa} ` +
        `while changing [${hex(init.offset)}, +${hex(init.size)}): ` +
        `${cause instanceof Error ? cause.message : String(cause)}; ${undone}` +
        (vmStopped ? "; the VM stops" : ""),
      { cause },
    );
    this.rolledBack = rolledBack;
    this.vmStopped = vmStopped;
    this.name = "ConversionError";
    this.listener = init.listener;
    this.region = init.region;
    this.offset = init.offset;
    this.size = init.size;
    this.direction = init.direction;
    this.section = init.section;
    this.base = base;
  }
}

/**
 * The region can no longer be trusted: undoing a refused change failed, so a
 * listener may disagree with the store. Every further change is refused.
 */
export class RegionFailedError extends Error {
  /** The region. */
  readonly region: string;

  /** Creates the error; `cause` is the failure that broke the region. */
  constructor(region: string, message: string, cause: unknown) {
    super(`region ${region} has failed and refuses changes: ${message}`, { cause });
    this.name = "RegionFailedError";
    this.region = region;
  }
}

/**
 * What a listener throws when it refuses a call and could not undo its own
 * part of it (a DMA plugin mapped some granules, then the map failed, then so
 * did the unmap of those granules). The listener is out of step with the
 * store, so under memstate's policy the change fails the region
 * ({@link RegionFailedError}) instead of being refused cleanly: a refusal
 * promises that the listener holds nothing of the change. The QEMU policies
 * take it as the refusal it wraps (QEMU has no such signal).
 */
export class ListenerUndoError extends Error {
  /** Why the listener refused the call (its own undo's failure is the `cause`). */
  readonly refusal: unknown;

  /** Creates the error for `listener`, which refused with `refusal` and failed to undo (`undo`). */
  constructor(listener: string, refusal: unknown, undo: unknown) {
    super(
      `${listener} refused (${errorLine(refusal)}) and could not undo its own part: ` +
        errorLine(undo),
      { cause: undo },
    );
    this.name = "ListenerUndoError";
    this.refusal = refusal;
  }
}

/** Adding a source that exists (`EBUSY`) or removing one that does not (`ENOENT`). */
export class SourceError extends Error {
  /** QEMU's errno for the case. */
  readonly code: "EBUSY" | "ENOENT";

  /** Creates the error. */
  constructor(code: "EBUSY" | "ENOENT", message: string) {
    super(message);
    this.name = "SourceError";
    this.code = code;
  }
}

function show(value: unknown): string {
  if (typeof value === "number" && Number.isInteger(value) && value >= 4096) {
    return `${value} (${hex(value)})`;
  }
  // A BigInt, an object, a string: as a programmer would write it (8192n would read as 8192).
  return typeof value === "number" ? String(value) : describeValue(value);
}
