/**
 * The DMA devices of a host and the containers they share
 * (src/host/config/containers.ts says which share one): what a device's
 * arrival and departure do to its container, as QEMU and the kernel do it. A
 * container's plugin follows a region while one of its attached devices
 * follows it; a device joining where the container already follows maps
 * nothing (drivers/vfio/vfio_iommu_type1.c `vfio_iommu_type1_attach_group`
 * reuses the compatible domain; QEMU's hw/vfio/iommufd.c
 * `iommufd_cdev_autodomains_get` the hardware page table); the last device to
 * leave takes the container, its mappings and page tables with it
 * (`vfio_iommu_unmap_unpin_all`; QEMU's `iommufd_cdev_detach`).
 *
 * @module
 */

import { RegionFailedError } from "../bus/errors.ts";
import { listenerStayedRegistered, type Region } from "../bus/region.ts";
import type { SimIoas } from "../hw/sim/iommufd.ts";
import type { SimType1Container } from "../hw/sim/type1.ts";
import type { DmaPlugin } from "../plugins/plugin.ts";
import type { DeviceConfig } from "./config/schema.ts";

/**
 * A type1 container or iommufd IOAS of the host and the devices that share it
 * (src/host/config/containers.ts): its plugin follows a region while one of
 * its attached devices follows it.
 */
export interface HostContainer {
  /** Its name: its first device's, which is also its plugin's. */
  name: string;
  /** Its kind. */
  kind: "type1" | "iommufd";
  /** The names of the devices that share it, in configuration order. */
  devices: string[];
  /** The plugin that keeps its mappings. */
  plugin: DmaPlugin;
  /** The simulated IOMMU it maps into (a type1 container or an iommufd IOAS). */
  hardware: SimType1Container | SimIoas;
  /** The regions it may follow: every region one of its devices follows. */
  regions: Region[];
  /** The regions its plugin follows now, in the order it attached to them. */
  following: Region[];
  /** Whether one of its devices is attached now (derived from them). */
  readonly attached: boolean;
}

/**
 * A DMA device of the host: the container it is in and whether it is
 * attached. Its mappings are its container's (count them there, once).
 */
export interface HostDevice {
  /** The device's configuration. */
  config: DeviceConfig & { type: "type1" | "iommufd" };
  /** The container (or IOAS) it is in, with the devices it shares it with. */
  container: HostContainer;
  /** The regions it follows. */
  regions: Region[];
  /** Whether it is attached now (hot-plug detaches and re-attaches). */
  attached: boolean;
}

/**
 * Attaches device `name`: its container's plugin attaches to each region the
 * device follows that the container does not follow yet, in address order
 * (replaying what is populated); where the container follows one already, its
 * domain maps it and the device joins without a map call. A refusal under
 * memstate's policy lets go of what this device took (and of the container,
 * if no other device is in it); QEMU 10.1 stops at the first refused replay
 * (its region failed: the VM exits); QEMU 11.1 keeps the listener, goes on to
 * the other regions and throws the first refusal after them.
 */
export function attachDevice(devices: ReadonlyMap<string, HostDevice>, name: string): void {
  const dev = deviceNamed(devices, name);
  if (dev.attached) throw new RangeError(`device ${name} is already attached`);
  const c = dev.container;
  const following = c.following;
  const alone = !c.devices.some((o) => o !== name && devices.get(o)!.attached);
  const done: Region[] = [];
  let kept: unknown = undefined;
  // In address order, as QEMU's listener meets them (system/memory.c
  // listener_add_address_space walks the flat view's ranges).
  for (const r of [...dev.regions].sort((x, y) => x.base - y.base)) {
    // Where the container follows the region, its domain maps it already and the device
    // joins without a map call (vfio_iommu_type1_attach_group, iommufd_cdev_autodomains_get).
    if (following.includes(r)) continue;
    try {
      c.plugin.attach(r);
      done.push(r);
      following.push(r);
    } catch (e) {
      // QEMU 10.1 exits at the first refused replay (the region failed): nothing after it.
      if (e instanceof RegionFailedError) {
        if (listenerStayedRegistered(e, c.plugin.name)) following.push(r);
        dev.attached = true;
        throw e;
      }
      // QEMU 11.1 keeps a listener whose replay failed, and the container's memory
      // listener goes on to the other sections (hw/vfio/listener.c
      // vfio_ram_discard_register_listener ignores the manager's answer): the device is
      // attached, and the first failure is reported once every region was tried.
      if (listenerStayedRegistered(e, c.plugin.name)) {
        following.push(r);
        kept ??= e;
        continue;
      }
      if (kept !== undefined) {
        dev.attached = true; // a listener stayed: the device is there
        throw e;
      }
      // Otherwise it is not: the container lets go of what it took for this device.
      for (const prior of done.reverse()) {
        following.splice(following.indexOf(prior), 1);
        try {
          c.plugin.detach(prior);
        } catch {
          // Keep the attach's own error: it says why the device is not there.
        }
      }
      // A container made for this device goes with the failed attach, page tables and all.
      if (alone) {
        c.hardware.release();
        c.plugin.containerReleased();
      }
      throw e;
    }
  }
  dev.attached = true;
  if (kept !== undefined) throw kept;
}

/**
 * Detaches device `name`: its container's plugin detaches from each region no
 * other attached device follows (discarding its mappings), all of them even
 * if one's unmap fails (the first failure is thrown once the device is
 * gone); the last device to leave takes the container with it (its mappings
 * and page tables).
 */
export function detachDevice(devices: ReadonlyMap<string, HostDevice>, name: string): void {
  const dev = deviceNamed(devices, name);
  if (!dev.attached) throw new RangeError(`device ${name} is not attached`);
  const c = dev.container;
  const others = c.devices.filter((o) => o !== name && devices.get(o)!.attached);
  const kept = new Set(others.flatMap((o) => devices.get(o)!.regions));
  const following = c.following;
  // QEMU finishes a device's removal whatever an unmap answers (hw/vfio/listener.c
  // vfio_ram_discard_notify_discard only reports it): every region is let go, and the
  // first failure is thrown once the device is gone.
  let failure: { error: unknown } | undefined;
  for (const r of [...following]) {
    if (kept.has(r)) continue; // another device still follows it: nothing is unmapped
    try {
      c.plugin.detach(r);
    } catch (e) {
      failure ??= { error: e };
    }
    following.splice(following.indexOf(r), 1); // the listener is gone even if it threw
  }
  dev.attached = false;
  if (others.length === 0) {
    // The container goes with its last device: its domain and page tables too
    // (vfio_iommu_type1_detach_group unmaps what is left: vfio_iommu_unmap_unpin_all).
    c.hardware.release();
    c.plugin.containerReleased();
  }
  if (failure) throw failure.error;
}

/** The device `name` of `devices`; a `RangeError` listing the names otherwise. */
function deviceNamed(devices: ReadonlyMap<string, HostDevice>, name: string): HostDevice {
  const dev = devices.get(name);
  if (!dev) {
    throw new RangeError(
      `no DMA device named ${JSON.stringify(name)} (have: ${[...devices.keys()].join(", ")})`,
    );
  }
  return dev;
}
