/**
 * The real Linux backend: /dev/kvm, guest_memfd, memfd and memslots through
 * Deno FFI into libc. Using it needs `--allow-ffi --allow-read=/dev/kvm
 * --allow-write=/dev/kvm`; {@link missingPermissions} names the flags that are
 * missing and {@link probeKvm} says whether the backend can run here, without
 * throwing.
 *
 * @example Probe, then open a VM when the kernel allows it
 * ```ts
 * import { openLinuxKvm, probeKvm } from "@cvm/memstate/linux";
 *
 * const probe = probeKvm();
 * if (probe.available) {
 *   using vm = openLinuxKvm();
 *   console.log(vm.realParts, vm.notices);
 * } else console.log(probe.reason);
 * ```
 *
 * @module
 */

export * from "./src/hw/linux/mod.ts";
export { KVM_DEVICE, missingPermissions } from "./src/hw/linux/permissions.ts";
// The types the backend's signatures name, documented with the main entry point.
export type * from "./mod.ts";
