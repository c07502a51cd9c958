/**
 * The settings every run is made under: the VMM's policy (QEMU 10.1, QEMU
 * 11.1 or memstate's own), the kernel's features (mainline Linux 6.18 or the
 * proposed series) and the host's IOMMU (Intel VT-d or AMD v1), whose page
 * table the DMA containers map into. Rules cite their sources.
 *
 * @module
 */

export {
  DEFAULT_VMM,
  isQemu,
  VMM_POLICIES,
  type VmmPolicy,
  type VmmRules,
  vmmRules,
} from "./vmm.ts";
export {
  DEFAULT_KERNEL,
  KERNEL_SETTINGS,
  type KernelFeatures,
  kernelFeatures,
  type KernelSetting,
  KVM_MAX_MEMSLOTS,
  needsProposed,
} from "./kernel.ts";
export {
  checkIommu,
  DEFAULT_IOMMU,
  IOMMU_SETTINGS,
  type IommuSetting,
  type IoPageTableRules,
  ioPageTableRules,
  type ReservedIova,
  reservedIova,
} from "./iommu.ts";
