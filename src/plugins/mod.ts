/**
 * The built-in plugins: KVM attributes, VFIO type1, iommufd and virtio-mem,
 * and the types custom plugins implement.
 *
 * @module
 */

export {
  CapacityError,
  type DmaPlugin,
  type Plugin,
  PluginCounters,
  type PluginStats,
} from "./plugin.ts";
export {
  kvmAttributes,
  type KvmAttributesOptions,
  type KvmAttributesPlugin,
  type KvmBinding,
} from "./kvm_attributes.ts";
export { containerBudget, vfioType1, type VfioType1Options } from "./vfio_type1.ts";
export {
  type BudgetSection,
  describeBudget,
  type Type1Budget,
  type1Budget,
} from "./type1_budget.ts";
export { iommufd, type IommufdOptions } from "./iommufd.ts";
export {
  VIRTIO_MEM_MAX_NB_BLOCKS,
  VIRTIO_MEM_MIN_BLOCK_SIZE,
  VIRTIO_MEM_USABLE_EXTENT,
  virtioMem,
  type VirtioMemCheck,
  type VirtioMemDevice,
  type VirtioMemOptions,
  type VirtioMemResponse,
  type VirtioMemStateAnswer,
} from "./virtio_mem.ts";
export { type DefinedPlugin, definePlugin, type PluginContext, type PluginSpec } from "./define.ts";
