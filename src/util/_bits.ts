/**
 * The one power-of-two test, exact for every safe integer, and the alignment
 * test the hot paths use.
 *
 * @module
 */

/**
 * Whether `n` is a power of two (1, 2, 4, ...). Exact for every safe integer,
 * unlike `(n & (n - 1)) === 0`, which truncates to 32 bits.
 *
 * @param n any number
 * @returns true for a positive safe integer with one bit set
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPowerOfTwo } from "./_bits.ts";
 * assert.equal(isPowerOfTwo(2 ** 40), true);
 * assert.equal(isPowerOfTwo(2 ** 40 + 2 ** 12), false);
 * assert.equal(isPowerOfTwo(0), false);
 * ```
 */
export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/**
 * Whether `value` is a multiple of `powerOfTwo`, which the caller guarantees
 * is a power of two (a page size, a granularity). Dividing by a power of two
 * is exact, so the quotient is an integer exactly when `value` is a multiple.
 * `value % powerOfTwo` gives the same answer, but V8 computes `%` of a
 * number beyond 32 bits (a guest address, an offset in a 1 TiB region) with
 * a call to fmod: 17 ns against 3.6 ns for a division and `Number.isInteger`
 * (`deno bench bench/structures_bench.ts`, group "alignment"), and a 4 KiB
 * conversion tests alignment up to six times on its way through the bus and
 * the simulated kernels.
 *
 * @param value an integer (callers check; NaN and infinities are not multiples)
 * @param powerOfTwo a power of two (not checked)
 * @returns true when `value / powerOfTwo` is an integer
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isMultipleOfPowerOfTwo } from "./_bits.ts";
 * assert.equal(isMultipleOfPowerOfTwo(2 ** 40 + 2 ** 12, 4096), true);
 * assert.equal(isMultipleOfPowerOfTwo(2 ** 40 + 512, 4096), false);
 * assert.equal(isMultipleOfPowerOfTwo(Infinity, 4096), false);
 * ```
 */
export function isMultipleOfPowerOfTwo(value: number, powerOfTwo: number): boolean {
  return Number.isInteger(value / powerOfTwo);
}
