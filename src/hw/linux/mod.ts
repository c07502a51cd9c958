/**
 * The real Linux backend: KVM, guest_memfd and memfd through Deno FFI.
 *
 * Importing this module loads nothing and needs no permissions; libc is
 * dlopened on the first call that needs it. Using the backend needs
 * `--allow-ffi --allow-read=/dev/kvm --allow-write=/dev/kvm`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openLinuxKvm, probeKvm } from "./mod.ts";
 *
 * const probe = probeKvm(); // never throws: says why the backend cannot be used
 * if (probe.available) {
 *   using kvm = openLinuxKvm();
 *   // Every part the kernel lacks is emulated, with one notice that says why.
 *   const emulated = Object.values(kvm.realParts).filter((real) => !real);
 *   assert.equal(kvm.notices.length, emulated.length);
 * } else {
 *   assert.ok(probe.reason);
 * }
 * ```
 *
 * @module
 */

export { LinuxKvm, type LinuxKvmOptions, openLinuxKvm, type RealParts } from "./linux_kvm.ts";
export { type KvmProbe, probeKvm } from "./probe.ts";
export {
  createRegionBacking,
  defaultGuestMemfdFlags,
  type RegionBacking,
  type RegionBackingSpec,
  type SeparateRegionBacking,
} from "../region_backing.ts";
// The shared types the backend's signatures use, so this module documents on its own.
export type {
  AttributeSpan,
  GuestMemfd,
  KvmBackend,
  KvmCapabilities,
  MemoryFile,
  MemslotSpec,
} from "../backend.ts";
