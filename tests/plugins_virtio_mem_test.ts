// virtio-mem's responses, and DMA seeing only plugged-and-shared memory.
import assert from "node:assert/strict";
import { DMA_VIEW, PLUGGED, Region, SHARED, SourceError } from "../src/bus/mod.ts";
import {
  VIRTIO_MEM_MIN_BLOCK_SIZE,
  VIRTIO_MEM_USABLE_EXTENT,
  virtioMem,
} from "../src/plugins/mod.ts";
import type { VmmPolicy } from "../src/settings/vmm.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";
import { assertConsistent, MiB, PAGE, simSetup } from "./helpers/sim_setup.ts";

const BLOCK = 2 * MiB;

function device(requestedSize = 8 * MiB) {
  const region = new Region({ name: "vmem", size: 1024 * MiB, base: 2 ** 34 });
  const vmem = virtioMem({ region, blockSize: BLOCK, requestedSize });
  return { region, vmem, base: region.base };
}

Deno.test("virtio-mem: a new device has everything unplugged and owns the PLUGGED source", () => {
  const { region, vmem, base } = device();
  assert.equal(region.stateAt(0) & PLUGGED, 0);
  assert.deepEqual(vmem.state(base, 4), { response: "ACK", state: "unplugged" });
  assert.throws(() => virtioMem({ region, blockSize: BLOCK, requestedSize: 0 }), SourceError);
});

Deno.test("virtio-mem: a device whose guest-physical address (region base + offset) is not a multiple of the block size is refused (hw/virtio/virtio-mem.c virtio_mem_device_realize: 'addr' multiples of 'block-size')", () => {
  // Rule: virtio_mem_device_realize refuses !QEMU_IS_ALIGNED(vmem->addr, vmem->block_size).
  const region = new Region({ name: "vmem", size: 64 * MiB, base: 2 ** 34 + MiB });
  assert.throws(
    () => virtioMem({ region, blockSize: BLOCK, requestedSize: 0 }),
    (e) =>
      e instanceof RangeError &&
      /the guest-physical address 0x400100000 \(region base \+ offset\) must be a multiple of blockSize 2097152 \(hw\/virtio\/virtio-mem.c virtio_mem_device_realize\)/
        .test(e.message),
  );
  const aligned = new Region({ name: "vmem", size: 64 * MiB, base: 2 ** 34 + BLOCK });
  virtioMem({ region: aligned, blockSize: BLOCK, requestedSize: 0 });
});

Deno.test("virtio-mem: creating a device discards its whole backing once, unless migrating in, under every policy; a failed discard fails the creation (hw/virtio/virtio-mem.c virtio_mem_device_realize: ram_block_discard_range(rb, 0, used_length))", () => {
  // Rule: realize discards the whole RAM block unless runstate is RUN_STATE_INMIGRATE, and an
  // error there fails the realize ("Unexpected error discarding RAM"). memstate does it too: a
  // device whose blocks all start unplugged must not keep memory a previous user populated.
  for (const vmm of ["qemu-10.1", "qemu-11.1", "memstate"] as VmmPolicy[]) {
    const make = (incoming: boolean, fail = false) => {
      const region = new Region({ name: "vmem", size: 64 * MiB, vmm });
      if (vmm === "qemu-10.1") region.removeSource("guest_memfd");
      const discards: string[] = [];
      const discardBacking = (offset: number, size: number) => {
        if (fail) throw new Error("EIO");
        discards.push(`${offset / MiB}+${size / MiB}`);
      };
      const create = () =>
        virtioMem({
          region,
          blockSize: BLOCK,
          requestedSize: 0,
          offset: 8 * MiB,
          size: 32 * MiB,
          discardBacking,
          incoming,
        });
      return { region, discards, create };
    };
    const fresh = make(false);
    const vmem = fresh.create();
    assert.deepEqual(fresh.discards, ["8+32"], vmm);
    assert.equal(vmem.stats().calls.discardBacking, 1, vmm);
    const incoming = make(true);
    incoming.create();
    assert.deepEqual(incoming.discards, [], `${vmm}: migrating in`);
    const failing = make(false, true);
    assert.throws(failing.create, (e) => {
      assert.match(String(e), /discarding the device's backing at creation failed .*: EIO$/);
      assert.equal(
        ((e as Error).cause as Error).message,
        "EIO",
        "the discard's error is the cause",
      );
      return true;
    }, vmm);
    assert.equal(failing.region.sources().some((s) => s.bits === PLUGGED), false, vmm);
  }
});

Deno.test("virtio-mem: a refused plug discards the range's backing again, under every policy (hw/virtio/virtio-mem.c virtio_mem_set_block_state: ram_block_discard_range after a failed notify)", () => {
  // Rule: virtio_mem_set_block_state discards the range when virtio_mem_notify_plug fails
  // ("Could be preallocation or a notifier populated memory") and answers BUSY; memstate too.
  for (const vmm of ["qemu-10.1", "qemu-11.1", "memstate"] as VmmPolicy[]) {
    const region = new Region({ name: "vmem", size: 64 * MiB, vmm });
    if (vmm === "qemu-10.1") region.removeSource("guest_memfd");
    else region.convert(0, region.size, "shared");
    const discards: string[] = [];
    const vmem = virtioMem({
      region,
      blockSize: BLOCK,
      requestedSize: 32 * MiB,
      discardBacking: (offset, size) => discards.push(`${offset / MiB}+${size / MiB}`),
    });
    region.register({
      name: "dma",
      priority: 10,
      view: DMA_VIEW,
      populate() {
        throw new Error("map refused");
      },
      discard() {},
    });
    discards.length = 0; // the creation's discard
    assert.equal(vmem.plug(region.base + 4 * MiB, 2), "BUSY", vmm);
    assert.deepEqual(discards, ["4+4"], vmm);
    assert.equal(vmem.pluggedSize, 0, vmm);
  }
});

Deno.test("virtio-mem: a block below 1 MiB or below the backing's page size is refused, under every policy (hw/virtio/virtio-mem.c virtio_mem_set_block_size, virtio_mem_device_realize)", () => {
  // Rule: virtio_mem_set_block_size refuses values below VIRTIO_MEM_MIN_BLOCK_SIZE (1 MiB);
  // virtio_mem_device_realize refuses block_size < qemu_ram_pagesize(rb) (hugetlb backing).
  // They are the device's property checks, not a propagation policy: every vmm policy has them.
  assert.equal(VIRTIO_MEM_MIN_BLOCK_SIZE, MiB);
  for (const vmm of ["qemu-10.1", "qemu-11.1", "memstate"] as VmmPolicy[]) {
    const region = new Region({ name: "vmem", size: 64 * MiB, vmm });
    if (vmm === "qemu-10.1") region.removeSource("guest_memfd"); // one source per region
    for (const blockSize of [PAGE, 512 * 1024]) {
      assert.throws(
        () => virtioMem({ region, blockSize, requestedSize: 0 }),
        (e) =>
          e instanceof RangeError &&
          /blockSize must be at least 1 MiB .*virtio_mem_set_block_size\), got/.test(e.message),
        `${vmm} ${blockSize}`,
      );
    }
    assert.throws(
      () => virtioMem({ region, blockSize: 2 * MiB, backingPageSize: 2 ** 30, requestedSize: 0 }),
      (e) =>
        e instanceof RangeError &&
        /at least the backing page size 0x40000000 .*virtio_mem_device_realize\), got 2097152/
          .test(e.message),
      vmm,
    );
    assert.deepEqual(
      region.sources().map((s) => s.name),
      vmm === "qemu-10.1" ? [] : ["guest_memfd"],
    );
    virtioMem({ region, blockSize: MiB, requestedSize: 8 * MiB }); // the smallest QEMU accepts
  }
});

Deno.test("virtio-mem: PLUG within the requested size is ACK and plugs through the bus", () => {
  const { region, vmem, base } = device();
  assert.equal(vmem.plug(base + BLOCK, 2), "ACK");
  assert.equal(vmem.pluggedSize, 2 * BLOCK);
  assert.equal(region.stateAt(BLOCK) & PLUGGED, PLUGGED);
  assert.deepEqual(vmem.state(base, 4), { response: "ACK", state: "mixed" });
  assert.deepEqual(vmem.state(base + BLOCK, 2), { response: "ACK", state: "plugged" });
});

Deno.test("virtio-mem: PLUG beyond the requested size is NACK and changes nothing", () => {
  const { region, vmem, base } = device(4 * MiB);
  assert.equal(vmem.plug(base, 3), "NACK");
  assert.equal(vmem.pluggedSize, 0);
  assert.equal(region.stateAt(0) & PLUGGED, 0);
});

Deno.test("virtio-mem: ranges not in the opposite state are ERROR", () => {
  const { vmem, base } = device();
  assert.equal(vmem.plug(base, 1), "ACK");
  assert.equal(vmem.plug(base, 2), "ERROR"); // first block already plugged
  assert.equal(vmem.unplug(base + BLOCK, 1), "ERROR"); // not plugged
  assert.equal(vmem.pluggedSize, BLOCK);
});

Deno.test("virtio-mem: invalid ranges are ERROR (unaligned, empty, outside the usable region)", () => {
  const { vmem, base } = device(8 * MiB);
  assert.equal(vmem.plug(base + PAGE, 1), "ERROR");
  assert.equal(vmem.plug(base, 0), "ERROR");
  assert.equal(vmem.plug(base - BLOCK, 1), "ERROR");
  // The usable region is the requested size plus QEMU's extent, block aligned.
  assert.equal(vmem.usableRegionSize, 8 * MiB + VIRTIO_MEM_USABLE_EXTENT);
  assert.equal(vmem.state(base + vmem.usableRegionSize, 1).response, "ERROR");
  assert.equal(vmem.state(base + vmem.usableRegionSize - BLOCK, 1).response, "ACK");
});

Deno.test("virtio-mem: a listener refusing a plug is BUSY and the plug is rolled back", () => {
  const s = simSetup({
    size: 64 * MiB,
    dmaEntryLimit: 600,
    virtioMem: { blockSize: BLOCK, requestedSize: 32 * MiB },
  });
  s.region.convert(0, 64 * MiB, "shared");
  assert.equal(s.container.mappingCount, 0); // shared but unplugged: DMA sees nothing
  const base = s.region.base;
  assert.equal(s.vmem!.plug(base, 1), "ACK"); // 512 mappings
  assert.equal(s.vmem!.plug(base + BLOCK, 1), "BUSY"); // would need 1024 > 600
  assert.equal(s.vmem!.pluggedSize, BLOCK);
  assert.equal(s.container.mappingCount, 512);
  assert.deepEqual(s.vmem!.state(base + BLOCK, 1), { response: "ACK", state: "unplugged" });
  assertConsistent(s);
});

Deno.test("virtio-mem: UNPLUG_ALL unplugs everything, or is BUSY while the device is busy", () => {
  const { vmem, base, region } = device();
  vmem.plug(base, 3);
  vmem.busy = true;
  assert.equal(vmem.unplugAll(), "BUSY");
  assert.equal(vmem.pluggedSize, 3 * BLOCK);
  vmem.busy = false;
  assert.equal(vmem.unplugAll(), "ACK");
  assert.equal(vmem.pluggedSize, 0);
  assert.equal(
    region.isPopulated({ offset: 0, size: 3 * BLOCK }, { mask: PLUGGED, value: 0 }),
    true,
  );
});

Deno.test("virtio-mem plus guest_memfd: DMA maps only plugged-and-shared pages through any interleaving", () => {
  const seed = seedFromEnv();
  console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  const rng = new Prng(seed);
  const size = 32 * MiB;
  const s = simSetup({
    size,
    iommufd: true,
    virtioMem: { blockSize: BLOCK, requestedSize: 16 * MiB },
  });
  const base = s.region.base;
  const blocks = size / BLOCK;
  for (let step = 0; step < 400; step++) {
    const note = `seed ${seed} step ${step}`;
    const op = rng.int(3);
    if (op === 0) {
      s.vmem!.plug(base + rng.int(blocks) * BLOCK, 1 + rng.int(2));
    } else if (op === 1) {
      s.vmem!.unplug(base + rng.int(blocks) * BLOCK, 1 + rng.int(2));
    } else {
      const pages = size / PAGE;
      const start = rng.int(pages),
        n = 1 + rng.int(Math.min(pages - start, rng.chance(0.5) ? 4 : 1024));
      s.region.convert(start * PAGE, n * PAGE, rng.chance(0.5) ? "shared" : "private");
    }
    // Every DMA mapping is plugged-and-shared, and every such page is mapped.
    for (const m of s.container.mappings()) {
      assert.equal(s.region.stateAt(m.iova - base) & (SHARED | PLUGGED), SHARED | PLUGGED, note);
    }
    assertConsistent(s, note);
    assert.equal(
      s.container.mappingCount * PAGE,
      [...s.region.store.runs()].filter((r) => (r.state & 3) === 3)
        .reduce((n, r) => n + (r.end - r.start) * PAGE, 0),
      note,
    );
  }
  assert.ok(s.region.isPopulated({ offset: 0, size: PAGE }, DMA_VIEW) !== undefined);
});
