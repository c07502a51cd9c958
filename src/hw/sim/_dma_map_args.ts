/**
 * The MAP argument rules VFIO type1 and iommufd share: size > 0 and 4 KiB
 * alignment of iova, vaddr and size (`EINVAL`), and no wrap past 2^64
 * (`EOVERFLOW`). One copy, so the two simulators cannot drift apart.
 *
 * type1 applies them together ({@link checkDmaMapArguments}, after its own wrap
 * check). iommufd applies them one at a time, each where Linux 6.18's
 * iommufd checks it ({@link checkMapAlignment}; the order is in the module doc
 * of iommufd.ts).
 *
 * @module
 */

import { HwError } from "../errors.ts";
import { hex, isAligned, wrapsU64 } from "../u64.ts";

/** The smallest IOMMU page both interfaces align to. */
const IOMMU_PAGE = 4096;

/** Throws the errno the kernel returns for a malformed map of `[iova, iova + size)`. */
export function checkDmaMapArguments(op: string, iova: number, vaddr: number, size: number): void {
  if (size === 0) throw new HwError(op, "EINVAL", "size must not be 0");
  if (
    !isAligned(iova, IOMMU_PAGE) || !isAligned(vaddr, IOMMU_PAGE) || !isAligned(size, IOMMU_PAGE)
  ) {
    throw new HwError(
      op,
      "EINVAL",
      `iova ${hex(iova)}, vaddr ${hex(vaddr)} and size ${hex(size)} must be 4 KiB aligned`,
    );
  }
  if (wrapsU64(iova, size) || wrapsU64(vaddr, size)) {
    throw new HwError(
      op,
      "EOVERFLOW",
      `iova ${hex(iova)} or vaddr ${hex(vaddr)} + size ${hex(size)} wraps past 2^64`,
    );
  }
}

/** `EINVAL` unless the MAP argument `name` (`value`) is a multiple of the 4 KiB IOMMU page. */
export function checkMapAlignment(
  op: string,
  name: "iova" | "vaddr" | "size",
  value: number,
): void {
  if (!isAligned(value, IOMMU_PAGE)) {
    throw new HwError(op, "EINVAL", `${name} ${hex(value)} must be 4 KiB aligned`);
  }
}
