// Every invalid change is refused with an error naming the argument and rule; nothing changes.
import assert from "node:assert/strict";
import { RangeTreeStore, type StateStore } from "../src/store/mod.ts";
import {
  DMA_VIEW,
  InvalidChangeError,
  KVM_VIEW,
  PLUGGED,
  Region,
  SHARED,
  SourceError,
} from "../src/bus/mod.ts";
import { type Call, RecordingListener } from "./helpers/recording_listener.ts";

const MiB = 2 ** 20;

const cases: [string, (r: Region) => unknown, RegExp][] = [
  [
    "unaligned offset",
    (r) => r.convert(100, 4096, "shared"),
    /offset: must be aligned to 4096, got 100/,
  ],
  [
    "unaligned size",
    (r) => r.convert(0, 5000, "shared"),
    /size: must be a multiple of 4096, got 5000 \(0x1388\)/,
  ],
  ["zero size", (r) => r.convert(0, 0, "shared"), /size: must be a positive integer, got 0/],
  [
    "negative offset",
    (r) => r.convert(-4096, 4096, "shared"),
    /offset: must be a non-negative integer/,
  ],
  ["NaN size", (r) => r.convert(0, NaN, "shared"), /size: must be a positive integer, got NaN/],
  [
    "beyond the region",
    (r) => r.convert(4 * MiB, 8192, "shared"),
    /offset \+ size <= region size 0x400000/,
  ],
  ["overflow", (r) => r.convert(4096, Number.MAX_SAFE_INTEGER - 4095, "shared"), /size: must be/],
  [
    "unknown direction",
    (r) => r.convert(0, 4096, "sideways" as "shared"),
    /to: must be "shared" or "private", got "sideways"/,
  ],
  [
    "unclaimed bits",
    (r) => r.change(0, 4096, 1 << 5, 0),
    /setBits: must be made of claimed state bits \(mask 0x1; claim "plugged".*\), got 32/,
  ],
  [
    "negative bits",
    (r) => r.change(0, 4096, 0, -1),
    /clearBits: must be made of claimed state bits/,
  ],
  [
    // `&` keeps the low 32 bits: 2^32 + 1 must not pass as SHARED and reach the listeners.
    "bits past 32 that look like SHARED",
    (r) => r.change(0x100000, 4096, 2 ** 32 + 1, 0),
    /setBits: must be made of claimed state bits .*got 4294967297/,
  ],
  [
    "bits of 2^32, which look like none",
    (r) => r.change(0, 4096, 0, 2 ** 32),
    /clearBits: must be made of claimed state bits .*got 4294967296/,
  ],
];

for (const [what, call, message] of cases) {
  Deno.test(`change refuses ${what}, names it, and changes nothing`, () => {
    const region = new Region({ name: "ram", size: 4 * MiB });
    const log: Call[] = [];
    region.register(new RecordingListener("kvm", 0, KVM_VIEW, region.pages, log));
    region.convert(MiB, MiB, "shared");
    log.length = 0;
    const before = [...region.store.runs()];
    assert.throws(() => call(region), (e) => {
      assert.ok(e instanceof InvalidChangeError, `got ${e}`);
      assert.match((e as Error).message, /^region ram: /);
      assert.match((e as Error).message, message);
      return true;
    });
    assert.deepEqual([...region.store.runs()], before);
    assert.deepEqual(log, []);
    assert.equal(region.stats.rejected, 1);
  });
}

Deno.test("region options are checked, naming the field", () => {
  assert.throws(
    () => new Region({ name: "r", size: 10000 }),
    /size: must be a positive multiple of 4096, got 10000/,
  );
  assert.throws(
    () => new Region({ name: "r", size: 8192, pageSize: 3000 }),
    /pageSize: must be a power of two/,
  );
  // QEMU tracks shared memory per 4 KiB host page (system/ram-block-attributes.c
  // ram_block_attributes_get_block_size); only memstate's policy takes another page size.
  for (const vmm of ["qemu-10.1", "qemu-11.1"] as const) {
    assert.throws(
      () => new Region({ name: "r", size: 2 ** 22, pageSize: 2 ** 21, vmm }),
      new RegExp(`pageSize: must be 4096 under ${vmm}, got 2097152`),
    );
  }
  assert.equal(new Region({ name: "r", size: 2 ** 22, pageSize: 2 ** 21 }).pageSize, 2 ** 21);
  assert.throws(
    () => new Region({ name: "r", size: 8192, base: 100 }),
    /base: must be a non-negative multiple of 4096/,
  );
  // type1 refuses a vaddr off the IOMMU page (vfio_dma_do_map: `(size | iova | vaddr) & mask`).
  for (const hostAddress of [NaN, -4096, 100, 2 ** 53, "bogus" as unknown as number]) {
    assert.throws(
      () => new Region({ name: "r", size: 8192, hostAddress }),
      /^InvalidChangeError: .*hostAddress: must be a non-negative multiple of 4096, got /,
      String(hostAddress),
    );
  }
  assert.equal(new Region({ name: "r", size: 8192, hostAddress: 2 ** 40 }).hostAddress, 2 ** 40);
  assert.equal(new Region({ name: "r", size: 8192, hostAddress: 0 }).hostAddress, 0);
  // The rule is the IOMMU's page, not the region's: a 2 MiB-page region may start at any 4 KiB.
  const huge = new Region({ name: "h", size: 2 ** 22, pageSize: 2 ** 21, hostAddress: 0x1000 });
  assert.equal(huge.hostAddress, 0x1000);
  // Set later (the KVM plugin binds its backing's address), it is checked the same way.
  assert.throws(() => (huge.hostAddress = 0x1800), /hostAddress: must be a non-negative multiple/);
  assert.equal(huge.hostAddress, 0x1000, "a refused address changes nothing");
  huge.hostAddress = 0x7f00_0000_0000;
  assert.equal(huge.hostAddress, 0x7f00_0000_0000);
  assert.throws(
    () => new Region({ name: "", size: 8192 }),
    /name: a region needs a non-empty name/,
  );
  assert.throws(
    () => new Region({ name: "r", size: 8192, store: "btree" as "bitmap" }),
    /store: must be "range-tree", "bitmap" or a StateStore/,
  );
});

Deno.test("regions start private and plugged; 'shared' starts shared", () => {
  assert.equal(new Region({ name: "a", size: 8192 }).stateAt(0), PLUGGED);
  assert.equal(
    new Region({ name: "b", size: 8192, initial: "shared" }).stateAt(4096),
    SHARED | PLUGGED,
  );
});

Deno.test("state bits: the store holds only claimed bits and grows with each claim", () => {
  for (const store of ["range-tree", "bitmap"] as const) {
    const region = new Region({ name: "r", size: 8192, store });
    assert.equal(region.store.bits, 1, "a new region holds SHARED only");
    assert.equal(region.stateAt(0), PLUGGED, "PLUGGED is implied until claimed");
    const bit = region.bits.claim("migration-dirty");
    assert.equal(bit, 4, "custom bits sit above the built-in ones");
    assert.equal(region.store.bits, 3);
    region.change(0, 4096, bit, 0);
    assert.equal(region.stateAt(0), PLUGGED | bit);
    assert.throws(() => region.bits.claim("migration-dirty"), /already claimed/);
    assert.equal(region.bits.claim("plugged"), PLUGGED);
    assert.equal(region.stateAt(4096), PLUGGED, "a claimed built-in bit starts as implied");
    assert.equal(region.store.get(1), PLUGGED);
  }
  // A store the region cannot grow keeps its width.
  const fixed = new RangeTreeStore(2, { bits: 2 });
  const store: StateStore = {
    length: 2,
    bits: 2,
    get: (p) => fixed.get(p),
    set: (a, b, s) => fixed.set(a, b, s),
    update: (a, b, s, c) => fixed.update(a, b, s, c),
    runs: (a, b) => fixed.runs(a, b),
    get runCount() {
      return fixed.runCount;
    },
    byteSize: () => fixed.byteSize(),
  };
  const region = new Region({ name: "f", size: 8192, store });
  assert.equal(region.bits.get("plugged"), PLUGGED, "a 2-bit store is taken to hold PLUGGED");
  assert.throws(
    () => region.bits.claim("another"),
    /no state bit left for "another": the store holds at most 2 bits/,
  );
});

Deno.test("sources: adding one that exists is EBUSY, removing one that does not is ENOENT", () => {
  const region = new Region({ name: "r", size: 4 * MiB });
  region.addSource({ name: "virtio-mem", bits: PLUGGED, granularity: 2 * MiB });
  assert.throws(
    () => region.addSource({ name: "virtio-mem", bits: PLUGGED, granularity: 2 * MiB }),
    (e) => e instanceof SourceError && e.code === "EBUSY",
  );
  region.removeSource("virtio-mem");
  assert.throws(
    () => region.removeSource("virtio-mem"),
    (e) => e instanceof SourceError && e.code === "ENOENT",
  );
});

Deno.test("discardAll: guest_memfd's SHARED bit has no discard-all; it is refused before any listener", () => {
  // region.ts discardAll: virtio-mem's UNPLUG_ALL (hw/virtio/virtio-mem.c virtio_mem_unplug_all)
  // drops a source's bits at once; guest_memfd has no such operation.
  for (const vmm of ["memstate", "qemu-11.1"] as const) {
    const region = new Region({ name: "ram", size: 4 * MiB, vmm });
    region.bits.claim("plugged", { granularity: 512 });
    const log: Call[] = [];
    region.register(new RecordingListener("dma", 10, DMA_VIEW, region.pages, log));
    region.convert(0, MiB, "shared");
    log.length = 0;
    const before = [...region.store.runs()];
    assert.throws(
      () => region.discardAll(0, 4 * MiB, SHARED),
      (e) =>
        e instanceof InvalidChangeError &&
        /clearBits: must be a source's bits other/.test(e.message),
    );
    assert.deepEqual(log, [], vmm);
    assert.deepEqual([...region.store.runs()], before, vmm);
    assert.equal(region.stats.rejected, 1, vmm);
    // Bits nobody has: nothing changes and nobody is told.
    region.change(0, 4 * MiB, 0, PLUGGED);
    log.length = 0;
    const result = region.discardAll(0, 4 * MiB, PLUGGED);
    assert.equal(result.noop, true, vmm);
    assert.deepEqual(log, [], vmm);
  }
});

Deno.test("library arguments that are not objects are named, not met with a JavaScript error", () => {
  // region.ts: the constructor's options, register's range and isPopulated's view are checked
  // before they are read, so a caller's mistake reads as one.
  assert.throws(
    () => new Region(null as unknown as { name: string; size: number }),
    /options: a region needs \{ name, size, \.\.\. \}, got null/,
  );
  const region = new Region({ name: "ram", size: MiB });
  const listener = new RecordingListener("l", 0, KVM_VIEW, region.pages, []);
  assert.throws(
    () => region.register(listener, null as unknown as { offset: number; size: number }),
    (e) =>
      e instanceof InvalidChangeError && /range: must be a non-empty byte range/.test(e.message),
  );
  assert.deepEqual(region.listeners, [], "nothing registered");
  for (const view of ["dma", { mask: 0, value: 1 }, null]) {
    assert.throws(
      () => region.isPopulated({ offset: 0, size: 4096 }, view as unknown as typeof DMA_VIEW),
      /view: /,
      JSON.stringify(view),
    );
  }
});
