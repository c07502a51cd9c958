/**
 * The simulated kernels: KVM (memslots, memory attributes, guest_memfd, memfd),
 * VFIO type1 and iommufd, with the kernel's rules and errno values, a shared
 * host address space with page pins, and fault injection.
 *
 * @example Map guest memory for DMA and watch in-place conversion refuse while it is pinned
 * ```ts
 * import assert from "node:assert/strict";
 * import { SimKvm, SimType1Container } from "./mod.ts";
 * import { GUEST_MEMFD_FLAG_INIT_SHARED, GUEST_MEMFD_FLAG_MMAP, KVM_MEMORY_ATTRIBUTE_PRIVATE } from "../backend.ts";
 * import { HwError } from "../errors.ts";
 *
 * const kvm = new SimKvm({ kernel: "proposed" }); // in-place conversion is not in mainline
 * const gmem = kvm.createGuestMemfd(2 ** 21, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED);
 * const type1 = new SimType1Container({ host: kvm.host });
 * type1.map(0, gmem.hostAddress, 4096);
 * // The IOMMU pins the first page, so converting it in place must wait: unmap first.
 * assert.throws(
 *   () => gmem.setAttributes(0, 2 ** 21, KVM_MEMORY_ATTRIBUTE_PRIVATE),
 *   (e) => e instanceof HwError && e.errno === "EAGAIN" && e.errorOffset === 0,
 * );
 * type1.unmap(0, 4096);
 * gmem.setAttributes(0, 2 ** 21, KVM_MEMORY_ATTRIBUTE_PRIVATE);
 * assert.equal(gmem.getAttributes(0), KVM_MEMORY_ATTRIBUTE_PRIVATE);
 * ```
 *
 * @module
 */

export { FaultInjector, type FaultTarget, SIM_OPERATIONS, type SimOperation } from "./faults.ts";
export {
  HOST_ADDRESS_LIMIT,
  HOST_PAGE_SIZE,
  type HostMappingOwner,
  type LockedCounter,
  type ReserveOptions,
  SimHost,
  type SimHostOptions,
} from "./host_memory.ts";
export { type AttributeRun, SimMemoryAttributes } from "../memory_attributes.ts";
export {
  type FileAttributeRun,
  SimFileBase,
  type SimFileOptions,
  SimGuestMemfd,
  type SimGuestMemfdOptions,
  SimMemoryFile,
} from "./memory_file.ts";
export {
  DEFAULT_SIM_CAPABILITIES,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  KVM_USER_MEM_SLOTS,
  SimKvm,
  type SimKvmOptions,
  type SimKvmStats,
  type SimMemslot,
} from "./kvm_vm.ts";
export {
  DEFAULT_DMA_ENTRY_LIMIT,
  SimType1Container,
  type SimType1Options,
  type SimType1Stats,
  TYPE1_PAGE_SIZE,
} from "./type1.ts";
export { type ReservedRange, SimIoas, type SimIoasOptions, type SimIoasStats } from "./iommufd.ts";
export {
  type AreaFootprint,
  type AreaShape,
  contiguousRunCalls,
  countEntries,
  ENTRIES_PER_TABLE,
  type EntryCounts,
  IO_PAGE_1G,
  IO_PAGE_2M,
  IO_PAGE_4K,
  IoPageTable,
  type IoPageTableOptions,
  largestEntry,
  type UnmapCalls,
} from "./io_page_table.ts";
export { U64_MAX } from "../u64.ts";
