/**
 * The events a trace replays, whatever format they were read from, and the
 * error a bad trace line raises.
 *
 * Addresses are guest physical addresses in bytes; `line` is the 1-based line
 * of the trace the event came from, so every later complaint (misaligned, out
 * of range, refused by a listener) can point back at the input.
 *
 * @module
 */

import { excerptJson } from "../../util/text.ts";

/** The guest converts `[gpa, gpa + size)` to shared or to private. */
export interface ConvertEvent {
  /** Discriminator. */
  op: "convert";
  /** First guest physical address. */
  gpa: number;
  /** Bytes to convert (> 0). */
  size: number;
  /** The state the range ends in. */
  to: "shared" | "private";
  /** 1-based line of the trace. */
  line: number;
}

/** The guest plugs or unplugs `[gpa, gpa + size)` through virtio-mem. */
export interface PlugEvent {
  /** Discriminator. */
  op: "plug" | "unplug";
  /** First guest physical address. */
  gpa: number;
  /** Bytes to plug or unplug (> 0). */
  size: number;
  /** 1-based line of the trace. */
  line: number;
}

/** The guest unplugs everything a virtio-mem device (or every device) plugged. */
export interface UnplugAllEvent {
  /** Discriminator. */
  op: "unplug-all";
  /** The virtio-mem device; absent: every virtio-mem device. */
  device?: string;
  /** 1-based line of the trace. */
  line: number;
}

/** One event of a trace that the runner replays. */
export type TraceEvent = ConvertEvent | PlugEvent | UnplugAllEvent;

/**
 * QEMU set (or deleted, `size` 0) a KVM memslot: the `kvm_set_user_memory`
 * event (accel/kvm/trace-events: `AddrSpace#%d Slot#%d flags=0x%x gpa=0x%"PRIx64
 * " size=0x%"PRIx64 " ua=0x%"PRIx64 " guest_memfd=%d guest_memfd_offset=0x%"PRIx64
 * " ret=%d"`). Not replayed: it describes the memory layout, from which a
 * configuration with `"regions": "from-trace"` takes its regions.
 */
export interface MemslotEvent {
  /** Discriminator. */
  op: "memslot";
  /** KVM address space (0: normal memory; 1: x86 SMM). */
  as: number;
  /** Memslot number. */
  slot: number;
  /** KVM_MEM_* flags (KVM_MEM_GUEST_MEMFD = 1 << 2). */
  flags: number;
  /** Guest physical address of the slot. */
  gpa: number;
  /** Bytes; 0 deletes the slot. */
  size: number;
  /** The ioctl's result (0: success). */
  ret: number;
  /** 1-based line (or record) of the trace. */
  line: number;
}

/** A trace line (or record) that cannot be read, reported in order with the events. */
export interface BadLine {
  /** Discriminator. */
  op: "bad-line";
  /** 1-based line (or record) of the trace. */
  line: number;
  /** What is wrong, without the line number. */
  message: string;
}

/** What a trace reader yields, in trace order. */
export type TraceItem = TraceEvent | MemslotEvent | BadLine;

/** The events that name a guest physical range. */
export type RangeTraceEvent = ConvertEvent | PlugEvent;

/** A trace line that cannot be read; `reason` says what is wrong with it. */
export class TraceLineError extends Error {
  /** 1-based line number. */
  readonly line: number;
  /** What is wrong, without the line number. */
  readonly reason: string;

  /** Builds the error for `line` with `reason`. */
  constructor(line: number, reason: string) {
    super(`line ${line}: ${reason}`);
    this.name = "TraceLineError";
    this.line = line;
    this.reason = reason;
  }
}

/** A `0x` hex number of at most 13 digits, below 2^52. */
const SHORT_HEX = /^0x[0-9a-f]{1,13}$/i;

/** Largest address a trace may name: JavaScript numbers are exact up to 2^53. */
const LIMIT = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Reads a non-negative integer written as a number, a `0x` hex string or a
 * decimal digit string; throws a {@link TraceLineError} naming `field`.
 */
export function traceInteger(value: unknown, field: string, line: number): number {
  let exact: bigint | undefined;
  if (typeof value === "number" && Number.isInteger(value) && value >= 0) {
    if (!Number.isSafeInteger(value)) {
      throw new TraceLineError(line, `${field}: must be at most 2^53 - 1, got ${value}`);
    }
    return value;
  }
  // Up to 13 hex digits (52 bits) a float holds exactly: no BigInt needed.
  if (typeof value === "string" && SHORT_HEX.test(value)) return Number.parseInt(value, 16);
  if (typeof value === "string" && /^(0x[0-9a-f]+|\d+)$/i.test(value)) exact = BigInt(value);
  if (exact === undefined) {
    throw new TraceLineError(
      line,
      `${field}: must be a non-negative integer or a hex string like "0x1000", got ${
        excerptJson(value)
      }`,
    );
  }
  if (exact > LIMIT) {
    throw new TraceLineError(line, `${field}: must be at most 2^53 - 1, got ${excerptJson(value)}`);
  }
  return Number(exact);
}

/** Rejects an empty range or one that ends past 2^53. */
export function checkRange(gpa: number, size: number, line: number): void {
  if (size === 0) throw new TraceLineError(line, "size: must be positive, got 0");
  if (gpa + size > Number.MAX_SAFE_INTEGER) {
    throw new TraceLineError(
      line,
      `range 0x${gpa.toString(16)} + 0x${size.toString(16)} ends past 2^53 - 1`,
    );
  }
}

/**
 * A trace that cannot be used at all: a path that is not a readable file, a
 * format that cannot be read, or a trace without a single event. The message
 * is one line naming the trace and the rule.
 */
export class TraceInputError extends Error {
  /** The trace path as given (`-` for standard input). */
  readonly trace: string;

  /** Builds the error for `trace`; `message` names the trace already. */
  constructor(trace: string, message: string) {
    super(message);
    this.name = "TraceInputError";
    this.trace = trace;
  }
}
