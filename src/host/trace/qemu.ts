/**
 * QEMU trace lines for the `kvm_convert_memory` event.
 *
 * QEMU declares the event in `accel/kvm/trace-events` as
 * `kvm_convert_memory(uint64_t start, uint64_t size, const char *msg)
 * "start 0x%" PRIx64 " size 0x%" PRIx64 " %s"` and passes
 * `"shared_to_private"` or `"private_to_shared"` as `msg`. The forms read here:
 *
 * - the `log` backend (`-trace kvm_convert_memory` / `-d trace:...`):
 *   `kvm_convert_memory start 0x100000 size 0x1000 private_to_shared`,
 *   optionally prefixed `pid@seconds.micros:` (older QEMU with
 *   `-msg timestamp=on`) or by newer message context such as
 *   `2026-01-08T17:05:15.123456Z qemu-system-x86_64: (1234:CPU 0/KVM): `;
 * - the `ftrace` backend as read back from tracefs:
 *   `... tracing_mark_write: kvm_convert_memory start 0x... size 0x... ...`;
 * - `scripts/simpletrace.py` output for the binary `simple` backend:
 *   `kvm_convert_memory 0.000 pid=1234 start=0x100000 size=0x1000 msg=private_to_shared`.
 *
 * Anything before the event name is ignored, so other prefixes work too.
 *
 * The `kvm_set_user_memory` event, which QEMU logs for every memslot it sets,
 * is read too ({@link parseQemuMemslotLine}): it gives the guest's memory layout,
 * so a trace can bring its own regions (`"regions": "from-trace"`). It is
 * declared in accel/kvm/trace-events as
 * `kvm_set_user_memory(uint16_t as, uint16_t slot, uint32_t flags,
 * uint64_t guest_phys_addr, uint64_t memory_size, uint64_t userspace_addr,
 * uint32_t fd, uint64_t fd_offset, int ret) "AddrSpace#%d Slot#%d flags=0x%x
 * gpa=0x%"PRIx64 " size=0x%"PRIx64 " ua=0x%"PRIx64 " guest_memfd=%d"
 * " guest_memfd_offset=0x%" PRIx64 " ret=%d"` (QEMU releases before
 * guest_memfd lack the `fd` arguments; both forms are read).
 *
 * @module
 */

import { excerpt } from "../../util/text.ts";
import {
  checkRange,
  type ConvertEvent,
  type MemslotEvent,
  traceInteger,
  TraceLineError,
} from "./event.ts";

/** What the `log` backend writes before the first argument; {@link quickConvert} looks for it. */
export const LOG_HEAD = "kvm_convert_memory start 0x";

/**
 * The common `log`-backend line, read without regular expressions or
 * substrings: `[prefix]kvm_convert_memory start 0x<hex> size 0x<hex>
 * shared_to_private|private_to_shared`, each number at most 13 hex digits.
 * A replay reads one such line per conversion, and the regular expressions
 * cost as much as the conversion they describe (the `replay 1 TiB` row of
 * `deno task bench:report`). Anything else, odd spacing or an error to
 * report included, returns undefined and goes the regular way
 * ({@link parseQemuTraceLineByPattern}, which must agree wherever this answers).
 */
export function quickConvert(text: string, line: number): ConvertEvent | undefined {
  return quickConvertAt(text, 0, text.length, text.indexOf(LOG_HEAD), line);
}

/**
 * {@link quickConvert} of the line `text.slice(from, to)`, read where it
 * lies (the stream reader's chunk of text: no substring made per line), given
 * `at`, the first {@link LOG_HEAD} in it (-1, or anywhere outside `[from,
 * to)`: none). The line holds no newline, and `text` has one at `to` or ends
 * there: the numbers and words read here stop at it.
 */
export function quickConvertAt(
  text: string,
  from: number,
  to: number,
  at: number,
  line: number,
): ConvertEvent | undefined {
  if (at < from || at >= to) return undefined;
  let first = from;
  while (text.charCodeAt(first) === 0x20 || text.charCodeAt(first) === 0x09) first++;
  if (text.charCodeAt(first) === 0x23) return undefined; // a '#' comment
  if (at > from) {
    const c = text.charCodeAt(at - 1);
    if (c !== 0x3a && c !== 0x20 && c !== 0x09) return undefined; // ':', ' ', tab
  }
  let i = at + LOG_HEAD.length;
  let gpa = 0, digits = 0;
  for (;; i++, digits++) {
    const d = hexDigit(text.charCodeAt(i));
    if (d < 0) break;
    gpa = gpa * 16 + d;
  }
  if (digits === 0 || digits > 13 || !text.startsWith(" size 0x", i)) return undefined;
  i += 8;
  let size = 0;
  digits = 0;
  for (;; i++, digits++) {
    const d = hexDigit(text.charCodeAt(i));
    if (d < 0) break;
    size = size * 16 + d;
  }
  if (digits === 0 || digits > 13 || text.charCodeAt(i) !== 0x20) return undefined;
  i++;
  let direction: ConvertEvent["to"];
  if (text.startsWith("shared_to_private", i)) direction = "private";
  else if (text.startsWith("private_to_shared", i)) direction = "shared";
  else return undefined;
  i += 17;
  while (i < to) {
    const c = text.charCodeAt(i++);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return undefined;
  }
  if (size === 0 || gpa + size > Number.MAX_SAFE_INTEGER) return undefined;
  return { op: "convert", gpa, size, to: direction, line };
}

/** The value of a hex digit's character code, or -1. */
function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/** The event name, standing alone (start of line, after whitespace or a colon). */
const EVENT = /(?:^|[\s:])kvm_convert_memory(?:\s+(.*))?$/;
/** `log` and `ftrace` backends: the format string of trace-events. */
const LOG_ARGS = /^start\s+(0x[0-9a-f]+)\s+size\s+(0x[0-9a-f]+)\s+(\S+)$/i;
/** simpletrace.py: delta, pid, then `name=value` for each argument. */
const SIMPLE_ARGS =
  /^(?:\d+(?:\.\d+)?\s+)?(?:pid=\d+\s+)?start=(0x[0-9a-f]+)\s+size=(0x[0-9a-f]+)\s+msg=(\S+)$/i;

const DIRECTIONS: Readonly<Record<string, ConvertEvent["to"]>> = {
  shared_to_private: "private",
  private_to_shared: "shared",
};

/**
 * Reads one line of a QEMU trace log.
 *
 * @param text the line, without its newline
 * @param line its 1-based line number, for the event and for errors
 * @returns the conversion, or `null` when the line is blank, a `#` comment or
 *   any other trace event or log output
 * @throws {TraceLineError} when the line is a `kvm_convert_memory` event that
 *   cannot be read (malformed arguments, unknown direction, size 0, a number
 *   beyond 2^53)
 */
export function parseQemuTraceLine(text: string, line: number): ConvertEvent | null {
  return quickConvert(text, line) ?? parseQemuTraceLineByPattern(text, line);
}

/**
 * {@link parseQemuTraceLine} by regular expressions alone: every form, and
 * the errors.
 */
export function parseQemuTraceLineByPattern(text: string, line: number): ConvertEvent | null {
  const trimmed = text.trim();
  if (trimmed === "" || trimmed.startsWith("#")) return null;
  const event = EVENT.exec(trimmed);
  if (!event) return null;
  const args = (event[1] ?? "").trim();
  const match = LOG_ARGS.exec(args) ?? SIMPLE_ARGS.exec(args);
  if (!match) {
    throw new TraceLineError(
      line,
      `malformed kvm_convert_memory event: expected "start 0x<hex> size 0x<hex> ` +
        `shared_to_private|private_to_shared", got ${excerpt(args)}`,
    );
  }
  const [, start, size, direction] = match;
  const to = DIRECTIONS[direction];
  if (to === undefined) {
    throw new TraceLineError(
      line,
      `unknown direction ${excerpt(direction)} (expected shared_to_private or ` +
        `private_to_shared)`,
    );
  }
  const gpa = traceInteger(start, "start", line);
  const bytes = traceInteger(size, "size", line);
  checkRange(gpa, bytes, line);
  return { op: "convert", gpa, size: bytes, to, line };
}

/** `kvm_set_user_memory`, standing alone like {@link EVENT}. */
const MEMSLOT_EVENT = /(?:^|[\s:])kvm_set_user_memory(?:\s+(.*))?$/;
/** `log` and `ftrace` backends. */
const MEMSLOT_LOG_ARGS =
  /^AddrSpace#(\d+)\s+Slot#(\d+)\s+flags=(0x[0-9a-f]+)\s+gpa=(0x[0-9a-f]+)\s+size=(0x[0-9a-f]+)(?:\s+ua=0x[0-9a-f]+)?(?:\s+guest_memfd=-?\d+)?(?:\s+guest_memfd_offset=0x[0-9a-f]+)?(?:\s+ret=(-?\d+))?$/i;
/** simpletrace.py: delta, pid, then `name=0x<hex>` for each argument. */
const MEMSLOT_SIMPLE_ARGS =
  /^(?:\d+(?:\.\d+)?\s+)?(?:pid=\d+\s+)?as=(0x[0-9a-f]+)\s+slot=(0x[0-9a-f]+)\s+flags=(0x[0-9a-f]+)\s+guest_phys_addr=(0x[0-9a-f]+)\s+memory_size=(0x[0-9a-f]+)(?:\s+userspace_addr=0x[0-9a-f]+)?(?:\s+fd=0x[0-9a-f]+)?(?:\s+fd_offset=0x[0-9a-f]+)?(?:\s+ret=(0x[0-9a-f]+))?$/i;

/**
 * Reads one `kvm_set_user_memory` line of a QEMU trace log.
 *
 * @param text the line, without its newline
 * @param line its 1-based line number
 * @returns the memslot, or `null` when the line is another event or blank
 * @throws {TraceLineError} when it is a `kvm_set_user_memory` event that
 *   cannot be read
 */
export function parseQemuMemslotLine(text: string, line: number): MemslotEvent | null {
  const trimmed = text.trim();
  if (trimmed === "" || trimmed.startsWith("#")) return null;
  const event = MEMSLOT_EVENT.exec(trimmed);
  if (!event) return null;
  const args = (event[1] ?? "").trim();
  const log = MEMSLOT_LOG_ARGS.exec(args);
  const match = log ?? MEMSLOT_SIMPLE_ARGS.exec(args);
  if (!match) {
    throw new TraceLineError(
      line,
      `malformed kvm_set_user_memory event: expected "AddrSpace#<n> Slot#<n> flags=0x<hex> ` +
        `gpa=0x<hex> size=0x<hex> ...", got ${excerpt(args)}`,
    );
  }
  const [, as, slot, flags, gpa, size, ret] = match;
  const int = (v: string, field: string) => traceInteger(v, field, line);
  // simpletrace.py prints the int ret as an unsigned 64-bit number: -22 is 0xff...ea.
  const status = ret === undefined ? 0 : log ? Number(ret) : Number(BigInt.asIntN(64, BigInt(ret)));
  const event_: MemslotEvent = {
    op: "memslot",
    as: int(as, "AddrSpace"),
    slot: int(slot, "Slot"),
    flags: int(flags, "flags"),
    gpa: int(gpa, "gpa"),
    size: int(size, "size"),
    ret: status,
    line,
  };
  if (event_.size > 0) checkRange(event_.gpa, event_.size, line);
  return event_;
}
