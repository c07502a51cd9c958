/**
 * State bits: each bit of a page's state word belongs to one state source.
 * `SHARED` (guest_memfd: set = shared, clear = private) is always there;
 * `PLUGGED` (virtio-mem) is claimed by the first virtio-mem source, and until
 * then every page counts as plugged without the store holding the bit. A
 * plugin may claim a further bit by name (bits 2 and up).
 *
 * The store holds only claimed bits: a claim asks the region to grow its
 * store by one bit (QEMU likewise keeps one bitmap per state source), so a
 * region without virtio-mem pays for one bit per page in a bitmap, not eight.
 *
 * @module
 */
import { describeValue } from "../util/text.ts";

/** guest_memfd's bit: set = shared (host-visible), clear = private. */
export const SHARED = 1 << 0;
/** virtio-mem's bit: set = plugged. Until a source claims it, every page counts as plugged. */
export const PLUGGED = 1 << 1;

/** The built-in bits whose value is implied (set) while nobody has claimed them. */
export const IMPLIED_WHEN_UNCLAIMED: number = PLUGGED;

/** How a {@link StateBits} makes the store hold a newly claimed bit. */
export type GrowStore = (bit: number, granularity: number) => void;

/** Options of {@link StateBits.claim}. */
export interface ClaimOptions {
  /** Pages one stored bit may stand for (a virtio-mem block; default 1). */
  granularity?: number;
}

/** Hands out state bits by name and grows the store to hold them. */
export class StateBits {
  #byName = new Map<string, number>([["shared", SHARED]]);
  /** Pages one stored bit stands for, by name, as claimed (saved with the region's state). */
  #granularity = new Map<string, number>();
  #grow: GrowStore;
  #max: number;
  /** The union of the claimed bits, kept as they are claimed: every change checks it. */
  #mask = SHARED;

  /**
   * Starts with `claimed` (at least `SHARED`); `grow` makes the store hold a
   * new bit and `max` is the most bits it can hold.
   */
  constructor(claimed: number, grow: GrowStore, max: number) {
    this.#grow = grow;
    this.#max = max;
    if (claimed & PLUGGED) this.#byName.set("plugged", PLUGGED);
    this.#mask = claimed & (SHARED | PLUGGED) | SHARED;
  }

  /**
   * Claims a bit for `name` and returns its mask: `"plugged"` gets
   * {@link PLUGGED}, other names the lowest free bit from 2 up. Refuses a name
   * already claimed and a store that cannot hold another bit.
   */
  claim(name: string, options: ClaimOptions = {}): number {
    if (typeof name !== "string" || name === "") {
      throw new TypeError(`name: a state bit needs a non-empty name, got ${describeValue(name)}`);
    }
    if (this.#byName.has(name)) {
      throw new RangeError(`name: state bit "${name}" is already claimed`);
    }
    let bit = -1;
    if (name === "plugged") bit = 1;
    else {
      const used = this.mask | PLUGGED;
      for (let b = 2; b < this.#max; b++) {
        if ((used & (1 << b)) === 0) {
          bit = b;
          break;
        }
      }
    }
    if (bit < 0 || bit >= this.#max) {
      throw new RangeError(
        `name: no state bit left for "${name}": the store holds at most ${this.#max} bits and ` +
          `these are claimed: ${[...this.#byName.keys()].join(", ")}`,
      );
    }
    this.#grow(bit, options.granularity ?? 1);
    this.#byName.set(name, 1 << bit);
    this.#mask |= 1 << bit;
    this.#granularity.set(name, options.granularity ?? 1);
    return 1 << bit;
  }

  /** The mask of the bit claimed as `name`, or undefined. */
  get(name: string): number | undefined {
    return this.#byName.get(name);
  }

  /** Pages one stored bit of `name` stands for, as claimed (1 unless given), or undefined. */
  granularity(name: string): number | undefined {
    if (!this.#byName.has(name)) return undefined;
    return this.#granularity.get(name) ?? 1;
  }

  /** Every claimed bit, by name. */
  entries(): [string, number][] {
    return [...this.#byName.entries()];
  }

  /** The union of all claimed bits. */
  get mask(): number {
    return this.#mask;
  }

  /** The built-in bits nobody claimed: every page counts as having them set. */
  get implied(): number {
    return IMPLIED_WHEN_UNCLAIMED & ~this.mask;
  }
}
