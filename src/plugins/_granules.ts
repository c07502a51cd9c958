/**
 * Mapping a section one granule at a time, the way QEMU's VFIO listener does
 * so that it can later unmap at that granularity (hw/vfio/listener.c
 * `vfio_ram_discard_notify_populate`: one map per granularity chunk). Shared
 * by the type1 plugin and iommufd without cut_mapping. A failed map is undone
 * as QEMU undoes it: ONE unmap over the section being populated (it calls
 * `vfio_ram_discard_notify_discard` on that section), which removes every
 * granule mapped so far. QEMU makes that unmap even when the first granule
 * failed and nothing was mapped (`always`, the QEMU policies'
 * `failedMapAlwaysUnmaps`); memstate skips it then.
 *
 * @module
 */

import type { Region } from "../bus/region.ts";
import { vmmRules } from "../settings/vmm.ts";

/**
 * The `always` of {@link mapGranules} for `region`: whether its policy unmaps
 * a failed populate's section even when nothing was mapped (QEMU's do).
 */
export function alwaysUnmaps(region: Region): boolean {
  return vmmRules(region.vmm).failedMapAlwaysUnmaps;
}

/**
 * Maps `[offset, offset + size)` in `granule` steps; on failure unmaps the
 * whole section with one `unmapRange` call and rethrows. With `always` false
 * the unmap is skipped when the first granule failed (nothing to undo).
 */
export function mapGranules(
  offset: number,
  size: number,
  granule: number,
  map: (offset: number) => void,
  unmapRange: (offset: number, size: number) => void,
  always: boolean,
): void {
  let done = offset;
  try {
    for (; done < offset + size; done += granule) map(done);
  } catch (e) {
    if (always || done > offset) unmapRange(offset, size);
    throw e;
  }
}
