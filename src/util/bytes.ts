/**
 * Byte counts in messages, in binary units ("4 KiB", "1.5 GiB"), so a limit
 * in an error reads the way a VMM engineer writes it.
 *
 * @module
 */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** Formats `bytes` with a binary unit: exact when it divides, else two decimals. */
export function formatBytes(bytes: number): string {
  let unit = 0;
  let value = bytes;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const text = Number.isInteger(value) ? String(value) : value.toFixed(2).replace(/\.?0+$/, "");
  return `${text} ${UNITS[unit]}`;
}
