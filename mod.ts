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
 * @example Order a conversion across KVM and a DMA listener, with rollback
 * ```ts
 * import { DMA_VIEW, KVM_VIEW, type Listener, Region } from "@cvm/memstate";
 *
 * const region = new Region({ name: "ram", size: 2 ** 30 }); // 1 GiB, all private
 * const calls: string[] = [];
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
 *   populate: (s) => calls.push(`dma map ${s.offset}`),
 *   discard: (s) => calls.push(`dma unmap ${s.offset}`),
 * };
 * region.register(kvm);
 * region.register(dma);
 * region.convert(0, 2 ** 21, "shared"); // kvm first, then dma maps
 * region.convert(0, 2 ** 21, "private"); // dma unmaps first, then kvm
 * console.log(calls);
 * ```
 *
 * @module
 */

export * from "./src/store/mod.ts";
export * from "./src/bus/mod.ts";
export * from "./src/plugins/mod.ts";
export * from "./src/hw/sim/mod.ts";
export {
  createRegionBacking,
  defaultGuestMemfdFlags,
  type KvmProbe,
  LinuxKvm,
  type LinuxKvmOptions,
  openLinuxKvm,
  probeKvm,
  type RealParts,
  type RegionBacking,
  type RegionBackingSpec,
  type SeparateRegionBacking,
} from "./src/hw/linux/mod.ts";
export * from "./src/hw/backend.ts";
export {
  type Errno,
  ERRNO_NUMBERS,
  errnoName,
  HwError,
  type HwErrorDetails,
} from "./src/hw/errors.ts";
export * from "./src/host/mod.ts";
export { Prng, seedFromEnv } from "./src/util/prng.ts";
export * from "./src/settings/mod.ts";

// The report's latency and timelines, and the interactive HTML report.
export {
  type LatencyBucket,
  LatencyHistogram,
  type LatencyReport,
} from "./src/host/report/latency.ts";
export {
  type DeviceTimeline,
  type RegionTimeline,
  type RunProbe,
  RunRecorder,
  type TimelineReport,
} from "./src/host/report/recorder.ts";
export {
  type HtmlDevice,
  type HtmlMapping,
  type HtmlRegion,
  type HtmlReportInput,
  type HtmlReportOptions,
  renderHostHtml,
  renderHtmlReport,
} from "./src/host/report/html.ts";
export type { PageRun } from "./src/host/report/density.ts";
