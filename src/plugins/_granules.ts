/**
 * Mapping a section one granule at a time, the way QEMU's VFIO listener does
 * so that it can later unmap at that granularity (hw/vfio/listener.c
 * `vfio_ram_discard_notify_populate`: one map per granularity chunk). Shared
 * by the type1 plugin and iommufd without cut_mapping. A failed map is undone
 * as QEMU undoes it: ONE unmap over the section being populated (it calls
 * `vfio_ram_discard_notify_discard` on that section), which removes every
 * granule mapped so far. QEMU makes that unmap even when the first granule
 * failed and nothing was mapped (the QEMU policies' `failedMapAlwaysUnmaps`),
 * and an unmap that fails there is reported and ignored: the populate fails
 * with the map's error. memstate skips the unmap when nothing was mapped, and
 * an unmap that fails there leaves granules mapped that the store says are
 * not: the populate throws a {@link ListenerUndoError}, and the bus fails the
 * region rather than take the refusal as a clean one.
 *
 * @module
 */

import { ListenerUndoError } from "../bus/errors.ts";
import type { Region } from "../bus/region.ts";
import { vmmRules } from "../settings/vmm.ts";

/**
 * Maps `[offset, offset + size)` of `region` in `granule` steps; on failure
 * unmaps the whole section with one `unmapRange` call and rethrows the map's
 * error, as `region`'s policy says (see the module documentation); `listener`
 * names the plugin in a {@link ListenerUndoError}. The policy is read only
 * when a map fails: populates that succeed pay nothing for it.
 */
export function mapGranules(
  listener: string,
  region: Region,
  offset: number,
  size: number,
  granule: number,
  map: (offset: number) => void,
  unmapRange: (offset: number, size: number) => void,
): void {
  let done = offset;
  try {
    for (; done < offset + size; done += granule) map(done);
  } catch (e) {
    if (vmmRules(region.vmm).failedMapAlwaysUnmaps) {
      // hw/vfio/listener.c vfio_ram_discard_notify_populate: the discard of the section comes
      // whatever was mapped, and vfio_ram_discard_notify_discard only reports a failed unmap.
      try {
        unmapRange(offset, size);
      } catch {
        // Reported and ignored by QEMU; the populate fails with the map's error below.
      }
    } else if (done > offset) {
      try {
        unmapRange(offset, size);
      } catch (undo) {
        throw new ListenerUndoError(listener, e, undo);
      }
    }
    throw e;
  }
}
