/**
 * State bits: each bit of a page's state word belongs to one state source.
 * `SHARED` (guest_memfd: set = shared, clear = private) and `PLUGGED`
 * (virtio-mem) are built in; a plugin may claim a further bit by name.
 *
 * @module
 */

/** guest_memfd's bit: set = shared (host-visible), clear = private. */
export const SHARED = 1 << 0;
/** virtio-mem's bit: set = plugged. A region without virtio-mem keeps it set everywhere. */
export const PLUGGED = 1 << 1;

/** Hands out state bits by name within the width of a region's store. */
export class StateBits {
  #byName = new Map<string, number>([["shared", SHARED], ["plugged", PLUGGED]]);
  /** How many bits the store can hold. */
  readonly width: number;

  /** Starts with the built-in bits; `width` is the store's bit count (at least 2). */
  constructor(width: number) {
    if (!Number.isInteger(width) || width < 2) {
      throw new RangeError(`bits: the store must hold at least 2 state bits, got ${width}`);
    }
    this.width = width;
  }

  /** Claims a new bit for `name` and returns its mask; refuses duplicates and a full store. */
  claim(name: string): number {
    if (typeof name !== "string" || name === "") {
      throw new TypeError(`name: a state bit needs a non-empty name, got ${JSON.stringify(name)}`);
    }
    if (this.#byName.has(name)) {
      throw new RangeError(`name: state bit "${name}" is already claimed`);
    }
    const used = this.mask;
    for (let b = 0; b < this.width; b++) {
      const bit = 1 << b;
      if ((used & bit) === 0) {
        this.#byName.set(name, bit);
        return bit;
      }
    }
    throw new RangeError(
      `name: no state bit left for "${name}": the store holds ${this.width} bits and all are ` +
        `claimed (${[...this.#byName.keys()].join(", ")}); create the region with more bits`,
    );
  }

  /** The mask of the bit claimed as `name`, or undefined. */
  get(name: string): number | undefined {
    return this.#byName.get(name);
  }

  /** Every claimed bit, by name. */
  entries(): [string, number][] {
    return [...this.#byName.entries()];
  }

  /** The union of all claimed bits. */
  get mask(): number {
    let m = 0;
    for (const bit of this.#byName.values()) m |= bit;
    return m;
  }
}
