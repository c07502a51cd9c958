/**
 * IO page-table pages are freed only when one unmap call covers a table's span or a
 * larger entry replaces it (intel/iommu.c dma_pte_clear_level / switch_to_super_page,
 * generic_pt/iommu_pt.h __unmap_range / do_map); otherwise they stay allocated.
 */
import assert from "node:assert/strict";
import {
  type AreaFootprint,
  contiguousRunCalls,
  IO_PAGE_1G,
  IO_PAGE_2M,
  IO_PAGE_4K,
  IoPageTable,
  type UnmapCalls,
} from "../src/hw/sim/io_page_table.ts";
import { SimIoas } from "../src/hw/sim/iommufd.ts";
import { SimType1Container } from "../src/hw/sim/type1.ts";
import { SimHost } from "../src/hw/sim/host_memory.ts";
import { HwError } from "../src/hw/errors.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

Deno.test("IO page table: 4 KiB unmap calls free no table page (1 GiB as 4 KiB areas keeps 515 pages)", () => {
  const ioas = new SimIoas(); // no host: 4 KiB backing, as a memfd
  for (let p = 0; p < GiB; p += 4096) ioas.map(GiB + p, GiB + p, 4096);
  assert.equal(ioas.tablePages, 515);
  for (let p = 0; p < GiB; p += 4096) ioas.unmap(GiB + p, 4096);
  assert.equal(ioas.areaCount, 0);
  assert.equal(ioas.tablePages, 515, "512 leaf tables, one per level above, the root");
  assert.equal(ioas.tableBytes, 2_109_440);
  assert.equal(ioas.retainedTablePages, 514);
  assert.equal(ioas.peakTablePages, 515);
});

Deno.test("IO page table: the domain goes with the last device (vfio_iommu_type1_detach_group: iommu_domain_free; QEMU iommufd_cdev_detach): retained pages are freed, the peak stays", () => {
  const ioas = new SimIoas();
  const type1 = new SimType1Container({ dmaEntryLimit: 2 ** 32 - 1 });
  for (let p = 0; p < 4 * MiB; p += 4096) {
    ioas.map(GiB + p, GiB + p, 4096);
    type1.map(GiB + p, GiB + p, 4096);
  }
  for (let p = 0; p < 4 * MiB; p += 4096) {
    ioas.unmap(GiB + p, 4096);
    type1.unmap(GiB + p, 4096);
  }
  for (const hw of [ioas, type1]) {
    assert.equal(hw.tableBytes, 5 * 4096, "two leaf tables, one per level above, the root");
    hw.freeDomain();
    assert.equal(hw.tableBytes, 4096);
    assert.equal(hw.peakTablePages, 5);
  }
});

Deno.test("IO page table: one iommufd unmap covering a 2 MiB-aligned 2 MiB area of 4 KiB entries frees its leaf table; type1's 4 KiB runs do not", () => {
  const ioas = new SimIoas({ kernel: "proposed" });
  ioas.map(0, 0, 8 * MiB); // 4 KiB entries: root, 512 GiB table, 1 GiB table, 4 leaves
  ioas.cutMapping(2 * MiB);
  ioas.cutMapping(4 * MiB);
  assert.equal(ioas.tablePages, 7);
  ioas.unmap(2 * MiB, 2 * MiB); // one call (pages.c batch) covers the leaf table's span
  assert.equal(ioas.tablePages, 6);
  assert.equal(ioas.retainedTablePages, 0);
  const type1 = new SimType1Container();
  type1.map(0, 0, 8 * MiB);
  type1.unmap(0, 8 * MiB); // vfio_unmap_unpin: one call per 4 KiB run
  assert.equal(type1.tableBytes, 7 * 4096);
  assert.equal(type1.retainedTablePages, 6);
});

Deno.test("IO page table: a 2 MiB entry mapped over a retained leaf table frees it", () => {
  const host = new SimHost();
  const small = host.reserve(GiB);
  const huge = host.reserve(GiB, undefined, { pageSize: 2 * MiB });
  const type1 = new SimType1Container({ host });
  type1.map(0, small, 2 * MiB);
  type1.unmap(0, 2 * MiB);
  assert.equal(type1.tableBytes, 4 * 4096, "the leaf table and the levels above stay");
  type1.map(0, huge, 2 * MiB); // one 2 MiB entry replaces the leaf table
  assert.equal(type1.tableBytes, 3 * 4096);
  assert.equal(type1.retainedTablePages, 0);
  assert.equal(type1.peakTablePages, 4);
});

Deno.test("IO page table: the peak after unmap-then-map-elsewhere counts retained and new pages", () => {
  const type1 = new SimType1Container();
  type1.map(0, 0, 2 * MiB);
  type1.unmap(0, 2 * MiB);
  type1.map(4 * MiB, 4 * MiB, 2 * MiB); // a second leaf table beside the retained one
  assert.equal(type1.tableBytes, 5 * 4096);
  assert.equal(type1.peakTablePages, 5);
});

Deno.test("IO page table: tablePageLimit ENOMEM counts retained pages", () => {
  const ioas = new SimIoas({ tablePageLimit: 4 });
  ioas.map(0, 0, 4096);
  ioas.unmap(0, 4096); // a 4 KiB call covers no table: all four pages stay
  assert.equal(ioas.tablePages, 4);
  assert.throws(() => ioas.map(4 * MiB, 4 * MiB, 4096), (e) => {
    assert.ok(e instanceof HwError && e.errno === "ENOMEM");
    return true;
  });
  ioas.map(8192, 8192, 4096); // reuses the retained leaf table: no new page
  assert.equal(ioas.tablePages, 4);
});

Deno.test("IO page table: with no host, entries follow backingPageSize (default 4 KiB, not 1 GiB)", () => {
  const ioas = new SimIoas();
  ioas.map(GiB, GiB, GiB);
  assert.deepEqual(ioas.entryCounts(), { entries4k: 262144, entries2m: 0, entries1g: 0 });
  const huge = new SimIoas({ backingPageSize: IO_PAGE_1G });
  huge.map(GiB, GiB, GiB);
  assert.deepEqual(huge.entryCounts(), { entries4k: 0, entries2m: 0, entries1g: 1 });
  const type1 = new SimType1Container({ backingPageSize: IO_PAGE_2M });
  type1.map(GiB, GiB, GiB);
  assert.equal(type1.tableBytes, 3 * 4096);
  assert.throws(() => new SimIoas({ backingPageSize: 8192 }), RangeError);
});

/** Brute force: every entry and unmap call applied to a set of allocated tables. */
class Oracle {
  allocated = new Set<string>();
  #regions = [IO_PAGE_2M, IO_PAGE_1G, 2 ** 39];
  map(iova: number, size: number, vaddr: number, backing: number): void {
    const end = iova + size;
    for (let p = iova; p < end;) {
      const v = vaddr + (p - iova);
      const s = [IO_PAGE_1G, IO_PAGE_2M, IO_PAGE_4K].find((s) =>
        s <= backing && p % s === 0 && v % s === 0 && p + s <= end
      )!;
      this.#regions.forEach((r, level) => {
        if (r > s) this.allocated.add(`${level}:${Math.floor(p / r)}`);
        else for (let i = p / r; i < (p + s) / r; i++) this.allocated.delete(`${level}:${i}`);
      });
      p += s;
    }
  }
  unmap(iova: number, size: number, calls: UnmapCalls): void {
    const end = iova + size;
    for (let c0 = iova, c1 = iova + calls.first; c0 < end; c0 = c1, c1 += calls.period) {
      const ce = Math.min(c1, end);
      this.#regions.forEach((r, level) => {
        for (let i = Math.ceil(c0 / r); (i + 1) * r <= ce; i++) {
          this.allocated.delete(`${level}:${i}`);
        }
      });
    }
  }
}

Deno.test("IO page table: retained-table accounting equals a brute-force walk of every call (random map/unmap)", () => {
  const seed = seedFromEnv();
  console.log("seed", seed);
  const prng = new Prng(seed);
  const table = new IoPageTable(4);
  const oracle = new Oracle();
  const live: { fp: AreaFootprint; backing: number }[] = [];
  const span = 4 * GiB;
  for (let step = 0; step < 400; step++) {
    if (live.length > 0 && prng.chance(0.45)) {
      const i = prng.int(live.length);
      const { fp } = live[i];
      live.splice(i, 1);
      const calls = prng.chance(0.2)
        ? { first: fp.end - fp.iova, period: Infinity }
        : contiguousRunCalls(fp, prng.pick([1, 3, 5461]));
      table.remove(fp, calls);
      oracle.unmap(fp.iova, fp.end - fp.iova, calls);
    } else {
      const backing = prng.pick([IO_PAGE_4K, IO_PAGE_2M, IO_PAGE_1G]);
      const unit = prng.pick([IO_PAGE_4K, IO_PAGE_2M, IO_PAGE_1G]);
      const iova = Math.floor(prng.int(span) / unit) * unit +
        (prng.chance(0.3) ? IO_PAGE_4K * prng.int(4) : 0);
      const size = backing === IO_PAGE_4K
        ? IO_PAGE_4K * (1 + prng.int(prng.chance(0.3) ? 4096 : 600))
        : prng.chance(0.3)
        ? IO_PAGE_1G + IO_PAGE_4K * prng.int(600)
        : IO_PAGE_4K * (1 + prng.int(4096));
      const vaddr = prng.chance(0.7) ? iova : iova + IO_PAGE_4K * prng.int(3);
      const end = iova + size;
      if (end > span || live.some(({ fp }) => fp.iova < end && iova < fp.end)) continue;
      const fp = table.footprint({ iova, size, vaddr }, backing);
      const after = table.tablePagesAfter([], [fp]);
      table.add(fp);
      oracle.map(iova, size, vaddr, backing);
      assert.equal(after, table.tablePages, `step ${step}: tablePagesAfter`);
      live.push({ fp, backing });
    }
    assert.equal(table.tablePages, 1 + oracle.allocated.size, `step ${step}`);
  }
  assert.ok(table.retainedTablePages > 0, "the walk retained table pages");
});

Deno.test("IO page table: iommufd unmaps a large area in calls of 5461 runs (pages.c iopt_area_unpin_domain); a table a call boundary cuts stays", () => {
  const a = 700_416; // a + 5461 pages = 22 MiB: the boundary falls on a leaf table's edge
  const aligned = new SimIoas();
  aligned.map(a, a, 24 * MiB);
  aligned.unmap(a, 24 * MiB);
  // Leaf tables 1..11 each lie inside one call: freed. The partial end tables stay.
  assert.equal(aligned.tablePages, 1 + 1 + 1 + 2);
  const shifted = new SimIoas();
  shifted.map(a + 4096, a + 4096, 24 * MiB);
  shifted.unmap(a + 4096, 24 * MiB); // the boundary cuts leaf table 11: it stays too
  assert.equal(shifted.tablePages, 1 + 1 + 1 + 3);
});
