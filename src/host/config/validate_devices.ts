/**
 * The rules for `devices`: each entry's type picks its fields; names are
 * unique; DMA devices name existing regions; type1 granularity fits the pages;
 * type1 devices sharing a container agree on its limit and granularity;
 * virtio-mem ranges are block-aligned, inside their region and disjoint. Also
 * the normalization of a device entry once everything holds.
 *
 * @module
 */

import type { ConfigIssue } from "./errors.ts";
import { type FieldPath, isPlainObject, type ParsedFields, parseFields } from "./_fields.ts";
import { type Add, hex, isPowerOfTwo, label, type RegionEntry } from "./_rule_kit.ts";
import { VIRTIO_MEM_MIN_BLOCK_SIZE } from "../../plugins/virtio_mem.ts";
import { KVM_PLUGIN_NAME } from "../../plugins/kvm_attributes.ts";
import { containerKey } from "./containers.ts";
import {
  type DeviceConfig,
  deviceFieldsByType,
  type IommufdDeviceConfig,
  type Type1DeviceConfig,
  type VirtioMemDeviceConfig,
} from "./schema.ts";

type Type1Fields = ParsedFields<(typeof deviceFieldsByType)["type1"]>;
type IommufdFields = ParsedFields<(typeof deviceFieldsByType)["iommufd"]>;
type VirtioMemFields = ParsedFields<(typeof deviceFieldsByType)["virtio-mem"]>;

/** A device entry whose type was recognized, with the fields that parsed. */
export type DeviceEntry =
  & {
    index: number;
    /** The fields the entry gives, parsed or not. */
    given: ReadonlySet<string>;
  }
  & (
    | { type: "type1"; fields: Type1Fields }
    | { type: "iommufd"; fields: IommufdFields }
    | { type: "virtio-mem"; fields: VirtioMemFields }
  );

/** Parses `devices[index]` by its `type`; `undefined` when the type is missing or unknown. */
export function parseDevice(
  raw: unknown,
  index: number,
  issues: ConfigIssue[],
  add: Add,
): DeviceEntry | undefined {
  const path = ["devices", index];
  if (!isPlainObject(raw)) {
    add(path, `must be a JSON object, got ${Array.isArray(raw) ? "a list" : JSON.stringify(raw)}`);
    return undefined;
  }
  const types = Object.keys(deviceFieldsByType);
  const allowed = types.map((t) => JSON.stringify(t)).join(", ");
  const type = raw.type;
  if (type === undefined) {
    add([...path, "type"], `is required (one of ${allowed})`);
    return undefined;
  }
  if (typeof type !== "string" || !Object.hasOwn(deviceFieldsByType, type)) {
    add([...path, "type"], `must be one of ${allowed}, got ${JSON.stringify(type)}`);
    return undefined;
  }
  // The fields the entry gives, parsed or not: a field that failed is not compared again.
  const given = new Set(Object.keys(raw));
  switch (type as keyof typeof deviceFieldsByType) {
    case "type1":
      return {
        index,
        type: "type1",
        fields: parseFields(deviceFieldsByType.type1, raw, path, issues)!,
        given,
      };
    case "iommufd":
      return {
        index,
        type: "iommufd",
        fields: parseFields(deviceFieldsByType.iommufd, raw, path, issues)!,
        given,
      };
    case "virtio-mem":
      return {
        index,
        type: "virtio-mem",
        fields: parseFields(deviceFieldsByType["virtio-mem"], raw, path, issues)!,
        given,
      };
  }
}

/**
 * Checks names, region references, granularity, timing and virtio-mem ranges.
 * `regionNames` is `undefined` when region names could not all be read; then
 * unknown references are not reported (they may be the broken name).
 */
export function checkDevices(
  devices: DeviceEntry[],
  regions: RegionEntry[],
  regionNames: Set<string> | undefined,
  add: Add,
): void {
  const byName = new Map<string, RegionEntry>();
  for (const r of regions) {
    // The first of duplicate names wins, as the duplicate is reported at the later one.
    if (r.fields.name !== undefined && !byName.has(r.fields.name)) byName.set(r.fields.name, r);
  }
  const known = [...byName.keys()].join(", ");
  /** The region entry `name` refers to, reporting an unknown name at `path`. */
  const resolve = (name: string, path: FieldPath): RegionEntry | undefined => {
    const region = byName.get(name);
    if (region === undefined && regionNames !== undefined) {
      add(path, `unknown region ${JSON.stringify(name)} (regions: ${known})`);
    }
    return region;
  };

  const firstByName = new Map<string, number>();
  for (const device of devices) {
    const name = device.fields.name;
    if (name === undefined) continue;
    const first = firstByName.get(name);
    if (name === KVM_PLUGIN_NAME) {
      // Every host attaches the KVM attributes plugin under this name; reports and listener
      // results name plugins, so a device of the same name would be told apart nowhere.
      add(
        ["devices", device.index, "name"],
        `${JSON.stringify(name)} is the name of the KVM attributes plugin every host has`,
      );
    } else if (first !== undefined) {
      add(
        ["devices", device.index, "name"],
        `duplicate device name ${JSON.stringify(name)} (also devices[${first}].name)`,
      );
    } else firstByName.set(name, device.index);
  }

  /** The first type1 device of each container, with what the others must match. */
  const containers = new Map<string, SharedSettings>();
  const virtioRanges: {
    index: number;
    name?: string;
    region: string;
    start: number;
    end: number;
  }[] = [];
  for (const device of devices) {
    const path = ["devices", device.index];
    if (device.type === "virtio-mem") {
      const f = device.fields;
      const region = f.region === undefined ? undefined : resolve(f.region, [...path, "region"]);
      if (region === undefined) continue;
      const range = checkVirtioMem(f, region, path, add);
      if (range) {
        virtioRanges.push({ index: device.index, name: f.name, region: f.region!, ...range });
      }
      continue;
    }
    const f = device.fields;
    const covered: RegionEntry[] = [];
    if (typeof f.region === "string") {
      const region = resolve(f.region, [...path, "region"]);
      if (region) covered.push(region);
    } else if (Array.isArray(f.region)) {
      if (f.region.length === 0) add([...path, "region"], "must name at least one region");
      const seen = new Set<string>();
      f.region.forEach((name, k) => {
        if (seen.has(name)) {
          add([...path, "region", k], `lists region ${JSON.stringify(name)} twice`);
          return;
        }
        seen.add(name);
        const region = resolve(name, [...path, "region", k]);
        if (region) covered.push(region);
      });
    } else covered.push(...regions);
    if (device.type === "type1" && device.fields.granularity !== undefined) {
      checkGranularity(device.fields.granularity, covered, [...path, "granularity"], add);
    }
    const { attachAt, detachAt } = f;
    if (detachAt !== undefined && detachAt <= (attachAt ?? 0)) {
      add([...path, "detachAt"], `must be after attachAt (${attachAt ?? 0}), got ${detachAt}`);
    }
    if (device.type !== "type1") continue; // cut: settings_rules.ts, where the kernel is known
    const { dmaEntryLimit, granularity } = device.fields;
    const parsed = { dmaEntryLimit, granularity };
    const settings: SharedSettings = {
      index: device.index,
      name: f.name,
      // A field given but not parsed is reported already: it is compared with nothing.
      fields: Object.fromEntries(
        Object.entries(parsed).filter(([k, v]) => v !== undefined || !device.given.has(k)),
      ),
    };
    const key = containerKey({ type: "type1", container: device.fields.container });
    const first = containers.get(key);
    if (first === undefined) containers.set(key, settings);
    else checkSharedSettings(first, settings, add);
  }

  for (let j = 0; j < virtioRanges.length; j++) {
    for (let i = 0; i < j; i++) {
      const a = virtioRanges[i], b = virtioRanges[j];
      if (a.region === b.region && a.start < b.end && b.start < a.end) {
        add(
          ["devices", b.index, "offset"],
          `range [${hex(b.start)}, ${hex(b.end)}) of region ${JSON.stringify(b.region)} overlaps ` +
            `virtio-mem devices[${a.index}] ${label(a.name)} [${hex(a.start)}, ${hex(a.end)})`,
        );
      }
    }
  }
}

/** What type1 devices sharing a container must agree on, as one of them gives it. */
interface SharedSettings {
  index: number;
  name?: string;
  /** The container's own settings that parsed, by field name (`undefined`: absent). */
  fields: Record<string, number | undefined>;
}

/**
 * A type1 container has one `dma_entry_limit` (the kernel reads the module
 * parameter once per container: drivers/vfio/vfio_iommu_type1.c
 * `vfio_iommu_type1_open`, `dma_avail`) and one mapping granularity (its
 * listener's): a device that shares it with an earlier one (`first`) gives
 * the same, or a `container` of its own.
 */
function checkSharedSettings(first: SharedSettings, later: SharedSettings, add: Add): void {
  for (const [field, value] of Object.entries(later.fields)) {
    if (!Object.hasOwn(first.fields, field)) continue; // the first one's did not parse
    const theirs = first.fields[field];
    if (value === theirs) continue;
    add(
      ["devices", later.index, field],
      `is ${value ?? "absent"} where devices[${first.index}] ${label(first.name)}, whose ` +
        `container it shares, has ${theirs ?? "none"}: the setting is the container's; give ` +
        `one of them the same, or a "container" of its own (a memstate option)`,
    );
  }
}

function checkGranularity(
  granularity: number,
  covered: RegionEntry[],
  path: FieldPath,
  add: Add,
): void {
  if (granularity === 0) {
    add(path, "must be positive, got 0");
    return;
  }
  for (const region of covered) {
    const pageSize = region.fields.pageSize;
    if (region.pageSizeOk && granularity % pageSize! !== 0) {
      add(
        path,
        `must be a multiple of pageSize ${pageSize} of region ${label(region.fields.name)}, ` +
          `got ${granularity}`,
      );
      return;
    }
    // A listener's notifications are whole granules of the section it follows.
    const size = region.fields.size;
    if (region.rangeOk && size! % granularity !== 0) {
      add(
        path,
        granularity > size!
          ? `${hex(granularity)} is larger than region ${label(region.fields.name)} ` +
            `(size ${hex(size!)}); it must divide the size of every region the device follows`
          : `${hex(granularity)} must divide the size ${hex(size!)} of region ` +
            `${label(region.fields.name)} (mappings are whole granules)`,
      );
      return;
    }
  }
}

/** Checks a virtio-mem device against its region; returns its byte range in the region when sound. */
function checkVirtioMem(
  f: VirtioMemFields,
  region: RegionEntry,
  path: FieldPath,
  add: Add,
): { start: number; end: number } | undefined {
  const { blockSize, requestedSize, offset } = f;
  const pageSize = region.pageSizeOk ? region.fields.pageSize! : undefined;
  const regionSize = region.rangeOk ? region.fields.size! : undefined;
  const regionName = label(region.fields.name);
  if (blockSize === undefined) return undefined;
  if (pageSize === undefined) {
    // The region's page size is broken (and reported there); still judge what we can.
    if (!isPowerOfTwo(blockSize)) {
      add([...path, "blockSize"], `must be a power of two, got ${blockSize}`);
    } else if (checkBlockSize(blockSize, region, path, add)) {
      checkRequested(requestedSize, blockSize, undefined, path, add);
    }
    return undefined;
  }
  if (!isPowerOfTwo(blockSize) || blockSize % pageSize !== 0) {
    add(
      [...path, "blockSize"],
      `must be a power of two and a multiple of pageSize ${pageSize} of region ${regionName}, ` +
        `got ${blockSize}`,
    );
    return undefined;
  }
  if (!checkBlockSize(blockSize, region, path, add)) return undefined;
  let ok = true;
  if (offset !== undefined && offset % blockSize !== 0) {
    add([...path, "offset"], `must be a multiple of blockSize ${blockSize}, got ${offset}`);
    ok = false;
  } else if (
    offset !== undefined && region.rangeOk && (region.fields.base! + offset) % blockSize !== 0
  ) {
    // QEMU refuses an unaligned guest-physical address (hw/virtio/virtio-mem.c
    // virtio_mem_device_realize: "'addr' property has to be multiples of 'block-size'").
    add(
      [...path, "offset"],
      `puts the device at guest-physical ${hex(region.fields.base! + offset)} (region ` +
        `${regionName} base + offset), which must be a multiple of blockSize ${blockSize} ` +
        `(hw/virtio/virtio-mem.c virtio_mem_device_realize)`,
    );
    ok = false;
  }
  let size = f.size;
  if (size !== undefined && (size === 0 || size % blockSize !== 0)) {
    add([...path, "size"], `must be a positive multiple of blockSize ${blockSize}, got ${size}`);
    ok = false;
    size = undefined; // reported: requestedSize is not also measured against it
  }
  if (!ok || offset === undefined || regionSize === undefined) {
    checkRequested(requestedSize, blockSize, size, path, add);
    return undefined;
  }
  if (size === undefined) {
    if (offset >= regionSize) {
      add(
        [...path, "offset"],
        `must be inside region ${regionName} (size ${regionSize}), got ${offset}`,
      );
      return undefined;
    }
    size = regionSize - offset;
    if (size % blockSize !== 0) {
      add(
        [...path, "size"],
        `defaults to the rest of region ${regionName} (${size} bytes), which is not a multiple ` +
          `of blockSize ${blockSize}; give "size" explicitly`,
      );
      return undefined;
    }
  } else if (offset + size > regionSize) {
    add(
      [...path, "size"],
      `range [${hex(offset)}, ${hex(offset + size)}) extends past the end of region ` +
        `${regionName} (size ${hex(regionSize)})`,
    );
    return undefined;
  }
  checkRequested(requestedSize, blockSize, size, path, add);
  return { start: offset, end: offset + size };
}

/**
 * QEMU's own limits on a virtio-mem block, under every vmm policy (the
 * device's property checks, not a propagation rule): at least 1 MiB
 * (hw/virtio/virtio-mem.c `virtio_mem_set_block_size`: VIRTIO_MEM_MIN_BLOCK_SIZE)
 * and at least the page size of the memory backing it, hugetlb's 2 MiB or
 * 1 GiB (`virtio_mem_device_realize`: `block_size < qemu_ram_pagesize(rb)`).
 * Reports and returns false when `blockSize` breaks one.
 */
function checkBlockSize(
  blockSize: number,
  region: RegionEntry,
  path: FieldPath,
  add: Add,
): boolean {
  if (blockSize < VIRTIO_MEM_MIN_BLOCK_SIZE) {
    add(
      [...path, "blockSize"],
      `must be at least 1MiB (QEMU's VIRTIO_MEM_MIN_BLOCK_SIZE, hw/virtio/virtio-mem.c ` +
        `virtio_mem_set_block_size), got ${blockSize}`,
    );
    return false;
  }
  const backing = region.fields.backingPageSize;
  if (backing !== undefined && isPowerOfTwo(backing) && blockSize < backing) {
    add(
      [...path, "blockSize"],
      `must be at least backingPageSize ${hex(backing)} of region ${label(region.fields.name)} ` +
        `(hw/virtio/virtio-mem.c virtio_mem_device_realize), got ${blockSize}`,
    );
    return false;
  }
  return true;
}

function checkRequested(
  requestedSize: number | undefined,
  blockSize: number,
  size: number | undefined,
  path: FieldPath,
  add: Add,
): void {
  if (requestedSize === undefined) return;
  if (requestedSize % blockSize !== 0) {
    add(
      [...path, "requestedSize"],
      `must be a multiple of blockSize ${blockSize}, got ${requestedSize}`,
    );
  } else if (size !== undefined && requestedSize > size) {
    add(
      [...path, "requestedSize"],
      `must be at most the device size ${size}, got ${requestedSize}`,
    );
  }
}

/** The normalized form of a device entry of a configuration without issues. */
export function normalizeDevice(device: DeviceEntry, regions: RegionEntry[]): DeviceConfig {
  const timing = (f: { attachAt?: number; detachAt?: number }) => ({
    ...(f.attachAt !== undefined ? { attachAt: f.attachAt } : {}),
    ...(f.detachAt !== undefined ? { detachAt: f.detachAt } : {}),
  });
  const covered = (region: string | string[] | undefined) =>
    region === undefined
      ? regions.map((r) => r.fields.name!)
      : typeof region === "string"
      ? [region]
      : [...region];
  switch (device.type) {
    case "type1": {
      const f = device.fields;
      const out: Type1DeviceConfig = {
        type: "type1",
        name: f.name!,
        regions: covered(f.region),
        dmaEntryLimit: f.dmaEntryLimit!,
        ...(f.granularity !== undefined ? { granularity: f.granularity } : {}),
        ...(f.container !== undefined ? { container: f.container } : {}),
        ...timing(f),
      };
      return out;
    }
    case "iommufd": {
      const f = device.fields;
      const out: IommufdDeviceConfig = {
        type: "iommufd",
        name: f.name!,
        regions: covered(f.region),
        ...(f.cut !== undefined ? { cut: f.cut } : {}),
        ...(f.iommufd !== undefined ? { iommufd: f.iommufd } : {}),
        ...timing(f),
      };
      return out;
    }
    case "virtio-mem": {
      const f = device.fields;
      const region = regions.find((r) => r.fields.name === f.region)!;
      const out: VirtioMemDeviceConfig = {
        type: "virtio-mem",
        name: f.name!,
        region: f.region!,
        blockSize: f.blockSize!,
        requestedSize: f.requestedSize!,
        offset: f.offset!,
        size: f.size ?? region.fields.size! - f.offset!,
      };
      return out;
    }
  }
}
