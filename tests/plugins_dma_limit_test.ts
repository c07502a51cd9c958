// type1 at 4 KiB granularity runs out of DMA entries; iommufd with cut does not.
import assert from "node:assert/strict";
import { ConversionError, ListenerUndoError, Region, RegionFailedError } from "../src/bus/mod.ts";
import type { HwError } from "../src/hw/errors.ts";
import { SimType1Container } from "../src/hw/sim/mod.ts";
import { CapacityError, vfioType1 } from "../src/plugins/mod.ts";
import type { VmmPolicy } from "../src/settings/vmm.ts";
import { assertConsistent, MiB, PAGE, simSetup } from "./helpers/sim_setup.ts";

Deno.test("type1 exhausts a small dma_entry_limit; the conversion rolls back completely", () => {
  const s = simSetup({ dmaEntryLimit: 300 });
  s.region.convert(0, 256 * PAGE, "shared"); // 256 entries used
  const store = [...s.region.store.runs()];
  const mappings = s.container.mappings();
  const attrs = [...s.vm.memoryAttributeRuns(s.region.base, s.region.size)];
  assert.throws(() => s.region.convert(MiB, 64 * PAGE, "shared"), (e) => {
    assert.ok(e instanceof ConversionError);
    assert.equal(e.listener, "nic0");
    assert.equal((e.cause as HwError).errno, "ENOSPC");
    return true;
  });
  assert.deepEqual([...s.region.store.runs()], store);
  assert.deepEqual(s.container.mappings(), mappings);
  assert.deepEqual([...s.vm.memoryAttributeRuns(s.region.base, s.region.size)], attrs);
  assert.equal(s.container.remainingEntries(), 300 - 256);
  assertConsistent(s);
});

Deno.test("iommufd with cut maps the same workload with far fewer mappings", () => {
  const workload = (convert: (off: number, size: number, to: "shared" | "private") => void) => {
    // A SWIOTLB-like pool made shared in 2 MiB steps, then 4 KiB holes punched back private.
    for (let off = 0; off < 8 * MiB; off += 2 * MiB) convert(off, 2 * MiB, "shared");
    for (let i = 0; i < 16; i++) convert(i * 64 * PAGE, PAGE, "private");
  };
  const t1 = simSetup({ type1: true, dmaEntryLimit: 65535 });
  workload((o, n, to) => t1.region.convert(o, n, to));
  const io = simSetup({ type1: false, iommufd: true });
  workload((o, n, to) => io.region.convert(o, n, to));
  const type1Count = t1.container.mappingCount;
  const areaCount = io.ioas.areaCount;
  assert.equal(type1Count, 2048 - 16); // one mapping per shared 4 KiB page
  // One area per shared extent, except that the four 2 MiB areas were mapped
  // separately and areas never merge: the last extent spans three of them.
  const extents = [...io.region.store.runs()].filter((r) => r.state & 1).length;
  assert.equal(extents, 16);
  assert.equal(areaCount, 18);
  assert.ok(areaCount * 50 < type1Count, `${areaCount} areas vs ${type1Count} mappings`);
  assertConsistent(t1);
  assertConsistent(io);
});

Deno.test("type1 refuses to attach when the worst case exceeds the entries left, saying how to fix it", () => {
  const region = new Region({ name: "ram", size: 256 * MiB });
  const container = new SimType1Container({ dmaEntryLimit: 65535 });
  const nic = vfioType1({ name: "nic0", container });
  assert.throws(() => nic.attach(region), (e) => {
    assert.ok(e instanceof CapacityError);
    assert.equal(e.needed, 65536);
    assert.equal(e.available, 65535);
    assert.match(
      e.message,
      /may need 65536 DMA mappings under memstate \(ram: 256 MiB \/ 4 KiB = 65536\)/,
    );
    assert.match(e.message, /dma_entry_limit=65536/);
    // memstate's refusal is its own rule: it does not quote QEMU's warning.
    assert.doesNotMatch(e.message, /possibly running out/);
    return true;
  });
  assert.deepEqual(region.listeners, []);
  // A coarser granularity fits.
  vfioType1({ name: "nic1", container, granularity: 2 * MiB }).attach(region);
  assert.equal(region.listeners.length, 1);
});

Deno.test("memstate: a populate whose own undo fails leaves the DMA plugin out of step, so the region fails (ListenerUndoError)", () => {
  // _granules.ts mapGranules: the second granule's map fails and so does the unmap of the first;
  // a refusal would promise that nic0 holds nothing of the change, which is not so.
  const t1 = simSetup({});
  t1.faults.failNth("type1.map", 2, "ENOMEM");
  t1.faults.failNth("type1.unmap", 1, "EIO");
  assert.throws(() => t1.region.convert(0, 4 * PAGE, "shared"), (e) => {
    assert.ok(e instanceof RegionFailedError, String(e));
    assert.match(
      e.message,
      /: nic0 refused populate of \[0x0, \+0x4000\) \(type1\.map: ENOMEM.*\) and could not undo its own part: type1\.unmap: EIO/,
    );
    assert.ok(e.cause instanceof ListenerUndoError);
    assert.equal((e.cause.refusal as HwError).errno, "ENOMEM");
    return true;
  });
  assert.ok(t1.region.failure instanceof RegionFailedError);
  // Out of step, and said so: nic0 holds the granule the store does not have shared.
  assert.equal(t1.container.mappingCount, 1);
  assert.equal(t1.region.store.get(0), 0);
  // The same when the plugin attaches late and its replay's populate is the one refused.
  const t2 = simSetup({ type1: false });
  t2.region.convert(0, 4 * PAGE, "shared");
  const late = new SimType1Container({ faults: t2.faults });
  t2.faults.failNth("type1.map", 2, "ENOMEM");
  t2.faults.failNth("type1.unmap", 1, "EIO");
  assert.throws(
    () => vfioType1({ name: "late", container: late }).attach(t2.region),
    (e) =>
      e instanceof RegionFailedError && /late refused populate .* could not undo/.test(e.message),
  );
  assert.equal(late.mappingCount, 1);
  // The same from a listener of one's own, on the one-page path.
  const region = new Region({ name: "ram", size: MiB });
  region.register({
    name: "mine",
    populate() {
      throw new ListenerUndoError("mine", new Error("no room"), new Error("stuck"));
    },
    discard() {},
  });
  assert.throws(
    () => region.convert(0, PAGE, "shared"),
    /mine refused populate of \[0x0, \+0x1000\) \(no room\) and could not undo its own part: stuck/,
  );
  assert.throws(() => region.convert(PAGE, PAGE, "shared"), RegionFailedError);
});

Deno.test("QEMU: an unmap that fails while a failed populate is undone is ignored; the populate fails with the map's error (vfio_ram_discard_notify_discard)", () => {
  // hw/vfio/listener.c vfio_ram_discard_notify_populate: on a map error it discards the section
  // and returns the map's error; vfio_ram_discard_notify_discard only reports a failed unmap.
  // One entry is left, so the first granule maps and the second hits ENOSPC.
  const left: Record<string, number> = { "qemu-10.1": 257, "qemu-11.1": 256 };
  for (const vmm of ["qemu-10.1", "qemu-11.1"] as VmmPolicy[]) {
    const t1 = simSetup({ vmm, dmaEntryLimit: 257 });
    t1.region.convert(0, 256 * PAGE, "shared");
    t1.faults.failNth("type1.unmap", 1, "EIO");
    assert.throws(() => t1.region.convert(MiB, 4 * PAGE, "shared"), (e) => {
      assert.ok(e instanceof ConversionError);
      assert.equal((e.cause as HwError).errno, "ENOSPC", `${vmm}: the map's error`);
      return true;
    });
    // 10.1 leaves the granule it could not unmap, as QEMU does; 11.1's manager then discards the
    // failing listener's section too (ram_discard_manager_notify_populate), which removes it.
    assert.equal(t1.container.mappingCount, left[vmm], vmm);
  }
});

// QEMU's rule (hw/vfio/listener.c `vfio_ram_discard_notify_populate`, the same code for type1
// and iommufd in 10.1 and on master): when a DMA map fails it calls
// `vfio_ram_discard_notify_discard` on the section unconditionally, ONE unmap over the whole
// section even when the first granule failed and nothing was mapped. type1 answers 0 bytes,
// iommufd ENOENT, which backends/iommufd.c `iommufd_backend_unmap_dma` takes as success, so the
// unmap is no failure. qemu-11.1 then adds the manager's rollback discard of the failing listener
// (system/ram-discard-manager.c `ram_discard_manager_notify_populate`). memstate unmaps only what
// it mapped, so a first-granule failure makes no unmap.
Deno.test("a map failing at the first granule: QEMU still unmaps the whole section once (vfio_ram_discard_notify_populate); memstate makes no unmap", () => {
  const unmaps: Record<VmmPolicy, number> = { "qemu-10.1": 1, "qemu-11.1": 2, "memstate": 0 };
  for (const vmm of ["qemu-10.1", "qemu-11.1", "memstate"] as VmmPolicy[]) {
    // type1 with a full container: ENOSPC at the first map of every later to-shared conversion.
    const t1 = simSetup({ vmm, dmaEntryLimit: 256 });
    t1.region.convert(0, 256 * PAGE, "shared");
    const nic = t1.plugins.find((p) => p.name === "nic0")!;
    const unmapped: [number, number][] = [];
    const unmap = t1.container.unmap.bind(t1.container);
    t1.container.unmap = (
      iova,
      size,
      opts,
    ) => (unmapped.push([iova, size]), unmap(iova, size, opts));
    for (let i = 1; i <= 2; i++) {
      unmapped.length = 0;
      const before = nic.stats();
      assert.throws(() => t1.region.convert(i * MiB, 4 * PAGE, "shared"), (e) => {
        assert.ok(e instanceof ConversionError);
        assert.equal((e.cause as HwError).errno, "ENOSPC");
        return true;
      });
      const after = nic.stats();
      assert.equal(after.calls.map - before.calls.map, 1, `${vmm}: one map tried`);
      assert.equal((after.calls.unmap ?? 0) - (before.calls.unmap ?? 0), unmaps[vmm], vmm);
      assert.equal(after.failures - before.failures, 1, `${vmm}: only the map failed`);
      // Each unmap is of the whole section being populated, nothing else.
      const section: [number, number] = [t1.region.base + i * MiB, 4 * PAGE];
      assert.deepEqual(unmapped, Array(unmaps[vmm]).fill(section), vmm);
    }
    assert.equal(t1.container.mappingCount, 256, vmm);
    // iommufd without cut_mapping (linux-6.18): the same listener code, the unmap finds nothing.
    const io = simSetup({ vmm, type1: false, iommufd: "granule" });
    const gpu = io.plugins.find((p) => p.name === "gpu0")!;
    io.faults.failNth("ioas.map", 1, "ENOMEM");
    assert.throws(() => io.region.convert(0, 4 * PAGE, "shared"), ConversionError);
    assert.equal(gpu.stats().calls.unmap ?? 0, unmaps[vmm], `${vmm}: iommufd`);
    assert.equal(gpu.stats().failures, 1, `${vmm}: ENOENT from the unmap is success`);
    assert.equal(io.ioas.areaCount, 0, vmm);
  }
});
