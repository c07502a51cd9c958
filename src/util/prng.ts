/**
 * A small seeded pseudo-random generator (mulberry32) so workloads, property
 * tests and fault injection are reproducible from a printed seed.
 *
 * @module
 */

/** The largest seed: a generator takes 32 bits, so a larger seed would run as another one. */
export const MAX_SEED = 0xffff_ffff;

/** A seeded generator of uniform numbers. */
export class Prng {
  #state: number;
  /** The seed this generator started from. */
  readonly seed: number;

  /** Starts a generator from a 32-bit `seed`. */
  constructor(seed: number) {
    if (!Number.isInteger(seed)) {
      throw new TypeError(`seed: must be an integer, got ${seed}`);
    }
    this.seed = seed >>> 0;
    this.#state = this.seed;
  }

  /** A float in `[0, 1)`. */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in `[0, n)` for `n` up to 2^53. */
  int(n: number): number {
    if (n <= 4294967296) return Math.floor(this.next() * n);
    // Two draws so large ranges (2^40 pages) are still uniform enough.
    return Math.floor((this.next() * 4294967296 + this.next() * 4294967296 * 4294967296) % n);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of `items`, uniformly. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

/**
 * The seed for a test or run: `MEMSTATE_SEED` from the environment when set (and
 * permitted), otherwise a fresh random one. Callers print it so runs can be replayed.
 */
export function seedFromEnv(name = "MEMSTATE_SEED"): number {
  try {
    const raw = Deno.env.get(name);
    if (raw !== undefined && raw !== "") {
      const seed = Number(raw);
      if (!Number.isInteger(seed)) throw new TypeError(`${name}: must be an integer, got ${raw}`);
      return seed >>> 0;
    }
  } catch (e) {
    if (e instanceof TypeError) throw e;
    // No env permission: fall through to a random seed.
  }
  return Math.floor(Math.random() * 4294967296) >>> 0;
}
