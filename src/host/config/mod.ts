/**
 * Host configurations: the normalized shape, the loader with its messages
 * (file, field path, rule), the rules that tie a configuration to its VMM
 * policy and kernel, which devices share a container, and the start-up
 * capacity checks.
 *
 * @module
 */

export type {
  BackendKind,
  BackingKind,
  ConversionExit,
  DeviceConfig,
  DeviceTiming,
  GeneratorWorkload,
  HostConfig,
  InitialState,
  IommufdDeviceConfig,
  KvmConfig,
  PluginModuleConfig,
  RegionConfig,
  StoreKind,
  TraceWorkload,
  Type1DeviceConfig,
  VirtioMemDeviceConfig,
  WorkloadConfig,
  WorkloadName,
} from "./schema.ts";
export { WORKLOAD_NAMES } from "./schema.ts";
export { ConfigError, type ConfigIssue } from "./errors.ts";
export { loadHostConfig, parseHostConfig, withTraceRegions } from "./load.ts";
export {
  capacityChecks,
  type CapacityFindings,
  type CapacityProblem,
  type1DeviceBudget,
} from "./capacity.ts";
export { settingsProblems } from "./settings_rules.ts";
export {
  containerKey,
  type ContainerPlan,
  type DmaDeviceConfig,
  planContainers,
  sharedContainerNotices,
} from "./containers.ts";
