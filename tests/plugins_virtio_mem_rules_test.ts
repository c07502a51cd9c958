// virtio-mem's rules in QEMU's order (hw/virtio/virtio-mem.c
// `virtio_mem_state_change_request`): an invalid range is ERROR, then a plug
// past the requested size is NACK, then a range not entirely in the opposite
// state is ERROR, and only then is a busy device BUSY
// (`virtio_mem_set_block_state`). And the edges of the usable region, where
// memstate's unplug gives up the backing, and what its failed UNPLUG_ALL puts back.
import assert from "node:assert/strict";
import { type Listener, PLUGGED, Region } from "../src/bus/mod.ts";
import { VIRTIO_MEM_USABLE_EXTENT, virtioMem } from "../src/plugins/mod.ts";

const MiB = 2 ** 20;
const BLOCK = 2 * MiB;

function device(requestedSize: number, discardBacking?: (offset: number, size: number) => void) {
  const region = new Region({ name: "vmem", size: 1024 * MiB, base: 2 ** 34 });
  const vmem = virtioMem({ region, blockSize: BLOCK, requestedSize, discardBacking });
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
