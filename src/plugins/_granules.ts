/**
 * Mapping a section one granule at a time, the way QEMU's VFIO listener does
 * so that it can later unmap at that granularity (hw/vfio/listener.c
 * `vfio_ram_discard_notify_populate`: one map per granularity chunk). Shared
 * by the type1 plugin and iommufd without cut_mapping. A failed map is undone
 * as QEMU undoes it: ONE unmap over the section being populated (it calls
 * `vfio_ram_discard_notify_discard` on that section), which removes every
 * granule mapped so far.
 *
 * @module
 */

/**
 * Maps `[offset, offset + size)` in `granule` steps; on failure unmaps the
 * whole section with one `unmapRange` call and rethrows.
 */
export function mapGranules(
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
    if (done > offset) unmapRange(offset, size);
    throw e;
  }
}
