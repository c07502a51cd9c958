/**
 * The rules that relate a configuration to its two settings, the VMM policy
 * and the kernel: what needs the proposed kernel, and what QEMU cannot do.
 * They run when a file is loaded (with the file's own settings) and again when
 * a host is built under other settings (`--vmm`, `--kernel`, `--iommu`,
 * `compare`), so a setting that does not fit is refused with the field and the
 * reason either way. The IOMMU's rule (reserved IOVA) reads the config's `iommu`.
 *
 * @module
 */

import { kernelFeatures, type KernelSetting, needsProposed } from "../../settings/kernel.ts";
import { reservedIova } from "../../settings/iommu.ts";
import { hex } from "../../util/_hex.ts";
import type { VmmPolicy } from "../../settings/vmm.ts";
import type { ConfigIssue } from "./errors.ts";
import type { HostConfig } from "./schema.ts";
import { type DmaDeviceConfig, planContainers } from "./containers.ts";

/** Every way `config` does not fit `vmm` and `kernel`, as issues with field paths. */
export function settingsProblems(
  config: HostConfig,
  vmm: VmmPolicy,
  kernel: KernelSetting,
): ConfigIssue[] {
  const features = kernelFeatures(kernel);
  const issues: ConfigIssue[] = [];
  const qemu = vmm !== "memstate";
  if (config.backend === "linux" && kernel !== "linux-6.18") {
    issues.push({
      path: "kernel",
      message: `is "${kernel}", but the linux backend runs on this machine's kernel ` +
        `(mainline, "linux-6.18"); the proposed series is modelled by the "sim" backend only`,
    });
  }
  if (config.backend === "linux" && config.memlockLimit !== Infinity) {
    // The DMA containers are simulated beside the real kernel and pin nothing of this
    // process (src/host/build.ts gives them no SimHost), so no limit would hold.
    issues.push({
      path: "memlockLimit",
      message: `applies to the sim backend only: with the linux backend the DMA containers are ` +
        `simulated and pin no memory of this process, so RLIMIT_MEMLOCK would not be enforced; ` +
        `remove it or use "backend": "sim"`,
    });
  }
  if (config.kvm.mode === "in-place") {
    if (!features.inPlaceConversion) {
      issues.push({
        path: "kvm.mode",
        message: needsProposed(`"in-place" (guest_memfd in-place conversion)`, kernel),
      });
    }
    if (qemu) {
      issues.push({
        path: "kvm.mode",
        message: `"in-place" cannot run under ${vmm}: QEMU's in-place conversion is an unmerged ` +
          `RFC; use "vmm": "memstate"`,
      });
    }
  }
  config.regions.forEach((region, index) => {
    if (qemu && region.pageSize !== 4096) {
      // QEMU tracks guest_memfd's shared state per host page, whatever the backing
      // (system/ram-block-attributes.c ram_block_attributes_get_block_size returns
      // qemu_real_host_page_size(), 4 KiB on x86): its bitmap, its granularity for VFIO and the
      // alignment of a conversion.
      issues.push({
        path: `regions[${index}].pageSize`,
        message: `must be "4KiB" under ${vmm}: QEMU tracks shared memory per 4 KiB host page ` +
          `(system/ram-block-attributes.c ram_block_attributes_get_block_size); ` +
          `use "backingPageSize" for huge pages, or "vmm": "memstate"`,
      });
    }
    if (config.backend === "linux" && region.backingPageSize !== 4096) {
      issues.push({
        path: `regions[${index}].backingPageSize`,
        message: `must be "4KiB" with the linux backend, which creates plain memfds ` +
          `(hugetlb backing is modelled by the "sim" backend)`,
      });
    }
  });
  config.devices.forEach((device, index) => {
    if (device.type === "iommufd" && device.cut === true && !features.cutMapping) {
      issues.push({
        path: `devices[${index}].cut`,
        message: needsProposed("true (iommufd cut_mapping)", kernel) +
          `, or drop "cut" to map granules as QEMU does on ${kernel}`,
      });
    }
    if (device.type === "type1" && device.granularity !== undefined && qemu) {
      issues.push({
        path: `devices[${index}].granularity`,
        message: `cannot be set under ${vmm}: QEMU's VFIO listener maps at the ` +
          `RamDiscardManager's minimum granularity (hw/vfio/listener.c ` +
          `vfio_ram_discard_register_listener); "granularity" is a memstate option`,
      });
    }
    if (device.type === "type1" && device.container !== undefined && qemu) {
      issues.push({
        path: `devices[${index}].container`,
        message: `cannot be set under ${vmm}: QEMU puts every type1 device of the address space ` +
          `in one container (hw/vfio/container.c vfio_container_connect); "container" is a ` +
          `memstate option`,
      });
    }
    if (device.type !== "virtio-mem" && qemu && device.regions.length < config.regions.length) {
      // A VFIO container's memory listener is registered on the whole address space
      // (hw/vfio/container.c vfio_container_connect: memory_listener_register on
      // bcontainer->space->as), so QEMU maps every RAM section for every device.
      const missed = config.regions.filter((r) => !device.regions.includes(r.name));
      issues.push({
        path: `devices[${index}].region`,
        message: `leaves out ${
          missed.map((r) => JSON.stringify(r.name)).join(", ")
        }, which cannot be done under ${vmm}: QEMU's VFIO memory listener follows every RAM ` +
          `section of the address space (hw/vfio/container.c vfio_container_connect); ` +
          `"region" on a DMA device is a memstate option`,
      });
    }
    if (device.type === "virtio-mem" && qemu) {
      const region = config.regions.find((r) => r.name === device.region);
      if (region !== undefined && (device.offset !== 0 || device.size !== region.size)) {
        // QEMU's device plugs and unplugs its whole memory backend: the RAM block its memdev
        // gives (hw/virtio/virtio-mem.c virtio_mem_device_realize), a region of its own here.
        issues.push({
          path: `devices[${index}].${device.offset !== 0 ? "offset" : "size"}`,
          message: `makes the device cover part of region ${JSON.stringify(device.region)}, ` +
            `which cannot be done under ${vmm}: QEMU's virtio-mem device manages its whole ` +
            `memory backend (hw/virtio/virtio-mem.c virtio_mem_device_realize); give the device ` +
            `a region of its own, or use "vmm": "memstate"`,
        });
      }
    }
    if (device.type === "virtio-mem" && vmm === "qemu-10.1") {
      issues.push({
        path: `devices[${index}].type`,
        message: `"virtio-mem" cannot share region ${JSON.stringify(device.region)} with ` +
          `guest_memfd under qemu-10.1, which allows one RamDiscardManager per memory region ` +
          `(system/memory.c memory_region_set_ram_discard_manager); use qemu-11.1 or memstate`,
      });
    }
  });
  issues.push(...reservedIovaProblems(config));
  for (const plan of planContainers(config.devices)) {
    if (plan.kind !== "iommufd") continue;
    // One IOAS maps one way: with cut_mapping or granule by granule. Compared as it takes
    // effect, so an absent `cut` is the kernel's default.
    const cut = (d: DmaDeviceConfig) =>
      (d.type === "iommufd" ? d.cut : undefined) ?? features.cutMapping;
    /** `true`, `false`, or `absent` where the file does not give it. */
    const said = (d: DmaDeviceConfig) =>
      d.type === "iommufd" && d.cut !== undefined ? `${d.cut}` : "absent";
    const [first, ...rest] = plan.devices;
    // A cut the kernel does not have is refused above, device by device.
    if (cut(first) && !features.cutMapping) continue;
    for (const d of rest) {
      if (cut(d) === cut(first) || (cut(d) && !features.cutMapping)) continue;
      issues.push({
        path: `devices[${config.devices.indexOf(d)}].cut`,
        message: `is ${said(d)} where devices[${config.devices.indexOf(first)}] ` +
          `${JSON.stringify(first.name)}, whose IOAS it shares, has ${
            said(first)
          } (on ${kernel}, ` +
          `absent is ${features.cutMapping}): one IOAS maps one way; give them the same "cut", ` +
          `or different "iommufd" objects`,
      });
    }
  }
  return issues;
}

/**
 * A region a DMA device follows must stay clear of the IOVA the host's IOMMU
 * reserves (src/settings/iommu.ts `reservedIova`): its maps there would fail
 * (type1 EINVAL, iommufd EINVAL), and no QEMU machine puts RAM there (the
 * interrupt window is below 4 GiB's top; on AMD QEMU moves RAM above 4 GiB to
 * 1 TiB rather than reach the HyperTransport range: hw/i386/pc.c
 * `pc_memory_init`). Under every policy: it is the kernel's rule.
 */
function reservedIovaProblems(config: HostConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const reserved = reservedIova(config.iommu);
  config.regions.forEach((region, index) => {
    const device = config.devices.find((d) =>
      d.type !== "virtio-mem" && d.regions.includes(region.name)
    );
    if (device === undefined) return;
    const end = region.base + region.size;
    for (const r of reserved) {
      if (region.base >= r.end || end <= r.start) continue;
      issues.push({
        path: `regions[${index}]`,
        message: `[${hex(region.base)}, ${hex(end)}) overlaps ${r.what} [${hex(r.start)}, ` +
          `${hex(r.end)}), which the ${config.iommu} IOMMU reserves (${r.source}), so DMA ` +
          `device ${JSON.stringify(device.name)} could not map it; ${r.fix}`,
      });
    }
  });
  return issues;
}
