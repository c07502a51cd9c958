/**
 * Argument checks done before any system call, so a JavaScript mistake (a
 * fraction, a negative number, NaN) is reported as itself and never reaches
 * the kernel as a silently converted u64. The rules and messages are the
 * simulator's (`src/hw/u64.ts`), so both backends reject the same inputs
 * the same way; what the kernel itself decides (alignment, sizes, flags) is
 * left to the kernel and comes back as a `HwError` with its errno.
 *
 * @module
 */

import { HwError } from "../errors.ts";
import { checkU64, toBigU64 } from "../u64.ts";

/**
 * Checks a u64 argument (`TypeError` for a non-integer, `RangeError` outside
 * `[0, 2^64]`) and returns it as the exact BigInt the kernel will see.
 */
export function u64Arg(op: string, name: string, value: number): bigint {
  checkU64(op, name, value);
  return toBigU64(value);
}

/**
 * A u64 argument for a signed 64-bit C parameter (`off_t`): values past 2^63
 * turn negative, as in C. Always a BigInt: Deno's FFI takes the fast call path
 * for an i64 only when given one (a number costs about 0.5 µs more per call,
 * measured by the `linux 4k` rows of `deno task bench:report`); a safe
 * integer converts directly.
 */
export function offArg(op: string, name: string, value: number): bigint {
  if (Number.isSafeInteger(value) && value >= 0) {
    return value <= PAGES_MAX && (value & (PAGE - 1)) === 0 ? PAGES[value / PAGE] : BigInt(value);
  }
  return BigInt.asIntN(64, u64Arg(op, name, value));
}

const PAGE = 4096;
/** The largest value {@link PAGES} holds: 2 MiB, a huge page. */
const PAGES_MAX = 2 ** 21;
/**
 * Every multiple of 4 KiB up to 2 MiB as a BigInt, made once: the length of
 * most punches, so a 4 KiB conversion allocates one BigInt (its offset), not
 * two. Part of what brought the `linux 4k (unallocated)` row from 1.55x to
 * 1.49x (with `linux_kvm.ts` checking an emulated attribute call once and
 * `LinuxMemoryFile.punchHole` not checking its constant mode; medians of
 * eight interleaved processes of `bench/linux_rows.ts --reps 6` each).
 */
const PAGES: readonly bigint[] = Array.from(
  { length: PAGES_MAX / PAGE + 1 },
  (_, i) => BigInt(i * PAGE),
);

/** Checks a u32 struct field or flag word (slot, flags, mode). */
export function u32Arg(op: string, name: string, value: number): number {
  checkU64(op, name, value);
  if (value > 0xffff_ffff) {
    throw new RangeError(`${op}: ${name} must fit in 32 bits, got ${value}`);
  }
  return value;
}

/**
 * Checks an access through the host mapping: `offset`/`length` must be
 * integers (`TypeError`/`RangeError`), and a range outside the file is where
 * the kernel would raise SIGBUS, reported as `EFAULT` like the simulator does.
 */
export function checkMappedAccess(op: string, offset: number, length: number, size: number): void {
  checkU64(op, "offset", offset);
  checkU64(op, "length", length);
  if (offset + length > size) {
    throw new HwError(
      op,
      "EFAULT",
      `SIGBUS: offset ${offset} + length ${length} is outside the file of size ${size}`,
    );
  }
}
