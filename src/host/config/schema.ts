/**
 * The host configuration: the normalized shape the runner consumes (explicit
 * interfaces, every default filled, every size in bytes) and the zod schemas
 * that check the JSON a person wrote, field by field.
 *
 * The schemas describe single fields rather than whole objects on purpose: the
 * loader (`load.ts`) parses each field of each object separately so that one
 * bad field never hides the problems of its neighbours, and it reports every
 * problem of a file at once. Rules that relate several fields (alignment to
 * the page size, overlaps, references between devices and regions) live in the
 * loader, which sees the whole file.
 *
 * @module
 */

import { z } from "npm:zod@^4.1.0";
import { sizeOrProblem } from "../sizes.ts";
import { MAX_SEED } from "../../util/prng.ts";
import { describeValue } from "../../util/text.ts";
import { KERNEL_SETTINGS, type KernelSetting } from "../../settings/kernel.ts";
import { IOMMU_SETTINGS, type IommuSetting } from "../../settings/iommu.ts";
import { VMM_POLICIES, type VmmPolicy } from "../../settings/vmm.ts";

/** Which hardware the run drives: the in-memory kernel models or real /dev/kvm. */
export type BackendKind = "sim" | "linux";
/** Which state store keeps a region's per-page state. */
export type StoreKind = "range-tree" | "bitmap";
/**
 * How a region's memory is backed. `separate`: a shared memfd plus a
 * guest_memfd for private pages (today's kernels). `in-place`: one guest_memfd
 * created with mmap support that holds both (proposed in-place conversion).
 */
export type BackingKind = "separate" | "in-place";
/** The state every page of a region starts in. */
export type InitialState = "private" | "shared";
/** The named workload generators a configuration may ask for. */
export type WorkloadName = "boot" | "swiotlb-churn" | "dma-scatter" | "balloon" | "hotplug";

/** Every {@link WorkloadName}, in the order the CLI lists them. */
export const WORKLOAD_NAMES: readonly WorkloadName[] = [
  "boot",
  "swiotlb-churn",
  "dma-scatter",
  "balloon",
  "hotplug",
];

/** One RAM block of the guest, normalized. */
export interface RegionConfig {
  /** Unique name, used by devices to refer to the region. */
  name: string;
  /** Size in bytes: a positive multiple of `pageSize`. */
  size: number;
  /** Conversion granularity in bytes: a power of two >= 4096. */
  pageSize: number;
  /** Guest physical address of the first byte, aligned to `pageSize`. */
  base: number;
  /** How the memory is backed. */
  backing: BackingKind;
  /** The state every page starts in. */
  initial: InitialState;
  /** The store for this region (its own override, else the configuration's). */
  store: StoreKind;
  /**
   * The shared backing's page (folio) size in bytes: 4096 (shmem, default),
   * 2 MiB or 1 GiB (hugetlb). It decides the IO page-table cost of mapping
   * the region, and hugetlb is not discarded on to-private.
   */
  backingPageSize: number;
}

/** Hot-plug timing shared by DMA devices: steps of the workload. */
export interface DeviceTiming {
  /** Workload step (events count from 1) at which the device is attached; absent: attached from the start. */
  attachAt?: number;
  /** Workload step at which the device is detached; absent: never. */
  detachAt?: number;
}

/** A VFIO type1 device, normalized: its container may hold other devices. */
export interface Type1DeviceConfig extends DeviceTiming {
  /** Device kind. */
  type: "type1";
  /** Unique device name. */
  name: string;
  /** Names of the regions the device can DMA into (default: every region). */
  regions: string[];
  /** The container's `dma_entry_limit` (mappings it may hold). */
  dmaEntryLimit: number;
  /**
   * A memstate option: type1 devices that give the same value share a
   * container, apart from the others; absent: the one container every type1
   * device without it shares, as QEMU puts the VFIO devices of one address
   * space in one (see src/host/config/containers.ts; refused under QEMU
   * policies).
   */
  container?: string;
  /**
   * Mapping granularity in bytes when set; absent: each region's page size,
   * or the block size of the virtio-mem device covering the memory.
   */
  granularity?: number;
}

/** An iommufd device, normalized: its IOAS may hold other devices. */
export interface IommufdDeviceConfig extends DeviceTiming {
  /** Device kind. */
  type: "iommufd";
  /** Unique device name. */
  name: string;
  /** Names of the regions the device can DMA into (default: every region). */
  regions: string[];
  /**
   * Whether runs are mapped as areas and discards that cut through one split
   * it (cut_mapping) first; absent: the kernel decides (cut_mapping exists
   * only on the proposed kernel).
   */
  cut?: boolean;
  /**
   * The iommufd object the device uses (QEMU's `-device vfio-pci,iommufd=ID`):
   * devices on one object share an IOAS (see src/host/config/containers.ts);
   * absent: the one object every iommufd device without it uses.
   */
  iommufd?: string;
}

/** A virtio-mem device managing part of one region, normalized. */
export interface VirtioMemDeviceConfig {
  /** Device kind. */
  type: "virtio-mem";
  /** Unique device name. */
  name: string;
  /** The region whose memory the device plugs and unplugs. */
  region: string;
  /** Plug granularity in bytes: a power of two, a multiple of the region's page size. */
  blockSize: number;
  /** How much memory the host asks the guest to have plugged, in bytes. */
  requestedSize: number;
  /** Where the device's range starts inside the region, in bytes. */
  offset: number;
  /** Size of the device's range in bytes (default: the rest of the region). */
  size: number;
}

/** Any device of a host configuration. */
export type DeviceConfig = Type1DeviceConfig | IommufdDeviceConfig | VirtioMemDeviceConfig;

/** How the KVM attributes plugin converts memory. */
export interface KvmConfig {
  /** `separate` (attributes + hole punch) or `in-place` (guest_memfd conversion). */
  mode: BackingKind;
}

/** A workload produced by a named generator. */
export interface GeneratorWorkload {
  /** Discriminator. */
  kind: "generator";
  /** Which generator. */
  name: WorkloadName;
  /** Seed for the generator's pseudo-random choices; absent: the runner picks one. */
  seed?: number;
  /** Generator parameters, checked by the generator itself. */
  params: Record<string, unknown>;
}

/** A workload replayed from a trace file. */
export interface TraceWorkload {
  /** Discriminator. */
  kind: "trace";
  /** Path of the trace, resolved against the configuration file's directory. */
  trace: string;
}

/** The workload of a host configuration. */
export type WorkloadConfig = GeneratorWorkload | TraceWorkload;

/** A plugin module the configuration loads (see src/host/plugin_modules.ts for the contract). */
export interface PluginModuleConfig {
  /** The module: a path resolved against the configuration's directory, or a URL. */
  module: string;
  /** Handed to the module's factory as its first argument. */
  options: Record<string, unknown>;
  /** Names of the regions the plugin follows (default: every region). */
  regions: string[];
}

/** A validated, normalized host configuration: defaults filled, sizes in bytes. */
export interface HostConfig {
  /** The file the configuration came from (as given to the loader). */
  source: string;
  /** Short name of the configuration. */
  name: string;
  /** Free text shown in reports. */
  description?: string;
  /** Simulated or real hardware. */
  backend: BackendKind;
  /** Default store for regions that do not choose one. */
  store: StoreKind;
  /**
   * The guest's RAM blocks, in the order written; empty until the trace is
   * read when they come from it (`regionsFrom` `"trace"`).
   */
  regions: RegionConfig[];
  /**
   * Where the regions come from: the file, or the trace's
   * `kvm_set_user_memory` events (`"regions": "from-trace"`).
   */
  regionsFrom: "config" | "trace";
  /**
   * The document as written, kept when the regions come from the trace: it
   * is validated again, devices included, once the trace gave the regions.
   */
  document?: Record<string, unknown>;
  /** Assigned and memory devices, in the order written. */
  devices: DeviceConfig[];
  /** Plugin modules of the user's own, loaded like built-ins after the devices. */
  plugins: PluginModuleConfig[];
  /** KVM conversion mode (defaults to the regions' common backing). */
  kvm: KvmConfig;
  /** What drives the conversions. */
  workload: WorkloadConfig;
  /** Run even when a start-up capacity check fails. */
  continueOnCapacityError: boolean;
  /** The VMM policy conversions follow. */
  vmm: VmmPolicy;
  /** The kernel whose features the simulated host has. */
  kernel: KernelSetting;
  /**
   * The host's IOMMU, whose page table the DMA containers map into: it decides
   * when IO page-table pages are freed (src/settings/iommu.ts).
   */
  iommu: IommuSetting;
  /** RLIMIT_MEMLOCK of the VMM process in bytes (Infinity: unlimited, as with CAP_IPC_LOCK). */
  memlockLimit: number;
  /**
   * How the guest asks for conversions, which decides what a failure does
   * under a QEMU policy: `"memory-fault"` (KVM_EXIT_MEMORY_FAULT, and SEV-SNP's
   * hypercall): QEMU stops the VM; `"tdx-mapgpa"`: the guest is answered
   * TDG_VP_VMCALL_INVALID_OPERAND and runs on.
   */
  conversionExit: ConversionExit;
}

/** See {@link HostConfig.conversionExit}. */
export type ConversionExit = "memory-fault" | "tdx-mapgpa";

// ---------------------------------------------------------------------------
// Field schemas (internal to the loader).

/** A byte size written as a number or a size string; parses to bytes. */
export const sizeField = z
  .union([z.number(), z.string()], {
    error: (issue) =>
      issue.input === undefined
        ? "is required"
        : `must be a number of bytes or a size string like "16GiB", got ${
          describeValue(issue.input)
        }`,
  })
  .transform((value, ctx) => {
    const result = sizeOrProblem(value);
    if (typeof result === "string") {
      ctx.issues.push({ code: "custom", message: result, input: value });
      return z.NEVER;
    }
    return result.bytes;
  });

/** A name: letters, digits, `_`, `.`, `-`, starting with a letter or digit. */
export const nameField = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, {
    error: (issue) =>
      `must start with a letter or digit and contain only letters, digits, "_", "." and "-", got ${
        JSON.stringify(issue.input)
      }`,
  });

/** A step number of the workload: events count from 1, so a step 0 would never come. */
export const stepField = z.number().int().min(1);

/** The fields of the configuration's top level. */
export const topLevelFields = {
  name: nameField,
  description: z.string().optional(),
  backend: z.enum(["sim", "linux"]).default("sim"),
  store: z.enum(["range-tree", "bitmap"]).default("range-tree"),
  regions: z.union([z.literal("from-trace"), z.array(z.unknown()).min(1)], {
    error: (issue) =>
      issue.input === undefined
        ? `is required: a list of regions, or "from-trace"`
        : Array.isArray(issue.input)
        ? `must list at least one region (or be "from-trace"), got an empty list`
        : `must be a list of regions or "from-trace", got ${describeValue(issue.input)}`,
  }),
  devices: z.array(z.unknown()).default([]),
  plugins: z.array(z.unknown()).default([]),
  kvm: z.unknown().optional(),
  workload: z.unknown(),
  continueOnCapacityError: z.boolean().default(false),
  vmm: z.enum(VMM_POLICIES as [VmmPolicy, ...VmmPolicy[]]).default("memstate"),
  kernel: z.enum(KERNEL_SETTINGS as [KernelSetting, ...KernelSetting[]]).default("linux-6.18"),
  iommu: z.enum(IOMMU_SETTINGS as [IommuSetting, ...IommuSetting[]]).default("intel-vt-d"),
  memlockLimit: sizeField.optional(),
  conversionExit: z.enum(["memory-fault", "tdx-mapgpa"]).default("memory-fault"),
} as const;

/** The fields of one entry of `regions`. */
export const regionFields = {
  name: nameField,
  size: sizeField,
  pageSize: sizeField.default(4096),
  base: sizeField.default(0),
  backing: z.enum(["separate", "in-place"]).default("separate"),
  initial: z.enum(["private", "shared"]).default("private"),
  store: z.enum(["range-tree", "bitmap"]).optional(),
  backingPageSize: sizeField.default(4096),
} as const;

/** A device's `region` field for DMA devices: one name or a list of names. */
const regionRefs = z.union([z.string(), z.array(z.string())], {
  error: (issue) =>
    `must be a region name or a list of region names, got ${JSON.stringify(issue.input)}`,
});

/** The fields of a `type1` device. */
export const type1Fields = {
  type: z.literal("type1"),
  name: nameField,
  region: regionRefs.optional(),
  dmaEntryLimit: z.number().int().min(1).max(0xffff_ffff).default(65535),
  granularity: sizeField.optional(),
  container: nameField.optional(),
  attachAt: stepField.optional(),
  detachAt: stepField.optional(),
} as const;

/** The fields of an `iommufd` device. */
export const iommufdFields = {
  type: z.literal("iommufd"),
  name: nameField,
  cut: z.boolean().optional(),
  iommufd: nameField.optional(),
  region: regionRefs.optional(),
  attachAt: stepField.optional(),
  detachAt: stepField.optional(),
} as const;

/** The fields of a `virtio-mem` device. */
export const virtioMemFields = {
  type: z.literal("virtio-mem"),
  name: nameField,
  region: z.string(),
  blockSize: sizeField,
  requestedSize: sizeField,
  offset: sizeField.default(0),
  size: sizeField.optional(),
} as const;

/** Device field sets by `type`. */
export const deviceFieldsByType = {
  "type1": type1Fields,
  "iommufd": iommufdFields,
  "virtio-mem": virtioMemFields,
} as const;

/** The fields of an entry of `plugins`. */
export const pluginFields = {
  module: z.string().min(1),
  options: freeRecord(),
  region: regionRefs.optional(),
} as const;

/** The fields of `kvm`. */
export const kvmFields = {
  mode: z.enum(["separate", "in-place"]).optional(),
} as const;

/**
 * A JSON object of free keys (workload parameters, a plugin's options). A
 * `__proto__` key is refused by name: JSON.parse keeps it as a key, but
 * copying the object into a record sets the copy's prototype instead, so the
 * entry would vanish without an error (the strict objects elsewhere refuse it
 * as an unknown field).
 */
function freeRecord() {
  return z.preprocess((value, ctx) => {
    if (typeof value === "object" && value !== null && Object.hasOwn(value, "__proto__")) {
      ctx.issues.push({
        code: "custom",
        message: "not allowed as a key (JavaScript reads it as the object's prototype)",
        path: ["__proto__"],
        input: value,
      });
    }
    return value;
  }, z.record(z.string(), z.unknown()).default({}));
}

/** The fields of a generator workload. */
export const generatorWorkloadFields = {
  name: z.enum(WORKLOAD_NAMES as [WorkloadName, ...WorkloadName[]]),
  seed: z.number().int().min(0).max(MAX_SEED).optional(),
  params: freeRecord(),
} as const;

/** The fields of a trace workload. */
export const traceWorkloadFields = {
  trace: z.string().min(1),
} as const;
