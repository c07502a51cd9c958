// The VMM policies: QEMU 10.1 and 11.1 reproduced exactly (order, what a failure
// leaves behind, call counts, registration, sources, virtio-mem), and memstate's
// own policy (priorities, full rollback, never more kernel calls than QEMU for a conversion
// that succeeds). Each
// test names the QEMU source of the rule it checks.
import assert from "node:assert/strict";
import {
  ConversionError,
  DMA_VIEW,
  type Listener,
  PLUGGED,
  Region,
  RegionFailedError,
  ReplayError,
  type Section,
  SourceError,
} from "../src/bus/mod.ts";
import { buildHost } from "../src/host/build.ts";
import { parseHostConfig } from "../src/host/config/load.ts";
import { KVM_MEMORY_ATTRIBUTE_PRIVATE as PRIVATE } from "../src/hw/backend.ts";
import { SimHost, SimIoas, SimKvm, SimType1Container } from "../src/hw/sim/mod.ts";
import {
  CapacityError,
  iommufd,
  kvmAttributes,
  type Plugin,
  vfioType1,
  virtioMem,
} from "../src/plugins/mod.ts";
import type { VmmPolicy } from "../src/settings/vmm.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";
import { assertConsistent, MiB, PAGE, simSetup } from "./helpers/sim_setup.ts";

const QEMU: VmmPolicy[] = ["qemu-10.1", "qemu-11.1"];

/** Total hardware calls of `plugins`, by "plugin.operation". */
function calls(plugins: Plugin[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of plugins) {
    for (const [op, n] of Object.entries(p.stats().calls)) {
      if (op !== "punchedBytes") out[`${p.name}.${op}`] = n;
    }
  }
  return out;
}

function delta(after: Record<string, number>, before: Record<string, number>) {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    if (v !== (before[k] ?? 0)) out[k] = v - (before[k] ?? 0);
  }
  return out;
}

/** A DMA listener that records what it is told and can refuse its next populate. */
function recorder(name: string, log: string[], refuse = () => false): Listener {
  return {
    name,
    priority: 10,
    view: DMA_VIEW,
    acceptsDoubleDiscard: true,
    populate(s: Section) {
      if (refuse()) throw new Error(`${name} refuses`);
      log.push(`${name} populate ${s.offset / PAGE}+${s.size / PAGE}`);
    },
    discard(s: Section) {
      log.push(`${name} discard ${s.offset / PAGE}+${s.size / PAGE}`);
    },
  };
}

// --- conversion order --------------------------------------------------------------------------

Deno.test("qemu: kvm_convert_memory sets the attributes of the whole range before the listeners and discards the old side after them (accel/kvm/kvm-all.c kvm_convert_memory)", () => {
  for (const vmm of QEMU) {
    const s = simSetup({ vmm, type1: false });
    const seen: string[] = [];
    s.region.register({
      name: "dma",
      view: DMA_VIEW,
      populate: (sec) => {
        const gpa = s.region.base + sec.offset;
        const calls = s.kvm.stats().calls;
        seen.push(
          `attributes ${s.vm.getMemoryAttributes(gpa) === 0 ? "shared" : "private"}, ` +
            `punches ${calls.punchHole}`,
        );
      },
      discard: () => {},
    });
    const punchesBefore = s.kvm.stats().calls.punchHole;
    s.region.convert(MiB, 4 * PAGE, "shared");
    assert.deepEqual(seen, [`attributes shared, punches ${punchesBefore}`], vmm);
    assert.equal(s.kvm.stats().calls.punchHole, punchesBefore + 1, "the punch comes after");
  }
});

Deno.test("memstate: DMA maps after KVM made memory shared and unmaps before KVM makes it private (priorities)", () => {
  const s = simSetup({ type1: false });
  const seen: string[] = [];
  const shared = (sec: Section) =>
    s.vm.getMemoryAttributes(s.region.base + sec.offset) === 0 ? "shared" : "private";
  s.region.register({
    name: "dma",
    priority: 10,
    view: DMA_VIEW,
    populate: (sec) => seen.push(`map while ${shared(sec)}`),
    discard: (sec) => seen.push(`unmap while ${shared(sec)}`),
  });
  s.region.convert(MiB, 4 * PAGE, "shared");
  s.region.convert(MiB, 4 * PAGE, "private");
  assert.deepEqual(seen, ["map while shared", "unmap while shared"]);
});

// --- what a failure leaves behind --------------------------------------------------------------

/** KVM + two DMA listeners: "late" (registered last, so QEMU notifies it first) and "failing". */
function failureSetup(vmm: VmmPolicy) {
  const s = simSetup({ vmm, type1: false });
  const log: string[] = [];
  let refuse = false;
  const failing = recorder("failing", log, () => refuse);
  const late = recorder("late", log);
  s.region.register(failing);
  s.region.register(late);
  return { ...s, log, failing, late, refuseNext: () => (refuse = true) };
}

Deno.test("qemu-10.1: a refused populate rolls nothing back: attributes and bitmap stay changed, earlier listeners keep their maps (system/ram-block-attributes.c ram_block_attributes_notify_populate)", () => {
  const s = failureSetup("qemu-10.1");
  s.refuseNext();
  assert.throws(() => s.region.convert(MiB, 4 * PAGE, "shared"), (e) => {
    assert.ok(e instanceof ConversionError);
    assert.equal(e.listener, "failing");
    assert.equal(e.rolledBack, "none");
    assert.equal(e.vmStopped, true);
    assert.match(e.message, /nothing was rolled back; the VM stops/);
    return true;
  });
  assert.deepEqual(s.log, ["late populate 256+4"], "newest first, and never told to undo");
  assert.equal(s.vm.getMemoryAttributes(s.region.base + MiB), 0, "KVM attributes stay shared");
  assert.equal(s.region.stateAt(MiB) & 1, 1, "the shared bitmap stays set");
  assert.equal(s.region.failure, undefined, "the VM stops; the caller decides what that means");
});

Deno.test("qemu-11.1: a refused populate rolls back the listeners notified, the failing one included; attributes and bitmap stay (system/ram-discard-manager.c ram_discard_manager_notify_populate)", () => {
  const s = failureSetup("qemu-11.1");
  s.refuseNext();
  assert.throws(() => s.region.convert(MiB, 4 * PAGE, "shared"), (e) => {
    assert.ok(e instanceof ConversionError);
    assert.equal(e.rolledBack, "listeners");
    assert.equal(e.vmStopped, true);
    assert.match(e.message, /listeners were rolled back, the KVM attributes and the state bitmap/);
    return true;
  });
  assert.deepEqual(s.log, [
    "late populate 256+4",
    "late discard 256+4",
    "failing discard 256+4", // it must cope with a discard of what it never got
  ]);
  assert.equal(s.vm.getMemoryAttributes(s.region.base + MiB), 0);
  assert.equal(s.region.stateAt(MiB) & 1, 1);
});

Deno.test("qemu-11.1: after a refused populate the failing listener gets a discard of every run of the change, told or not (ram_discard_manager_notify_populate replays the range to it)", () => {
  // Rule (system/ram-discard-manager.c ram_discard_manager_notify_populate, multi-source
  // series): the rollback replays the range to each listener up to and including the failing
  // one, so the failing one gets a discard of each of its runs, also those after the refusal.
  const region = new Region({ name: "ram", size: 64 * MiB, vmm: "qemu-11.1" });
  const vmem = virtioMem({ region, blockSize: 2 * MiB, requestedSize: 32 * MiB });
  vmem.plug(region.base, 1);
  vmem.plug(region.base + 8 * MiB, 1); // the DMA view flips in two runs on to-shared
  const log: string[] = [];
  region.register(recorder("failing", log, () => true));
  region.register(recorder("late", log));
  assert.throws(() => region.convert(0, 16 * MiB, "shared"), ConversionError);
  assert.deepEqual(log, [
    "late populate 0+512",
    "late populate 2048+512",
    "late discard 0+512",
    "late discard 2048+512",
    "failing discard 0+512",
    "failing discard 2048+512", // never told of it: the rollback replays the whole range
  ]);
});

Deno.test("memstate: a refused populate rolls everything back, KVM included, and the guest runs on", () => {
  const s = failureSetup("memstate");
  const punches = s.kvm.stats().calls.punchHole;
  s.refuseNext();
  assert.throws(() => s.region.convert(MiB, 4 * PAGE, "shared"), (e) => {
    assert.ok(e instanceof ConversionError);
    assert.equal(e.rolledBack, "all");
    assert.equal(e.vmStopped, false);
    return true;
  });
  assert.equal(s.vm.getMemoryAttributes(s.region.base + MiB), PRIVATE);
  assert.equal(s.region.stateAt(MiB) & 1, 0);
  assert.equal(s.kvm.stats().calls.punchHole, punches + 2, "punched, then punched back");
  assert.deepEqual(s.kvm.verify(s.region), []);
});

// --- call counts -------------------------------------------------------------------------------

Deno.test("VFIO: one map per granule, ONE unmap per discarded section (hw/vfio/listener.c vfio_ram_discard_notify_populate / _notify_discard), under every policy", () => {
  for (const vmm of [...QEMU, "memstate"] as VmmPolicy[]) {
    const s = simSetup({ vmm });
    const before = calls(s.plugins);
    s.region.convert(0, 16 * PAGE, "shared");
    assert.equal(delta(calls(s.plugins), before)["nic0.map"], 16, vmm);
    const mid = calls(s.plugins);
    s.region.convert(0, 16 * PAGE, "private");
    assert.equal(delta(calls(s.plugins), mid)["nic0.unmap"], 1, vmm);
    assert.equal(s.container.mappingCount, 0);
  }
});

Deno.test("qemu: a conversion already in the target state still makes the KVM ioctl and the discard; memstate makes no call", () => {
  for (const vmm of [...QEMU, "memstate"] as VmmPolicy[]) {
    const s = simSetup({ vmm });
    s.region.convert(0, 16 * PAGE, "shared");
    const before = calls(s.plugins);
    const result = s.region.convert(0, 16 * PAGE, "shared");
    assert.equal(result.noop, true);
    assert.deepEqual(
      delta(calls(s.plugins), before),
      vmm === "memstate" ? {} : { "kvm.setMemoryAttributes": 1, "kvm.punchHole": 1 },
      vmm,
    );
  }
});

Deno.test("qemu: a mixed range is notified one page at a time (ram_block_attributes_state_change, 'Unexpected mixture'); memstate once per change to a listener that accepts double discards", () => {
  for (const vmm of [...QEMU, "memstate"] as VmmPolicy[]) {
    const s = simSetup({ vmm });
    s.region.convert(0, 4 * PAGE, "shared");
    s.region.convert(5 * PAGE, 4 * PAGE, "shared"); // shared: [0,4) and [5,9); page 4 private
    const before = calls(s.plugins);
    s.region.convert(0, 9 * PAGE, "private");
    const d = delta(calls(s.plugins), before);
    // memstate: one unmap over [0, 9), the private page 4 inside it (an unmap of nothing is fine).
    assert.equal(d["nic0.unmap"], vmm === "memstate" ? 1 : 8, vmm);
    assert.equal(d["kvm.setMemoryAttributes"], 1, `${vmm}: one attribute call either way`);
    assert.equal(d["kvm.punchHole"], 1, vmm);
    assert.equal(s.container.mappingCount, 0);
  }
});

Deno.test("memstate never makes more kernel calls than QEMU 11.1 for the same conversion (linux-6.18: KVM, type1, iommufd granules)", () => {
  const seed = seedFromEnv();
  console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  const rng = new Prng(seed);
  const hosts = (["qemu-11.1", "memstate"] as VmmPolicy[]).map((vmm) =>
    simSetup({ vmm, size: 8 * MiB, iommufd: "granule", kernel: "linux-6.18" })
  );
  let fewer = 0;
  for (let step = 0; step < 400; step++) {
    const pages = 2048;
    const start = rng.int(pages);
    const size = 1 + rng.int(Math.min(pages - start, rng.chance(0.7) ? 8 : 300));
    const to = rng.chance(0.5) ? "shared" : "private";
    const made = hosts.map((s) => {
      const before = calls(s.plugins);
      s.region.convert(start * PAGE, size * PAGE, to);
      return Object.values(delta(calls(s.plugins), before)).reduce((a, b) => a + b, 0);
    });
    const note = `seed ${seed} step ${step}: ${to} [${start}, +${size})`;
    assert.ok(made[1] <= made[0], `${note}: memstate ${made[1]} calls, qemu-11.1 ${made[0]}`);
    if (made[1] < made[0]) fewer++;
    assert.deepEqual([...hosts[0].region.store.runs()], [...hosts[1].region.store.runs()], note);
  }
  assert.ok(fewer > 0, `seed ${seed}: no conversion showed a difference`);
  for (const s of hosts) {
    assert.deepEqual(s.plugins.flatMap((p) => p.verify?.(s.region) ?? []), []);
  }
});

// --- registration ------------------------------------------------------------------------------

function replaySetup(vmm: VmmPolicy) {
  const region = new Region({ name: "ram", size: 4 * MiB, vmm });
  region.convert(0, 4 * PAGE, "shared");
  region.convert(8 * PAGE, 4 * PAGE, "shared");
  const log: string[] = [];
  let n = 0;
  const listener = recorder("dev", log, () => ++n === 2); // refuses the second run
  return { region, log, listener };
}

Deno.test("registration: a refused replay is rolled back and not registered under memstate", () => {
  const { region, log, listener } = replaySetup("memstate");
  assert.throws(() => region.register(listener), ConversionError);
  assert.deepEqual(log, ["dev populate 0+4", "dev discard 0+4"]);
  assert.deepEqual(region.listeners, []);
});

Deno.test("registration: qemu-11.1 reports a refused replay and leaves the listener registered (ram_discard_manager_register_listener)", () => {
  const { region, log, listener } = replaySetup("qemu-11.1");
  assert.throws(() => region.register(listener), (e) => {
    assert.ok(e instanceof ReplayError);
    assert.equal(e.registered, true);
    assert.match(e.message, /the listener stays registered with what was replayed before/);
    return true;
  });
  assert.deepEqual(log, ["dev populate 0+4"], "what was replayed stays");
  assert.deepEqual(region.listeners, [listener]);
});

Deno.test("registration: qemu-10.1 exits when a replay is refused (ram_block_attributes_rdm_register_listener: exit(1))", () => {
  const { region, listener } = replaySetup("qemu-10.1");
  assert.throws(() => region.register(listener), (e) => {
    assert.ok(e instanceof RegionFailedError);
    assert.match(e.message, /QEMU exits/);
    return true;
  });
  assert.throws(() => region.convert(0, PAGE, "private"), RegionFailedError);
});

Deno.test("registration: qemu-10.1 on a region virtio-mem manages reports a refused replay and keeps the listener with what was replayed; guest_memfd's exits (hw/virtio/virtio-mem.c virtio_mem_rdm_register_listener: error_report only)", () => {
  // Rule: 10.1 has one manager per region; virtio-mem's register_listener only reports a failed
  // replay, guest_memfd's (ram_block_attributes_rdm_register_listener) calls exit(1).
  const region = new Region({ name: "ram", size: 64 * MiB, vmm: "qemu-10.1" });
  region.removeSource("guest_memfd"); // 10.1: virtio-mem must be the region's only manager
  const vmem = virtioMem({ region, blockSize: 2 * MiB, requestedSize: 32 * MiB });
  assert.equal(vmem.plug(region.base, 1), "ACK");
  assert.equal(vmem.plug(region.base + 8 * MiB, 1), "ACK");
  const log: string[] = [];
  let n = 0;
  const listener = recorder("dev", log, () => ++n === 2); // refuses the second run
  assert.throws(() => region.register(listener), (e) => {
    assert.ok(e instanceof ReplayError && !(e instanceof RegionFailedError));
    assert.equal(e.registered, true);
    return true;
  });
  assert.deepEqual(log, ["dev populate 0+512"], "what was replayed stays");
  assert.deepEqual(region.listeners, [listener]);
  assert.equal(vmem.plug(region.base + 16 * MiB, 1), "ACK", "the region still works");
});

Deno.test("unregister: qemu-10.1 on a region virtio-mem manages sends nothing while no block is plugged; guest_memfd's sends its whole-section discard (virtio_mem_rdm_unregister_listener: if (vmem->size))", () => {
  // Rule: hw/virtio/virtio-mem.c virtio_mem_rdm_unregister_listener notifies only when
  // vmem->size != 0; system/ram-block-attributes.c ram_block_attributes_rdm_unregister_listener
  // sends a double-discard listener one whole-section discard, populated or not.
  const region = new Region({ name: "ram", size: 64 * MiB, vmm: "qemu-10.1" });
  region.removeSource("guest_memfd");
  const vmem = virtioMem({ region, blockSize: 2 * MiB, requestedSize: 32 * MiB });
  const log: string[] = [];
  const listener = recorder("dev", log);
  region.register(listener);
  region.unregister(listener);
  assert.deepEqual(log, [], "nothing plugged: no discard");
  region.register(listener);
  assert.equal(vmem.plug(region.base + 8 * MiB, 1), "ACK");
  log.length = 0;
  region.unregister(listener);
  assert.deepEqual(log, ["dev discard 0+16384"], "something plugged: the whole section");
  const gmem = new Region({ name: "gmem", size: 4 * MiB, vmm: "qemu-10.1" });
  gmem.register(listener); // all private: nothing populated
  log.length = 0;
  gmem.unregister(listener);
  assert.deepEqual(log, ["dev discard 0+1024"], "guest_memfd: whole section, always");
});

Deno.test("unregister: qemu-11.1 sends one discard of the whole section (ram_discard_manager_unregister_listener); memstate one per populated run", () => {
  for (const vmm of ["qemu-11.1", "memstate"] as VmmPolicy[]) {
    const region = new Region({ name: "ram", size: 4 * MiB, vmm });
    const log: string[] = [];
    const listener = { ...recorder("dev", log), acceptsDoubleDiscard: false };
    region.register(listener);
    region.convert(0, 4 * PAGE, "shared");
    region.convert(8 * PAGE, 4 * PAGE, "shared");
    log.length = 0;
    region.unregister(listener);
    assert.deepEqual(
      log,
      // memstate undoes the populates newest first, as a rollback does.
      vmm === "memstate" ? ["dev discard 8+4", "dev discard 0+4"] : ["dev discard 0+1024"],
      vmm,
    );
  }
});

// --- sources ------------------------------------------------------------------------------------

Deno.test("sources: granularity is the minimum over sources, 4 KiB with guest_memfd beside 2 MiB virtio-mem (ram_discard_manager_update_granularity)", () => {
  const region = new Region({ name: "ram", size: 64 * MiB });
  assert.deepEqual(region.sources().map((s) => s.name), ["guest_memfd"]);
  region.addSource({ name: "vmem", bits: PLUGGED, granularity: 2 * MiB });
  assert.equal(region.granularity, PAGE);
  region.removeSource("guest_memfd");
  assert.equal(region.granularity, 2 * MiB);
});

Deno.test("sources: removing a source replays populate for what it held back (ram_discard_manager_del_source)", () => {
  const region = new Region({ name: "ram", size: 8 * MiB });
  region.addSource({ name: "vmem", bits: PLUGGED, granularity: 2 * MiB });
  region.change(0, 4 * MiB, 0, PLUGGED); // unplugged ...
  region.convert(0, 8 * MiB, "shared"); // ... but shared
  const log: string[] = [];
  region.register(recorder("dma", log));
  assert.deepEqual(log, ["dma populate 1024+1024"]);
  region.removeSource("vmem");
  assert.deepEqual(log, ["dma populate 1024+1024", "dma populate 0+1024"]);
  assert.throws(
    () => region.removeSource("vmem"),
    (e) => e instanceof SourceError && e.code === "ENOENT",
  );
});

Deno.test("sources: qemu-10.1 allows one per memory region, so virtio-mem cannot join guest_memfd (EBUSY, memory_region_set_ram_discard_manager)", () => {
  const region = new Region({ name: "ram", size: 64 * MiB, vmm: "qemu-10.1" });
  assert.throws(
    () => virtioMem({ region, blockSize: 2 * MiB, requestedSize: 8 * MiB }),
    (e) =>
      e instanceof SourceError && e.code === "EBUSY" &&
      /needs qemu-11.1 or memstate/.test(e.message),
  );
  virtioMem({
    region: new Region({ name: "ram", size: 64 * MiB, vmm: "qemu-11.1" }),
    blockSize: 2 * MiB,
    requestedSize: 8 * MiB,
  });
});

/** qemu-11.1 host of 64 MiB, all shared, virtio-mem blocks 0 and 4 plugged, two listeners. */
function delSourceSetup(refuseOld = false) {
  const s = simSetup({
    vmm: "qemu-11.1",
    size: 64 * MiB,
    type1: false,
    virtioMem: { blockSize: 2 * MiB, requestedSize: 32 * MiB },
  });
  s.region.convert(0, 64 * MiB, "shared");
  assert.equal(s.vmem!.plug(s.region.base, 1), "ACK");
  assert.equal(s.vmem!.plug(s.region.base + 8 * MiB, 1), "ACK");
  const log: string[] = [];
  let refuse = false;
  s.region.register(recorder("old", log, () => refuse));
  s.region.register(recorder("new", log));
  log.length = 0;
  refuse = refuseOld;
  return { ...s, log };
}

Deno.test("sources: removing one under qemu-11.1 sends each listener ONE populate per run it held back, newest listener first, and no KVM call (system/ram-discard-manager.c ram_discard_manager_del_source)", () => {
  // Rule: ram_discard_manager_del_source walks the removed source's discarded runs
  // (replay_source_by_state) and, inside each, the runs every other source populates
  // (replay_by_populated_state): one notify_populate per run, not per page or block.
  const s = delSourceSetup();
  const before = calls(s.plugins);
  s.region.removeSource(s.vmem!.name);
  assert.deepEqual(s.log, [
    "new populate 512+1536", // [2 MiB, 8 MiB)
    "new populate 2560+13824", // [10 MiB, 64 MiB)
    "old populate 512+1536",
    "old populate 2560+13824",
  ]);
  assert.deepEqual(delta(calls(s.plugins), before), {}, "the KVM attributes are not touched");
  assert.deepEqual(s.region.sources().map((x) => x.name), ["guest_memfd"]);
  assert.equal(s.region.isPopulated({ offset: 0, size: 64 * MiB }, DMA_VIEW), true);
});

Deno.test("sources: a refused removal under qemu-11.1 discards what the listeners up to and including the failing one get, and the source stays (ram_discard_manager_del_source)", () => {
  // Rule: on an error del_source replays the same runs as discards to every listener from
  // the head of the list up to and including the failing one, then returns the error
  // without removing the source; no bitmap was written.
  const s = delSourceSetup(true);
  assert.throws(() => s.region.removeSource(s.vmem!.name), (e) => {
    assert.ok(e instanceof ConversionError);
    assert.equal(e.listener, "old");
    assert.equal(e.rolledBack, "all");
    assert.equal(e.vmStopped, false);
    return true;
  });
  assert.deepEqual(s.log, [
    "new populate 512+1536",
    "new populate 2560+13824",
    "new discard 512+1536",
    "new discard 2560+13824",
    "old discard 512+1536",
    "old discard 2560+13824",
  ]);
  assert.deepEqual(s.region.sources().map((x) => x.name), ["guest_memfd", s.vmem!.name]);
  assert.equal(s.region.stateAt(2 * MiB) & PLUGGED, 0, "the plugged state is untouched");
  assert.deepEqual(s.vmem!.state(s.region.base, 5), { response: "ACK", state: "mixed" });
});

Deno.test("sources: qemu-10.1 removes its one source only from a region no listener follows (EBUSY; system/memory.c memory_region_set_ram_discard_manager on an unmapped region)", () => {
  // Rule: 10.1 has one RamDiscardManager per memory region, unset only while the region is
  // not mapped, so no RamDiscardListener follows it and nobody is notified.
  const region = new Region({ name: "ram", size: 4 * MiB, vmm: "qemu-10.1" });
  const log: string[] = [];
  const dev = recorder("dev", log);
  region.register(dev);
  assert.throws(
    () => region.removeSource("guest_memfd"),
    (e) =>
      e instanceof SourceError && e.code === "EBUSY" &&
      /memory_region_set_ram_discard_manager/.test(e.message),
  );
  assert.deepEqual(region.sources().map((x) => x.name), ["guest_memfd"]);
  region.unregister(dev);
  log.length = 0;
  region.removeSource("guest_memfd");
  assert.deepEqual(region.sources(), []);
  assert.deepEqual(log, [], "nobody to notify");
});

// --- virtio-mem ---------------------------------------------------------------------------------

function vmemSetup(vmm: VmmPolicy) {
  const s = simSetup({ vmm, size: 64 * MiB, type1: false });
  const order: string[] = [];
  const shared = s.kvm.binding(s.region)!.backing.shared!;
  const vmem = virtioMem({
    region: s.region,
    blockSize: 2 * MiB,
    requestedSize: 32 * MiB,
    discardBacking: (offset, size) => {
      order.push("discard backing");
      s.kvm.discardShared(s.region, offset, size);
    },
  });
  s.region.convert(0, 64 * MiB, "shared");
  let refuse = false;
  s.region.register({
    name: "dma",
    view: DMA_VIEW,
    populate: () => {
      if (refuse) throw new Error("map failed");
      order.push("populate");
    },
    discard: () => {
      order.push("discard");
      if (refuse) throw new Error("unmap failed");
    },
  });
  return { ...s, vmem, order, shared, refuse: (on: boolean) => (refuse = on) };
}

Deno.test("virtio-mem: PLUG, UNPLUG and UNPLUG_ALL answer BUSY while a migration runs (virtio_mem_is_busy)", () => {
  for (const vmm of [...QEMU.slice(1), "memstate"] as VmmPolicy[]) {
    const s = vmemSetup(vmm);
    const base = s.region.base;
    assert.equal(s.vmem.plug(base, 2), "ACK");
    s.vmem.busy = true;
    assert.equal(s.vmem.plug(base + 8 * MiB, 1), "BUSY", vmm);
    assert.equal(s.vmem.unplug(base, 1), "BUSY", vmm);
    assert.equal(s.vmem.unplugAll(), "BUSY", vmm);
    assert.equal(s.vmem.pluggedSize, 4 * MiB);
    s.vmem.busy = false;
    assert.equal(s.vmem.unplug(base, 1), "ACK");
  }
});

Deno.test("virtio-mem under qemu-11.1: unplug discards the backing first, and listeners cannot refuse it (virtio_mem_set_block_state, notify_discard returns void)", () => {
  const s = vmemSetup("qemu-11.1");
  const base = s.region.base;
  s.shared.write(0, new Uint8Array(PAGE).fill(1));
  assert.equal(s.vmem.plug(base, 1), "ACK");
  s.order.length = 0;
  s.refuse(true);
  assert.equal(s.vmem.unplug(base, 1), "ACK");
  assert.deepEqual(s.order, ["discard backing", "discard"]);
  assert.equal(s.shared.allocatedBytes(0, 2 * MiB), 0);
  assert.equal(s.region.stats.ignoredDiscardErrors, 1);
});

Deno.test("virtio-mem under memstate: listeners hear of an unplug first and may refuse it (BUSY, nothing discarded)", () => {
  const s = vmemSetup("memstate");
  const base = s.region.base;
  assert.equal(s.vmem.plug(base, 1), "ACK");
  s.shared.write(0, new Uint8Array(PAGE).fill(1));
  s.order.length = 0;
  s.refuse(true);
  assert.equal(s.vmem.unplug(base, 1), "BUSY");
  assert.deepEqual(s.order, ["discard"], "refused before the backing was touched");
  assert.equal(s.shared.allocatedBytes(0, PAGE), PAGE, "the backing is untouched");
  s.refuse(false);
  assert.equal(s.vmem.unplug(base, 1), "ACK");
  assert.equal(s.shared.allocatedBytes(0, 2 * MiB), 0);
});

Deno.test("virtio-mem UNPLUG_ALL under qemu-11.1: ONE discard of each listener's whole section, so one type1 unmap, not one per page (hw/virtio/virtio-mem.c virtio_mem_notify_unplug_all, system/ram-discard-manager.c ram_discard_manager_notify_discard_all); memstate one over the span of the plugged runs", () => {
  // Rule: virtio_mem_unplug_all discards the backing, then virtio_mem_notify_unplug_all calls
  // ram_discard_manager_notify_discard_all, which calls notify_discard(rdl, rdl->section)
  // once per listener, whatever is populated; only ram_block_attributes_state_change (guest_memfd)
  // handles a mixture page by page.
  for (const vmm of ["qemu-11.1", "memstate"] as VmmPolicy[]) {
    const s = simSetup({
      vmm,
      size: 64 * MiB,
      virtioMem: { blockSize: 2 * MiB, requestedSize: 32 * MiB },
    });
    s.region.convert(0, 64 * MiB, "shared");
    assert.equal(s.vmem!.plug(s.region.base, 1), "ACK");
    assert.equal(s.vmem!.plug(s.region.base + 8 * MiB, 1), "ACK");
    assert.equal(s.container.mappingCount, 1024);
    const log: string[] = [];
    s.region.register(recorder("dev", log));
    log.length = 0;
    const before = calls(s.plugins);
    assert.equal(s.vmem!.unplugAll(), "ACK");
    const qemu = vmm === "qemu-11.1";
    assert.deepEqual(
      log,
      qemu ? ["dev discard 0+16384"] : ["dev discard 0+2560"],
      vmm,
    );
    // Never more unmaps than QEMU 11.1: the DMA listener accepts double discards.
    assert.deepEqual(delta(calls(s.plugins), before), { "nic0.unmap": 1 }, vmm);
    assert.equal(s.container.mappingCount, 0, vmm);
    assertConsistent(s, vmm);
  }
});

Deno.test("virtio-mem UNPLUG_ALL under qemu-10.1: a listener that accepts double discards (VFIO) gets one whole-section discard, the others one per plugged run (hw/virtio/virtio-mem.c virtio_mem_notify_unplug_all)", () => {
  // Rule (10.1, before the multi-source series): rdl->double_discard_supported gets
  // notify_discard(rdl, rdl->section); any other listener one notify_discard per plugged
  // section (virtio_mem_for_each_plugged_section).
  const region = new Region({ name: "ram", size: 64 * MiB, vmm: "qemu-10.1" });
  region.removeSource("guest_memfd"); // 10.1: virtio-mem must be the region's only manager
  const vmem = virtioMem({ region, blockSize: 2 * MiB, requestedSize: 32 * MiB });
  const log: string[] = [];
  region.register(recorder("double", log));
  region.register({ ...recorder("single", log), acceptsDoubleDiscard: false });
  assert.equal(vmem.plug(region.base, 1), "ACK");
  assert.equal(vmem.plug(region.base + 8 * MiB, 1), "ACK");
  log.length = 0;
  assert.equal(vmem.unplugAll(), "ACK");
  assert.deepEqual(log, [
    "single discard 0+512",
    "single discard 2048+512",
    "double discard 0+16384",
  ]);
  assert.equal(vmem.pluggedSize, 0);
});

// --- iommufd and type1 plugins per kernel and policy --------------------------------------------

Deno.test("iommufd on linux-6.18 maps granules like QEMU (no cut_mapping), and an unmap of nothing is success (iommufd_backend_unmap_dma takes ENOENT as 0)", () => {
  const host = new SimHost();
  const region = new Region({ name: "ram", size: 8 * MiB });
  region.hostAddress = host.reserve(8 * MiB);
  const ioas = new SimIoas({ host });
  assert.throws(() => iommufd({ name: "gpu0", ioas, cut: true }), /needs the proposed kernel/);
  const gpu = iommufd({ name: "gpu0", ioas });
  gpu.attach(region);
  region.convert(0, 8 * PAGE, "shared");
  assert.equal(ioas.areaCount, 8, "one area per 4 KiB granule");
  region.convert(2 * PAGE, 2 * PAGE, "private");
  assert.equal(ioas.areaCount, 6);
  gpu.detach(region); // one whole-section unmap over areas and holes
  assert.equal(ioas.areaCount, 0);
  gpu.attach(region);
  region.convert(0, 8 * PAGE, "private");
  gpu.detach(region); // nothing mapped: ENOENT from the kernel, success for the plugin
  assert.equal(gpu.stats().failures, 0);
});

Deno.test("type1 attach: the budget covers every section of the container (200 MiB + 200 MiB refused at 65535); QEMU adds the memslot headroom", () => {
  const regions = () => [
    new Region({ name: "a", size: 200 * MiB }),
    new Region({ name: "b", size: 200 * MiB, base: 1024 * MiB }),
  ];
  const [a, b] = regions();
  const container = new SimType1Container();
  const nic = vfioType1({ name: "nic0", container });
  nic.attach(a); // 51200 <= 65535
  assert.throws(() => nic.attach(b), (e) => {
    assert.ok(e instanceof CapacityError);
    assert.equal(e.needed, 102400);
    assert.match(e.message, /a: 200 MiB \/ 4 KiB = 51200, b: 200 MiB \/ 4 KiB = 51200/);
    return true;
  });
  // A second plugin on the same container sees the same sections.
  assert.throws(() => vfioType1({ name: "nic1", container }).attach(b), CapacityError);
  nic.detach(a);
  nic.attach(b);
  // QEMU 11.1: one section already needs 51200 + 32763.
  const q11 = new Region({ name: "q", size: 200 * MiB, vmm: "qemu-11.1" });
  assert.throws(
    () => vfioType1({ name: "n", container: new SimType1Container() }).attach(q11),
    (e) => e instanceof CapacityError && e.needed === 51200 + 32763,
  );
  // QEMU 10.1 warns and attaches.
  const q10 = new Region({ name: "q", size: 200 * MiB, vmm: "qemu-10.1" });
  const warned = vfioType1({ name: "n", container: new SimType1Container() });
  warned.attach(q10);
  assert.match(warned.stats().warnings![0], /possibly running out of DMA mappings/);
});

// --- KVM plugin per policy -----------------------------------------------------------------------

Deno.test("kvm plugin: a listener under memstate, kvm_convert_memory's hook under QEMU; hugetlb shared memory is not discarded on to-private", () => {
  for (const vmm of [...QEMU, "memstate"] as VmmPolicy[]) {
    const region = new Region({ name: "ram", size: 16 * MiB, vmm });
    const kvm = kvmAttributes({ vm: new SimKvm(), backingPageSize: 2 * MiB });
    kvm.attach(region);
    assert.equal(region.listeners.length, vmm === "memstate" ? 1 : 0, vmm);
    assert.equal(region.conversionHook?.name, vmm === "memstate" ? undefined : "kvm", vmm);
    const shared = kvm.binding(region)!.backing.shared!;
    shared.write(0, new Uint8Array(PAGE).fill(7));
    region.convert(0, 2 * MiB, "shared");
    region.convert(0, 2 * MiB, "private");
    assert.equal(shared.allocatedBytes(0, PAGE), PAGE, `${vmm}: hugetlb stays allocated`);
    assert.deepEqual(kvm.verify(region), [], vmm);
  }
});

// QEMU's rule: a virtio-mem unplug discards with system/physmem.c `ram_block_discard_range`
// (hw/virtio/virtio-mem.c `virtio_mem_set_block_state`), which punches any file-backed block with
// fallocate(PUNCH_HOLE) whatever its page size ("fallocate works on hugepages and shmem"; only
// the madvise is skipped for hugepages), in 10.1 and on master alike. The hugetlb skip is only in
// accel/kvm/kvm-all.c `kvm_convert_memory`'s to-private branch. Checked through the host's wiring
// (src/host/build.ts passes KVM's discardShared as virtio-mem's discardBacking).
Deno.test("host: a virtio-mem device's creation punches its whole backing once, counted by the KVM plugin, under every policy (hw/virtio/virtio-mem.c virtio_mem_device_realize: ram_block_discard_range(rb, 0, used_length))", () => {
  // Rule: realize discards the device's whole RAM block (not migrating in); the host wires
  // virtio-mem's discardBacking to the KVM plugin's punch of the shared memfd.
  for (const vmm of ["qemu-11.1", "memstate"] as VmmPolicy[]) {
    const build = (devices: unknown[]) =>
      buildHost(parseHostConfig({
        name: "realize",
        vmm,
        regions: [
          { name: "ram", size: "16MiB" },
          { name: "vmem", size: "48MiB", base: "0x10000000" }, // the device's memory backend
        ],
        devices,
        workload: { name: "boot" },
      }, "realize.json"));
    using without = build([]);
    using host = build([{
      type: "virtio-mem",
      name: "vmem0",
      region: "vmem",
      blockSize: "2MiB",
      requestedSize: "16MiB",
    }]);
    const punches = without.kvm.stats().calls.punchHole ?? 0;
    assert.equal(host.kvm.stats().calls.punchHole, punches + 1, vmm);
    assert.equal(host.kvm.punchedBytes, without.kvm.punchedBytes + 48 * MiB, vmm);
  }
});

Deno.test("virtio-mem unplug punches a hugetlb shared memfd (ram_block_discard_range); only kvm_convert_memory's to-private discard skips hugetlb", () => {
  for (const vmm of ["qemu-11.1", "memstate"] as VmmPolicy[]) {
    using host = buildHost(parseHostConfig({
      name: "hugetlb",
      vmm,
      regions: [{ name: "ram", size: "64MiB", backingPageSize: "2MiB" }],
      devices: [{
        type: "virtio-mem",
        name: "vmem0",
        region: "ram",
        blockSize: "2MiB",
        requestedSize: "16MiB",
      }],
      workload: { name: "boot" },
    }, "hugetlb.json"));
    const [region] = host.regions;
    const vmem = host.virtioMem.get("vmem0")!;
    const shared = host.kvm.binding(region)!.backing.shared!;
    region.convert(0, 8 * MiB, "shared");
    assert.equal(vmem.plug(region.base, 2), "ACK", vmm);
    shared.write(0, new Uint8Array(PAGE).fill(1));
    shared.write(2 * MiB, new Uint8Array(PAGE).fill(2));
    const punches = host.kvm.stats().calls.punchHole ?? 0;
    const bytes = host.kvm.punchedBytes;
    assert.equal(vmem.unplug(region.base, 1), "ACK", vmm);
    assert.equal(shared.allocatedBytes(0, 2 * MiB), 0, `${vmm}: the unplugged block is punched`);
    assert.equal(host.kvm.stats().calls.punchHole, punches + 1, vmm);
    assert.equal(host.kvm.punchedBytes, bytes + 2 * MiB, vmm);
    // A to-private conversion of the plugged block leaves the hugetlb side allocated.
    region.convert(2 * MiB, 2 * MiB, "private");
    assert.equal(shared.allocatedBytes(2 * MiB, PAGE), PAGE, `${vmm}: not punched on to-private`);
    assert.deepEqual(host.kvm.verify(region), [], vmm);
  }
});
