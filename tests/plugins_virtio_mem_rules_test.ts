// virtio-mem's rules in QEMU's order (hw/virtio/virtio-mem.c
// `virtio_mem_state_change_request`): an invalid range is ERROR, then a plug
// past the requested size is NACK, then a range not entirely in the opposite
// state is ERROR, and only then is a busy device BUSY
// (`virtio_mem_set_block_state`). And the edges of the usable region, where
// memstate's unplug gives up the backing, and what its failed UNPLUG_ALL puts back.
import assert from "node:assert/strict";
import { type Listener, PLUGGED, Region } from "../src/bus/mod.ts";
import { VIRTIO_MEM_USABLE_EXTENT, virtioMem } from "../src/plugins/mod.ts";
import { assertConsistent, simSetup } from "./helpers/sim_setup.ts";

const MiB = 2 ** 20;
const BLOCK = 2 * MiB;

// The devices below that take a discardBacking are created migrating in (`incoming`): the
// creation's discard (virtio_mem_device_realize) is stated in plugins_virtio_mem_test.ts, and
// these hooks count or fail the discards of the requests.
function device(requestedSize: number, discardBacking?: (offset: number, size: number) => void) {
  const region = new Region({ name: "vmem", size: 1024 * MiB, base: 2 ** 34 });
  const vmem = virtioMem({
    region,
    blockSize: BLOCK,
    requestedSize,
    discardBacking,
    incoming: true,
  });
  return { region, vmem, base: region.base };
}

Deno.test("virtio-mem rules: plugging plugged blocks past the requested size is NACK, not ERROR", () => {
  const { vmem, base } = device(4 * BLOCK);
  assert.equal(vmem.plug(base, 4), "ACK"); // the requested size is reached
  assert.equal(vmem.plug(base, 1), "NACK"); // plugged already, but the size check comes first
  assert.equal(vmem.plug(base + 8 * BLOCK, 1), "NACK");
  assert.equal(vmem.unplug(base + 8 * BLOCK, 1), "ERROR"); // an unplug has no size check
  assert.equal(vmem.pluggedSize, 4 * BLOCK);
});

Deno.test("virtio-mem rules: a busy device answers ERROR and NACK before BUSY", () => {
  const { vmem, base } = device(4 * BLOCK);
  assert.equal(vmem.plug(base, 2), "ACK");
  vmem.busy = true; // a migration is running
  assert.equal(vmem.plug(base + 1, 1), "ERROR"); // unaligned
  assert.equal(vmem.plug(base + 2 * 2 ** 30, 1), "ERROR"); // outside the usable region
  assert.equal(vmem.plug(base, 3), "NACK"); // past the requested size
  assert.equal(vmem.plug(base, 1), "ERROR"); // plugged already
  assert.equal(vmem.unplug(base + 2 * BLOCK, 1), "ERROR"); // unplugged already
  assert.equal(vmem.plug(base + 2 * BLOCK, 1), "BUSY"); // valid: only now BUSY
  assert.equal(vmem.unplug(base, 1), "BUSY");
  assert.equal(vmem.pluggedSize, 2 * BLOCK);
});

Deno.test("virtio-mem rules: a request may end exactly at the usable region's end, not past it", () => {
  const requested = 256 * MiB;
  const { vmem, base } = device(requested);
  const usable = requested + VIRTIO_MEM_USABLE_EXTENT;
  assert.equal(vmem.usableRegionSize, usable);
  const last = base + usable - BLOCK;
  assert.equal(vmem.plug(last, 1), "ACK");
  assert.deepEqual(vmem.state(last, 1), { response: "ACK", state: "plugged" });
  assert.equal(vmem.plug(last, 2), "ERROR");
  assert.deepEqual(vmem.state(last, 2), { response: "ERROR" });
  assert.equal(vmem.unplug(last, 1), "ACK");
});

Deno.test("virtio-mem rules: under memstate a refused unplug keeps the backing; an accepted one discards it after the listeners", () => {
  const discarded: number[][] = [];
  const order: string[] = [];
  const { region, vmem, base } = device(8 * BLOCK, (offset, size) => {
    discarded.push([offset, size]);
    order.push("backing");
  });
  let refuse = true;
  const dma: Listener = {
    name: "dma",
    priority: 10,
    view: { mask: PLUGGED, value: PLUGGED },
    populate: () => {},
    discard: (s) => {
      if (refuse) throw new Error("the device still uses this memory");
      order.push(`discard ${s.offset}`);
    },
  };
  region.register(dma);
  assert.equal(vmem.plug(base, 2), "ACK");
  assert.equal(vmem.unplug(base, 1), "BUSY");
  assert.deepEqual(discarded, [], "nothing given up while a listener refuses");
  assert.equal(region.stateAt(0) & PLUGGED, PLUGGED);
  refuse = false;
  assert.equal(vmem.unplug(base, 1), "ACK");
  assert.deepEqual(discarded, [[0, BLOCK]]);
  assert.deepEqual(order, ["discard 0", "backing"]);
});

Deno.test("virtio-mem rules: under memstate an UNPLUG_ALL whose backing cannot be discarded is BUSY and puts back exactly the blocks that were plugged", () => {
  // memstate's rule (full rollback, README "Two settings"): the listeners hear of the unplug
  // first; when the backing then cannot be discarded (QEMU's ram_block_discard_range failing
  // in hw/virtio/virtio-mem.c virtio_mem_unplug_all) the device answers BUSY and every block
  // is as it was: the plugged ones plugged again, the others still unplugged.
  let fail = true;
  const { region, vmem, base } = device(8 * BLOCK, () => {
    if (fail) throw new Error("madvise failed");
  });
  const told: string[] = [];
  region.register({
    name: "dma",
    view: { mask: PLUGGED, value: PLUGGED },
    populate: (s) => told.push(`populate ${s.offset / BLOCK}+${s.size / BLOCK}`),
    discard: (s) => told.push(`discard ${s.offset / BLOCK}+${s.size / BLOCK}`),
  });
  assert.equal(vmem.plug(base, 1), "ACK");
  assert.equal(vmem.plug(base + 4 * BLOCK, 2), "ACK");
  told.length = 0;
  assert.equal(vmem.unplugAll(), "BUSY");
  assert.equal(vmem.pluggedSize, 3 * BLOCK);
  assert.deepEqual(vmem.state(base, 1), { response: "ACK", state: "plugged" });
  assert.deepEqual(vmem.state(base + BLOCK, 3), { response: "ACK", state: "unplugged" });
  assert.deepEqual(vmem.state(base + 4 * BLOCK, 2), { response: "ACK", state: "plugged" });
  assert.deepEqual(vmem.state(base + 6 * BLOCK, 1), { response: "ACK", state: "unplugged" });
  assert.deepEqual(told, ["discard 0+1", "discard 4+2", "populate 0+1", "populate 4+2"]);
  fail = false;
  assert.equal(vmem.unplugAll(), "ACK");
  assert.equal(vmem.pluggedSize, 0);
});

Deno.test("virtio-mem rules: check answers as PLUG and UNPLUG do, in QEMU's order (hw/virtio/virtio-mem.c virtio_mem_state_change_request, virtio_mem_valid_range, virtio_mem_set_block_state), changing and counting nothing", () => {
  // Rule: an invalid range is ERROR (unaligned, empty, outside the usable region, in
  // virtio_mem_valid_range's order), then a plug past the requested size NACK, then blocks not
  // all in the opposite state ERROR, and only then a busy device BUSY. `check` is those checks;
  // plug and unplug make them through it, so a planner (--load-state) and the device agree.
  const { region, vmem, base } = device(4 * BLOCK);
  assert.equal(vmem.plug(base, 2), "ACK");
  const cases: [gpa: number, blocks: number, plug: boolean, response: string, rule?: string][] = [
    [base + 4096, 1, true, "ERROR", "unaligned"],
    [base + 4096, 3, true, "ERROR", "unaligned"], // past the requested size too: the range first
    [base - BLOCK, 3, true, "ERROR", "outside"], // the same, outside the region
    [base, 0.5, false, "ERROR", "unaligned"],
    [base, 0, true, "ERROR", "empty"],
    [base - BLOCK, 1, true, "ERROR", "outside"],
    [base + vmem.usableRegionSize - BLOCK, 2, false, "ERROR", "outside"],
    [base, 3, true, "NACK", "requested-size"], // plugged already, but the size comes first
    [base, 1, true, "ERROR", "state"],
    [base + 2 * BLOCK, 1, false, "ERROR", "state"],
    [base + 2 * BLOCK, 2, true, "ACK"],
    [base, 2, false, "ACK"],
  ];
  for (const busy of [false, true]) {
    vmem.busy = busy;
    for (const [gpa, blocks, plug, response, rule] of cases) {
      const note = `busy ${busy}: ${plug ? "PLUG" : "UNPLUG"} ${gpa - base}+${blocks}`;
      const want = busy && response === "ACK" ? { response: "BUSY", rule: "busy" } : {
        response,
        ...(rule === undefined ? {} : { rule }),
      };
      const stats = vmem.stats(), saved = region.snapshot();
      assert.deepEqual({ ...vmem.check(gpa, blocks, plug) }, want, note);
      assert.deepEqual(vmem.stats(), stats, `${note}: check counts nothing`);
      assert.deepEqual(region.snapshot(), saved, `${note}: check changes nothing`);
      // The request itself answers the same; an ACK is undone to keep the cases' state.
      assert.equal(plug ? vmem.plug(gpa, blocks) : vmem.unplug(gpa, blocks), want.response, note);
      if (want.response === "ACK") {
        assert.equal(plug ? vmem.unplug(gpa, blocks) : vmem.plug(gpa, blocks), "ACK", note);
      }
    }
  }
  vmem.busy = false;
  // A planner passes what its earlier requests leave plugged: the size check counts from there.
  assert.deepEqual({ ...vmem.check(base + 2 * BLOCK, 2, true, 0) }, { response: "ACK" });
  assert.deepEqual({ ...vmem.check(base + 2 * BLOCK, 2, true, 3 * BLOCK) }, {
    response: "NACK",
    rule: "requested-size",
  });
  assert.throws(() => vmem.check(base, 1, true, -1), RangeError);
});

Deno.test("virtio-mem rules: under memstate an UNPLUG_ALL whose backing cannot be discarded and whose putting back a DMA map refuses leaves the device, the store and the IOMMU agreeing", () => {
  // memstate's rule (full rollback, README "Two settings"; docs/semantics.md "virtio-mem"):
  // putting the plugged blocks back is an inverse that must not fail. Where it does (type1's map
  // fails), that run stays unplugged with its backing kept: pluggedSize counts it out,
  // stats().warnings names it, and the answer is what the device holds: BUSY, the other run
  // being plugged again.
  const s = simSetup({ size: 64 * MiB });
  const vmem = virtioMem({
    region: s.region,
    blockSize: BLOCK,
    requestedSize: 32 * MiB,
    discardBacking: () => {
      throw new Error("madvise failed");
    },
    incoming: true,
  });
  const base = s.region.base;
  s.region.convert(0, 64 * MiB, "shared");
  assert.equal(vmem.plug(base, 1), "ACK");
  assert.equal(vmem.plug(base + 4 * BLOCK, 2), "ACK");
  assert.equal(s.container.mappingCount, 3 * BLOCK / 4096);
  s.faults.failNth("type1.map", 1, "ENOMEM"); // the first run's first map, putting it back
  assert.equal(vmem.unplugAll(), "BUSY");
  assert.equal(vmem.pluggedSize, 2 * BLOCK);
  assert.deepEqual(vmem.state(base, 1), { response: "ACK", state: "unplugged" });
  assert.deepEqual(vmem.state(base + 4 * BLOCK, 2), { response: "ACK", state: "plugged" });
  assert.equal(s.container.mappingCount, 2 * BLOCK / 4096);
  assertConsistent(s);
  const warnings = vmem.stats().warnings ?? [];
  assert.equal(warnings.length, 1, String(warnings));
  assert.match(warnings[0], /^\[0x100000000, 0x100200000\) stays unplugged .*ENOMEM/);
  // The run that stayed unplugged is unplugged: plugging it again works once the map does.
  assert.equal(vmem.plug(base, 1), "ACK");
  assert.equal(vmem.pluggedSize, 3 * BLOCK);
  assertConsistent(s);
});

Deno.test("virtio-mem rules: under memstate an UNPLUG whose backing cannot be discarded and that no listener takes back is ACK: the blocks are unplugged, the backing kept and named", () => {
  // The same rule for one UNPLUG: its range is one plugged run; when putting it back fails the
  // request took effect everywhere but the backing, so the device answers what it holds: ACK.
  const s = simSetup({ size: 64 * MiB });
  let discards = 0;
  const vmem = virtioMem({
    region: s.region,
    blockSize: BLOCK,
    requestedSize: 32 * MiB,
    discardBacking: () => {
      discards++;
      throw new Error("madvise failed");
    },
    incoming: true,
  });
  const base = s.region.base;
  s.region.convert(0, 64 * MiB, "shared");
  assert.equal(vmem.plug(base, 2), "ACK");
  assert.equal(vmem.unplug(base, 1), "BUSY"); // put back: nothing changed
  assert.equal(vmem.pluggedSize, 2 * BLOCK);
  s.faults.failNth("type1.map", 1, "ENOMEM");
  assert.equal(vmem.unplug(base, 2), "ACK");
  assert.equal(discards, 2);
  assert.equal(vmem.pluggedSize, 0);
  assert.deepEqual(vmem.state(base, 2), { response: "ACK", state: "unplugged" });
  assert.equal(s.container.mappingCount, 0);
  assertConsistent(s);
  assert.match(vmem.stats().warnings?.join("\n") ?? "", /^\[0x100000000, 0x100400000\) stays/);
});

Deno.test("virtio-mem rules: discardBacking must be synchronous: an async one is refused where it is given, a returned promise fails the discard (BUSY) with its rejection handled", async () => {
  // memstate never awaits a hook (src/util/_sync.ts): an async discardBacking has not discarded
  // anything when it returns, and its rejection would end the process unhandled.
  const region = new Region({ name: "vmem", size: 64 * MiB });
  const asyncDiscard = async () => {};
  assert.throws(
    () =>
      virtioMem({ region, blockSize: BLOCK, requestedSize: BLOCK, discardBacking: asyncDiscard }),
    (e) =>
      e instanceof TypeError &&
      /^virtioMem virtio-mem: discardBacking must be synchronous; it is an async function/
        .test(e.message),
  );
  const notAFunction = "punch" as unknown as () => void;
  assert.throws(
    () =>
      virtioMem({ region, blockSize: BLOCK, requestedSize: BLOCK, discardBacking: notAFunction }),
    (e) =>
      e instanceof TypeError && /discardBacking must be a function, got string/.test(e.message),
  );
  assert.deepEqual(region.sources().map((x) => x.name), ["guest_memfd"], "nothing declared");
  for (const vmm of ["memstate", "qemu-11.1"] as const) {
    const region = new Region({ name: "vmem", size: 64 * MiB, vmm });
    const late = () => Promise.reject(new Error("discarded later")) as unknown as void;
    const vmem = virtioMem({
      region,
      blockSize: BLOCK,
      requestedSize: 8 * BLOCK,
      discardBacking: late,
      incoming: true,
    });
    assert.equal(vmem.plug(0, 2), "ACK", vmm);
    assert.equal(vmem.unplug(0, 1), "BUSY", vmm);
    assert.equal(vmem.unplugAll(), "BUSY", vmm);
    assert.equal(vmem.pluggedSize, 2 * BLOCK, vmm);
    assert.deepEqual(vmem.state(0, 2), { response: "ACK", state: "plugged" }, vmm);
    const stats = vmem.stats();
    assert.equal(stats.calls.discardBacking, 2, vmm);
    assert.equal(stats.failures, 4, vmm); // two failed discards, two BUSY answers
  }
  // Any rejection left unhandled would fail this test once the event loop turns.
  await new Promise((resolve) => setTimeout(resolve, 10));
});

Deno.test("virtio-mem rules: under memstate a put-back whose own rollback fails fails the region, and pluggedSize still counts only what the store holds plugged", () => {
  // The bus marks a region failed when an inverse call fails (src/bus/listener.ts); the device
  // cannot mark it itself, so it throws the region's RegionFailedError, its runs not put back
  // counted out of pluggedSize first.
  let fail = false;
  const { region, vmem, base } = device(8 * BLOCK, () => {
    fail = true;
    throw new Error("madvise failed");
  });
  const view = { mask: PLUGGED, value: PLUGGED };
  region.register({
    name: "first",
    priority: 0,
    view,
    populate: () => {},
    discard: () => {
      if (fail) throw new Error("cannot undo");
    },
  });
  region.register({
    name: "second",
    priority: 10,
    view,
    populate: () => {
      if (fail) throw new Error("cannot map");
    },
    discard: () => {},
  });
  assert.equal(vmem.plug(base, 1), "ACK");
  assert.equal(vmem.plug(base + 4 * BLOCK, 2), "ACK");
  assert.throws(() => vmem.unplugAll(), (e) => e === region.failure && e !== undefined);
  assert.equal(vmem.pluggedSize, 0);
  // Both runs are named: the first one's put-back failed the region, the second was not tried.
  const warnings = vmem.stats().warnings ?? [];
  assert.equal(warnings.length, 2, warnings.join("\n"));
  assert.match(warnings[0], /stays unplugged .*region \S+ has failed/);
  assert.match(warnings[1], /stays unplugged .*the region failed first$/);
  assert.equal(
    region.isPopulated({ offset: 0, size: 8 * BLOCK }, { mask: PLUGGED, value: 0 }),
    true,
  );
});
