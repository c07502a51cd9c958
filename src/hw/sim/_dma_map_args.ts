/**
 * The MAP argument rule VFIO type1 and iommufd share: 4 KiB alignment of
 * iova, vaddr and size (`EINVAL`). One copy, so the two simulators cannot
 * drift apart. type1 checks the three together ({@link checkDmaMapAlignment},
 * after its size and wrap checks); iommufd one at a time, each where Linux
 * 6.18's iommufd checks it ({@link checkMapAlignment}; the order is in the
 * module doc of iommufd.ts).
 *
 * @module
 */

import { HwError } from "../errors.ts";
import { hex, isAligned } from "../u64.ts";

/** The smallest IOMMU page both interfaces align to. */
const IOMMU_PAGE = 4096;

/** `EINVAL` unless iova, vaddr and size of a map are all multiples of the 4 KiB IOMMU page. */
export function checkDmaMapAlignment(op: string, iova: number, vaddr: number, size: number): void {
  if (
    !isAligned(iova, IOMMU_PAGE) || !isAligned(vaddr, IOMMU_PAGE) || !isAligned(size, IOMMU_PAGE)
  ) {
    throw new HwError(
      op,
      "EINVAL",
      `iova ${hex(iova)}, vaddr ${hex(vaddr)} and size ${hex(size)} must be 4 KiB aligned`,
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
