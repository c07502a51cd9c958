// Host configuration: every rule reports file, field path and rule; all problems at once;
// a valid file normalizes to bytes and defaults; start-up capacity checks explain the fix.
import assert from "node:assert/strict";
import { join } from "node:path";
import { capacityChecks, type1DeviceBudget } from "../src/host/config/capacity.ts";
import { ConfigError } from "../src/host/config/errors.ts";
import { loadHostConfig, parseHostConfig } from "../src/host/config/load.ts";
import type { Type1DeviceConfig } from "../src/host/config/schema.ts";

const FILE = "examples/x.json";
const GiB = 2 ** 30, MiB = 2 ** 20;

/** A valid configuration to break one field at a time. */
function valid(): Record<string, unknown> {
  return {
    name: "tdx-16g",
    description: "two regions, three devices",
    backend: "sim",
    regions: [
      { name: "ram-below-4g", size: "2GiB" },
      { name: "ram-above-4g", size: "14GiB", base: "0x100000000" },
    ],
    devices: [
      { type: "type1", name: "nic0", region: "ram-below-4g", dmaEntryLimit: 1_000_000 },
      { type: "iommufd", name: "gpu0" },
      {
        type: "virtio-mem",
        name: "vmem0",
        region: "ram-above-4g",
        blockSize: "2MiB",
        requestedSize: "4GiB",
        offset: "6GiB",
      },
    ],
    workload: { name: "boot", seed: 7 },
  };
}

/** Applies `edit` to a valid config and returns the error lines (asserting it fails). */
function problems(edit: (c: Record<string, unknown>) => void): string[] {
  const config = valid();
  edit(config);
  try {
    parseHostConfig(config, FILE);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.message.split("\n").length, error.issues.length);
    return error.message.split("\n");
  }
  assert.fail("expected a ConfigError");
}

// deno-lint-ignore no-explicit-any
type Any = any;
const region = (c: Record<string, unknown>, i: number): Any => (c.regions as Any[])[i];
const device = (c: Record<string, unknown>, i: number): Any => (c.devices as Any[])[i];

Deno.test("the valid base configuration parses", () => {
  parseHostConfig(valid(), FILE);
});

Deno.test("regions: sizes must parse", () => {
  assert.deepEqual(problems((c) => region(c, 0).size = "2XB"), [
    `${FILE}: regions[0].size: unknown unit "XB" (use B, KiB, MiB, GiB, TiB or PiB), got "2XB"`,
  ]);
  assert.deepEqual(problems((c) => region(c, 1).base = -4096), [
    `${FILE}: regions[1].base: must not be negative, got -4096`,
  ]);
  assert.deepEqual(problems((c) => region(c, 0).size = true), [
    `${FILE}: regions[0].size: must be a number of bytes or a size string like "16GiB", got true`,
  ]);
  assert.deepEqual(problems((c) => delete region(c, 0).size), [
    `${FILE}: regions[0].size: is required`,
  ]);
});

Deno.test("regions: pageSize is a power of two >= 4096", () => {
  assert.deepEqual(problems((c) => region(c, 0).pageSize = 6000), [
    `${FILE}: regions[0].pageSize: must be a power of two >= 4096, got 6000`,
  ]);
  assert.deepEqual(problems((c) => region(c, 0).pageSize = 2048), [
    `${FILE}: regions[0].pageSize: must be a power of two >= 4096, got 2048`,
  ]);
  // 2 MiB pages are fine.
  const config = valid();
  region(config, 0).pageSize = "2MiB";
  assert.equal(parseHostConfig(config, FILE).regions[0].pageSize, 2 * MiB);
});

Deno.test("regions: size is a positive multiple of pageSize", () => {
  assert.deepEqual(problems((c) => region(c, 1).size = 10000), [
    `${FILE}: regions[1].size: must be a multiple of pageSize 4096, got 10000`,
  ]);
  assert.deepEqual(problems((c) => region(c, 0).size = 0), [
    `${FILE}: regions[0].size: must be a positive multiple of pageSize 4096, got 0`,
  ]);
});

Deno.test("regions: base is aligned to pageSize and the range fits 52 bits", () => {
  assert.deepEqual(problems((c) => region(c, 1).base = "0x100001234"), [
    `${FILE}: regions[1].base: must be aligned to pageSize 4096, got 0x100001234`,
  ]);
  assert.deepEqual(problems((c) => region(c, 1).base = 2 ** 52 - 4096), [
    `${FILE}: regions[1].size: base 0xffffffffff000 + size 0x380000000 ends past the ` +
    `52-bit guest physical address space (0x10000000000000)`,
  ]);
});

Deno.test("regions: guest physical ranges do not overlap, naming both", () => {
  assert.deepEqual(problems((c) => region(c, 1).base = "1GiB"), [
    `${FILE}: regions[1].base: range [0x40000000, 0x3c0000000) of region "ram-above-4g" ` +
    `overlaps regions[0] "ram-below-4g" [0x0, 0x80000000)`,
  ]);
});

Deno.test("regions: names are unique and well-formed; at least one region", () => {
  assert.deepEqual(problems((c) => region(c, 1).name = "ram-below-4g"), [
    `${FILE}: regions[1].name: duplicate region name "ram-below-4g" (also regions[0].name)`,
    // A device that named the renamed region now refers to nothing.
    `${FILE}: devices[2].region: unknown region "ram-above-4g" (regions: ram-below-4g)`,
  ]);
  assert.deepEqual(problems((c) => region(c, 0).name = "bad name"), [
    `${FILE}: regions[0].name: must start with a letter or digit and contain only letters, ` +
    `digits, "_", "." and "-", got "bad name"`,
  ]);
  assert.deepEqual(problems((c) => c.regions = []), [
    `${FILE}: regions: must have at least 1 entry, got a list`,
  ]);
  assert.deepEqual(problems((c) => (c.regions as unknown[]).push("ram2")), [
    `${FILE}: regions[2]: must be a JSON object, got "ram2"`,
  ]);
});

Deno.test("devices: names are unique, and none is the KVM attributes plugin's", () => {
  assert.deepEqual(problems((c) => device(c, 1).name = "nic0"), [
    `${FILE}: devices[1].name: duplicate device name "nic0" (also devices[0].name)`,
  ]);
  assert.deepEqual(problems((c) => device(c, 1).name = "kvm"), [
    `${FILE}: devices[1].name: "kvm" is the name of the KVM attributes plugin every host has`,
  ]);
});

Deno.test("devices: type is required and known", () => {
  assert.deepEqual(problems((c) => device(c, 0).type = "vfio"), [
    `${FILE}: devices[0].type: must be one of "type1", "iommufd", "virtio-mem", got "vfio"`,
  ]);
  assert.deepEqual(problems((c) => delete device(c, 1).type), [
    `${FILE}: devices[1].type: is required (one of "type1", "iommufd", "virtio-mem")`,
  ]);
});

Deno.test("devices: region references exist (single and list)", () => {
  assert.deepEqual(problems((c) => device(c, 0).region = "ram9"), [
    `${FILE}: devices[0].region: unknown region "ram9" (regions: ram-below-4g, ram-above-4g)`,
  ]);
  assert.deepEqual(problems((c) => device(c, 1).region = ["ram-above-4g", "ram9"]), [
    `${FILE}: devices[1].region[1]: unknown region "ram9" (regions: ram-below-4g, ram-above-4g)`,
  ]);
  assert.deepEqual(problems((c) => device(c, 1).region = ["ram-above-4g", "ram-above-4g"]), [
    `${FILE}: devices[1].region[1]: lists region "ram-above-4g" twice`,
  ]);
  assert.deepEqual(problems((c) => device(c, 1).region = []), [
    `${FILE}: devices[1].region: must name at least one region`,
  ]);
  assert.deepEqual(problems((c) => device(c, 2).region = "ram9"), [
    `${FILE}: devices[2].region: unknown region "ram9" (regions: ram-below-4g, ram-above-4g)`,
  ]);
  assert.deepEqual(problems((c) => device(c, 1).region = 3), [
    `${FILE}: devices[1].region: must be a region name or a list of region names, got 3`,
  ]);
});

Deno.test("type1: dmaEntryLimit is a positive integer; granularity a multiple of pageSize", () => {
  assert.deepEqual(problems((c) => device(c, 0).dmaEntryLimit = 0), [
    `${FILE}: devices[0].dmaEntryLimit: must be at least 1, got 0`,
  ]);
  assert.deepEqual(problems((c) => device(c, 0).dmaEntryLimit = 1.5), [
    `${FILE}: devices[0].dmaEntryLimit: must be an integer, got 1.5`,
  ]);
  assert.deepEqual(problems((c) => device(c, 0).dmaEntryLimit = "65535"), [
    `${FILE}: devices[0].dmaEntryLimit: must be a number, got "65535"`,
  ]);
  assert.deepEqual(problems((c) => device(c, 0).granularity = 6000), [
    `${FILE}: devices[0].granularity: must be a multiple of pageSize 4096 of region ` +
    `"ram-below-4g", got 6000`,
  ]);
  assert.deepEqual(problems((c) => device(c, 0).granularity = 0), [
    `${FILE}: devices[0].granularity: must be positive, got 0`,
  ]);
});

Deno.test("devices: attachAt/detachAt count events from 1 (a step 0 would never come)", () => {
  assert.deepEqual(problems((c) => Object.assign(device(c, 1), { attachAt: 0 })), [
    `${FILE}: devices[1].attachAt: must be at least 1, got 0`,
  ]);
  assert.deepEqual(problems((c) => Object.assign(device(c, 1), { detachAt: 0 })), [
    `${FILE}: devices[1].detachAt: must be at least 1, got 0`,
  ]);
});

Deno.test("devices: attachAt/detachAt are steps and detach comes after attach", () => {
  assert.deepEqual(problems((c) => Object.assign(device(c, 1), { attachAt: 10, detachAt: 5 })), [
    `${FILE}: devices[1].detachAt: must be after attachAt (10), got 5`,
  ]);
  assert.deepEqual(problems((c) => device(c, 0).attachAt = -1), [
    `${FILE}: devices[0].attachAt: must be at least 1, got -1`,
  ]);
});

Deno.test("virtio-mem: blockSize, requestedSize, offset, size and overlaps", () => {
  assert.deepEqual(problems((c) => device(c, 2).blockSize = "3MiB"), [
    `${FILE}: devices[2].blockSize: must be a power of two and a multiple of pageSize 4096 ` +
    `of region "ram-above-4g", got 3145728`,
  ]);
  assert.deepEqual(problems((c) => device(c, 2).blockSize = 2048), [
    `${FILE}: devices[2].blockSize: must be a power of two and a multiple of pageSize 4096 ` +
    `of region "ram-above-4g", got 2048`,
  ]);
  assert.deepEqual(problems((c) => device(c, 2).requestedSize = "3MiB"), [
    `${FILE}: devices[2].requestedSize: must be a multiple of blockSize 2097152, got 3145728`,
  ]);
  assert.deepEqual(problems((c) => device(c, 2).requestedSize = "10GiB"), [
    `${FILE}: devices[2].requestedSize: must be at most the device size 8589934592, ` +
    `got 10737418240`,
  ]);
  assert.deepEqual(problems((c) => device(c, 2).offset = "1MiB"), [
    `${FILE}: devices[2].offset: must be a multiple of blockSize 2097152, got 1048576`,
  ]);
  assert.deepEqual(problems((c) => device(c, 2).size = "10GiB"), [
    `${FILE}: devices[2].size: range [0x180000000, 0x400000000) extends past the end of ` +
    `region "ram-above-4g" (size 0x380000000)`,
  ]);
  assert.deepEqual(problems((c) => device(c, 2).offset = "14GiB"), [
    `${FILE}: devices[2].offset: must be inside region "ram-above-4g" (size 15032385536), ` +
    `got 15032385536`,
  ]);
  assert.deepEqual(
    problems((c) =>
      (c.devices as unknown[]).push({
        type: "virtio-mem",
        name: "vmem1",
        region: "ram-above-4g",
        blockSize: "2MiB",
        requestedSize: 0,
        offset: "8GiB",
        size: "1GiB",
      })
    ),
    [
      `${FILE}: devices[3].offset: range [0x200000000, 0x240000000) of region "ram-above-4g" ` +
      `overlaps virtio-mem devices[2] "vmem0" [0x180000000, 0x380000000)`,
    ],
  );
});

Deno.test("virtio-mem: the device's guest-physical address (region base + offset) must be a multiple of blockSize (hw/virtio/virtio-mem.c virtio_mem_device_realize: 'addr' has to be multiples of 'block-size')", () => {
  // Rule: virtio_mem_device_realize refuses !QEMU_IS_ALIGNED(vmem->addr, vmem->block_size);
  // an offset aligned in its region is not enough when the region's base is not.
  assert.deepEqual(problems((c) => region(c, 1).base = "0x100100000"), [
    `${FILE}: devices[2].offset: puts the device at guest-physical 0x280100000 (region ` +
    `"ram-above-4g" base + offset), which must be a multiple of blockSize 2097152 ` +
    `(hw/virtio/virtio-mem.c virtio_mem_device_realize)`,
  ]);
});

Deno.test("virtio-mem: blockSize is at least 1 MiB and at least the region's backingPageSize, under every vmm policy (hw/virtio/virtio-mem.c virtio_mem_set_block_size, virtio_mem_device_realize)", () => {
  // Rule: virtio_mem_set_block_size refuses a block-size below VIRTIO_MEM_MIN_BLOCK_SIZE
  // (1 MiB), and virtio_mem_device_realize one below qemu_ram_pagesize(rb), the page size of
  // the backing (hugetlb's 2 MiB or 1 GiB). Both are the device's own checks, so they hold
  // whatever the VMM policy.
  for (const vmm of ["qemu-11.1", "memstate"]) {
    assert.deepEqual(
      problems((c) => {
        c.vmm = vmm;
        device(c, 2).blockSize = "4KiB";
        device(c, 2).requestedSize = "4MiB";
      }),
      [
        `${FILE}: devices[2].blockSize: must be at least 1MiB (QEMU's VIRTIO_MEM_MIN_BLOCK_SIZE, ` +
        `hw/virtio/virtio-mem.c virtio_mem_set_block_size), got 4096`,
      ],
      vmm,
    );
  }
  assert.deepEqual(problems((c) => device(c, 2).blockSize = "512KiB"), [
    `${FILE}: devices[2].blockSize: must be at least 1MiB (QEMU's VIRTIO_MEM_MIN_BLOCK_SIZE, ` +
    `hw/virtio/virtio-mem.c virtio_mem_set_block_size), got 524288`,
  ]);
  assert.deepEqual(problems((c) => region(c, 1).backingPageSize = "1GiB"), [
    `${FILE}: devices[2].blockSize: must be at least backingPageSize 0x40000000 of region ` +
    `"ram-above-4g" (hw/virtio/virtio-mem.c virtio_mem_device_realize), got 2097152`,
  ]);
  // 1 MiB on 4 KiB pages, and 2 MiB on 2 MiB hugetlb pages, are what QEMU accepts.
  parseHostConfig({ ...valid(), devices: [{ ...device(valid(), 2), blockSize: "1MiB" }] }, FILE);
  const huge = valid();
  region(huge, 1).backingPageSize = "2MiB";
  parseHostConfig(huge, FILE);
});

Deno.test("iommu: an unknown IOMMU is one line naming the field and the allowed ones", () => {
  assert.deepEqual(problems((c) => c.iommu = "arm-smmu-v3"), [
    `${FILE}: iommu: must be one of "intel-vt-d", "amd-v1", got "arm-smmu-v3"`,
  ]);
  assert.equal(parseHostConfig({ ...valid(), iommu: "amd-v1" }, FILE).iommu, "amd-v1");
});

Deno.test("unknown fields are rejected by name, with the allowed ones", () => {
  assert.deepEqual(problems((c) => c.regoins = []), [
    `${FILE}: regoins: unknown field (allowed: name, description, backend, store, regions, ` +
    `devices, plugins, kvm, workload, continueOnCapacityError, vmm, kernel, iommu, ` +
    `memlockLimit, conversionExit)`,
  ]);
  assert.deepEqual(problems((c) => region(c, 0).sise = 1), [
    `${FILE}: regions[0].sise: unknown field (allowed: name, size, pageSize, base, backing, ` +
    `initial, store, backingPageSize)`,
  ]);
  assert.deepEqual(problems((c) => device(c, 1).dmaEntryLimit = 5), [
    `${FILE}: devices[1].dmaEntryLimit: unknown field (allowed: type, name, cut, ` +
    `iommufd, region, attachAt, detachAt)`,
  ]);
  assert.deepEqual(problems((c) => c.kvm = { mode: "separate", fast: true }), [
    `${FILE}: kvm.fast: unknown field (allowed: mode)`,
  ]);
  assert.deepEqual(problems((c) => c.workload = { name: "boot", speed: 2 }), [
    `${FILE}: workload.speed: unknown field (allowed: name, seed, params)`,
  ]);
});

Deno.test("enums: backend, store, backing, initial", () => {
  assert.deepEqual(problems((c) => c.backend = "qemu"), [
    `${FILE}: backend: must be one of "sim", "linux", got "qemu"`,
  ]);
  assert.deepEqual(problems((c) => c.store = "btree"), [
    `${FILE}: store: must be one of "range-tree", "bitmap", got "btree"`,
  ]);
  assert.deepEqual(problems((c) => region(c, 0).initial = "unknown"), [
    `${FILE}: regions[0].initial: must be one of "private", "shared", got "unknown"`,
  ]);
});

Deno.test("workload: a known generator or a trace, not both, and required", () => {
  assert.deepEqual(problems((c) => c.workload = { name: "fuzz" }), [
    `${FILE}: workload.name: must be one of "boot", "swiotlb-churn", "dma-scatter", ` +
    `"balloon", "hotplug", got "fuzz"`,
  ]);
  assert.deepEqual(problems((c) => c.workload = { name: "boot", trace: "t.log" }), [
    `${FILE}: workload: give either "name" (a generator) or "trace" (a trace file), not both`,
  ]);
  assert.deepEqual(problems((c) => delete c.workload), [
    `${FILE}: workload: is required: {"name": <generator>} or {"trace": <file>}`,
  ]);
  assert.deepEqual(problems((c) => c.workload = { trace: "" }), [
    `${FILE}: workload.trace: must not be empty`,
  ]);
  assert.deepEqual(problems((c) => c.workload = { name: "boot", seed: 1.5 }), [
    `${FILE}: workload.seed: must be an integer, got 1.5`,
  ]);
});

Deno.test("kvm.mode must agree with every region's backing", () => {
  assert.deepEqual(problems((c) => c.kvm = { mode: "in-place" }), [
    `${FILE}: regions[0].backing: is "separate" but kvm.mode is "in-place"; KVM converts all ` +
    `guest memory one way, so they must agree`,
    `${FILE}: regions[1].backing: is "separate" but kvm.mode is "in-place"; KVM converts all ` +
    `guest memory one way, so they must agree`,
  ]);
  assert.deepEqual(problems((c) => region(c, 1).backing = "in-place"), [
    `${FILE}: regions[1].backing: is "in-place" but regions[0] is "separate"; KVM converts ` +
    `all guest memory one way, so every region needs the same backing`,
  ]);
});

Deno.test("the root must be an object", () => {
  for (const [json, got] of [[[], "a list"], [null, "null"], ["x", '"x"']] as const) {
    assert.throws(
      () => parseHostConfig(json, FILE),
      (e) => e instanceof ConfigError && e.message === `${FILE}: must be a JSON object, got ${got}`,
    );
  }
});

Deno.test("every problem of a file is reported at once, in file order", () => {
  const lines = problems((c) => {
    c.backend = "qemu";
    region(c, 0).size = 10000;
    region(c, 1).pageSize = 3;
    region(c, 1).extra = true;
    device(c, 0).dmaEntryLimit = 0;
    device(c, 0).region = "nope";
    device(c, 2).requestedSize = "1MiB";
    c.workload = { name: "nope" };
  });
  assert.deepEqual(lines, [
    `${FILE}: backend: must be one of "sim", "linux", got "qemu"`,
    `${FILE}: regions[0].size: must be a multiple of pageSize 4096, got 10000`,
    `${FILE}: regions[1].extra: unknown field (allowed: name, size, pageSize, base, backing, ` +
    `initial, store, backingPageSize)`,
    `${FILE}: regions[1].pageSize: must be a power of two >= 4096, got 3`,
    `${FILE}: devices[0].dmaEntryLimit: must be at least 1, got 0`,
    `${FILE}: devices[0].region: unknown region "nope" (regions: ram-below-4g, ram-above-4g)`,
    `${FILE}: devices[2].requestedSize: must be a multiple of blockSize 2097152, got 1048576`,
    `${FILE}: workload.name: must be one of "boot", "swiotlb-churn", "dma-scatter", ` +
    `"balloon", "hotplug", got "nope"`,
  ]);
  try {
    parseHostConfig({ name: "x", regions: [{ name: "a", size: 1 }], workload: {} }, FILE);
    assert.fail("expected a ConfigError");
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.file, FILE);
    assert.deepEqual(error.issues, [
      { path: "regions[0].size", message: "must be a multiple of pageSize 4096, got 1" },
      { path: "workload.name", message: "is required" },
    ]);
  }
});

Deno.test("normalization: bytes, defaults, resolved references and trace path", () => {
  const config = parseHostConfig(valid(), FILE);
  assert.equal(config.source, FILE);
  assert.equal(config.backend, "sim");
  assert.equal(config.store, "range-tree");
  assert.equal(config.continueOnCapacityError, false);
  assert.deepEqual(config.kvm, { mode: "separate" });
  assert.deepEqual(config.regions[0], {
    name: "ram-below-4g",
    size: 2 * GiB,
    pageSize: 4096,
    base: 0,
    backing: "separate",
    initial: "private",
    store: "range-tree",
    backingPageSize: 4096,
  });
  assert.equal(config.regions[1].base, 4 * GiB);
  assert.equal(config.vmm, "memstate");
  assert.equal(config.kernel, "linux-6.18");
  assert.equal(config.iommu, "intel-vt-d");
  assert.equal(config.memlockLimit, Infinity);
  assert.equal(config.conversionExit, "memory-fault");
  assert.deepEqual(config.devices, [
    { type: "type1", name: "nic0", regions: ["ram-below-4g"], dmaEntryLimit: 1_000_000 },
    // cut is left to the kernel: cut_mapping exists only on the proposed kernel.
    { type: "iommufd", name: "gpu0", regions: ["ram-below-4g", "ram-above-4g"] },
    {
      type: "virtio-mem",
      name: "vmem0",
      region: "ram-above-4g",
      blockSize: 2 * MiB,
      requestedSize: 4 * GiB,
      offset: 6 * GiB,
      size: 8 * GiB,
    },
  ]);
  assert.deepEqual(config.workload, { kind: "generator", name: "boot", seed: 7, params: {} });

  const other = valid();
  other.store = "bitmap";
  other.kernel = "proposed"; // in-place conversion needs it
  other.kvm = { mode: "in-place" };
  region(other, 0).backing = "in-place";
  region(other, 1).backing = "in-place";
  region(other, 1).store = "range-tree";
  other.devices = [{ type: "type1", name: "n", granularity: "2MiB", attachAt: 3, detachAt: 9 }];
  other.workload = { trace: "traces/boot.log" };
  const c2 = parseHostConfig(other, "examples/hosts/x.json");
  assert.deepEqual(c2.regions.map((r) => r.store), ["bitmap", "range-tree"]);
  assert.deepEqual(c2.kvm, { mode: "in-place" });
  assert.deepEqual(c2.devices[0], {
    type: "type1",
    name: "n",
    regions: ["ram-below-4g", "ram-above-4g"],
    dmaEntryLimit: 65535,
    granularity: 2 * MiB,
    attachAt: 3,
    detachAt: 9,
  });
  assert.deepEqual(c2.workload, { kind: "trace", trace: "examples/hosts/traces/boot.log" });
  other.workload = { trace: "/abs/boot.log" };
  assert.deepEqual(parseHostConfig(other, "x.json").workload, {
    kind: "trace",
    trace: "/abs/boot.log",
  });
});

Deno.test("capacityChecks: every section of the container at the region's granularity, 4 KiB even beside virtio-mem (hw/vfio/listener.c vfio_ram_discard_register_listener)", () => {
  const config = valid();
  device(config, 0).region = ["ram-below-4g", "ram-above-4g"];
  device(config, 0).dmaEntryLimit = 65535;
  const normalized = parseHostConfig(config, FILE);
  const budget = type1DeviceBudget(normalized, normalized.devices[0] as Type1DeviceConfig);
  // 2 GiB + 14 GiB at 4 KiB: guest_memfd makes the minimum granularity 4 KiB,
  // so the 8 GiB of virtio-mem at 2 MiB blocks count at 4 KiB too.
  assert.equal(budget.needed, 524288 + 3670016);
  assert.deepEqual(budget.sections.map((p) => [p.name, p.granularity, p.mappings]), [
    ["ram-below-4g", 4096, 524288],
    ["ram-above-4g", 4096, 3670016],
  ]);
  const { refusals, warnings } = capacityChecks(normalized);
  assert.equal(refusals.length, 1);
  assert.deepEqual(warnings, []);
  const [{ message, needed, limit }] = refusals;
  assert.equal(needed, 4194304);
  assert.equal(limit, 65535);
  assert.match(
    message,
    /^devices\[0\] "nic0": VFIO type1 may need 4194304 DMA mappings under memstate/,
  );
  assert.match(message, /ram-below-4g: 2 GiB \/ 4 KiB = 524288/);
  assert.match(message, /dma_entry_limit is 65535/);
  assert.match(message, /modprobe vfio_iommu_type1 dma_entry_limit=4194304/);
  assert.match(message, /use iommufd/);
  assert.match(message, /continueOnCapacityError/);

  // Raising the limit or coarsening the granularity clears it.
  device(config, 0).dmaEntryLimit = 4194304;
  assert.deepEqual(capacityChecks(parseHostConfig(config, FILE)).refusals, []);
  device(config, 0).dmaEntryLimit = 65535;
  device(config, 0).granularity = "1MiB";
  assert.deepEqual(capacityChecks(parseHostConfig(config, FILE)).refusals, []);
  // iommufd devices have no such budget (QEMU leaves dma_max_mappings 0 there).
  config.devices = [{ type: "iommufd", name: "gpu0" }];
  assert.deepEqual(capacityChecks(parseHostConfig(config, FILE)).refusals, []);
});

Deno.test("capacityChecks: 200 MiB + 200 MiB on one container is refused at the default limit", () => {
  const config = {
    name: "two",
    regions: [
      { name: "a", size: "200MiB" },
      { name: "b", size: "200MiB", base: "1GiB" },
    ],
    devices: [{ type: "type1", name: "nic0" }],
    workload: { name: "boot" },
  };
  // memstate sums the sections: 51200 + 51200 = 102400 > 65535.
  const [refusal] = capacityChecks(parseHostConfig(config, FILE)).refusals;
  assert.equal(refusal.needed, 102400);
  assert.match(refusal.message, /a: 200 MiB \/ 4 KiB = 51200, b: 200 MiB \/ 4 KiB = 51200/);
  // One region alone fits under memstate ...
  const one = { ...config, regions: [config.regions[0]] };
  assert.deepEqual(capacityChecks(parseHostConfig(one, FILE)).refusals, []);
  // ... but not under QEMU, which adds kvm_get_max_memslots() (32764) minus the
  // number of sections: 51200 + 32763 = 83963 > 65535. QEMU 11.1 refuses,
  // QEMU 10.1 only warns (warn_report until the 2025 patch made it an error).
  const q11 = capacityChecks(parseHostConfig({ ...one, vmm: "qemu-11.1" }, FILE));
  assert.equal(q11.refusals[0].needed, 51200 + 32763);
  assert.match(q11.refusals[0].message, /headroom: 32764 memslots - 1 sections = 32763/);
  const q10 = capacityChecks(parseHostConfig({ ...one, vmm: "qemu-10.1" }, FILE));
  assert.deepEqual(q10.refusals, []);
  assert.equal(q10.warnings[0].needed, 51200 + 32763);
});

Deno.test("loadHostConfig: reads the file, names it on missing file or bad JSON", async () => {
  const dir = await Deno.makeTempDir({ prefix: "memstate_config_" });
  try {
    const good = join(dir, "good.json");
    await Deno.mkdir(join(dir, "traces"));
    await Deno.writeTextFile(join(dir, "traces", "boot.log"), "");
    await Deno.writeTextFile(
      good,
      JSON.stringify({ ...valid(), workload: { trace: "traces/boot.log" } }, null, 2),
    );
    const config = await loadHostConfig(good);
    assert.deepEqual(config.workload, { kind: "trace", trace: join(dir, "traces", "boot.log") });

    const missing = join(dir, "missing.json");
    await assert.rejects(
      () => loadHostConfig(missing),
      (e) => e instanceof ConfigError && e.message === `${missing}: file not found`,
    );

    const bad = join(dir, "bad.json");
    await Deno.writeTextFile(bad, '{\n  "name": "x",\n  "regions": [,]\n}\n');
    await assert.rejects(
      () => loadHostConfig(bad),
      (e) =>
        e instanceof ConfigError &&
        e.message.startsWith(`${bad}: invalid JSON at line 3, column 15: `),
    );
    await Deno.writeTextFile(bad, '{"name": "x",\n "regions": tru }');
    await assert.rejects(
      () => loadHostConfig(bad),
      (e) =>
        e instanceof ConfigError &&
        e.message.startsWith(`${bad}: invalid JSON at line 2, column 16: `),
    );

    const noTrace = join(dir, "notrace.json");
    await Deno.writeTextFile(
      noTrace,
      JSON.stringify({ ...valid(), workload: { trace: "nowhere.log" } }),
    );
    await assert.rejects(
      () => loadHostConfig(noTrace),
      (e) =>
        e instanceof ConfigError &&
        e.message ===
          `${noTrace}: workload.trace: file not found: ${
            join(dir, "nowhere.log")
          } (relative paths are relative to the configuration file)`,
    );

    const invalid = join(dir, "invalid.json");
    await Deno.writeTextFile(invalid, JSON.stringify({ ...valid(), backend: "qemu" }));
    await assert.rejects(
      () => loadHostConfig(invalid),
      (e) =>
        e instanceof ConfigError &&
        e.message === `${invalid}: backend: must be one of "sim", "linux", got "qemu"`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("settings: what needs the proposed kernel is refused on linux-6.18, naming the field and the fix", () => {
  assert.deepEqual(problems((c) => device(c, 1).cut = true), [
    `${FILE}: devices[1].cut: true (iommufd cut_mapping) needs the proposed kernel (the ` +
    `unmerged series), but the kernel is linux-6.18; set "kernel": "proposed" (or --kernel ` +
    `proposed) to model it, or drop "cut" to map granules as QEMU does on linux-6.18`,
  ]);
  assert.deepEqual(
    problems((c) => {
      c.kvm = { mode: "in-place" };
      region(c, 0).backing = region(c, 1).backing = "in-place";
    }),
    [
      `${FILE}: kvm.mode: "in-place" (guest_memfd in-place conversion) needs the proposed ` +
      `kernel (the unmerged series), but the kernel is linux-6.18; set "kernel": "proposed" ` +
      `(or --kernel proposed) to model it`,
    ],
  );
  const ok = valid();
  ok.kernel = "proposed";
  device(ok, 1).cut = true;
  assert.equal((parseHostConfig(ok, FILE).devices[1] as { cut?: boolean }).cut, true);
});

/**
 * `valid()` made what QEMU can run: every DMA device follows every region (QEMU's VFIO listener
 * follows the whole address space) and the virtio-mem device covers its region.
 */
function qemuShape(c: Record<string, unknown>): void {
  delete device(c, 0).region;
  device(c, 2).offset = 0;
}

Deno.test("settings: what QEMU cannot do is refused under its policies", () => {
  const lines = problems((c) => c.vmm = "qemu-10.1");
  assert.equal(lines.length, 3, lines.join("\n"));
  // A VFIO container's listener follows every RAM section of the address space
  // (hw/vfio/container.c vfio_container_connect: memory_listener_register on the space's AS).
  assert.match(
    lines[0],
    /devices\[0\]\.region: leaves out "ram-above-4g", which cannot be done under qemu-10\.1: .*vfio_container_connect/,
  );
  // A virtio-mem device manages its whole memory backend (virtio_mem_device_realize).
  assert.match(
    lines[1],
    /devices\[2\]\.offset: makes the device cover part of region "ram-above-4g", .*virtio_mem_device_realize/,
  );
  // One RamDiscardManager per memory region in 10.1: no virtio-mem beside guest_memfd.
  assert.match(lines[2], /devices\[2\]\.type: "virtio-mem" cannot share region "ram-above-4g"/);
  assert.match(lines[2], /memory_region_set_ram_discard_manager/);
  assert.match(
    problems((c) => {
      c.vmm = "qemu-11.1";
      qemuShape(c);
      device(c, 2).size = "8GiB";
    })[0],
    /devices\[2\]\.size: makes the device cover part of region "ram-above-4g"/,
  );
  // QEMU maps at the manager's minimum granularity; a memstate-only option.
  assert.match(
    problems((c) => {
      c.vmm = "qemu-11.1";
      qemuShape(c);
      device(c, 0).granularity = "2MiB";
    })[0],
    /devices\[0\]\.granularity: cannot be set under qemu-11.1/,
  );
  // In-place conversion is an unmerged QEMU RFC.
  assert.match(
    problems((c) => {
      c.vmm = "qemu-11.1";
      qemuShape(c);
      c.kernel = "proposed";
      c.kvm = { mode: "in-place" };
      region(c, 0).backing = region(c, 1).backing = "in-place";
    })[0],
    /kvm\.mode: "in-place" cannot run under qemu-11.1/,
  );
  // QEMU tracks shared memory per host page (system/ram-block-attributes.c
  // ram_block_attributes_get_block_size: qemu_real_host_page_size()), so a region's page is 4 KiB.
  for (const vmm of ["qemu-10.1", "qemu-11.1"]) {
    const lines = problems((c) => {
      c.vmm = vmm;
      qemuShape(c);
      if (vmm === "qemu-10.1") (c.devices as unknown[]).splice(2, 1); // no virtio-mem under 10.1
      region(c, 1).pageSize = "2MiB";
    });
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0], new RegExp(`regions\\[1\\]\\.pageSize: must be "4KiB" under ${vmm}`));
    assert.match(lines[0], /ram_block_attributes_get_block_size/);
  }
  const big = valid();
  region(big, 1).pageSize = "2MiB";
  assert.equal(parseHostConfig(big, FILE).regions[1].pageSize, 2 ** 21, "memstate's own policy");
  const q11 = valid();
  q11.vmm = "qemu-11.1";
  qemuShape(q11);
  assert.equal(parseHostConfig(q11, FILE).vmm, "qemu-11.1");
});

Deno.test("settings: hugetlb backing is a size of 4 KiB, 2 MiB or 1 GiB that divides the region, and sim-only", () => {
  assert.deepEqual(problems((c) => region(c, 0).backingPageSize = "8KiB"), [
    `${FILE}: regions[0].backingPageSize: must be "4KiB" (shmem folios), "2MiB" or "1GiB" ` +
    `(hugetlb), got 8192`,
  ]);
  assert.match(
    problems((c) => {
      region(c, 0).size = "3MiB";
      region(c, 0).backingPageSize = "2MiB";
    })[0],
    /regions\[0\]\.backingPageSize: region size 0x300000 must be a multiple of the backing page size 0x200000/,
  );
  assert.match(
    problems((c) => {
      c.backend = "linux";
      region(c, 0).backingPageSize = "2MiB";
    }).join("\n"),
    /regions\[0\]\.backingPageSize: must be "4KiB" with the linux backend/,
  );
  assert.match(
    problems((c) => {
      c.backend = "linux";
      c.kernel = "proposed";
    }).join("\n"),
    /kernel: is "proposed", but the linux backend runs on this machine's kernel/,
  );
});

Deno.test("memlockLimit with the linux backend is a one-line configuration error: its DMA containers are simulated and pin nothing, so no RLIMIT_MEMLOCK would hold (src/host/build.ts)", () => {
  // Rule: the build gives the DMA simulators a SimHost (pins and mm->locked_vm, Linux 6.18
  // drivers/vfio/vfio_iommu_type1.c vfio_lock_acct) only on the sim backend; a limit that
  // nothing enforces would make capacity checks and reports claim what the run did not do.
  assert.deepEqual(
    problems((c) => {
      c.backend = "linux";
      c.memlockLimit = "1GiB";
    }),
    [
      `${FILE}: memlockLimit: applies to the sim backend only: with the linux backend the DMA ` +
      `containers are simulated and pin no memory of this process, so RLIMIT_MEMLOCK would not ` +
      `be enforced; remove it or use "backend": "sim"`,
    ],
  );
  parseHostConfig({ ...valid(), memlockLimit: "1GiB" }, FILE);
});

Deno.test("a __proto__ key in workload params or plugin options is refused by name, not dropped", () => {
  // JSON.parse keeps "__proto__" as a key; copied into a record it would set the prototype.
  const config = JSON.parse(`{
    "name": "p",
    "regions": [{ "name": "ram", "size": "1GiB" }],
    "plugins": [{ "module": "./p.ts", "options": { "__proto__": { "limit": 1 } } }],
    "workload": { "name": "boot", "params": { "__proto__": { "buffers": 3 } } }
  }`);
  assert.throws(() => parseHostConfig(config, FILE), (e) => {
    assert.ok(e instanceof ConfigError);
    assert.deepEqual(e.issues.map((i) => i.path).sort(), [
      "plugins[0].options.__proto__",
      "workload.params.__proto__",
    ]);
    assert.match(e.message, /workload\.params\.__proto__: not allowed as a key/);
    return true;
  });
  // Other free keys pass through as before.
  const ok = parseHostConfig(
    {
      ...config,
      plugins: [{ module: "./p.ts", options: { limit: 1 } }],
      workload: { name: "boot" },
    },
    FILE,
  );
  assert.deepEqual(ok.plugins[0].options, { limit: 1 });
  assert.ok(ok.workload.kind === "generator");
  assert.deepEqual(ok.workload.params, {});
});

Deno.test("one mistake is one line: no follow-on complaint about the same or a dependent field", () => {
  // A list where a string belongs is not a string; that it is also "too short" is no news.
  assert.deepEqual(problems((c) => (c.plugins = [{ module: [] }])), [
    `${FILE}: plugins[0].module: must be a string, got a list`,
  ]);
  assert.deepEqual(problems((c) => (c.workload = { trace: [] })), [
    `${FILE}: workload.trace: must be a string, got a list`,
  ]);
  // An optional object given as null is a mistake like any other non-object, not "absent".
  assert.deepEqual(problems((c) => (c.kvm = null)), [
    `${FILE}: kvm: must be a JSON object, got null`,
  ]);
  // A virtio-mem size already refused is not the measure of its requestedSize.
  assert.deepEqual(problems((c) => (device(c, 2).size = 0)), [
    `${FILE}: devices[2].size: must be a positive multiple of blockSize 2097152, got 0`,
  ]);
});
