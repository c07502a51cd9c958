/**
 * Start-up capacity checks: limits a configuration can hit long after start,
 * found before the first conversion instead.
 *
 * The one that matters is VFIO type1's `dma_entry_limit`: type1 cannot unmap
 * part of a mapping, so QEMU maps every granule of a guest_memfd region as its
 * own entry, and the guest decides at run time how much memory it makes
 * shared. The budget is computed by the same function the type1 plugin's
 * attach check uses (src/plugins/type1_budget.ts), once per container (its
 * devices share its entries, see containers.ts), over every region the
 * container follows, at the region's minimum granularity (the page
 * size: guest_memfd is a source of every region, even beside virtio-mem's
 * blocks), with QEMU's memslot headroom under a QEMU policy.
 *
 * @module
 */

import {
  type BudgetSection,
  describeBudget,
  type Type1Budget,
  type1Budget,
} from "../../plugins/type1_budget.ts";
import { type VmmPolicy, vmmRules } from "../../settings/vmm.ts";
import type { HostConfig, Type1DeviceConfig } from "./schema.ts";
import { planContainers } from "./containers.ts";

/**
 * The type1 budget of `device` in `config` under `vmm` (default: the
 * configuration's), over the regions the device names. A container's budget,
 * which the host checks at start ({@link capacityChecks}), is that of its first
 * device over every region the container follows.
 */
export function type1DeviceBudget(
  config: HostConfig,
  device: Type1DeviceConfig,
  vmm: VmmPolicy = config.vmm,
): Type1Budget {
  const sections: BudgetSection[] = [];
  for (const name of device.regions) {
    const region = config.regions.find((r) => r.name === name);
    if (region === undefined) continue;
    sections.push({
      name,
      start: region.base,
      size: region.size,
      granularity: device.granularity ?? region.pageSize,
    });
  }
  return type1Budget(sections, device.dmaEntryLimit, vmmRules(vmm));
}

/** One type1 container whose budget exceeds its limit. */
export interface CapacityProblem {
  /** The container's name (its first device's). */
  container: string;
  /** One line naming the numbers and the fix. */
  message: string;
  /** Entries the device's container may need. */
  needed: number;
  /** Its `dma_entry_limit`. */
  limit: number;
}

/** The outcome of the start-up checks. */
export interface CapacityFindings {
  /** Problems the policy refuses to start with. */
  refusals: CapacityProblem[];
  /** Problems the policy only warns about (QEMU 10.1). */
  warnings: CapacityProblem[];
}

/**
 * Runs the start-up capacity checks under `vmm` (default: the
 * configuration's). The runner refuses to start on any refusal unless the
 * configuration sets `continueOnCapacityError`.
 */
export function capacityChecks(config: HostConfig, vmm: VmmPolicy = config.vmm): CapacityFindings {
  const findings: CapacityFindings = { refusals: [], warnings: [] };
  for (const plan of planContainers(config.devices)) {
    const device = plan.devices[0];
    if (device.type !== "type1") continue;
    const budget = type1DeviceBudget(config, { ...device, regions: plan.regions }, vmm);
    if (!budget.exceeded) continue;
    const index = config.devices.indexOf(device);
    const others = plan.devices.slice(1).map((d) => d.name);
    const who = `devices[${index}] ${JSON.stringify(device.name)}` +
      (others.length > 0 ? ` (the container it shares with ${others.join(", ")})` : "");
    const message = describeBudget(budget, who, vmm);
    const problem = { container: device.name, message, needed: budget.needed, limit: budget.limit };
    if (budget.action === "refuse") {
      findings.refusals.push({
        ...problem,
        message: `${message} (set "continueOnCapacityError": true to run anyway)`,
      });
    } else findings.warnings.push(problem);
  }
  return findings;
}
