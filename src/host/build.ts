/**
 * Building a host from a configuration: regions with their stores, the KVM
 * backend (simulated or real), the KVM attributes plugin on every region,
 * type1 containers and iommufd IOASes with their plugins, and virtio-mem
 * devices. The result is disposable: the real backend's files and VM are
 * released by `using` or `close()`.
 *
 * @module
 */

import { Region } from "../bus/region.ts";
import type { KvmBackend } from "../hw/backend.ts";
import { openLinuxKvm } from "../hw/linux/linux_kvm.ts";
import { SimIoas } from "../hw/sim/iommufd.ts";
import { SimKvm } from "../hw/sim/kvm_vm.ts";
import { SimType1Container } from "../hw/sim/type1.ts";
import { iommufd } from "../plugins/iommufd.ts";
import { kvmAttributes, type KvmAttributesPlugin } from "../plugins/kvm_attributes.ts";
import { CapacityError, type Plugin } from "../plugins/plugin.ts";
import { vfioType1 } from "../plugins/vfio_type1.ts";
import { virtioMem, type VirtioMemDevice } from "../plugins/virtio_mem.ts";
import { capacityChecks } from "./config/capacity.ts";
import type { DeviceConfig, HostConfig, StoreKind } from "./config/schema.ts";

/** A DMA device of the host: its plugin and the regions it follows. */
export interface HostDevice {
  /** The device's configuration. */
  config: DeviceConfig & { type: "type1" | "iommufd" };
  /** The plugin that keeps its mappings. */
  plugin: Plugin;
  /** The simulated IOMMU it maps into (a type1 container or an iommufd IOAS). */
  hardware: SimType1Container | SimIoas;
  /** The regions it follows. */
  regions: Region[];
  /** Whether it is attached now (hot-plug detaches and re-attaches). */
  attached: boolean;
}

/** A running host: what a configuration describes, built and wired. */
export interface Host extends Disposable {
  /** The configuration it was built from. */
  config: HostConfig;
  /** The store kind its regions use. */
  store: StoreKind;
  /** Regions in configuration order. */
  regions: Region[];
  /** The KVM backend. */
  vm: KvmBackend;
  /** The KVM attributes plugin, attached to every region. */
  kvm: KvmAttributesPlugin;
  /** DMA devices by name. */
  devices: Map<string, HostDevice>;
  /** virtio-mem devices by name. */
  virtioMem: Map<string, VirtioMemDevice>;
  /** Every plugin, for reports and invariant checks. */
  plugins: Plugin[];
  /** Capacity warnings accepted because of `continueOnCapacityError`. */
  warnings: string[];
  /** Attaches a DMA device to its regions (replaying what is populated). */
  attach(name: string): void;
  /** Detaches a DMA device (discarding its mappings). */
  detach(name: string): void;
  /** Releases the backend. */
  close(): void;
}

/** Options that override the configuration. */
export interface BuildOptions {
  /** Store kind for every region (overrides the configuration). */
  store?: StoreKind;
  /** Swap every DMA device to this kind, for comparisons. */
  dmaKind?: "type1" | "iommufd";
  /** Accept capacity problems (as `continueOnCapacityError`). */
  continueOnCapacityError?: boolean;
}

/**
 * Builds a host. Start-up capacity checks refuse a configuration that cannot
 * work (a type1 device whose worst case exceeds its limit) with a
 * `CapacityError`, unless the configuration or `options` accept it.
 */
export function buildHost(config: HostConfig, options: BuildOptions = {}): Host {
  const cfg = options.dmaKind ? swapDmaKind(config, options.dmaKind) : config;
  const problems = capacityChecks(cfg);
  const accept = options.continueOnCapacityError ?? cfg.continueOnCapacityError;
  if (problems.length > 0 && !accept) {
    throw new CapacityError(
      `${cfg.source}: the host cannot start:\n${problems.join("\n")}`,
      0,
      0,
    );
  }
  const store = options.store ?? cfg.store;
  const vm: KvmBackend = cfg.backend === "linux" ? openLinuxKvm() : new SimKvm({
    inPlace: cfg.kvm.mode === "in-place",
    capabilities: cfg.kvm.mode === "in-place" ? { inPlaceConversion: true } : undefined,
  });
  try {
    const regions = cfg.regions.map((r) =>
      new Region({
        name: r.name,
        size: r.size,
        pageSize: r.pageSize,
        base: r.base,
        store: options.store ?? r.store ?? store,
        initial: r.initial,
      })
    );
    const byName = new Map(regions.map((r) => [r.name, r]));
    const kvm = kvmAttributes({ vm, mode: cfg.kvm.mode });
    for (const region of regions) kvm.attach(region);
    const plugins: Plugin[] = [kvm];
    const virtio = new Map<string, VirtioMemDevice>();
    for (const d of cfg.devices) {
      if (d.type !== "virtio-mem") continue;
      virtio.set(
        d.name,
        virtioMem({
          region: byName.get(d.region)!,
          blockSize: d.blockSize,
          requestedSize: d.requestedSize,
          offset: d.offset,
          size: d.size,
          name: d.name,
        }),
      );
    }
    // The simulated IOMMUs pin pages in the simulated host, feeding the in-place check.
    const pins = vm instanceof SimKvm ? vm.host : undefined;
    const devices = new Map<string, HostDevice>();
    for (const d of cfg.devices) {
      if (d.type === "virtio-mem") continue;
      const hardware = d.type === "type1"
        ? new SimType1Container({ dmaEntryLimit: d.dmaEntryLimit, host: pins })
        : new SimIoas({ host: pins });
      const plugin = hardware instanceof SimType1Container
        ? vfioType1({
          name: d.name,
          container: hardware,
          granularity: d.type === "type1" ? d.granularity : undefined,
          checkBudget: false, // checked above for the whole configuration
        })
        : iommufd({ name: d.name, ioas: hardware, cut: d.type === "iommufd" ? d.cut : true });
      devices.set(d.name, {
        config: d,
        plugin,
        hardware,
        regions: d.regions.map((n) => byName.get(n)!),
        attached: false,
      });
      plugins.push(plugin);
    }
    const host: Host = {
      config: cfg,
      store,
      regions,
      vm,
      kvm,
      devices,
      virtioMem: virtio,
      plugins,
      warnings: problems,
      attach(name) {
        const dev = deviceNamed(devices, name);
        if (dev.attached) throw new RangeError(`device ${name} is already attached`);
        for (const r of dev.regions) dev.plugin.attach(r);
        dev.attached = true;
      },
      detach(name) {
        const dev = deviceNamed(devices, name);
        if (!dev.attached) throw new RangeError(`device ${name} is not attached`);
        for (const r of dev.regions) dev.plugin.detach(r);
        dev.attached = false;
      },
      close: () => vm.close(),
      [Symbol.dispose]: () => vm.close(),
    };
    // Devices without attachAt start attached; the others arrive mid-run.
    for (const [name, dev] of devices) {
      if (dev.config.attachAt === undefined) host.attach(name);
    }
    return host;
  } catch (e) {
    vm.close();
    throw e;
  }
}

function deviceNamed(devices: Map<string, HostDevice>, name: string): HostDevice {
  const dev = devices.get(name);
  if (!dev) {
    throw new RangeError(
      `no DMA device named ${JSON.stringify(name)} (have: ${[...devices.keys()].join(", ")})`,
    );
  }
  return dev;
}

function swapDmaKind(config: HostConfig, kind: "type1" | "iommufd"): HostConfig {
  const devices = config.devices.map((d): DeviceConfig => {
    if (d.type === "virtio-mem" || d.type === kind) return d;
    const timing = { attachAt: d.attachAt, detachAt: d.detachAt };
    return kind === "iommufd"
      ? { type: "iommufd", name: d.name, regions: d.regions, cut: true, ...timing }
      : { type: "type1", name: d.name, regions: d.regions, dmaEntryLimit: 0xffff_ffff, ...timing };
  });
  return { ...config, devices };
}
