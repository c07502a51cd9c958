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
 * do, so two entries of one kind that follow the same regions would be one
 * container there, whose mappings and pins count once. The report says so
 * where it applies: the counts are per entry, as if each device had an
 * address space of its own.
 *
 * @module
 */

import type { DeviceConfig } from "./config/schema.ts";

/** One notice per group of same-kind DMA devices following the same regions. */
export function separateContainerNotices(devices: readonly DeviceConfig[]): string[] {
  const groups = new Map<string, { kind: "type1" | "iommufd"; names: string[] }>();
  for (const d of devices) {
    if (d.type === "virtio-mem") continue;
    const key = `${d.type}\n${[...d.regions].sort().join("\n")}`;
    const group = groups.get(key);
    if (group) group.names.push(d.name);
    else groups.set(key, { kind: d.type, names: [d.name] });
  }
  const notices: string[] = [];
  for (const { kind, names } of groups.values()) {
    if (names.length < 2) continue;
    const what = kind === "type1"
      ? "one VFIO container (hw/vfio/container.c vfio_container_connect)"
      : "one IOAS when they use one iommufd object (hw/vfio/iommufd.c iommufd_cdev_attach)";
    notices.push(
      `${kind} devices ${listNames(names)} follow the same regions: QEMU puts the devices of ` +
        `one address space in ${what}, where their mappings and pinned memory count once; ` +
        `here each is ${kind === "type1" ? "a container" : "an IOAS"} of its own, as with an ` +
        `address space each (one device entry models them sharing)`,
    );
  }
  return notices;
}

/** `a and b`, `a, b and c`. */
function listNames(names: readonly string[]): string {
  return names.length === 2
    ? `${names[0]} and ${names[1]}`
    : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}
