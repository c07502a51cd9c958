/**
 * The built-in plugins: KVM attributes, VFIO type1, iommufd and virtio-mem,
 * and the types custom plugins implement.
 *
 * @module
 */

export { CapacityError, type Plugin, PluginCounters, type PluginStats } from "./plugin.ts";
export {
  kvmAttributes,
  type KvmAttributesOptions,
  type KvmAttributesPlugin,
  type KvmBinding,
} from "./kvm_attributes.ts";
export { vfioType1, type VfioType1Options } from "./vfio_type1.ts";
export { iommufd, type IommufdOptions } from "./iommufd.ts";
export {
  VIRTIO_MEM_USABLE_EXTENT,
  virtioMem,
  type VirtioMemDevice,
  type VirtioMemOptions,
  type VirtioMemResponse,
  type VirtioMemStateAnswer,
} from "./virtio_mem.ts";
