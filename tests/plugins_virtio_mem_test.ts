// virtio-mem's responses, and DMA seeing only plugged-and-shared memory.
import assert from "node:assert/strict";
import { DMA_VIEW, PLUGGED, Region, SHARED, SourceError } from "../src/bus/mod.ts";
import { VIRTIO_MEM_USABLE_EXTENT, virtioMem } from "../src/plugins/mod.ts";
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
