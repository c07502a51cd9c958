/**
 * Word-at-a-time bit range operations over a `Uint32Array`, in the manner of the
 * kernel's bitmap_set / bitmap_clear / find_next_bit that QEMU uses, so the
 * bitmap baseline is a fair one.
 *
 * @module
 */

/** Sets bits `[start, end)`. */
export function setBitRange(words: Uint32Array, start: number, end: number): void {
  fillBitRange(words, start, end, true);
}

/** Clears bits `[start, end)`. */
export function clearBitRange(words: Uint32Array, start: number, end: number): void {
  fillBitRange(words, start, end, false);
}

function fillBitRange(words: Uint32Array, start: number, end: number, on: boolean): void {
  if (start >= end) return;
  const first = Math.floor(start / 32);
  const last = Math.floor((end - 1) / 32);
  const headMask = (0xffffffff << (start % 32)) >>> 0;
  const tailMask = 0xffffffff >>> (31 - ((end - 1) % 32));
  if (first === last) {
    const mask = headMask & tailMask;
    words[first] = on ? words[first] | mask : words[first] & ~mask;
    return;
  }
  words[first] = on ? words[first] | headMask : words[first] & ~headMask;
  words.fill(on ? 0xffffffff : 0, first + 1, last);
  words[last] = on ? words[last] | tailMask : words[last] & ~tailMask;
}

/** Reads bit `index`. */
export function testBit(words: Uint32Array, index: number): boolean {
  return ((words[Math.floor(index / 32)] >>> (index % 32)) & 1) === 1;
}

/**
 * The first index in `[from, limit)` whose bit equals `value`, or `limit` when
 * there is none (find_next_bit / find_next_zero_bit).
 */
export function findNextBit(
  words: Uint32Array,
  from: number,
  limit: number,
  value: boolean,
): number {
  if (from >= limit) return limit;
  let w = Math.floor(from / 32);
  const flip = value ? 0 : 0xffffffff;
  // Mask off bits below `from` in the first word.
  let word = ((words[w] ^ flip) & (0xffffffff << (from % 32))) >>> 0;
  const lastWord = Math.floor((limit - 1) / 32);
  while (word === 0) {
    if (++w > lastWord) return limit;
    word = (words[w] ^ flip) >>> 0;
  }
  const index = w * 32 + (31 - Math.clz32(word & -word));
  return index < limit ? index : limit;
}

/** Population count: the number of set bits of a 32-bit word. */
export function popcount(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Number of set bits in `[0, length)`; bits at or past `length` must be clear. */
export function countBits(words: Uint32Array): number {
  let total = 0;
  for (let i = 0; i < words.length; i++) total += popcount(words[i]);
  return total;
}
