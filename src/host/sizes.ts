/**
 * Byte sizes as people write them in host configurations and as reports print
 * them.
 *
 * Accepted forms (whitespace around the unit is allowed, units are
 * case-insensitive):
 *
 * - a non-negative safe integer number of bytes: `4096`
 * - a decimal digit string: `"4096"`
 * - a hexadecimal string: `"0x100000000"` (no unit; meant for addresses)
 * - a decimal number with a binary unit: `"16GiB"`, `"4 KiB"`, `"1.5GiB"`,
 *   units `B`, `KiB`, `MiB`, `GiB`, `TiB`, `PiB`
 * - QEMU's `-m` shorthand `K`, `M`, `G`, `T`, `P`, which QEMU also reads as
 *   powers of 1024: `"16G"`
 *
 * `KB`, `MB`, `GB`, ... are rejected on purpose: half the world reads them as
 * powers of 1000 and half as powers of 1024, and a guest that is 7% smaller or
 * larger than intended fails in confusing ways (misaligned regions, a DMA budget
 * that is off). The error says which binary unit to write instead.
 *
 * A fraction is fine as long as the result is a whole number of bytes
 * (`"1.5KiB"` is 1536, `"0.1KiB"` is rejected); the arithmetic is exact
 * (BigInt), so `"1.1GiB"` is judged on its true value, not a float's.
 *
 * @module
 */

import { formatSize } from "../util/bytes.ts";
import { describeValue } from "../util/text.ts";

export { formatSize };

const UNITS: Readonly<Record<string, bigint>> = {
  "": 1n,
  b: 1n,
  k: 1n << 10n,
  kib: 1n << 10n,
  m: 1n << 20n,
  mib: 1n << 20n,
  g: 1n << 30n,
  gib: 1n << 30n,
  t: 1n << 40n,
  tib: 1n << 40n,
  p: 1n << 50n,
  pib: 1n << 50n,
};

/** SI-looking units we refuse, mapped to the binary unit to suggest. */
const AMBIGUOUS_UNITS: Readonly<Record<string, string>> = {
  kb: "KiB",
  mb: "MiB",
  gb: "GiB",
  tb: "TiB",
  pb: "PiB",
};

const DECIMAL_WITH_UNIT = /^(\d+)(?:\.(\d+))?\s*([a-z]*)$/i;
const HEX = /^0x([0-9a-f]+)$/i;

/**
 * The number of bytes `value` stands for as `{ bytes }`, or why it is not a
 * size: a rule followed by the offending value, ready to be prefixed with a
 * field name. The host configuration schema uses it so that its errors and
 * {@link parseSize}'s are worded the same way.
 */
export function sizeOrProblem(value: unknown): { bytes: number } | string {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return `must be a finite number of bytes, got ${value}`;
    if (value < 0) return `must not be negative, got ${value}`;
    if (!Number.isInteger(value)) {
      return `must be a whole number of bytes, got ${value}`;
    }
    if (!Number.isSafeInteger(value)) {
      return `must be at most ${Number.MAX_SAFE_INTEGER} bytes (2^53 - 1), got ${value}`;
    }
    return { bytes: value };
  }
  if (typeof value !== "string") {
    return `must be a number of bytes or a size string like "16GiB", got ${describeValue(value)}`;
  }
  const text = value.trim();
  if (text.startsWith("-")) return `must not be negative, got ${JSON.stringify(value)}`;
  const hex = HEX.exec(text);
  // Not a decimal with the unit "x...": "0x" starts a hexadecimal number or nothing.
  if (!hex && /^0x/i.test(text)) {
    return `must have hexadecimal digits after "0x" and no unit, got ${JSON.stringify(value)}`;
  }
  const exact = hex ? BigInt("0x" + hex[1]) : decimalWithUnit(text);
  if (typeof exact === "string") return `${exact}, got ${JSON.stringify(value)}`;
  if (exact > BigInt(Number.MAX_SAFE_INTEGER)) {
    return `must be at most ${Number.MAX_SAFE_INTEGER} bytes (2^53 - 1), got ${
      JSON.stringify(value)
    }`;
  }
  return { bytes: Number(exact) };
}

/** Exact bytes of `"<digits>[.<digits>] <unit>"`, or the rule it breaks. */
function decimalWithUnit(text: string): bigint | string {
  const match = DECIMAL_WITH_UNIT.exec(text);
  if (!match) {
    return `must be a byte count like 4096, "0x1000", "4KiB" or "16GiB"`;
  }
  const [, whole, fraction = "", unitText] = match;
  const unit = unitText.toLowerCase();
  const suggestion = AMBIGUOUS_UNITS[unit];
  if (suggestion) {
    return `unit "${unitText}" is ambiguous (10^n or 2^n); write "${suggestion}" for powers of 1024`;
  }
  const multiplier = UNITS[unit];
  if (multiplier === undefined) {
    return `unknown unit "${unitText}" (use B, KiB, MiB, GiB, TiB or PiB)`;
  }
  const scale = 10n ** BigInt(fraction.length);
  const scaled = BigInt(whole + fraction) * multiplier;
  if (scaled % scale !== 0n) return "must be a whole number of bytes";
  return scaled / scale;
}

/**
 * Parses a byte size written as a number or a string (see the module doc for
 * the accepted forms).
 *
 * @param value the size as written
 * @param field the name to put in the error, e.g. `"regions[0].size"`
 * @returns the size in bytes, a non-negative safe integer
 * @throws {RangeError} naming `field`, the rule and the value when `value` is
 *   not a size; {TypeError} when it is neither a number nor a string
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSize } from "./sizes.ts";
 * assert.equal(parseSize("16GiB", "size"), 16 * 2 ** 30);
 * assert.equal(parseSize("0x1000", "base"), 4096);
 * ```
 */
export function parseSize(value: number | string, field: string): number {
  const result = sizeOrProblem(value);
  if (typeof result === "string") {
    const ErrorType = typeof value === "number" || typeof value === "string"
      ? RangeError
      : TypeError;
    throw new ErrorType(`${field}: ${result}`);
  }
  return result.bytes;
}
