/**
 * The one hexadecimal formatter for addresses, sizes and masks in messages.
 *
 * @module
 */

/** 2^64 as a double: a u64 argument this large stands for U64_MAX (see hw/u64.ts). */
const TWO_64 = 2 ** 64;

/**
 * Formats a non-negative integer as `0x`-prefixed lowercase hexadecimal.
 *
 * @param value an address, size or bit mask
 * @returns e.g. `"0x1000"`; `"0xffffffffffffffff"` for 2^64 and above, the
 *   double that stands for U64_MAX (`2 ** 64 - 1` rounds to 2^64)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hex } from "./_hex.ts";
 * assert.equal(hex(4096), "0x1000");
 * assert.equal(hex(2 ** 64 - 1), "0xffffffffffffffff");
 * ```
 */
export function hex(value: number): string {
  if (value >= TWO_64) return "0xffffffffffffffff";
  return "0x" + value.toString(16);
}
