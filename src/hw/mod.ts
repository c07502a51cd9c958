/**
 * What the plugins drive: the backend interfaces (KVM, guest_memfd, VFIO
 * type1, iommufd), the typed hardware error, and a region's backing (a
 * guest_memfd, a shared memfd and the memslot binding them). The simulated
 * kernels are in `sim/`, the real Linux backend in `linux/`.
 *
 * @module
 */

export * from "./backend.ts";
export { type Errno, ERRNO_NUMBERS, errnoName, HwError, type HwErrorDetails } from "./errors.ts";
export {
  createRegionBacking,
  defaultGuestMemfdFlags,
  type RegionBacking,
  type RegionBackingSpec,
  type SeparateRegionBacking,
} from "./region_backing.ts";
