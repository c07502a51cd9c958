// A whole host under each VMM policy: what a failed conversion does to the run,
// QEMU's handling of ranges that are not inside one RAM section, and the honest
// baselines the report compares against.
import assert from "node:assert/strict";
import { parseHostConfig } from "../src/host/config/load.ts";
import { buildHost } from "../src/host/build.ts";
import { runEvents } from "../src/host/event_runner.ts";
import { runSession } from "../src/host/session.ts";
import { checkInvariants } from "../src/host/invariants.ts";
import type { HostEvent } from "../src/host/workloads/workload.ts";
import { KVM_MEMORY_ATTRIBUTE_PRIVATE as PRIVATE } from "../src/hw/backend.ts";
import type { VmmPolicy } from "../src/settings/vmm.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** Two regions with a hole between them and a type1 NIC whose limit runs out after 4 maps. */
function config(vmm: VmmPolicy, conversionExit = "memory-fault") {
  return parseHostConfig({
    name: "policy",
    vmm,
    conversionExit,
    regions: [
      { name: "low", size: "64MiB" },
      { name: "high", size: "64MiB", base: "1GiB" },
    ],
    devices: [{ type: "type1", name: "nic0", dmaEntryLimit: 4 }],
    continueOnCapacityError: true,
    workload: { name: "boot" },
  }, "policy.json");
}

const convert = (line: number, gpa: number, size: number, to: "shared" | "private"): HostEvent => ({
  op: "convert",
  gpa,
  size,
  to,
  line,
});

/** Four pages fit the NIC's limit; the fifth map fails with ENOSPC; then one more conversion. */
const RUN_OUT: HostEvent[] = [
  convert(1, 0, 4 * 4096, "shared"),
  convert(2, MiB, 4096, "shared"),
  convert(3, 2 * MiB, 4096, "shared"),
];

Deno.test("qemu: a failed conversion after a memory-fault exit stops the VM (kvm_cpu_exec: vm_stop) and leaves QEMU's state behind", () => {
  for (const vmm of ["qemu-10.1", "qemu-11.1"] as VmmPolicy[]) {
    using host = buildHost(config(vmm));
    const run = runEvents(host, RUN_OUT);
    assert.equal(run.conversions.failed, 1, vmm);
    assert.equal(run.conversions.applied, 1, vmm);
    assert.equal(run.stoppedAt?.line, 2, vmm);
    assert.match(run.stoppedAt!.message, new RegExp(`^VM stopped \\(${vmm}\\): .*ENOSPC.*vm_stop`));
    // The attributes and the bitmap say shared; the NIC never mapped the page.
    const violations = checkInvariants(host.regions, host.plugins).violations;
    assert.deepEqual(violations, ["nic0: [0x100000, 0x101000) is populated but not mapped"], vmm);
  }
});

Deno.test("qemu: a TDX MapGPA caller is answered INVALID_OPERAND and runs on (tdx_handle_map_gpa); memstate rolls back and runs on", () => {
  for (const [vmm, exit] of [["qemu-11.1", "tdx-mapgpa"], ["memstate", "memory-fault"]] as const) {
    using host = buildHost(config(vmm, exit));
    const run = runEvents(host, RUN_OUT);
    assert.equal(run.stoppedAt, undefined, vmm);
    assert.equal(run.conversions.failed, 2, vmm);
    const violations = checkInvariants(host.regions, host.plugins).violations;
    if (vmm === "memstate") {
      assert.deepEqual(violations, [], "everything was rolled back");
      assert.match(run.errors[0].message, /ENOSPC.*the change was rolled back/);
    } else {
      assert.match(run.errors[0].message, /TDG_VP_VMCALL_INVALID_OPERAND/);
      assert.equal(violations.length, 2, "each failure left a page shared but unmapped");
    }
  }
});

Deno.test("qemu: a range running past the end of its RAM section gets its attributes set, then fails the bounds check (-EINVAL); memstate rejects it untouched", () => {
  const events = [convert(1, 64 * MiB - 4096, 8192, "shared")]; // last page of "low" + the hole
  for (const vmm of ["qemu-11.1", "memstate"] as VmmPolicy[]) {
    using host = buildHost(config(vmm));
    const run = runEvents(host, events);
    const last = host.vm.getMemoryAttributes(64 * MiB - 4096);
    if (vmm === "memstate") {
      assert.equal(run.conversions.rejected, 1);
      assert.equal(last, PRIVATE, "nothing changed");
      assert.equal(run.stoppedAt, undefined);
    } else {
      assert.equal(run.conversions.failed, 1);
      assert.equal(last, 0, "KVM_SET_MEMORY_ATTRIBUTES covered the whole range first");
      assert.match(run.stoppedAt!.message, /bounds check \(-EINVAL\).*extends beyond region/);
      assert.equal(host.regions[0].stateAt(64 * MiB - 4096) & 1, 0, "the bitmap was not set");
    }
  }
});

Deno.test("qemu: to-shared in no RAM is ignored, to-private there fails (kvm_convert_memory: no memory region)", () => {
  const hole = 512 * MiB;
  using q = buildHost(config("qemu-11.1"));
  const run = runEvents(q, [convert(1, hole, 4096, "shared"), convert(2, hole, 4096, "private")]);
  assert.equal(run.conversions.ignored, 1);
  assert.equal(run.conversions.failed, 1);
  assert.match(run.stoppedAt!.message, /-EINVAL: out of range/);
  using m = buildHost(config("memstate"));
  const mem = runEvents(m, [convert(1, hole, 4096, "shared"), convert(2, hole, 4096, "private")]);
  assert.equal(mem.conversions.ignored, 1);
  assert.equal(mem.conversions.rejected, 1);
});

Deno.test("baselines: a bitmap store holds the bits the region's sources claim, exactly QEMU's bitmaps (one bit per page for guest_memfd, per block for virtio-mem)", async () => {
  const host = {
    name: "baseline",
    regions: [
      { name: "ram", size: "2GiB" },
      { name: "hotplug", size: "16GiB", base: "4GiB" },
    ],
    devices: [{
      type: "virtio-mem",
      name: "vmem0",
      region: "hotplug",
      blockSize: "2MiB",
      requestedSize: "8GiB",
    }],
    workload: { name: "balloon", params: { cycles: 2 } },
  };
  const { report } = await runSession(parseHostConfig(host, "b.json"), { store: "bitmap" });
  const [ram, hotplug] = report.regions;
  // guest_memfd alone: 2 GiB / 4 KiB bits.
  assert.equal(ram.bitmapBytes, (2 * GiB) / 4096 / 8);
  assert.equal(ram.storeBytes, ram.bitmapBytes);
  // guest_memfd plus virtio-mem's 16 GiB / 2 MiB = 8192 bits.
  assert.equal(hotplug.bitmapBytes, (16 * GiB) / 4096 / 8 + 8192 / 8);
  assert.equal(hotplug.storeBytes, hotplug.bitmapBytes);
  // The range tree's dense chunks carry one plane per claimed bit, not eight.
  const tree = await runSession(parseHostConfig(host, "b.json"), { store: "range-tree" });
  assert.deepEqual(tree.host.regions.map((r) => r.store.bits), [1, 2]);
});
