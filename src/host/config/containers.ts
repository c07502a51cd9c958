/**
 * Which DMA devices of a host configuration share a container.
 *
 * QEMU puts the VFIO devices of one address space in one container: a type1
 * group joins the first container of the space that takes it
 * (hw/vfio/container.c `vfio_container_connect`: VFIO_GROUP_SET_CONTAINER on
 * each), an iommufd device the first container of the space on the same
 * iommufd object (hw/vfio/iommufd.c `iommufd_cdev_attach`). Without a vIOMMU
 * every device sits in the system address space, as a confidential guest's
 * do. So the type1 devices of a host share one container, and its iommufd
 * devices one IOAS per iommufd object (their `iommufd` field, QEMU's
 * `iommufd=` property): one plugin and one simulated container, whose
 * mappings, pins and `dma_entry_limit` count once. type1 devices that give
 * the same `container` value share a container of that name, apart from the
 * default one: a memstate option QEMU has no way to express (refused under
 * QEMU policies, settings_rules.ts). A type1 device and an iommufd device never
 * share.
 *
 * A container follows every region one of its attached devices follows:
 * under QEMU policies every device follows every region, so that is all of
 * them; under memstate's, a device's `region` list is its own option, and a
 * region joins the container when the first device that follows it arrives
 * and leaves it when the last one goes.
 *
 * In the kernel, a device joining a container maps nothing: a type1 group
 * attaches to the container's domain when it fits (drivers/vfio/vfio_iommu_type1.c
 * `vfio_iommu_type1_attach_group`: "Try to match an existing compatible
 * domain", same iommu_ops and cache coherency), an iommufd device to the
 * container's hardware page table (QEMU `iommufd_cdev_autodomains_get`: "Try
 * to find a domain"). memstate models hosts whose IOMMUs all fit one domain;
 * an IOMMU that does not gets a domain of its own, into which type1 replays
 * every mapping (`vfio_iommu_replay`). The container goes when its last device
 * leaves (`vfio_container_disconnect`, `iommufd_cdev_detach`).
 *
 * @module
 */

import type { DeviceConfig, IommufdDeviceConfig, Type1DeviceConfig } from "./schema.ts";

/** A DMA device: the kinds that map into a container. */
export type DmaDeviceConfig = Type1DeviceConfig | IommufdDeviceConfig;

/** One container (type1) or IOAS (iommufd) and the devices that share it. */
export interface ContainerPlan {
  /** The container's name: its first device's, which is also its plugin's. */
  name: string;
  /** Its kind. */
  kind: DmaDeviceConfig["type"];
  /** Its devices in configuration order; the first one's settings are the container's. */
  devices: DmaDeviceConfig[];
  /** The regions it may follow: every region one of its devices follows, first named first. */
  regions: string[];
}

/**
 * The containers of `devices`: the DMA devices grouped by
 * {@link containerKey}, in the order of each group's first device. Devices of
 * a group agree on the container's settings in a validated configuration
 * (validate_devices.ts, settings_rules.ts); where they do not, the first
 * device's win.
 */
export function planContainers(devices: readonly DeviceConfig[]): ContainerPlan[] {
  const plans = new Map<string, ContainerPlan>();
  for (const d of devices) {
    if (d.type === "virtio-mem") continue;
    const key = containerKey(d);
    const plan = plans.get(key);
    if (plan === undefined) {
      plans.set(key, { name: d.name, kind: d.type, devices: [d], regions: [...d.regions] });
      continue;
    }
    plan.devices.push(d);
    for (const r of d.regions) if (!plan.regions.includes(r)) plan.regions.push(r);
  }
  return [...plans.values()];
}

/**
 * What tells containers apart: the kind, then a type1 device's `container`
 * or an iommufd device's `iommufd` (absent: the kind's one shared
 * container). JSON keeps the parts apart, so no field value can forge
 * another's key.
 */
export function containerKey(
  d: { type: "type1"; container?: string } | { type: "iommufd"; iommufd?: string },
): string {
  return JSON.stringify([d.type, (d.type === "type1" ? d.container : d.iommufd) ?? null]);
}

/**
 * One notice per container that more than one device shares, naming them and
 * the name the report gives it, since the report's rows are per container.
 */
export function sharedContainerNotices(plans: readonly ContainerPlan[]): string[] {
  return plans.filter((p) => p.devices.length > 1).map((p) => {
    const names = listNames(p.devices.map((d) => d.name));
    const named = p.devices[0].type === "type1" ? p.devices[0].container : undefined;
    if (named !== undefined) {
      return `type1 devices ${names} share the container their "container" field names ` +
        `(${JSON.stringify(named)}, memstate's option), reported as ${p.name}: their mappings, ` +
        `pinned memory and dma_entry_limit count once`;
    }
    return p.kind === "type1"
      ? `type1 devices ${names} share one VFIO container, reported as ${p.name}: QEMU puts ` +
        `the devices of one address space in one (hw/vfio/container.c vfio_container_connect), ` +
        `so their mappings, pinned memory and dma_entry_limit count once`
      : `iommufd devices ${names} share one IOAS, reported as ${p.name}: QEMU puts the devices ` +
        `of one address space on one iommufd object in one (hw/vfio/iommufd.c ` +
        `iommufd_cdev_attach), so their mappings and pinned memory count once`;
  });
}

/** `a and b`, `a, b and c`. */
function listNames(names: readonly string[]): string {
  return names.length === 2
    ? `${names[0]} and ${names[1]}`
    : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}
