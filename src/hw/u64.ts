/**
 * u64 argument handling shared by the simulated kernels.
 *
 * The kernel's ioctl structs carry u64 addresses and sizes; the public
 * interfaces take JavaScript numbers. Every multiple of 4 KiB below 2^64 is
 * exact in a double (it needs at most 52 significant bits), so aligned
 * arithmetic such as `iova + size` stays exact up to 2^65 and the simulators can
 * compare against 2^64 with plain doubles. Unaligned values above 2^53 are not
 * exact, so the wrap checks here use BigInt. The one value that cannot be
 * written as a double is U64_MAX itself: `2 ** 64 - 1` rounds to 2^64, so a
 * number equal to 2^64 stands for U64_MAX.
 *
 * @module
 */

import { isMultipleOfPowerOfTwo, isPowerOfTwo } from "../util/_bits.ts";

/** The kernel's U64_MAX as a double (it rounds to 2^64; see the module doc). */
export const U64_MAX: number = 2 ** 64 - 1;

/** 2^64 as a double: one past the largest u64 (equal to {@link U64_MAX} as a double). */
const TWO_64 = 2 ** 64;
const U64_MAX_BIG = (1n << 64n) - 1n;

/**
 * Throws a `TypeError` unless `value` is an integer, and a `RangeError` unless it
 * is in `[0, 2^64]` (2^64 being how a double spells U64_MAX). Such values cannot
 * be passed to the kernel at all, so they are programming errors, not errnos.
 */
export function checkU64(op: string, name: string, value: number): void {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`${op}: ${name} must be an integer, got ${describe(value)}`);
  }
  if (value < 0 || value > TWO_64) {
    throw new RangeError(`${op}: ${name} must be a u64 in [0, 2^64 - 1], got ${value}`);
  }
}

/** The exact u64 a checked number stands for (2^64 means U64_MAX). */
export function toBigU64(value: number): bigint {
  return value >= TWO_64 ? U64_MAX_BIG : BigInt(value);
}

/**
 * True when `value` is a multiple of `alignment` (U64_MAX, being odd, never
 * is). Every alignment the kernels check is a power of two up to 1 GiB, which
 * takes the fast test ({@link isMultipleOfPowerOfTwo}); any other falls back to `%`.
 */
export function isAligned(value: number, alignment: number): boolean {
  if (!(value < TWO_64)) return false;
  if (
    Number.isInteger(alignment) && alignment > 0 && alignment <= 0x4000_0000 &&
    (alignment & (alignment - 1)) === 0
  ) {
    return isMultipleOfPowerOfTwo(value, alignment);
  }
  return value % alignment === 0;
}

/** True when `[start, start + size)` (size > 0) runs past U64_MAX, as `start + size - 1` would wrap. */
export function wrapsU64(start: number, size: number): boolean {
  // Two values up to 2^53 sum to at most 2^54: no wrap, and no BigInt needed
  // on the hot path (every simulated map and unmap asks).
  if (start <= Number.MAX_SAFE_INTEGER && size <= Number.MAX_SAFE_INTEGER) return false;
  return toBigU64(start) + toBigU64(size) - 1n > U64_MAX_BIG;
}

/** True when the u64 sum `a + b` wraps (the exact sum is 2^64 or more), as `a + b < a` tests in C. */
export function addWrapsU64(a: number, b: number): boolean {
  if (a <= Number.MAX_SAFE_INTEGER && b <= Number.MAX_SAFE_INTEGER) return false;
  return toBigU64(a) + toBigU64(b) > U64_MAX_BIG;
}

/** Formats an address or size as hexadecimal for error messages (the project's one formatter). */
export { hex } from "../util/_hex.ts";

/** Throws a `RangeError` unless `value` is a power of two in `[min, max]`. */
export function checkPowerOfTwo(name: string, value: number, min: number, max: number): void {
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < min || value > max ||
    !isPowerOfTwo(value)
  ) {
    throw new RangeError(
      `${name}: must be a power of two in [${min}, ${max}], got ${describe(value)}`,
    );
  }
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || value === undefined || value === null) return String(value);
  return `${String(value)} (${typeof value})`;
}
