/**
 * memstate: track and propagate the shared / private / plugged state of a
 * confidential VM's memory.
 *
 * The state store keeps one small state word per guest page as maximal runs in
 * a B-tree, so its memory grows with fragmentation instead of guest size. The
 * {@link BitmapStore} keeps QEMU's per-page bitmaps as a baseline and oracle.
 *
 * @example Track a 1 TiB guest whose firmware and SWIOTLB pool are shared
 * ```ts
 * import { RangeTreeStore } from "@cvm/memstate";
 *
 * const PAGE = 4096;
 * const SHARED = 1;
 * const store = new RangeTreeStore(2 ** 40 / PAGE, { bits: 2 }); // all private
 * store.update(0, (2 * 2 ** 20) / PAGE, SHARED, 0); // first 2 MiB shared
 * store.update(2 ** 20, 2 ** 20 + 16384, SHARED, 0); // a 64 MiB SWIOTLB pool at 4 GiB
 * console.log(store.runCount, "runs,", store.byteSize(), "bytes");
 * ```
 *
 * @module
 */

export * from "./src/store/mod.ts";
export { Prng, seedFromEnv } from "./src/util/prng.ts";
