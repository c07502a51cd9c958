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
 * One notice per group of same-kind DMA devices (type1, iommufd) whose
 * attached stretches meet, directly or through others: QEMU would put each
 * such group in one container whatever regions each follows here, since a
 * device's listener follows every RAM section of its address space
 * (following only some is memstate's own), and a container goes when its
 * last device leaves.
 */
export function separateContainerNotices(devices: readonly DeviceConfig[]): string[] {
  const notices: string[] = [];
  for (const kind of ["type1", "iommufd"] as const) {
    const of = devices.filter((d): d is DeviceConfig & { type: typeof kind } => d.type === kind)
      .sort((a, b) => from(a) - from(b));
    // Sweep by start: a device joins the group while it starts before the group's last end.
    let group: typeof of = [];
    let end = -Infinity;
    const groups: (typeof of)[] = [];
    for (const d of of) {
      if (from(d) >= end && group.length > 0) {
        groups.push(group);
        group = [];
      }
      group.push(d);
      end = Math.max(end, until(d));
    }
    if (group.length > 0) groups.push(group);
    for (const together of groups) {
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
  }
  return notices;
}

/** The event a device arrives at (0: attached from the start). */
const from = (d: DeviceTiming) => d.attachAt ?? 0;
/** The event a device leaves at (Infinity: never); at one event, leaving goes first. */
const until = (d: DeviceTiming) => d.detachAt ?? Infinity;

/** `a and b`, `a, b and c`. */
function listNames(names: readonly string[]): string {
  return names.length === 2
    ? `${names[0]} and ${names[1]}`
    : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}
