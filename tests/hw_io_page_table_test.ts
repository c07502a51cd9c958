/**
 * IO page-table pages are freed only when one unmap call covers a table's span or a
 * larger entry replaces it (intel/iommu.c dma_pte_clear_level / switch_to_super_page,
 * generic_pt/iommu_pt.h __unmap_range / do_map); otherwise they stay allocated. AMD v1
 * on 6.18 frees none on unmap (amd/io_pgtable.c iommu_v1_unmap_pages) and starts at 3
 * levels, adding a root when a map reaches past the old one (increase_address_space).
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
import type { IommuSetting } from "../src/settings/iommu.ts";
import type { KernelSetting } from "../src/settings/kernel.ts";

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

/**
 * Brute force: every entry and unmap call applied to the tables below the root. A
 * table of `levels` levels has a root spanning 2^(12 + 9 * levels); AMD v1 starts at 3
 * and, when a map reaches past the root, makes the old root the first table of its
 * level under a new one (amd/io_pgtable.c increase_address_space).
 */
class Oracle {
  allocated = new Set<string>();
  #regions = [IO_PAGE_2M, IO_PAGE_1G, 2 ** 39];
  constructor(public levels = 4, readonly unmapFrees = true) {}
  /** The region sizes of the tables below the root. */
  get #below(): number[] {
    return this.#regions.slice(0, this.levels - 1);
  }
  map(iova: number, size: number, vaddr: number, backing: number): void {
    const end = iova + size;
    while (end > 2 ** (12 + 9 * this.levels)) this.allocated.add(`${this.levels++ - 1}:0`);
    for (let p = iova; p < end;) {
      const v = vaddr + (p - iova);
      const s = [IO_PAGE_1G, IO_PAGE_2M, IO_PAGE_4K].find((s) =>
        s <= backing && p % s === 0 && v % s === 0 && p + s <= end
      )!;
      this.#below.forEach((r, level) => {
        if (r > s) this.allocated.add(`${level}:${Math.floor(p / r)}`);
        else for (let i = p / r; i < (p + s) / r; i++) this.allocated.delete(`${level}:${i}`);
      });
      p += s;
    }
  }
  unmap(iova: number, size: number, calls: UnmapCalls): void {
    if (!this.unmapFrees) return;
    const end = iova + size;
    for (let c0 = iova, c1 = iova + calls.first; c0 < end; c0 = c1, c1 += calls.period) {
      const ce = Math.min(c1, end);
      this.#below.forEach((r, level) => {
        for (let i = Math.ceil(c0 / r); (i + 1) * r <= ce; i++) {
          this.allocated.delete(`${level}:${i}`);
        }
      });
    }
  }
}

Deno.test("IO page table: retained-table accounting equals a brute-force walk of every call (random map/unmap)", () => {
  randomWalk("intel-vt-d", "linux-6.18", 4 * GiB, 4);
});

Deno.test("IO page table: AMD v1 equals the brute-force walk on 6.18 (unmap frees nothing) and under proposed (generic_pt frees), across the 512 GiB growth", () => {
  for (const kernel of ["linux-6.18", "proposed"] as const) {
    // Areas near 512 GiB grow the table from 3 to 4 levels part way through.
    randomWalk("amd-v1", kernel, 4 * GiB, 3, 2 ** 39 - 2 * GiB);
  }
});

/** Random maps and unmaps in `[base, base + span)`, checked against {@link Oracle}. */
function randomWalk(
  iommu: IommuSetting,
  kernel: KernelSetting,
  span: number,
  startLevels: number,
  base = 0,
): void {
  const seed = seedFromEnv();
  console.log("seed", seed, iommu, kernel);
  const prng = new Prng(seed);
  const table = new IoPageTable(4, { iommu, kernel });
  const oracle = new Oracle(startLevels, table.rules.unmapFreesTables);
  const live: { fp: AreaFootprint; backing: number }[] = [];
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
      const iova = base + Math.floor(prng.int(span) / unit) * unit +
        (prng.chance(0.3) ? IO_PAGE_4K * prng.int(4) : 0);
      const size = backing === IO_PAGE_4K
        ? IO_PAGE_4K * (1 + prng.int(prng.chance(0.3) ? 4096 : 600))
        : prng.chance(0.3)
        ? IO_PAGE_1G + IO_PAGE_4K * prng.int(600)
        : IO_PAGE_4K * (1 + prng.int(4096));
      const vaddr = prng.chance(0.7) ? iova : iova + IO_PAGE_4K * prng.int(3);
      const end = iova + size;
      if (end > base + span || live.some(({ fp }) => fp.iova < end && iova < fp.end)) continue;
      const fp = table.footprint({ iova, size, vaddr }, backing);
      const after = table.tablePagesAfter([], [fp]);
      table.add(fp);
      oracle.map(iova, size, vaddr, backing);
      assert.equal(after, table.tablePages, `step ${step}: tablePagesAfter`);
      live.push({ fp, backing });
    }
    assert.equal(table.tablePages, 1 + oracle.allocated.size, `step ${step}`);
    assert.equal(table.activeLevels, oracle.levels, `step ${step}: levels`);
  }
  assert.ok(table.retainedTablePages > 0, "the walk retained table pages");
  assert.equal(table.activeLevels, 4, "the walk ends with a 4-level table");
}

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

Deno.test("IO page table: a 2 MiB-aligned iommufd unmap of 512 4 KiB entries frees the leaf table on VT-d, not on AMD v1 on 6.18 (amd/io_pgtable.c iommu_v1_unmap_pages clears PTEs only), and on AMD v1 under proposed (generic_pt __unmap_range)", () => {
  const pages = (iommu: IommuSetting, kernel: KernelSetting) => {
    const ioas = new SimIoas({ iommu, kernel });
    ioas.map(0, 0, 8 * MiB); // four leaf tables of 512 4 KiB entries, two of them inside
    const mapped = ioas.tablePages;
    ioas.unmap(0, 8 * MiB); // one call (pages.c batch) covers every leaf table's span
    return [mapped, ioas.tablePages, ioas.retainedTablePages, ioas.peakTablePages];
  };
  // VT-d: root, 512 GiB table, 1 GiB table, four leaves; the leaves go, the partial two stay.
  assert.deepEqual(pages("intel-vt-d", "linux-6.18"), [7, 3, 2, 7]);
  assert.deepEqual(pages("intel-vt-d", "proposed"), [7, 3, 2, 7]);
  // AMD v1: the 3-level root spans 512 GiB; 6.18 keeps the 1 GiB table and every leaf.
  assert.deepEqual(pages("amd-v1", "linux-6.18"), [6, 6, 5, 6]);
  assert.deepEqual(pages("amd-v1", "proposed"), [6, 2, 1, 6]);
  const type1 = new SimType1Container({ iommu: "amd-v1" });
  assert.equal(type1.iommu, "amd-v1");
  type1.map(0, 0, 4096);
  assert.equal(type1.tableBytes, 3 * 4096, "root, 1 GiB table, leaf: no 512 GiB table");
});

Deno.test("IO page table: AMD v1 starts at 3 levels (v1_alloc_pgtable: PAGE_MODE_3_LEVEL) and adds a root when a map reaches past it (increase_address_space); the old root stays as the first 512 GiB table", () => {
  const TiB = 2 ** 40;
  const amd = new IoPageTable(4, { iommu: "amd-v1" });
  const vtd = new IoPageTable(4);
  assert.equal(amd.activeLevels, 3);
  assert.equal(vtd.activeLevels, 4);
  // A 1 GiB entry below 512 GiB sits in AMD's root; VT-d needs a 512 GiB table for it.
  for (const t of [amd, vtd]) t.add(t.footprint({ iova: GiB, size: GiB, vaddr: GiB }, IO_PAGE_1G));
  assert.equal(amd.tablePages, 1);
  assert.equal(vtd.tablePages, 2);
  // 4 KiB at 1 TiB: a new root over the old (now the first 512 GiB table), then three tables.
  const far = amd.footprint({ iova: TiB, size: 4096, vaddr: TiB });
  assert.equal(amd.tablePagesAfter([], [far]), 5);
  amd.add(far);
  assert.equal(amd.activeLevels, 4);
  assert.equal(amd.tablePages, 5);
  amd.remove(far);
  assert.equal(amd.tablePages, 5, "6.18: no table goes on unmap, nor does a level");
  assert.equal(amd.activeLevels, 4);
  assert.equal(amd.retainedTablePages, 3);
  amd.dropRetained(); // the 1 GiB area is still mapped: the old root stays under the new one
  assert.equal(amd.tablePages, 2);
  // A table whose first map lies past 512 GiB still keeps the empty old root.
  const fresh = new IoPageTable(4, { iommu: "amd-v1" });
  fresh.add(fresh.footprint({ iova: TiB, size: 4096, vaddr: TiB }));
  assert.equal(fresh.tablePages, 5);
  assert.equal(fresh.retainedTablePages, 1, "the old root, which no area needs");
  // With the area still mapped, the tables it needs stay, and a table grown to reach it has
  // the first root below the new one again.
  fresh.dropRetained();
  assert.equal(fresh.tablePages, 5);
  fresh.remove(fresh.footprint({ iova: TiB, size: 4096, vaddr: TiB }));
  fresh.dropRetained(); // the domain goes: the next one starts at 3 levels
  assert.equal(fresh.activeLevels, 3);
  assert.equal(fresh.tablePages, 1);
});

Deno.test("IO page table: AMD v1 grows to 5 levels for a map past 256 TiB (amd_iommu_hpt_level 5), and a map the limit refuses grows nothing", () => {
  const ioas = new SimIoas({ iommu: "amd-v1", iovaBits: 57 });
  ioas.map(2 ** 48, 2 ** 48, 4096);
  // Root; the 3- and 4-level roots kept below it; a 256 TiB, 512 GiB, 1 GiB and leaf table.
  assert.equal(ioas.tablePages, 7);
  const small = new SimIoas({ iommu: "amd-v1", tablePageLimit: 4 });
  small.map(0, 0, 4096);
  assert.throws(
    () => small.map(2 ** 40, 2 ** 40, 4096),
    /ENOMEM.*needs 4 more IO page-table pages/,
  );
  assert.equal(small.tablePages, 3);
  small.map(8192, 8192, 4096);
  assert.equal(small.tablePages, 3, "still 3 levels: nothing grew");
});

Deno.test("IO page table: an unknown iommu is a RangeError naming the allowed ones", () => {
  const iommu = "arm-smmu-v3" as IommuSetting;
  const message = 'iommu: must be one of intel-vt-d, amd-v1, got "arm-smmu-v3"';
  assert.throws(() => new SimIoas({ iommu }), { name: "RangeError", message });
  assert.throws(() => new SimType1Container({ iommu }), { name: "RangeError", message });
  assert.throws(() => new IoPageTable(4, { iommu }), { name: "RangeError", message });
});
