// Host configurations end to end: every example runs, reports are well formed,
// traces replay with the right counts, bad lines never change state.
import assert from "node:assert/strict";
import { RegionFailedError } from "../src/bus/errors.ts";
import { buildHost } from "../src/host/build.ts";
import { parseHostConfig } from "../src/host/config/load.ts";
import { checkInvariants } from "../src/host/invariants.ts";
import { buildReport, type Report } from "../src/host/report/report.ts";
import { renderTextReport } from "../src/host/report/text.ts";
import { renderHtmlReport } from "../src/host/report/html.ts";
import { runEvents } from "../src/host/event_runner.ts";
import { type RunProbe, RunRecorder } from "../src/host/report/recorder.ts";
import { runSession } from "../src/host/session.ts";
import { readTrace } from "../src/host/trace/read.ts";
import { loadHostConfig } from "../src/host/config/load.ts";
import { probeKvm } from "../src/hw/linux/probe.ts";
import { KVM_MEMORY_ATTRIBUTE_PRIVATE } from "../src/hw/backend.ts";
import type { SimIoas, SimKvm, SimType1Container } from "../src/hw/sim/mod.ts";
import { FALLOC_FL_KEEP_SIZE } from "../src/hw/backend.ts";

const kvm = probeKvm();

/** The shape --json promises (the README documents it). */
function assertReportShape(r: Report) {
  assert.equal(typeof r.store, "string");
  for (const k of ["requested", "applied", "noop", "ignored", "failed", "rejected"] as const) {
    assert.equal(typeof r.conversions[k], "number", `conversions.${k}`);
  }
  for (const g of r.regions) {
    for (
      const k of [
        "name",
        "size",
        "extents",
        "storeBytes",
        "bitmapBytes",
        "sharedBytes",
        "privateBytes",
        "pluggedBytes",
      ] as const
    ) {
      assert.ok(k in g, `regions[].${k}`);
    }
    assert.equal(g.sharedBytes + g.privateBytes, g.size);
  }
  for (const p of r.plugins) {
    for (
      const k of ["name", "kind", "mappings", "peakMappings", "mappedBytes", "failures"] as const
    ) {
      assert.ok(k in p, `plugins[].${k}`);
    }
  }
  assert.ok(Array.isArray(r.errors));
  assert.equal(typeof r.invariants.checked, "number");
  assert.ok(Array.isArray(r.invariants.violations));
  // It survives a JSON round trip unchanged (no bigint, no Infinity, no cycles).
  assert.deepEqual(JSON.parse(JSON.stringify(r)), r);
}

const examples: [string, Record<string, unknown>][] = [
  ["examples/tdx-16g.json", {}],
  ["examples/type1-1t.json", { steps: 2000 }],
  ["examples/iommufd-1t.json", { steps: 2000 }],
  ["examples/virtio-mem-cvm.json", { cycles: 3 }],
  ["examples/hotplug.json", {}],
  ["examples/tdx-trace.json", {}],
  ["examples/snp-amd.json", { steps: 2000 }],
];

for (const [file, params] of examples) {
  Deno.test(`example ${file} runs with no invariant violation`, async () => {
    const config = await loadHostConfig(file);
    const { report } = await runSession(config, { params });
    assertReportShape(report);
    assert.deepEqual(report.invariants.violations, []);
    assert.ok(report.invariants.checked >= report.regions.length);
    assert.ok(report.conversions.applied > 0 || report.requests.ACK > 0, "the run did something");
    assert.equal(report.conversions.rejected, 0);
  });
}

Deno.test({
  name: "example examples/linux-kvm.json runs on the real backend",
  ignore: !kvm.available,
  async fn() {
    const { report } = await runSession(await loadHostConfig("examples/linux-kvm.json"));
    assertReportShape(report);
    assert.equal(report.backend, "linux");
    assert.deepEqual(report.realParts && report.realParts.punch, true);
    assert.deepEqual(report.invariants.violations, []);
  },
});
if (!kvm.available) console.log(`skipping the real-backend example: ${kvm.reason}`);

Deno.test("a container whose last device detached reports no IO page tables but the root: its domain goes with its last device (vfio_iommu_type1_detach_group, iommufd_cdev_detach)", async () => {
  const config = await loadHostConfig("examples/hotplug.json");
  // late0 on an iommufd object of its own: its IOAS goes when it leaves at event 15000.
  const devices = config.devices.map((d) => d.name === "late0" ? { ...d, iommufd: "own" } : d);
  const { report } = await runSession({ ...config, devices });
  const late = report.plugins.find((p) => p.name === "late0")!;
  assert.equal(late.mappings, 0);
  assert.equal(late.tableBytes, 4096);
  assert.ok(late.peakTableBytes! > 4096, `peak ${late.peakTableBytes}`);
});

/**
 * A host under `vmm` with `memlockLimit`, shared `regions` (name, MiB, base) and one DMA device
 * `d` arriving at event 1, built; `device` adds to or overrides its fields.
 */
function replayHost(
  vmm: string,
  memlockLimit: string,
  regions: [string, number, number][],
  device: Record<string, unknown> = {},
) {
  return buildHost(parseHostConfig({
    name: "x",
    vmm,
    memlockLimit,
    regions: regions.map(([name, mib, base]) => ({
      name,
      size: `${mib}MiB`,
      initial: "shared",
      base,
    })),
    devices: [{ type: "iommufd", name: "d", attachAt: 1, ...device }],
    workload: { name: "boot" },
  }, "x.json"));
}

Deno.test("a failed attach lets its container go (memstate), and a device QEMU 11.1 keeps after a failed replay detaches from the regions it holds: no page table but the root is left", () => {
  // The regions are met in address order (a, then b) whatever order the device lists them in.
  for (const [vmm, order] of [["memstate", ["b", "a"]], ["qemu-11.1", ["b", "a"]]] as const) {
    for (const type of ["iommufd", "type1"] as const) {
      using host = replayHost(vmm, "3MiB", [["a", 2, 0], ["b", 4, 0x1000_0000]], {
        type,
        region: [...order],
      });
      const dev = host.devices.get("d")!;
      const note = `${vmm} ${type}`;
      assert.throws(() => host.attach("d"), /ENOMEM/, note); // region b needs 4 MiB pinned
      if (dev.attached) host.detach("d"); // QEMU 11.1 kept it, on a and on b
      assert.equal(dev.attached, false, note);
      assert.equal(dev.container.hardware.tableBytes, 4096, note);
    }
  }
});

Deno.test("QEMU 10.1: the first refused replay fails its region and QEMU exits: no later region is attached (ram_block_attributes_rdm_register_listener)", () => {
  using host = replayHost("qemu-10.1", "2MiB", [["ram", 4, 0], ["hi", 4, 0x1000_0000]]);
  assert.throws(() => host.attach("d"), (e) => e instanceof RegionFailedError);
  assert.deepEqual(host.regions.map((r) => r.failure !== undefined), [true, false]);
  assert.deepEqual(host.regions[1].listeners.map((l) => l.name), [], "hi was never reached");
});

Deno.test("QEMU 11.1: a replay refused on one region does not stop the container's listener at it; the later regions are still followed and the first failure is reported after them (vfio_ram_discard_register_listener ignores the manager's answer)", () => {
  // Listed backwards: the listener still meets them in address order, so b is the one refused.
  using host = replayHost(
    "qemu-11.1",
    "5MiB",
    [["a", 4, 0], ["b", 4, 0x1000_0000], ["c", 1, 0x2000_0000]],
    { region: ["c", "b", "a"] },
  );
  assert.throws(() => host.attach("d"), /region b.*ENOMEM/);
  const dev = host.devices.get("d")!;
  assert.equal(dev.attached, true);
  const stats = dev.container.hardware.stats;
  assert.equal(stats.mappedBytes - stats.unmappedBytes, 5 << 20, "a and c mapped, b rolled back");
});

Deno.test("at one event a device leaving goes before one arriving: a memlock limit for one device at a time holds", () => {
  const config = parseHostConfig({
    name: "swap",
    memlockLimit: "3MiB",
    regions: [{ name: "a", size: "2MiB", initial: "shared" }],
    devices: [
      // Listed first, arrives as early leaves; on iommufd objects of their own, so each pins.
      { type: "iommufd", name: "late", attachAt: 2, iommufd: "one" },
      { type: "iommufd", name: "early", detachAt: 2, iommufd: "two" },
    ],
    workload: { name: "boot" },
  }, "swap.json");
  using host = buildHost(config);
  const convert = (line: number) => ({
    op: "convert" as const,
    gpa: 0,
    size: 4096,
    to: line % 2 ? "private" as const : "shared" as const,
    line,
  });
  const run = runEvents(host, [1, 2, 3].map(convert));
  assert.deepEqual(run.errors, [], "late's 2 MiB pin fits once early's is gone");
  assert.equal(run.hotplug, 2);
  assert.equal(host.devices.get("late")!.attached, true);
  assert.equal(host.devices.get("early")!.attached, false);
});

Deno.test("type1 and iommufd on the same 1 TiB workload: iommufd needs far fewer mappings", async () => {
  const run = async (file: string) =>
    (await runSession(await loadHostConfig(file), { params: { steps: 2000 } })).report;
  const t1 = (await run("examples/type1-1t.json")).plugins.find((p) => p.kind === "vfio-type1")!;
  const io = (await run("examples/iommufd-1t.json")).plugins.find((p) => p.kind === "iommufd")!;
  assert.equal(t1.mappedBytes, io.mappedBytes, "both map exactly the shared memory");
  assert.ok(
    io.peakMappings * 10 < t1.peakMappings,
    `${io.peakMappings} areas vs ${t1.peakMappings} mappings`,
  );
});

Deno.test("trace replay of the shipped QEMU log: counts match the log, the MMIO hole is ignored", async () => {
  const text = await Deno.readTextFile("examples/traces/tdx-boot.log");
  const trace = readTrace(text);
  assert.deepEqual(trace.errors, []);
  const { report } = await runSession(await loadHostConfig("examples/tdx-trace.json"));
  assert.equal(report.conversions.requested, trace.events.filter((e) => e.op === "convert").length);
  assert.equal(report.conversions.ignored, 1);
  assert.equal(
    report.conversions.applied + report.conversions.noop + report.conversions.ignored,
    report.conversions.requested,
  );
});

const TRACE_CONFIG = {
  name: "t",
  regions: [
    { name: "low", size: "64MiB", base: 0 },
    { name: "high", size: "64MiB", base: "0x4000000" },
  ],
  devices: [{ type: "iommufd", name: "nic0" }],
  workload: { name: "boot" },
};

const BAD_TRACE = [
  "kvm_convert_memory start 0x0 size 0x200000 private_to_shared", // 1 ok
  "kvm_convert_memory start 0x1000 size 0x1000 sideways", // 2 malformed
  "kvm_convert_memory start 0x1001 size 0x1000 private_to_shared", // 3 misaligned
  "kvm_convert_memory start 0x3fff000 size 0x2000 private_to_shared", // 4 spans two regions
  "kvm_convert_memory start 0x90000000 size 0x1000 shared_to_private", // 5 out of range
  "kvm_convert_memory start 0xfee00000 size 0x1000 private_to_shared", // 6 MMIO hole: ignored
  "kvm_convert_memory start 0x0 size 0x1000 private_to_shared", // 7 no-op
  "kvm_convert_memory start 0x4000000 size 0x1000 private_to_shared", // 8 ok
].join("\n");

Deno.test("bad trace lines are reported with their line numbers and skipped; state stays right", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/bad.log`;
  await Deno.writeTextFile(path, BAD_TRACE);
  const config = parseHostConfig(TRACE_CONFIG, "t.json");
  const { report, host } = await runSession(config, { trace: path });
  assert.deepEqual(report.errors.map((e) => e.line), [2, 3, 4, 5]);
  assert.match(report.errors[1].message, /misaligned|aligned/);
  assert.match(report.errors[2].message, /spans two regions/);
  assert.match(report.errors[3].message, /out of range/);
  assert.deepEqual(report.conversions, {
    requested: 7,
    applied: 2,
    noop: 1,
    ignored: 1,
    failed: 0,
    rejected: 3,
  });
  assert.deepEqual(report.invariants.violations, []);
  assert.equal(host.regions[0].stateAt(0x1000) & 1, 1);
  assert.equal(host.regions[0].stateAt(0x3fff000) & 1, 0, "the spanning line changed nothing");
});

Deno.test("--strict: a bad trace line fails the run before anything changes", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/bad.log`;
  await Deno.writeTextFile(path, BAD_TRACE);
  const { report } = await runSession(parseHostConfig(TRACE_CONFIG, "t.json"), {
    trace: path,
    strict: true,
  });
  assert.equal(report.stoppedAt?.line, 2);
  assert.equal(report.conversions.applied, 0);
  assert.equal(report.regions[0].sharedBytes, 0);
});

Deno.test("--strict: a rejected event stops the run at that line", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/bad.jsonl`;
  await Deno.writeTextFile(
    path,
    [
      `{"op":"convert","gpa":0,"size":4096,"to":"shared"}`,
      `{"op":"convert","gpa":1,"size":4096,"to":"shared"}`,
      `{"op":"convert","gpa":8192,"size":4096,"to":"shared"}`,
    ].join("\n"),
  );
  const { report } = await runSession(parseHostConfig(TRACE_CONFIG, "t.json"), {
    trace: path,
    strict: true,
  });
  assert.equal(report.stoppedAt?.line, 2);
  assert.equal(report.conversions.applied, 1);
});

Deno.test("the invariant checker finds a planted violation in each component", () => {
  const config = parseHostConfig(
    {
      ...TRACE_CONFIG,
      kernel: "proposed", // cut_mapping, used to plant the iommufd violation
      devices: [{ type: "type1", name: "nic0" }, { type: "iommufd", name: "gpu0" }],
    },
    "t.json",
  );
  using host = buildHost(config);
  runEvents(host, [{ op: "convert", gpa: 0, size: 0x200000, to: "shared", line: 1 }]);
  assert.deepEqual(checkInvariants(host.regions, host.plugins).violations, []);
  const [low] = host.regions;
  const violations = () => checkInvariants(host.regions, host.plugins).violations;

  // 1. KVM: a private page made shared behind the store's back.
  (host.vm as SimKvm).setMemoryAttributes(0x200000, 0x1000, 0);
  assert.deepEqual(violations(), [
    "kvm: [0x200000, 0x201000) is private in the store but not in KVM",
  ]);
  (host.vm as SimKvm).setMemoryAttributes(0x200000, 0x1000, KVM_MEMORY_ATTRIBUTE_PRIVATE);

  // 2. type1: a stray DMA mapping of private memory.
  const container = host.devices.get("nic0")!.container.hardware as SimType1Container;
  container.map(0x300000, low.hostAddress + 0x300000, 0x1000);
  assert.deepEqual(violations(), [
    "nic0: [0x300000, 0x301000) is mapped but not populated (not plugged-and-shared)",
  ]);
  container.unmap(0x300000, 0x1000);

  // 3. iommufd: a shared page left unmapped.
  const ioas = host.devices.get("gpu0")!.container.hardware as SimIoas;
  ioas.cutMapping(0x1000);
  ioas.cutMapping(0x2000);
  ioas.unmap(0x1000, 0x1000);
  assert.deepEqual(violations(), ["gpu0: [0x1000, 0x2000) is populated but not mapped"]);
  ioas.map(0x1000, low.hostAddress + 0x1000, 0x1000);

  // 4. Backing: a shared page's guest_memfd side is allocated again (fallocate).
  host.kvm.binding(low)!.backing.guestMemfd.fallocate(FALLOC_FL_KEEP_SIZE, 0x5000, 0x1000);
  assert.deepEqual(violations(), [
    "kvm: shared [0x0, 0x200000) still has guest_memfd pages",
  ]);
});

Deno.test("devices with attachAt / detachAt come and go at those event numbers, each on its own", () => {
  // event_runner.ts hotplugByTiming: a device with only detachAt starts attached and leaves at
  // its event; one with only attachAt arrives at its event; the others stay as they are.
  const config = parseHostConfig(
    {
      ...TRACE_CONFIG,
      devices: [
        { type: "type1", name: "leaves", detachAt: 3 },
        { type: "iommufd", name: "arrives", attachAt: 4 },
        { type: "iommufd", name: "stays" },
      ],
    },
    "timed.json",
  );
  using host = buildHost(config);
  const attached = () =>
    [...host.devices.values()].filter((d) => d.attached).map((d) => d.config.name).sort();
  assert.deepEqual(attached(), ["leaves", "stays"]);
  const convert = (line: number) => ({
    op: "convert" as const,
    gpa: line * 0x1000,
    size: 0x1000,
    to: "shared" as const,
    line,
  });
  // The probe sees the devices after every event: the change comes just before its event.
  const seen: string[][] = [];
  const probe = { conversionTime() {}, afterEvent: () => void seen.push(attached()) };
  const run = runEvents(host, [1, 2, 3, 4, 5].map(convert), { probe });
  assert.deepEqual(run.errors, []);
  assert.equal(run.hotplug, 2);
  assert.deepEqual(seen, [
    ["leaves", "stays"],
    ["leaves", "stays"],
    ["stays"],
    ["arrives", "stays"],
    ["arrives", "stays"],
  ]);
  assert.deepEqual(checkInvariants(host.regions, host.plugins).violations, []);
});

Deno.test("a probe with nextEvent is told only at the events it asks for; the recorder's timeline is the same", () => {
  // event_runner.ts #settle: after each afterEvent the runner asks nextEvent
  // when the probe has it; the recorder answers its next sample, so skipping
  // the calls between changes nothing it records.
  const config = parseHostConfig(TRACE_CONFIG, "due.json");
  const events = Array.from({ length: 3000 }, (_, i) => ({
    op: "convert" as const,
    gpa: (i * 7919 % 16384) * 0x1000,
    size: 0x1000 * (1 + i % 3),
    to: i % 2 === 0 ? "shared" as const : "private" as const,
    line: i + 1,
  }));
  const timelineOf = (wrap: (recorder: RunRecorder) => RunProbe) => {
    using host = buildHost(config);
    const recorder = new RunRecorder(host, 16);
    const probe = wrap(recorder);
    const run = runEvents(host, events, { probe });
    recorder.finish(run.events, run.conversions.requested);
    const { timeMs: _, conversionsPerSecond: __, ...timeline } = recorder.timeline();
    return timeline;
  };
  let everyCalls = 0, dueCalls = 0;
  const every = timelineOf((recorder) => ({
    conversionTime: (ms, weight) => recorder.conversionTime(ms, weight),
    afterEvent: (e, c) => (everyCalls++, recorder.afterEvent(e, c)),
  }));
  const due = timelineOf((recorder) => ({
    conversionTime: (ms, weight) => recorder.conversionTime(ms, weight),
    afterEvent: (e, c) => (dueCalls++, recorder.afterEvent(e, c)),
    nextEvent: () => recorder.nextEvent(),
  }));
  assert.equal(everyCalls, 3000);
  assert.ok(dueCalls > 1 && dueCalls < 100, `told ${dueCalls} times`);
  assert.ok(every.events.length > 4, "the timeline has samples to compare");
  assert.deepEqual(due, every);
});

/** Conversions to shared of pages 1 to 5, lines 1 to 5 (their direction may be flipped). */
function fivePageConversions() {
  return [1, 2, 3, 4, 5].map((line) => ({
    op: "convert" as const,
    gpa: line * 0x1000,
    size: 0x1000,
    to: "shared" as "shared" | "private",
    line,
  }));
}

Deno.test("nextEvent: NaN, the past or the present asks for the next event; Infinity for none this run", () => {
  using host = buildHost(parseHostConfig(TRACE_CONFIG, "due.json"));
  const events = fivePageConversions();
  const cases: [string, (events: number) => number, number[]][] = [
    ["NaN", () => NaN, [1, 2, 3, 4, 5]],
    ["the past", () => 0, [1, 2, 3, 4, 5]],
    ["the present", (e) => e, [1, 2, 3, 4, 5]],
    ["two events on", (e) => e + 2, [1, 3, 5]],
    ["Infinity", () => Infinity, [1]],
  ];
  for (const [name, answer, expected] of cases) {
    const told: number[] = [];
    const probe: RunProbe = {
      conversionTime() {},
      afterEvent: (e) => void told.push(e),
      nextEvent: () => answer(told[told.length - 1]),
    };
    // Two runs with one probe: each starts by telling it of its first event.
    for (let run = 0; run < 2; run++) {
      for (const event of events) event.to = event.to === "shared" ? "private" : "shared";
      runEvents(host, events, { probe });
    }
    assert.deepEqual(told, [...expected, ...expected], `nextEvent answering ${name}`);
  }
});

Deno.test("a probe without nextEvent is told after every event, whatever afterEvent returns", () => {
  using host = buildHost(parseHostConfig(TRACE_CONFIG, "due.json"));
  const events = fivePageConversions();
  const told: number[] = [];
  // push returns the new length, a number: in the second run it is ahead of the
  // events (6 at the first), and must not be taken as the next event wanted.
  const probe = { conversionTime() {}, afterEvent: (e: number) => told.push(e) };
  runEvents(host, events, { probe });
  for (const event of events) event.to = "private";
  runEvents(host, events, { probe });
  assert.deepEqual(told, [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]);
});

Deno.test("the host's iommu decides the report's IO page tables: a 2 MiB granule of 4 KiB entries unmapped in one iommufd call frees its leaf table on intel-vt-d, not on amd-v1 (Linux 6.18 amd/io_pgtable.c iommu_v1_unmap_pages), whose 3-level table has no 512 GiB table", () => {
  const MiB = 2 ** 20;
  const reports = (["intel-vt-d", "amd-v1"] as const).map((iommu) => {
    const config = parseHostConfig({
      name: "iommu",
      iommu,
      // memstate's 2 MiB pages: the IOAS maps one 2 MiB area of 512 4 KiB entries per granule.
      regions: [{ name: "ram", size: "64MiB", pageSize: "2MiB" }],
      devices: [{ type: "iommufd", name: "nic0" }, { type: "type1", name: "gpu0" }],
      workload: { name: "boot" },
    }, "iommu.json");
    using host = buildHost(config);
    const run = runEvents(host, [
      { op: "convert", gpa: 0, size: 4 * MiB, to: "shared", line: 1 },
      { op: "convert", gpa: 0, size: 4 * MiB, to: "private", line: 2 },
    ]);
    const report = buildReport(host, run, checkInvariants(host.regions, host.plugins), "events");
    assert.deepEqual(report.invariants.violations, []);
    return report;
  });
  const [vtd, amd] = reports.map((r) => r.plugins.find((p) => p.name === "nic0")!);
  // type1 unmaps one 4 KiB run per call: nothing is freed, and AMD v1 has no 512 GiB table.
  const [vtd1, amd1] = reports.map((r) => r.plugins.find((p) => p.name === "gpu0")!);
  assert.deepEqual([vtd1.tableBytes, vtd1.peakTableBytes], [5 * 4096, 5 * 4096]);
  assert.deepEqual([amd1.tableBytes, amd1.peakTableBytes], [4 * 4096, 4 * 4096]);
  // VT-d: root, 512 GiB and 1 GiB tables, two leaves; the leaves go with the unmap.
  assert.equal(vtd.peakTableBytes, 5 * 4096);
  assert.equal(vtd.tableBytes, 3 * 4096);
  // AMD v1: a 3-level root (no 512 GiB table) and nothing freed on unmap.
  assert.equal(amd.peakTableBytes, 4 * 4096);
  assert.equal(amd.tableBytes, 4 * 4096);
  assert.equal(reports[1].iommu, "amd-v1");
  assert.match(renderTextReport(reports[1]), /^vmm memstate, kernel linux-6\.18, iommu amd-v1$/m);
});

Deno.test("a problem is placed by the input's own unit: event, line or record", async () => {
  const config = await loadHostConfig("examples/tdx-16g.json");
  const { report } = await runSession(config, { params: { buffers: 10 } });
  assert.equal(report.trace, undefined, "a generated workload has no trace");
  const problem = { line: 7, message: "refused" };
  const withProblems = (r: Report): Report => ({ ...r, errors: [problem], stoppedAt: problem });
  const text = renderTextReport(withProblems(report));
  assert.match(text, /^ {2}event 7: refused$/m);
  assert.match(text, /^stopped at event 7: refused$/m);
  assert.doesNotMatch(text, /line 7/);
  const html = renderHtmlReport({ report: withProblems(report), regions: [], devices: [] });
  assert.match(html, /<li>event 7: refused<\/li>/);
  assert.match(html, /stopped at event 7: refused/);
  assert.match(html, /<span class="badge bad">stopped at event 7<\/span>/);
  assert.doesNotMatch(html, /line 7/);
  // The JSON-lines sample replays on the configuration its header names, cleanly.
  const sample = await runSession(await loadHostConfig("examples/virtio-mem-cvm.json"), {
    trace: "examples/traces/small.jsonl",
  });
  assert.deepEqual(sample.report.errors, []);
  assert.equal(sample.report.requests.ACK, 3);
  // The HTML card's counts add up: the conversion in the MMIO hole is counted as ignored.
  const card = renderHtmlReport({ report: sample.report, regions: [], devices: [] });
  assert.match(card, /applied of 7 conversions \(0 no-op, 1 ignored, 0 failed, 0 rejected\)/);
  const lines = renderTextReport(withProblems(sample.report));
  assert.match(lines, /^ {2}line 7: refused$/m);
  const records = { ...sample.report, trace: { ...sample.report.trace!, unit: "record" as const } };
  assert.match(renderTextReport(withProblems(records)), /^stopped at record 7: refused$/m);
});
