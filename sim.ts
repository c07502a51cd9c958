/**
 * The simulated kernels: KVM with guest_memfd and memory attributes
 * ({@link SimKvm}), VFIO type1 containers ({@link SimType1Container}) and
 * iommufd IO address spaces ({@link SimIoas}), over one simulated host process
 * ({@link SimHost}). They reproduce the kernel's rules and errno values and take
 * a {@link FaultInjector} to fail the Nth call of an operation, or calls with a
 * seeded probability.
 *
 * @example Fail the third type1 map
 * ```ts
 * import { FaultInjector, SimType1Container } from "@cvm/memstate/sim";
 *
 * const faults = new FaultInjector();
 * const container = new SimType1Container({ faults });
 * faults.failNth("type1.map", 3, "ENOMEM"); // the third map from now fails
 * ```
 *
 * @module
 */

export * from "./src/hw/sim/mod.ts";
export { createRegionBacking, defaultGuestMemfdFlags } from "./src/hw/mod.ts";
export * from "./src/util/mod.ts";
// The types the simulators' signatures name, documented with the main entry point.
export type * from "./mod.ts";
