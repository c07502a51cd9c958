/**
 * The two settings every run is made under: the VMM's policy (QEMU 10.1,
 * QEMU 11.1 or memstate's own) and the kernel's features (mainline Linux 6.18
 * or the proposed series). Rules cite their sources.
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
