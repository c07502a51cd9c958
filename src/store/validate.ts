/**
 * Argument checks shared by every store, so that all of them reject bad input
 * with the same words and before touching any state.
 *
 * @module
 */

import { isPowerOfTwo } from "../util/_bits.ts";
import { describeValue } from "../util/text.ts";

/** The largest page count a store accepts: 2^52 keeps every page index exact in a double. */
export const MAX_PAGES = 2 ** 52;
/** The most state bits a store can hold: 31 keeps state words positive under JS bit operators. */
export const MAX_BITS = 31;

/** Throws unless `value` is an integer in `[min, max]`; `name` is the argument's name. */
export function checkInteger(name: string, value: number, min: number, max: number): void {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`${name}: must be an integer, got ${describeValue(value)}`);
  }
  if (value < min || value > max) {
    throw new RangeError(`${name}: must be in [${min}, ${max}], got ${value}`);
  }
}

/**
 * Throws unless a store's `options` is an object: a default parameter stands
 * in only for `undefined`, so `null` would fail inside, reading `bits` of it.
 */
export function checkOptions(options: unknown): void {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(
      `options: must be an object such as { bits: 2 }, got ${describeValue(options)}`,
    );
  }
}

/** Checks a store's constructor arguments. */
export function checkShape(length: number, bits: number): void {
  checkInteger("length", length, 1, MAX_PAGES);
  checkInteger("bits", bits, 1, MAX_BITS);
}

/** Checks a page index of a store of `length` pages. */
export function checkPage(page: number, length: number): void {
  checkInteger("page", page, 0, length - 1);
}

/** Checks a half-open page range `[start, end)` of a store of `length` pages. */
export function checkRange(start: number, end: number, length: number): void {
  checkInteger("start", start, 0, length);
  checkInteger("end", end, 0, length);
  if (start > end) {
    throw new RangeError(`start: must not exceed end, got start ${start} > end ${end}`);
  }
}

/** Checks a non-empty half-open page range `[start, end)` of a store of `length` pages. */
export function checkNonEmptyRange(start: number, end: number, length: number): void {
  checkRange(start, end, length);
  if (start === end) {
    throw new RangeError(`end: must exceed start, got an empty range at ${start}`);
  }
}

/**
 * `2^bits - 1` for `bits` in `[0, MAX_BITS]`: every update checks two masks,
 * and V8 computes `2 ** bits` with a call to libm's `pow` (the profile of the
 * bench report's `boot` rows put 9% of a conversion there, in both stores).
 */
export const LARGEST_STATE: readonly number[] = Array.from(
  { length: MAX_BITS + 1 },
  (_, bits) => 2 ** bits - 1,
);

/** Checks that a state word or bit mask fits in `bits` bits. */
export function checkState(name: string, value: number, bits: number): void {
  checkInteger(name, value, 0, LARGEST_STATE[bits]);
}

/**
 * Checks the arguments of `addBit`: `bit` an index below {@link MAX_BITS} that
 * `held` (a mask) does not hold yet, and the granularity a power of two.
 * @returns the granularity in pages
 */
export function checkAddBit(
  bit: number,
  options: { granularity?: number },
  held: number,
): number {
  checkInteger("bit", bit, 0, MAX_BITS - 1);
  if ((held & (2 ** bit)) !== 0) {
    throw new RangeError(`bit: bit ${bit} is already held by this store`);
  }
  const granularity = options.granularity ?? 1;
  checkInteger("granularity", granularity, 1, MAX_PAGES);
  if (!isPowerOfTwo(granularity)) {
    throw new RangeError(`granularity: must be a power of two, got ${granularity}`);
  }
  return granularity;
}
