/**
 * Mapping a section one granule at a time, the way QEMU's VFIO listener does
 * so that it can later unmap at that granularity. Shared by the type1 plugin
 * and iommufd's comparison mode. Each helper undoes its own partial work
 * before rethrowing, as the listener contract requires.
 *
 * @module
 */

/** Maps `[offset, offset + size)` in `granule` steps; on failure unmaps what it mapped. */
export function mapGranules(
  offset: number,
  size: number,
  granule: number,
  map: (offset: number) => void,
  unmap: (offset: number) => void,
): void {
  let done = offset;
  try {
    for (; done < offset + size; done += granule) map(done);
  } catch (e) {
    for (let o = done - granule; o >= offset; o -= granule) unmap(o);
    throw e;
  }
}

/** Unmaps `[offset, offset + size)` in `granule` steps; on failure remaps what it unmapped. */
export function unmapGranules(
  offset: number,
  size: number,
  granule: number,
  map: (offset: number) => void,
  unmap: (offset: number) => void,
): void {
  // Undoing an unmap is mapping again: the same walk with the roles swapped.
  mapGranules(offset, size, granule, unmap, map);
}
