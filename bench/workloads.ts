/**
 * Named, seeded store workloads for the benchmark report: each is a list of
 * conversions (page ranges going shared or private) generated up front into
 * typed arrays, so timing measures the store and nothing else.
 *
 * Stores hold only the bits a region claims (see `StateStore.addBit`): a region
 * claims {@link SHARED} (guest_memfd) and, only when it has a virtio-mem
 * device, {@link PLUGGED}. None of these workloads has virtio-mem, so each
 * claims one bit ({@link Workload.bits}) and every page starts private
 * ({@link Workload.initial}): the honest baseline is a 1-bit bitmap, the
 * bitmap QEMU keeps for guest_memfd's shared state.
 *
 * - `boot`: a guest's boot-time conversions on a large region: firmware and
 *   ACPI ranges and per-vCPU GHCB pages in the first 4 GiB, a SWIOTLB pool,
 *   then scattered 2 MiB and 4 KiB shared buffers: a few thousand extents.
 * - `swiotlb-churn`: DMA-coherent buffers of 4 KiB to 256 KiB allocated
 *   (to shared) and freed (to private) at random inside a 1 GiB pool, with at
 *   most 512 live at a time, so the extents stay bounded while pages churn.
 * - `dma-scatter`: 1,000,000 random single 4 KiB pages over 16 GiB, each
 *   going shared or private at random: the adversarial case for extents.
 * - `2m-aligned`: 1,000,000 random 2 MiB-aligned 2 MiB ranges over 64 GiB,
 *   each going shared or private at random.
 *
 * @module
 */

import { Prng } from "../src/util/prng.ts";

/** Bytes per page. */
export const PAGE_SIZE = 4096;
/** The guest_memfd source's bit: set = shared. */
export const SHARED = 1;
/** The virtio-mem source's bit: set = plugged. */
export const PLUGGED = 2;

/**
 * State bits a region claims: {@link SHARED} always, {@link PLUGGED} only
 * with a virtio-mem device.
 */
export function claimedBits(virtioMem: boolean): number {
  return virtioMem ? 2 : 1;
}

/**
 * The state a region's pages start in: private; with virtio-mem also
 * plugged (as the benchmarks before the claimed-bits change had it). Without
 * virtio-mem a region treats every page as plugged without storing the bit.
 */
export function initialState(virtioMem: boolean): number {
  return virtioMem ? PLUGGED : 0;
}

/** Pages in `bytes` of guest memory. */
export function pagesOf(bytes: number): number {
  return bytes / PAGE_SIZE;
}

/** Conversions as parallel typed arrays: `[starts[i], ends[i])` goes shared when `toShared[i]`. */
export class Conversions {
  /** First page of each conversion. */
  starts: Float64Array;
  /** One past the last page of each conversion. */
  ends: Float64Array;
  /** 1: to shared, 0: to private. */
  toShared: Uint8Array;
  /** Number of conversions held. */
  length = 0;

  /** Room for `capacity` conversions (it grows as needed). */
  constructor(capacity = 1024) {
    this.starts = new Float64Array(capacity);
    this.ends = new Float64Array(capacity);
    this.toShared = new Uint8Array(capacity);
  }

  /** Appends the conversion of `[start, end)` to shared (`true`) or private. */
  push(start: number, end: number, toShared: boolean): void {
    if (this.length === this.starts.length) {
      const grow = <T extends Float64Array | Uint8Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.starts = grow(this.starts, (n) => new Float64Array(n));
      this.ends = grow(this.ends, (n) => new Float64Array(n));
      this.toShared = grow(this.toShared, (n) => new Uint8Array(n));
    }
    this.starts[this.length] = start;
    this.ends[this.length] = end;
    this.toShared[this.length] = toShared ? 1 : 0;
    this.length++;
  }
}

/** A generated workload: the region size and its conversions. */
export interface Workload {
  /** Short name, used as the report's row key. */
  name: string;
  /** One line saying what it models. */
  description: string;
  /** Pages of the region. */
  pages: number;
  /** State bits the region claims, so the bits both stores hold ({@link claimedBits}). */
  bits: number;
  /** The state every page starts in ({@link initialState}). */
  initial: number;
  /** The conversions, in order. */
  conversions: Conversions;
}

/**
 * Boot-time conversions on a region of `pages` pages (at least 8 GiB):
 * 16 firmware/ACPI ranges and 64 GHCB pages below 4 GiB, a SWIOTLB pool of
 * 6% of memory capped at 1 GiB at 4 GiB, 1,000 scattered 2 MiB-aligned 2 MiB
 * buffers and 2,000 scattered 4 KiB buffers.
 */
export function boot(pages: number, seed = 1): Workload {
  const rng = new Prng(seed);
  const conversions = new Conversions(4096);
  const low = pagesOf(4 * 2 ** 30);
  for (let i = 0; i < 16; i++) {
    const size = 1 + rng.int(64);
    const start = rng.int(low - size);
    conversions.push(start, start + size, true);
  }
  for (let i = 0; i < 64; i++) {
    const page = rng.int(low);
    conversions.push(page, page + 1, true);
  }
  const pool = Math.min(pagesOf(2 ** 30), Math.floor((pages * 0.06) / 512) * 512);
  conversions.push(low, low + pool, true);
  const hugePages = pages / 512;
  for (let i = 0; i < 1000; i++) {
    const start = rng.int(hugePages) * 512;
    conversions.push(start, start + 512, true);
  }
  for (let i = 0; i < 2000; i++) {
    const page = rng.int(pages);
    conversions.push(page, page + 1, true);
  }
  return {
    name: "boot",
    description: "firmware, GHCBs, SWIOTLB pool, 1,000 x 2 MiB + 2,000 x 4 KiB shared buffers",
    pages,
    bits: claimedBits(false),
    initial: initialState(false),
    conversions,
  };
}

/**
 * `count` conversions of DMA-coherent buffers (1 to 64 pages) inside a 1 GiB
 * pool at 8 GiB of a `pages`-page region: allocate (to shared) while fewer
 * than 512 are live and a coin says so, otherwise free a random live one.
 */
export function swiotlbChurn(pages: number, count = 200_000, seed = 2): Workload {
  const rng = new Prng(seed);
  const conversions = new Conversions(count);
  const poolStart = pagesOf(8 * 2 ** 30);
  const poolPages = pagesOf(2 ** 30);
  const liveStart: number[] = [];
  const liveEnd: number[] = [];
  for (let i = 0; i < count; i++) {
    if (liveStart.length === 0 || (liveStart.length < 512 && rng.chance(0.5))) {
      const size = 1 + rng.int(64);
      const start = poolStart + rng.int(poolPages - size);
      liveStart.push(start);
      liveEnd.push(start + size);
      conversions.push(start, start + size, true);
    } else {
      const k = rng.int(liveStart.length);
      conversions.push(liveStart[k], liveEnd[k], false);
      liveStart[k] = liveStart[liveStart.length - 1];
      liveEnd[k] = liveEnd[liveEnd.length - 1];
      liveStart.pop();
      liveEnd.pop();
    }
  }
  return {
    name: "swiotlb-churn",
    description: "4 KiB-256 KiB buffers flipping in a 1 GiB pool, at most 512 live",
    pages,
    bits: claimedBits(false),
    initial: initialState(false),
    conversions,
  };
}

/** `count` single random pages of a 16 GiB region, each to shared or private at random. */
export function dmaScatter(count = 1_000_000, seed = 3): Workload {
  const rng = new Prng(seed);
  const pages = pagesOf(16 * 2 ** 30);
  const conversions = new Conversions(count);
  for (let i = 0; i < count; i++) {
    const page = rng.int(pages);
    conversions.push(page, page + 1, rng.chance(0.5));
  }
  return {
    name: "dma-scatter",
    description: "1,000,000 random 4 KiB conversions over 16 GiB, random direction",
    pages,
    bits: claimedBits(false),
    initial: initialState(false),
    conversions,
  };
}

/** `count` random 2 MiB-aligned 2 MiB ranges over 64 GiB, each going either way at random. */
export function aligned2m(count = 1_000_000, seed = 4): Workload {
  const rng = new Prng(seed);
  const pages = pagesOf(64 * 2 ** 30);
  const conversions = new Conversions(count);
  for (let i = 0; i < count; i++) {
    const start = rng.int(pages / 512) * 512;
    conversions.push(start, start + 512, rng.chance(0.5));
  }
  return {
    name: "2m-aligned",
    description: "1,000,000 random 2 MiB-aligned 2 MiB conversions over 64 GiB, random direction",
    pages,
    bits: claimedBits(false),
    initial: initialState(false),
    conversions,
  };
}
