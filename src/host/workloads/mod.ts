/**
 * Workloads: named, seeded generators of host events, and their registry.
 *
 * @module
 */

export {
  type DeviceEvent,
  type HostEvent,
  type ParamLimit,
  type Workload,
  type WorkloadContext,
  WorkloadError,
  type WorkloadParam,
} from "./workload.ts";
export {
  checkParamLimits,
  checkParams,
  checkWorkloadEvents,
  estimateWorkload,
  generateWorkload,
  MAX_WORKLOAD_EVENTS,
  type ParamField,
  workloadByName,
  WorkloadParamsError,
  WORKLOADS,
} from "./registry.ts";
export { boot } from "./boot.ts";
export { swiotlbChurn } from "./swiotlb_churn.ts";
export { dmaScatter } from "./dma_scatter.ts";
export { balloon } from "./balloon.ts";
export { hotplug } from "./hotplug.ts";
