/**
 * Byte counts for people ("16 GiB", "4 KiB", "1.5 GiB"), shared by plugin
 * messages, reports and the CLI so every number reads the same way.
 *
 * @module
 */

const DISPLAY_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"] as const;

/**
 * Renders a byte count for people: the largest binary unit that keeps the
 * number at least 1, with up to two decimals and no trailing zeros.
 * Meant for reports and scales; the rounding makes it unsuitable for values a
 * reader must copy back exactly (error messages print raw numbers too).
 *
 * @param bytes a non-negative finite number of bytes
 * @returns e.g. `"16 GiB"`, `"4 KiB"`, `"1.5 GiB"`, `"0 B"`
 * @throws {RangeError} when `bytes` is negative or not finite
 */
export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) {
    throw new RangeError(`bytes: must be a non-negative finite number, got ${bytes}`);
  }
  let unit = 0;
  let value = bytes;
  while (value >= 1024 && unit < DISPLAY_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  // Two decimals, then drop trailing zeros: 1.50 -> 1.5, 16.00 -> 16.
  let text = value.toFixed(2).replace(/\.?0+$/, "");
  // 1023.999 KiB rounds to "1024": say "1 MiB" instead.
  if (text === "1024" && unit < DISPLAY_UNITS.length - 1) {
    text = "1";
    unit++;
  }
  return `${text} ${DISPLAY_UNITS[unit]}`;
}
