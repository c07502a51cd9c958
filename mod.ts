/**
 * memstate: track and propagate the shared / private / plugged state of a
 * confidential VM's memory.
 *
 * This entry point is what a library user needs: the state stores, the
 * {@link Region} and the bus types (listeners, views, errors, snapshots), the
 * built-in plugin factories and the {@link Plugin} / {@link Listener} contract
 * (with {@link definePlugin} for writing your own), and the backend
 * interfaces the plugins drive. Importing it loads neither zod nor FFI code.
 * The rest lives behind subpath exports:
 *
 * - `@cvm/memstate/sim`: the simulated kernels (KVM, VFIO type1, iommufd) and
 *   fault injection;
 * - `@cvm/memstate/linux`: the real /dev/kvm backend (Deno FFI);
 * - `@cvm/memstate/host`: host configurations, workloads, trace readers, the
 *   runner and reports;
 * - `@cvm/memstate/cli`: the command line.
 *
 * The state store keeps one small state word per guest page as maximal runs in
 * a B-tree, so its memory grows with fragmentation instead of guest size. The
 * {@link BitmapStore} keeps QEMU's per-page bitmaps as a baseline and oracle.
 *
 * @example Track a 1 TiB guest whose firmware and SWIOTLB pool are shared
 * ```ts
 * import assert from "node:assert/strict";
 * import { RangeTreeStore } from "@cvm/memstate";
 *
 * const PAGE = 4096;
 * const SHARED = 1;
 * const store = new RangeTreeStore(2 ** 40 / PAGE, { bits: 2 }); // all private
 * store.update(0, (2 * 2 ** 20) / PAGE, SHARED, 0); // first 2 MiB shared
 * store.update(2 ** 20, 2 ** 20 + 16384, SHARED, 0); // a 64 MiB SWIOTLB pool at 4 GiB
 * assert.deepEqual([...store.runs(0, 2 ** 20 + 16384)], [
 *   { start: 0, end: 512, state: SHARED },
 *   { start: 512, end: 2 ** 20, state: 0 },
 *   { start: 2 ** 20, end: 2 ** 20 + 16384, state: SHARED },
 * ]);
 * assert.equal(store.runCount, 4); // and private to the end
 * assert.ok(store.byteSize() < 4096); // the bitmap would take 32 MiB per bit
 * ```
 *
 * @example Order a conversion across KVM and a DMA listener, with rollback
 * ```ts
 * import assert from "node:assert/strict";
 * import { ConversionError, DMA_VIEW, KVM_VIEW, type Listener, Region } from "@cvm/memstate";
 *
 * const region = new Region({ name: "ram", size: 2 ** 30 }); // 1 GiB, all private
 * const calls: string[] = [];
 * let iommuFull = false;
 * const kvm: Listener = {
 *   name: "kvm",
 *   priority: 0,
 *   view: KVM_VIEW,
 *   populate: (s) => calls.push(`kvm shared ${s.offset}`),
 *   discard: (s) => calls.push(`kvm private ${s.offset}`),
 * };
 * const dma: Listener = {
 *   name: "dma",
 *   priority: 10,
 *   view: DMA_VIEW,
 *   populate: (s) => {
 *     if (iommuFull) throw new Error("no DMA entry left");
 *     calls.push(`dma map ${s.offset}`);
 *   },
 *   discard: (s) => calls.push(`dma unmap ${s.offset}`),
 * };
 * region.register(kvm);
 * region.register(dma);
 * region.convert(0, 4096, "shared"); // kvm first, then dma maps
 * region.convert(0, 4096, "private"); // dma unmaps first, then kvm
 * assert.deepEqual(calls, ["kvm shared 0", "dma map 0", "dma unmap 0", "kvm private 0"]);
 *
 * // The DMA listener refuses: KVM is rolled back and the store is untouched.
 * calls.length = 0;
 * iommuFull = true;
 * assert.throws(() => region.convert(8192, 4096, "shared"), ConversionError);
 * assert.deepEqual(calls, ["kvm shared 8192", "kvm private 8192"]);
 * assert.equal(region.isPopulated({ offset: 8192, size: 4096 }, KVM_VIEW), false);
 * ```
 *
 * @module
 */

export * from "./src/store/mod.ts";
export * from "./src/bus/mod.ts";
export * from "./src/plugins/mod.ts";
export * from "./src/hw/backend.ts";
export {
  type Errno,
  ERRNO_NUMBERS,
  errnoName,
  HwError,
  type HwErrorDetails,
} from "./src/hw/errors.ts";
// The types the KVM attributes plugin's signatures name (the code is in /linux and /sim).
export type {
  RegionBacking,
  RegionBackingSpec,
  SeparateRegionBacking,
} from "./src/hw/region_backing.ts";
export * from "./src/settings/mod.ts";
