// A small simulated host: one region with KVM, a type1 NIC and an iommufd GPU,
// all sharing one fault injector, plus a consistency check across all of them.
import assert from "node:assert/strict";
import { Region } from "../../src/bus/mod.ts";
import { FaultInjector, SimIoas, SimKvm, SimType1Container } from "../../src/hw/sim/mod.ts";
import type { KernelSetting } from "../../src/settings/kernel.ts";
import type { VmmPolicy } from "../../src/settings/vmm.ts";
import {
  iommufd,
  kvmAttributes,
  type Plugin,
  vfioType1,
  virtioMem,
  type VirtioMemDevice,
} from "../../src/plugins/mod.ts";

export const MiB = 2 ** 20;
export const PAGE = 4096;

export interface SimSetupOptions {
  size?: number;
  mode?: "separate" | "in-place";
  dmaEntryLimit?: number;
  type1?: boolean;
  iommufd?: boolean | "granule";
  virtioMem?: { blockSize: number; requestedSize: number };
  dmaPriority?: number;
  store?: "range-tree" | "bitmap";
  /** Default: "proposed" when in-place or iommufd with cut is asked for, else "linux-6.18". */
  kernel?: KernelSetting;
  vmm?: VmmPolicy;
}

export function simSetup(o: SimSetupOptions = {}) {
  const faults = new FaultInjector();
  const kernel = o.kernel ??
    (o.mode === "in-place" || o.iommufd === true ? "proposed" : "linux-6.18");
  const vm = new SimKvm({ faults, kernel });
  const region = new Region({
    name: "ram",
    size: o.size ?? 16 * MiB,
    base: 4 * 2 ** 30,
    store: o.store,
    vmm: o.vmm,
  });
  const plugins: Plugin[] = [];
  const kvm = kvmAttributes({ vm, mode: o.mode ?? "separate" });
  kvm.attach(region);
  plugins.push(kvm);
  let vmem: VirtioMemDevice | undefined;
  if (o.virtioMem) vmem = virtioMem({ region, ...o.virtioMem });
  const container = new SimType1Container({
    host: vm.host,
    faults,
    dmaEntryLimit: o.dmaEntryLimit ?? 65535,
  });
  const ioas = new SimIoas({ host: vm.host, faults, kernel });
  if (o.type1 ?? true) {
    const nic = vfioType1({ name: "nic0", container, priority: o.dmaPriority, checkBudget: false });
    nic.attach(region);
    plugins.push(nic);
  }
  if (o.iommufd) {
    const gpu = iommufd({
      name: "gpu0",
      ioas,
      cut: o.iommufd !== "granule",
      priority: o.dmaPriority,
    });
    gpu.attach(region);
    plugins.push(gpu);
  }
  return { faults, vm, region, kvm, container, ioas, plugins, vmem };
}

/** Every plugin's hardware agrees with the store. */
export function assertConsistent(
  setup: { region: Region; plugins: Plugin[] },
  note = "",
): void {
  const problems = setup.plugins.flatMap((p) => p.verify?.(setup.region) ?? []);
  assert.deepEqual(problems, [], note);
}
