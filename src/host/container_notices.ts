/**
 * What a host configuration's DMA devices would share under QEMU and do not
 * in memstate's model. Each type1 or iommufd entry is a container (an IOAS)
 * of its own, with its own mappings, pinned memory and `dma_entry_limit`.
 * QEMU puts the VFIO devices of one address space in one container: a type1
 * group joins the first container of the space that takes it
 * (hw/vfio/container.c `vfio_container_connect`: VFIO_GROUP_SET_CONTAINER on
 * each), an iommufd device the first container of the space on the same
 * iommufd object (hw/vfio/iommufd.c `iommufd_cdev_attach`). Without a vIOMMU
 * every device sits in the system address space, as a confidential guest's
 * do, so two entries of one kind attached at the same time would be one
 * container there, whose mappings and pins count once. The report says so
 * where it applies: the counts are per entry, as if each device had an
 * address space of its own.
 *
 * @module
 */

import type { DeviceConfig, DeviceTiming } from "./config/schema.ts";

/**
 * One notice per kind of DMA device (type1, iommufd) whose entries are
 * attached at the same time: QEMU would put them in one container whatever
 * regions each follows here, since a device's listener follows every RAM
 * section of its address space (following only some is memstate's own).
 */
export function separateContainerNotices(devices: readonly DeviceConfig[]): string[] {
  const notices: string[] = [];
  for (const kind of ["type1", "iommufd"] as const) {
    const of = devices.filter((d): d is DeviceConfig & { type: typeof kind } => d.type === kind);
    const together = of.filter((a) => of.some((b) => b !== a && overlap(a, b)));
    if (together.length < 2) continue;
    const what = kind === "type1"
      ? "one VFIO container (hw/vfio/container.c vfio_container_connect)"
      : "one IOAS when they use one iommufd object (hw/vfio/iommufd.c iommufd_cdev_attach)";
    notices.push(
      `${kind} devices ${listNames(together.map((d) => d.name))} are attached at the same ` +
        `time: QEMU puts the devices of one address space in ${what}, where their mappings ` +
        `and pinned memory count once; here each is ` +
        `${kind === "type1" ? "a container" : "an IOAS"} of its own, as with an address space ` +
        `each (one device entry following all their regions models them sharing)`,
    );
  }
  return notices;
}

/** Whether two devices' attached stretches (`attachAt` to `detachAt`, events) meet. */
function overlap(a: DeviceTiming, b: DeviceTiming): boolean {
  const from = (d: DeviceTiming) => d.attachAt ?? 0;
  const until = (d: DeviceTiming) => d.detachAt ?? Infinity;
  return from(a) < until(b) && from(b) < until(a);
}

/** `a and b`, `a, b and c`. */
function listNames(names: readonly string[]): string {
  return names.length === 2
    ? `${names[0]} and ${names[1]}`
    : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}
