/**
 * The one power-of-two test, exact for every safe integer.
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
