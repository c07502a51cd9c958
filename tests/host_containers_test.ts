// DMA devices of one kind share one container (type1) or IOAS (iommufd), as QEMU puts the devices
// of one address space in one (hw/vfio/container.c vfio_container_connect, hw/vfio/iommufd.c
// iommufd_cdev_attach): mappings, pins and dma_entry_limit count once.
import assert from "node:assert/strict";
import {
  buildHost,
  capacityChecks,
  ConfigError,
  type HostConfig,
  loadHostConfig,
  parseHostConfig,
  planContainers,
  runEvents,
  runSession,
  sharedContainerNotices,
} from "../src/host/mod.ts";
import { renderHostHtml } from "../src/host/report/mod.ts";
import type { SimIoas } from "../src/hw/sim/iommufd.ts";
import type { SimType1Container } from "../src/hw/sim/type1.ts";
import type { IommufdDeviceConfig, Type1DeviceConfig } from "../src/host/config/schema.ts";

const type1 = (name: string, more: Partial<Type1DeviceConfig> = {}): Type1DeviceConfig => ({
  type: "type1",
  name,
  regions: ["ram"],
  dmaEntryLimit: 65535,
  ...more,
});
const iommufd = (name: string, more: Partial<IommufdDeviceConfig> = {}): IommufdDeviceConfig => ({
  type: "iommufd",
  name,
  regions: ["ram"],
  ...more,
});

/** A host of one 4 MiB region that starts shared (1,024 pages), with these devices. */
function host(devices: unknown[], more: Record<string, unknown> = {}): HostConfig {
  return parseHostConfig({
    name: "x",
    regions: [{ name: "ram", size: "4MiB", initial: "shared" }],
    devices,
    workload: { name: "boot" },
    ...more,
  }, "x.json");
}

const TWO = [
  { name: "ram", size: "4MiB", initial: "shared" },
  { name: "hi", size: "4MiB", base: "0x10000000", initial: "shared" },
];

/** Problems the loader reports for these devices (one line each). */
function problems(devices: unknown[], more: Record<string, unknown> = {}): string[] {
  try {
    host(devices, { regions: TWO, ...more });
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.message.split("\n");
  }
}

Deno.test("type1 devices share one container unless their container fields differ, iommufd devices one IOAS per iommufd object; a container is named after its first device and may follow every region one of them follows", () => {
  const plans = planContainers([
    type1("nic0", { regions: ["low"] }),
    iommufd("gpu0"),
    type1("nic1", { regions: ["high", "low"] }),
    iommufd("gpu1", { iommufd: "iommufd1" }),
    iommufd("gpu2"),
  ]);
  assert.deepEqual(
    plans.map((p) => [p.name, p.kind, p.devices.map((d) => d.name), p.regions]),
    [
      ["nic0", "type1", ["nic0", "nic1"], ["low", "high"]],
      ["gpu0", "iommufd", ["gpu0", "gpu2"], ["ram"]],
      ["gpu1", "iommufd", ["gpu1"], ["ram"]],
    ],
  );
});

Deno.test("a type1 device and an iommufd device never share, even with one name for both", () => {
  const plans = planContainers([type1("a", { container: "c" }), iommufd("b", { iommufd: "c" })]);
  assert.deepEqual(plans.map((p) => p.name), ["a", "b"]);
});

for (const kind of ["type1", "iommufd"] as const) {
  Deno.test(`${kind}: two devices attached from the start map the shared memory once, in one container with one plugin`, () => {
    const limit = kind === "type1" ? { dmaEntryLimit: 4096 } : {};
    using shared = buildHost(host([
      { type: kind, name: "a", ...limit },
      { type: kind, name: "b", ...limit },
    ]));
    using apart = buildHost(host([
      { type: kind, name: "a", ...limit },
      { type: kind, name: "b", [kind === "type1" ? "container" : "iommufd"]: "other", ...limit },
    ]));
    const dma = (h: typeof shared) => h.plugins.filter((p) => p.kind !== "kvm-attributes");
    assert.deepEqual(dma(shared).map((p) => p.name), ["a"]);
    assert.deepEqual(dma(apart).map((p) => p.name), ["a", "b"]);
    assert.equal(shared.devices.get("b")!.container, shared.containers.get("a"));
    const calls = (h: typeof shared) =>
      [...h.containers.values()].reduce((n, c) => n + c.hardware.stats.mapCalls, 0);
    assert.equal(calls(shared), 1024, "one map per shared 4 KiB page");
    assert.equal(calls(apart), 2048, "each container maps them all");
    assert.equal(shared.devices.get("a")!.attached && shared.devices.get("b")!.attached, true);
  });

  Deno.test(`${kind}: a device joining an attached container maps nothing; one leaving while another stays unmaps nothing; the last to leave unmaps everything and frees the domain`, () => {
    using h = buildHost(host([
      { type: kind, name: "a" },
      { type: kind, name: "b", attachAt: 1, detachAt: 3 },
    ]));
    const c = h.containers.get("a")!;
    const stats = () => ({ ...c.hardware.stats });
    const before = stats();
    h.attach("b");
    assert.deepEqual(stats(), before, "joining: no MAP, no UNMAP");
    h.detach("a");
    assert.deepEqual(stats(), before, "a leaves, b stays: nothing unmapped");
    assert.equal(c.attached, true);
    assert.equal(c.plugin.stats().mappings, 1024, "one per 4 KiB page (no cut_mapping on 6.18)");
    h.detach("b");
    assert.equal(c.attached, false);
    assert.equal(c.hardware.stats.mappedBytes - c.hardware.stats.unmappedBytes, 0);
    assert.equal(c.hardware.tableBytes, 4096, "only the root table stays counted");
    h.attach("a");
    assert.equal(c.hardware.stats.mapCalls, before.mapCalls * 2, "made again, it replays");
  });
}

Deno.test("iommufd devices in one IOAS pin once: a memlock limit for one device's pins holds two (apart, the second is refused)", () => {
  const devices = [{ type: "iommufd", name: "a" }, { type: "iommufd", name: "b" }];
  using h = buildHost(host(devices, { memlockLimit: "5MiB" }));
  assert.equal((h.containers.get("a")!.hardware as SimIoas).stats.mappedBytes, 4 << 20);
  assert.throws(
    () =>
      buildHost(
        host([devices[0], { ...devices[1], iommufd: "iommufd1" }], { memlockLimit: "5MiB" }),
      ),
    (e: Error) =>
      e instanceof ConfigError &&
      /devices\[1\]: b cannot map what the regions start with/.test(e.message),
  );
});

Deno.test("a type1 container's dma_entry_limit counts its devices' mappings once: 1,024 pages fit 1,024 entries with two devices", () => {
  const devices = [
    { type: "type1", name: "a", dmaEntryLimit: 1024 },
    { type: "type1", name: "b", dmaEntryLimit: 1024, attachAt: 1 },
  ];
  using h = buildHost(host(devices, { continueOnCapacityError: true }));
  const run = runEvents(h, [{ op: "convert", gpa: 0, size: 4096, to: "private", line: 1 }]);
  assert.deepEqual(run.errors, []);
  assert.equal((h.containers.get("a")!.hardware as SimType1Container).mappingCount, 1023);
});

Deno.test("type1 devices sharing a container agree on its dma_entry_limit and granularity (one per container: vfio_iommu_type1_open); a field that did not parse is reported once", () => {
  const tail = `: the setting is the container's; give one of them the same, or a "container" of ` +
    `its own (a memstate option)`;
  assert.deepEqual(
    problems([
      { type: "type1", name: "a", dmaEntryLimit: 4096 },
      { type: "type1", name: "b", granularity: "8KiB" },
    ]),
    [
      `x.json: devices[1].dmaEntryLimit: is 65535 where devices[0] "a", whose container it ` +
      `shares, has 4096${tail}`,
      `x.json: devices[1].granularity: is 8192 where devices[0] "a", whose container it shares, ` +
      `has none${tail}`,
    ],
  );
  // Accepted: the default limit written out, a granularity in two spellings, regions in another
  // order, different regions (memstate's own option: the container follows both).
  assert.deepEqual(
    problems([
      { type: "type1", name: "a", granularity: "8KiB", region: ["ram", "hi"] },
      { type: "type1", name: "b", dmaEntryLimit: 65535, granularity: 8192, region: ["hi", "ram"] },
      { type: "type1", name: "c", granularity: 8192, region: "hi" },
      { type: "type1", name: "d", container: "apart", dmaEntryLimit: 7 },
    ]),
    [],
  );
  // A field that failed to parse is reported where it is, and compared with nothing.
  assert.deepEqual(
    problems([{ type: "type1", name: "a", dmaEntryLimit: "x" }, { type: "type1", name: "b" }])
      .length,
    1,
  );
  assert.deepEqual(
    problems([{ type: "type1", name: "a" }, { type: "type1", name: "b", granularity: -1 }]).length,
    1,
  );
});

Deno.test("iommufd devices on one object agree on cut as it takes effect: absent is the kernel's default (cut_mapping only on proposed)", () => {
  const a = { type: "iommufd", name: "a" };
  assert.deepEqual(problems([{ ...a, cut: false }, { type: "iommufd", name: "b" }]), []);
  assert.deepEqual(
    problems([{ ...a, cut: true }, { type: "iommufd", name: "b" }], { kernel: "proposed" }),
    [],
  );
  assert.deepEqual(
    problems([{ ...a, cut: false }, { type: "iommufd", name: "b" }], { kernel: "proposed" }),
    [
      'x.json: devices[1].cut: is absent where devices[0] "a", whose IOAS it shares, has false (on ' +
      'proposed, absent is true): one IOAS maps one way; give them the same "cut", or different ' +
      '"iommufd" objects',
    ],
  );
  assert.deepEqual(
    problems([{ ...a, cut: false }, { type: "iommufd", name: "b", iommufd: "two" }], {
      kernel: "proposed",
    }),
    [],
  );
  // A cut the kernel lacks is refused once, not compared again.
  assert.equal(problems([a, { type: "iommufd", name: "b", cut: true }]).length, 1);
});

Deno.test("QEMU has no way to keep type1 devices of one address space apart: container is refused under its policies", () => {
  for (const vmm of ["qemu-10.1", "qemu-11.1"]) {
    assert.deepEqual(problems([{ type: "type1", name: "a", container: "c" }], { vmm }), [
      `x.json: devices[0].container: cannot be set under ${vmm}: QEMU puts every type1 device of ` +
      `the address space in one container (hw/vfio/container.c vfio_container_connect); ` +
      `"container" is a memstate option`,
    ]);
  }
  assert.deepEqual(
    problems([{ type: "iommufd", name: "a", iommufd: "o" }], { vmm: "qemu-11.1" }),
    [],
  );
});

Deno.test("memstate's own policy: a container follows a region while one of its attached devices follows it; a region joins with the first such device and leaves with the last", () => {
  using h = buildHost(host([
    { type: "iommufd", name: "a", region: "ram" },
    { type: "iommufd", name: "b", region: "hi", attachAt: 1 },
    { type: "iommufd", name: "c", attachAt: 1 },
  ], { regions: TWO }));
  const c = h.containers.get("a")!;
  const mapped = () => c.hardware.stats.mappedBytes - c.hardware.stats.unmappedBytes;
  assert.equal(mapped(), 4 << 20, "a: ram only");
  h.attach("b");
  assert.equal(mapped(), 8 << 20, "b brings hi");
  const calls = c.hardware.stats.mapCalls;
  h.attach("c");
  assert.equal(c.hardware.stats.mapCalls, calls, "c follows both: both are there already");
  h.detach("a");
  h.detach("c");
  assert.equal(mapped(), 4 << 20, "ram goes with c, the last device following it");
  assert.equal(c.attached, true);
  h.detach("b");
  assert.equal(mapped(), 0);
  assert.equal(c.attached, false);
});

Deno.test("the start-up type1 budget is the container's: every region its devices follow, once", () => {
  const config = host([{ type: "type1", name: "a", dmaEntryLimit: 1536 }], {
    regions: [{ name: "ram", size: "4MiB" }, { name: "hi", size: "4MiB", base: "0x10000000" }],
  });
  // Devices that follow different regions (memstate's option): the container may follow both.
  const split = {
    ...config,
    devices: [
      type1("a", { regions: ["ram"], dmaEntryLimit: 1536 }),
      type1("b", { regions: ["hi"], dmaEntryLimit: 1536 }),
    ],
  };
  const { refusals } = capacityChecks(split);
  assert.equal(refusals.length, 1);
  assert.equal(refusals[0].needed, 2048);
  assert.match(refusals[0].message, /devices\[0\] "a" \(the container it shares with b\)/);
});

Deno.test("comparing with every device made type1: a device that lands in an existing type1 container takes its limit", () => {
  const config = host([
    { type: "type1", name: "nic0", dmaEntryLimit: 4096, granularity: "8KiB" },
    { type: "iommufd", name: "gpu0" },
  ]);
  using h = buildHost(config, { dmaKind: "type1" });
  assert.deepEqual([...h.containers.keys()], ["nic0"]);
  assert.deepEqual(h.containers.get("nic0")!.devices, ["nic0", "gpu0"]);
  const gpu = h.config.devices.find((d) => d.name === "gpu0") as Type1DeviceConfig;
  assert.deepEqual([gpu.dmaEntryLimit, gpu.granularity], [4096, 8192]);
});

Deno.test("comparing: a granularity that does not fit a swapped device's regions gives it a container of its own, not a host that cannot run", () => {
  const config = host([
    { type: "type1", name: "nic0", region: "ram", granularity: "4MiB" },
    { type: "iommufd", name: "gpu0", region: "odd" },
    { type: "iommufd", name: "gpu1", region: "odd" },
  ], { regions: [TWO[0], { name: "odd", size: "6MiB", base: "0x10000000" }] });
  using h = buildHost(config, { dmaKind: "type1" });
  // The two that shared an IOAS share the container they get, so their mappings count once.
  assert.deepEqual([...h.containers.values()].map((c) => c.devices), [["nic0"], ["gpu0", "gpu1"]]);
  const gpu = h.config.devices.find((d) => d.name === "gpu0") as Type1DeviceConfig;
  assert.deepEqual([gpu.dmaEntryLimit, gpu.granularity], [65535, undefined]);
});

Deno.test("comparing the other way: a type1 device made iommufd keeps the separation its container gave, on an iommufd object of that name", () => {
  const config = host([
    { type: "type1", name: "a" },
    { type: "type1", name: "b", container: "two" },
    { type: "iommufd", name: "c", iommufd: "two" },
  ]);
  using h = buildHost(config, { dmaKind: "iommufd" });
  assert.deepEqual([...h.containers.values()].map((c) => c.devices), [["a"], ["b", "c"]]);
});

Deno.test("a notice for devices sharing a named type1 container says it is memstate's option, not QEMU's", () => {
  const [notice] = sharedContainerNotices(planContainers([
    type1("a", { container: "x" }),
    type1("b", { container: "x" }),
  ]));
  assert.match(
    notice,
    /^type1 devices a and b share the container their "container" field names \("x", memstate's option\), reported as a:/,
  );
});

Deno.test("the report has one row per container and a notice naming the devices that share one", async () => {
  const { report, host: built } = await runSession(host([
    { type: "iommufd", name: "a" },
    { type: "iommufd", name: "b" },
    { type: "iommufd", name: "c" },
    { type: "type1", name: "d" },
  ]));
  assert.deepEqual(report.plugins.map((p) => [p.name, p.devices]), [
    ["kvm", undefined],
    ["a", ["a", "b", "c"]],
    ["d", ["d"]],
  ]);
  // The HTML report's container card names the devices in it.
  const html = renderHostHtml(built, report);
  assert.match(html, /<h2>DMA containers against their limits<\/h2>/);
  assert.match(html, /<th>devices<\/th><td>a, b, c<\/td>/);
  assert.deepEqual(report.notices, [
    "iommufd devices a, b and c share one IOAS, reported as a: QEMU puts the devices of one " +
    "address space on one iommufd object in one (hw/vfio/iommufd.c iommufd_cdev_attach), so " +
    "their mappings and pinned memory count once",
  ]);
});

for (const kind of ["type1", "iommufd"] as const) {
  Deno.test(`${kind}: a detach whose unmap fails still lets the device go (QEMU only reports it: vfio_ram_discard_notify_discard), and the last device's container takes every mapping left with it (vfio_iommu_unmap_unpin_all, iopt_unmap_all)`, () => {
    using h = buildHost(host([{ type: kind, name: "d", attachAt: 1 }], { regions: TWO }));
    h.attach("d");
    const c = h.containers.get("d")!;
    const hw = c.hardware as { unmap: (...a: never[]) => number };
    const unmap = hw.unmap.bind(hw);
    let calls = 0;
    hw.unmap = (...a: never[]) => {
      if (calls++ === 0) throw new Error("injected unmap failure");
      return unmap(...a);
    };
    assert.throws(() => h.detach("d"), /injected unmap failure/);
    assert.equal(h.devices.get("d")!.attached, false);
    assert.equal(c.attached, false);
    const s = c.hardware.stats;
    assert.equal(s.mappedBytes - s.unmappedBytes, 0, "nothing stays mapped");
    assert.equal(c.hardware.tableBytes, 4096);
    const live = () => (c.hardware as { mappingCount?: number; areaCount?: number });
    const count = () => live().mappingCount ?? live().areaCount;
    assert.deepEqual([c.plugin.stats().mappings, count()], [0, 0], "the plugin counts what went");
    h.attach("d"); // and it can come back: every page maps again
    assert.equal(c.hardware.stats.mappedBytes - c.hardware.stats.unmappedBytes, 8 << 20);
    assert.deepEqual([c.plugin.stats().mappings, c.plugin.stats().peakMappings], [2048, 2048]);
    assert.equal(count(), 2048);
  });
}

Deno.test("examples/snp-amd.json: nic1 joins nic0's container while it is there, so the report has one type1 row for both; its RAM above 4 GiB sits at 1 TiB, clear of AMD's HyperTransport range", async () => {
  const config = await loadHostConfig("examples/snp-amd.json");
  assert.equal(config.iommu, "amd-v1");
  assert.equal(config.regions[1].base, 2 ** 40);
  const { report } = await runSession(config, { params: { steps: 2000 } });
  const dma = report.plugins.filter((p) => p.kind === "vfio-type1");
  assert.deepEqual(dma.map((p) => [p.name, p.devices]), [["nic0", ["nic0", "nic1"]]]);
  assert.equal(report.hotplug, 0, "2,000 steps end before nic1's event 5000");
  assert.match(report.notices.join("\n"), /type1 devices nic0 and nic1 share one VFIO container/);
});
