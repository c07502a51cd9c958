/**
 * Building a host from a configuration: regions with their stores, the KVM
 * backend (simulated or real), the KVM attributes plugin on every region,
 * type1 containers and iommufd IOASes with their plugins (one per container,
 * which devices share: src/host/config/containers.ts), and virtio-mem
 * devices. The result is disposable: the real backend's files and VM are
 * released by `using` or `close()`.
 *
 * @module
 */

import { Region } from "../bus/region.ts";
import { HwError } from "../hw/errors.ts";
import type { KvmBackend } from "../hw/backend.ts";
import { openLinuxKvm } from "../hw/linux/linux_kvm.ts";
import { SimIoas } from "../hw/sim/iommufd.ts";
import { SimKvm } from "../hw/sim/kvm_vm.ts";
import { DEFAULT_DMA_ENTRY_LIMIT, SimType1Container } from "../hw/sim/type1.ts";
import { SimHost } from "../hw/sim/host_memory.ts";
import type { KernelSetting } from "../settings/kernel.ts";
import type { IommuSetting } from "../settings/iommu.ts";
import type { VmmPolicy } from "../settings/vmm.ts";
import { ConfigError } from "./config/errors.ts";
import { settingsProblems } from "./config/settings_rules.ts";
import { iommufd } from "../plugins/iommufd.ts";
import { kvmAttributes, type KvmAttributesPlugin } from "../plugins/kvm_attributes.ts";
import { CapacityError, type Plugin } from "../plugins/plugin.ts";
import { vfioType1 } from "../plugins/vfio_type1.ts";
import { virtioMem, type VirtioMemDevice } from "../plugins/virtio_mem.ts";
import { capacityChecks } from "./config/capacity.ts";
import type { DeviceConfig, HostConfig, StoreKind } from "./config/schema.ts";
import { type LoadedPlugin, PluginModuleError } from "./plugin_modules.ts";
import {
  containerKey,
  type ContainerPlan,
  planContainers,
  sharedContainerNotices,
} from "./config/containers.ts";
import { refusePromise } from "../util/_sync.ts";
import { causeChain } from "../util/_cause_chain.ts";
import { displayPath, errorLine } from "../util/text.ts";
import { attachDevice, detachDevice, type HostContainer, type HostDevice } from "./dma_devices.ts";

export type { HostContainer, HostDevice };

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
  /** Type1 containers and iommufd IOASes by name, each with its devices. */
  containers: Map<string, HostContainer>;
  /** virtio-mem devices by name. */
  virtioMem: Map<string, VirtioMemDevice>;
  /** Every plugin, for reports and invariant checks. */
  plugins: Plugin[];
  /** The VMM policy the host runs under. */
  vmm: VmmPolicy;
  /** The kernel the host models. */
  kernel: KernelSetting;
  /** Capacity problems: QEMU 10.1's warnings, and refusals accepted by `continueOnCapacityError`. */
  warnings: string[];
  /** Which devices share a container (see src/host/config/containers.ts). */
  notices: string[];
  /**
   * Attaches a DMA device: its container's plugin attaches to each region
   * the device follows that the container does not follow yet (replaying
   * what is populated); where it already does, the device joins and maps
   * nothing.
   */
  attach(name: string): void;
  /**
   * Detaches a DMA device: its container's plugin detaches from each region
   * no other attached device follows (discarding its mappings), every one
   * even when an unmap fails (the first failure is thrown after); the last
   * device to leave takes the container with it, every mapping left and its
   * domain (src/host/dma_devices.ts).
   */
  detach(name: string): void;
  /** Releases the backend. */
  close(): void;
}

/** Options that override the configuration. */
export interface BuildOptions {
  /** Store kind for every region (overrides the configuration). */
  store?: StoreKind;
  /**
   * Swap every DMA device to this kind, for comparisons. A device made type1
   * joins the host's type1 container and takes its `dma_entry_limit` (the
   * module's default, 65535, where the host has none); see `swapDmaKind`.
   */
  dmaKind?: "type1" | "iommufd";
  /** Accept capacity problems (as `continueOnCapacityError`). */
  continueOnCapacityError?: boolean;
  /** The VMM policy (overrides the configuration's `vmm`). */
  vmm?: VmmPolicy;
  /** The kernel (overrides the configuration's `kernel`). */
  kernel?: KernelSetting;
  /**
   * The IOMMU (overrides the configuration's `iommu`): its page-table rules and
   * the IOVA it reserves, which the settings rules check again.
   */
  iommu?: IommuSetting;
  /**
   * Plugins of the user's own (from plugin modules), attached to their
   * regions after every built-in plugin and device.
   */
  plugins?: readonly LoadedPlugin[];
}

/**
 * Builds a host. A configuration that does not fit its settings (a proposed
 * feature on linux-6.18, something QEMU cannot do) is refused with a
 * `ConfigError`; start-up capacity checks refuse a configuration that cannot
 * work (a type1 device whose budget exceeds its limit) with a `CapacityError`,
 * unless the configuration or `options` accept it, and QEMU 10.1's mere
 * warnings become the host's `warnings`.
 */
export function buildHost(config: HostConfig, options: BuildOptions = {}): Host {
  const vmm = options.vmm ?? config.vmm;
  const kernel = options.kernel ?? config.kernel;
  const iommu = options.iommu ?? config.iommu;
  const cfg: HostConfig = {
    ...(options.dmaKind ? swapDmaKind(config, options.dmaKind) : config),
    vmm,
    kernel,
    iommu,
  };
  const misfits = settingsProblems(cfg, vmm, kernel);
  if (misfits.length > 0) {
    throw new ConfigError(
      `${cfg.source} (vmm ${vmm}, kernel ${kernel}, iommu ${iommu})`,
      misfits,
    );
  }
  const capacity = capacityChecks(cfg, vmm);
  const accept = options.continueOnCapacityError ?? cfg.continueOnCapacityError;
  if (capacity.refusals.length > 0 && !accept) {
    const worst = capacity.refusals.reduce((a, b) => (b.needed > a.needed ? b : a));
    // One line per refusal, each naming the file.
    throw new CapacityError(
      capacity.refusals.map((p) =>
        `${displayPath(cfg.source)}: the host cannot start: ${p.message}`
      )
        .join("\n"),
      worst.needed,
      worst.limit,
    );
  }
  const store = options.store ?? cfg.store;
  // One process: its RLIMIT_MEMLOCK bounds every container's and IOAS's pins.
  const process = new SimHost({ memlockLimit: cfg.memlockLimit });
  const vm: KvmBackend = cfg.backend === "linux"
    ? openLinuxKvm()
    : new SimKvm({ kernel, host: process });
  try {
    const regions = cfg.regions.map((r) =>
      new Region({
        name: r.name,
        size: r.size,
        pageSize: r.pageSize,
        base: r.base,
        store: options.store ?? r.store ?? store,
        initial: r.initial,
        vmm,
      })
    );
    const byName = new Map(regions.map((r) => [r.name, r]));
    const backingPageSize = new Map(cfg.regions.map((r) => [r.name, r.backingPageSize]));
    const kvm = kvmAttributes({
      vm,
      mode: cfg.kvm.mode,
      backingPageSize: (region) => backingPageSize.get(region.name) ?? 4096,
    });
    for (const region of regions) kvm.attach(region);
    const plugins: Plugin[] = [kvm];
    const virtio = new Map<string, VirtioMemDevice>();
    for (const d of cfg.devices) {
      if (d.type !== "virtio-mem") continue;
      const region = byName.get(d.region)!;
      virtio.set(
        d.name,
        virtioMem({
          region,
          blockSize: d.blockSize,
          backingPageSize: backingPageSize.get(d.region) ?? 4096,
          requestedSize: d.requestedSize,
          offset: d.offset,
          size: d.size,
          name: d.name,
          discardBacking: (offset, size) => kvm.discardShared(region, offset, size),
        }),
      );
    }
    // The simulated IOMMUs pin pages in the simulated host (feeding the in-place
    // check) and charge its locked memory. Beside the real kernel they map
    // addresses the simulated host never reserved, so they track neither.
    const pins = vm instanceof SimKvm ? vm.host : undefined;
    const devices = new Map<string, HostDevice>();
    const containers = new Map<string, HostContainer>();
    const plans = planContainers(cfg.devices);
    const regionsOf = (names: readonly string[]) => names.map((n) => byName.get(n)!);
    for (const plan of plans) {
      // Attached while one of its devices is: derived, never stored apart.
      const attached = () => plan.devices.some((d) => devices.get(d.name)?.attached === true);
      const container = buildContainer(
        plan,
        regionsOf(plan.regions),
        attached,
        kernel,
        cfg.iommu,
        pins,
        backingPageSize,
      );
      containers.set(plan.name, container);
      plugins.push(container.plugin);
      for (const d of plan.devices) {
        devices.set(d.name, {
          config: d,
          container,
          regions: regionsOf(d.regions),
          attached: false,
        });
      }
    }
    const host: Host = {
      config: cfg,
      store,
      vmm,
      kernel,
      regions,
      vm,
      kvm,
      devices,
      containers,
      virtioMem: virtio,
      plugins,
      warnings: [...capacity.warnings, ...capacity.refusals].map((p) => p.message),
      notices: sharedContainerNotices(plans),
      attach: (name) => attachDevice(devices, name),
      detach: (name) => detachDevice(devices, name),
      close: () => vm.close(),
      [Symbol.dispose]: () => vm.close(),
    };
    // Devices without attachAt start attached; the others arrive mid-run.
    for (const [name, dev] of devices) {
      if (dev.config.attachAt === undefined) attachAtStart(cfg, host, name);
    }
    const taken = new Set([...plugins.map((p) => p.name), ...devices.keys(), ...virtio.keys()]);
    for (const { plugin, regions: names, source } of options.plugins ?? []) {
      if (taken.has(plugin.name)) {
        throw new PluginModuleError(
          source,
          `${source}: plugin name ${JSON.stringify(plugin.name)} is taken (plugins and ` +
            `devices: ${[...taken].join(", ")})`,
        );
      }
      taken.add(plugin.name);
      for (const name of names) {
        try {
          refusePromise(plugin.attach(byName.get(name)!), "attach");
        } catch (e) {
          throw new PluginModuleError(
            source,
            `${source}: plugin ${plugin.name} refused to attach to region ${name}: ${errorLine(e)}`,
          );
        }
      }
      plugins.push(plugin);
    }
    return host;
  } catch (e) {
    vm.close();
    throw e;
  }
}

/**
 * The container `plan` describes on `regions`, with its simulated IOMMU (of
 * the host's `iommu`, whose page-table rules it follows) and plugin, before
 * any device is attached. Without a simulated host (`pins` undefined),
 * entry sizes and unmap runs follow the configured backing page size (the
 * smallest of its regions).
 */
function buildContainer(
  plan: ContainerPlan,
  regions: Region[],
  attached: () => boolean,
  kernel: KernelSetting,
  iommu: IommuSetting,
  pins: SimHost | undefined,
  backingPageSize: ReadonlyMap<string, number>,
): HostContainer {
  const d = plan.devices[0];
  const backing = Math.min(...plan.regions.map((n) => backingPageSize.get(n) ?? 4096));
  const devices = plan.devices.map((d) => d.name);
  const of = (
    kind: HostContainer["kind"],
    hardware: HostContainer["hardware"],
    plugin: HostContainer["plugin"],
  ): HostContainer => ({
    name: plan.name,
    kind,
    devices,
    plugin,
    hardware,
    regions,
    following: [],
    get attached() {
      return attached();
    },
  });
  if (d.type === "type1") {
    const hardware = new SimType1Container({
      dmaEntryLimit: d.dmaEntryLimit,
      host: pins,
      kernel,
      iommu,
      backingPageSize: backing,
    });
    const plugin = vfioType1({
      name: plan.name,
      container: hardware,
      granularity: d.granularity,
      checkBudget: false, // checked for the whole configuration as the host is built
    });
    return of("type1", hardware, plugin);
  }
  const hardware = new SimIoas({ host: pins, kernel, iommu, backingPageSize: backing });
  return of("iommufd", hardware, iommufd({ name: plan.name, ioas: hardware, cut: d.cut }));
}

/**
 * Attaches device `name` as the host is built. Its kernel may refuse to map
 * what the regions already share (a region that starts shared, under a
 * `memlockLimit` or a `dmaEntryLimit` too small for it): that is the
 * configuration's doing, so an ENOMEM or ENOSPC at the root of the failure
 * becomes a {@link ConfigError} naming the device, the kernel's reason and
 * the field to raise. Anything else (a plugin's own mistake) is left as it is.
 */
function attachAtStart(cfg: HostConfig, host: Host, name: string): void {
  try {
    host.attach(name);
  } catch (e) {
    const root = rootCause(e);
    const limit = root instanceof HwError
      ? { ENOMEM: '"memlockLimit"', ENOSPC: '"dmaEntryLimit"' }[root.errno as string]
      : undefined;
    if (limit === undefined) throw e;
    const index = cfg.devices.findIndex((d) => d.name === name);
    throw new ConfigError(cfg.source, [{
      path: `devices[${index}]`,
      message: `${name} cannot map what the regions start with (${
        errorLine(root)
      }); raise ${limit} or start the regions private`,
    }]);
  }
}

/** The innermost error `e` wraps, or `e`. */
function rootCause(e: unknown): unknown {
  return causeChain(e).at(-1);
}

/**
 * The configuration with every DMA device of the other kind made `kind`. A
 * device made type1 joins the type1 devices' one container, as QEMU's would
 * (its `iommufd` object means nothing to type1), and takes that container's
 * limit and granularity, unless the granularity does not fit its regions:
 * then, under memstate's policy (the only one with a granularity), it gets a
 * container of its own. A device made iommufd uses the iommufd object its
 * type1 `container` names (kept apart, as the user kept it) and that IOAS's
 * `cut`. Where no device of `kind` sets them, a new iommufd device maps as the
 * kernel allows (cut_mapping only on the proposed kernel) and a new type1
 * device gets the module's default limit: comparisons never raise a limit
 * silently.
 */
function swapDmaKind(config: HostConfig, kind: "type1" | "iommufd"): HostConfig {
  const first = new Map<string, DeviceConfig & { type: typeof kind }>();
  for (const d of config.devices) {
    if (d.type !== kind || first.has(containerKey(d))) continue;
    first.set(containerKey(d), d as DeviceConfig & { type: typeof kind });
  }
  const devices = config.devices.map((d): DeviceConfig => {
    if (d.type === "virtio-mem" || d.type === kind) return d;
    const common = {
      name: d.name,
      regions: d.regions,
      ...(d.attachAt !== undefined ? { attachAt: d.attachAt } : {}),
      ...(d.detachAt !== undefined ? { detachAt: d.detachAt } : {}),
    };
    if (d.type === "type1") {
      const object = d.container;
      const joined = first.get(containerKey({ type: "iommufd", iommufd: object }));
      const cut = joined?.type === "iommufd" ? joined.cut : undefined;
      return {
        type: "iommufd",
        ...common,
        ...(object !== undefined ? { iommufd: object } : {}),
        ...(cut !== undefined ? { cut } : {}),
      };
    }
    const joined = first.get(containerKey({ type: "type1" }));
    const same = joined?.type === "type1" ? joined : undefined;
    const granularity = same?.granularity;
    const fits = granularity === undefined || d.regions.every((n) => {
      const r = config.regions.find((r) => r.name === n)!;
      return granularity % r.pageSize === 0 && r.size % granularity === 0;
    });
    return {
      type: "type1",
      ...common,
      // A name no configuration can give (names have no "/"): one container per IOAS it left.
      ...(fits ? {} : { container: `swapped/${d.iommufd ?? ""}` }),
      dmaEntryLimit: (fits ? same?.dmaEntryLimit : undefined) ?? DEFAULT_DMA_ENTRY_LIMIT,
      ...(fits && granularity !== undefined ? { granularity } : {}),
    };
  });
  return { ...config, devices };
}
