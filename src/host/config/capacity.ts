/**
 * Start-up capacity checks: limits a configuration can hit long after start,
 * found before the first conversion instead.
 *
 * The one that matters today is VFIO type1's `dma_entry_limit`: type1 cannot
 * unmap part of a mapping, so it maps every granule (a page for guest_memfd
 * memory, a block for virtio-mem memory) as its own entry, and the guest
 * decides at run time how much memory it makes shared. The worst case is every
 * granule mapped; QEMU counts the same way when it registers the listener and
 * (since 2025) refuses to start when the count exceeds the container's limit.
 *
 * @module
 */

import { formatSize } from "../sizes.ts";
import type { HostConfig, RegionConfig, Type1DeviceConfig } from "./schema.ts";

/** The worst-case mapping count of one region for one type1 device. */
export interface MappingBudgetPart {
  /** Region name. */
  region: string;
  /** Bytes of the region mapped at `granularity`. */
  bytes: number;
  /** Mapping granularity in bytes for these bytes. */
  granularity: number;
  /** Worst-case mappings: `ceil(bytes / granularity)`. */
  mappings: number;
}

/** The worst-case number of DMA mappings a type1 device may need. */
export interface MappingBudget {
  /** Device name. */
  device: string;
  /** Worst-case mappings over every region the device covers. */
  needed: number;
  /** The container's `dma_entry_limit`. */
  limit: number;
  /** How `needed` adds up, per region and granularity. */
  parts: MappingBudgetPart[];
}

/**
 * Worst-case DMA mappings of a type1 device: for each region it covers, the
 * bytes covered by a virtio-mem device count at that device's block size and
 * the rest at the region's page size, unless the device sets `granularity`,
 * which then applies to everything.
 */
export function type1MappingBudget(config: HostConfig, device: Type1DeviceConfig): MappingBudget {
  const parts: MappingBudgetPart[] = [];
  for (const name of device.regions) {
    const region = config.regions.find((r) => r.name === name);
    if (region === undefined) continue;
    for (const { bytes, granularity } of granules(config, region, device.granularity)) {
      if (bytes === 0) continue;
      parts.push({ region: name, bytes, granularity, mappings: Math.ceil(bytes / granularity) });
    }
  }
  const needed = parts.reduce((sum, part) => sum + part.mappings, 0);
  return { device: device.name, needed, limit: device.dmaEntryLimit, parts };
}

/** The region's bytes grouped by mapping granularity. */
function granules(
  config: HostConfig,
  region: RegionConfig,
  override: number | undefined,
): { bytes: number; granularity: number }[] {
  if (override !== undefined) return [{ bytes: region.size, granularity: override }];
  const byGranularity = new Map<number, number>();
  let covered = 0;
  for (const device of config.devices) {
    if (device.type !== "virtio-mem" || device.region !== region.name) continue;
    byGranularity.set(device.blockSize, (byGranularity.get(device.blockSize) ?? 0) + device.size);
    covered += device.size;
  }
  const result = [{ bytes: region.size - covered, granularity: region.pageSize }];
  for (const [granularity, bytes] of byGranularity) result.push({ bytes, granularity });
  return result;
}

/**
 * Runs the start-up capacity checks and returns one message per problem (empty
 * when everything fits). The runner refuses to start on any message unless
 * the configuration sets `continueOnCapacityError`.
 */
export function capacityChecks(config: HostConfig): string[] {
  const problems: string[] = [];
  config.devices.forEach((device, index) => {
    if (device.type !== "type1") return;
    const budget = type1MappingBudget(config, device);
    if (budget.needed <= budget.limit) return;
    const detail = budget.parts
      .map((p) =>
        `${p.region}: ${formatSize(p.bytes)} / ${formatSize(p.granularity)} = ${p.mappings}`
      )
      .join(", ");
    const fix = budget.needed <= 0xffff_ffff
      ? `raise "dmaEntryLimit" of devices[${index}] to at least ${budget.needed} and, on a real ` +
        `host, the vfio_iommu_type1 module parameter dma_entry_limit to match ` +
        `(modprobe vfio_iommu_type1 dma_entry_limit=${budget.needed}, or write it to ` +
        `/sys/module/vfio_iommu_type1/parameters/dma_entry_limit)`
      : `the module parameter dma_entry_limit is 32 bits, so no limit fits; set a coarser ` +
        `"granularity"`;
    problems.push(
      `devices[${index}] ${JSON.stringify(device.name)}: VFIO type1 may need up to ` +
        `${budget.needed} DMA mappings (${detail}) but its dmaEntryLimit is ${budget.limit}; ` +
        `${fix}, or use an "iommufd" device, whose mappings follow shared extents rather than ` +
        `pages (set "continueOnCapacityError": true to run anyway)`,
    );
  });
  return problems;
}
