/**
 * The kernel setting: which kernel features the simulated host has.
 * `linux-6.18` is mainline as on this project's machines; `proposed` adds the
 * unmerged series a confidential VM host is waiting for: guest_memfd in-place
 * conversion (KVM_SET_MEMORY_ATTRIBUTES2 on the file), iommufd `cut_mapping`
 * (the generic IOMMU page-table series) and INIT_SHARED guest_memfd beside
 * private memory. A configuration that needs a proposed feature on
 * `linux-6.18` is refused with a message that says so.
 *
 * @module
 */
import { describeValue } from "../util/text.ts";

/** A kernel setting name. */
export type KernelSetting = "linux-6.18" | "proposed";

/** Every {@link KernelSetting}, default first. */
export const KERNEL_SETTINGS: readonly KernelSetting[] = ["linux-6.18", "proposed"];

/** The default kernel. */
export const DEFAULT_KERNEL: KernelSetting = "linux-6.18";

/**
 * Memslots a VM may have on x86-64, what QEMU's `kvm_get_max_memslots()`
 * returns there: KVM_CAP_NR_MEMSLOTS = `KVM_USER_MEM_SLOTS` =
 * `KVM_MEM_SLOTS_NUM` (SHRT_MAX, include/linux/kvm_host.h) minus
 * `KVM_INTERNAL_MEM_SLOTS` (3, arch/x86/include/asm/kvm_host.h). The same on
 * both kernel settings.
 */
export const KVM_MAX_MEMSLOTS = 32764;

/** What a kernel setting provides; each field names where the rule lives. */
export interface KernelFeatures {
  /** The setting's name. */
  readonly name: KernelSetting;
  /**
   * guest_memfd in-place conversion: KVM_SET_MEMORY_ATTRIBUTES2 on the file
   * with EAGAIN and an error offset while a page is pinned (the guest_memfd
   * conversion series, v8 2026; not in mainline).
   */
  readonly inPlaceConversion: boolean;
  /**
   * iommufd can split an area hitlessly (`cut_mapping` in the generic IOMMU
   * page-table series; mainline splits only on the type1-v1 compat path,
   * drivers/iommu/iommufd/io_pagetable.c `iopt_cut_iova`).
   */
  readonly cutMapping: boolean;
  /**
   * GUEST_MEMFD_FLAG_INIT_SHARED on a VM with private memory. Mainline refuses
   * it there (virt/kvm/guest_memfd.c `kvm_gmem_get_supported_flags` offers it
   * only when `kvm_arch_supports_gmem_init_shared()`, which x86 defines as
   * `!kvm_arch_has_private_mem()`), and a memslot bound to an mmap-able
   * guest_memfd is guest_memfd-only (`KVM_MEMSLOT_GMEM_ONLY`).
   */
  readonly initSharedWithPrivate: boolean;
}

const LINUX_6_18: KernelFeatures = Object.freeze({
  name: "linux-6.18",
  inPlaceConversion: false,
  cutMapping: false,
  initSharedWithPrivate: false,
});

const PROPOSED: KernelFeatures = Object.freeze({
  name: "proposed",
  inPlaceConversion: true,
  cutMapping: true,
  initSharedWithPrivate: true,
});

const FEATURES: Record<KernelSetting, KernelFeatures> = {
  "linux-6.18": LINUX_6_18,
  "proposed": PROPOSED,
};

/** The features of `kernel`; throws a `RangeError` naming the known settings for anything else. */
export function kernelFeatures(kernel: KernelSetting | undefined): KernelFeatures {
  const features = FEATURES[kernel ?? DEFAULT_KERNEL];
  if (features === undefined) {
    throw new RangeError(
      `kernel: must be one of ${KERNEL_SETTINGS.join(", ")}, got ${describeValue(kernel)}`,
    );
  }
  return features;
}

/** The message that refuses `what` on a kernel without `feature`. */
export function needsProposed(what: string, kernel: KernelSetting): string {
  return `${what} needs the proposed kernel (the unmerged series), but the kernel is ${kernel}; ` +
    `set "kernel": "proposed" (or --kernel proposed) to model it`;
}
