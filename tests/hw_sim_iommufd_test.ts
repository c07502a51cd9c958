// Simulated iommufd IOAS: one test per errno rule of docs/semantics.md (MAP, UNMAP,
// cut_mapping), the IO page-table accounting, and a seeded differential test of
// the closed-form page-table model against a page-by-page walk.
import assert from "node:assert/strict";
import { type Errno, HwError } from "../src/hw/errors.ts";
import { errno, refuses as refusesWith } from "./helpers/errno.ts";
import {
  FaultInjector,
  IO_PAGE_1G,
  IO_PAGE_2M,
  IO_PAGE_4K,
  SimHost,
  SimIoas,
  type SimIoasOptions,
  U64_MAX,
} from "../src/hw/sim/mod.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/**
 * Areas [1 GiB, +1 GiB) (1 GiB entry) and [2 GiB + 4 MiB, +2 MiB) with pins,
 * on 1 GiB hugetlb backing and the proposed kernel (cut_mapping).
 */
function setup(options: SimIoasOptions = {}) {
  const host = new SimHost();
  const base = host.reserve(16 * GiB, undefined, { pageSize: GiB }); // 1 GiB aligned
  const ioas = new SimIoas({ host, kernel: "proposed", ...options });
  ioas.map(GiB, base + GiB, GiB);
  ioas.map(2 * GiB + 4 * MiB, base + 2 * GiB + 4 * MiB, 2 * MiB);
  return { host, base, ioas };
}

function state(s: ReturnType<typeof setup>) {
  return {
    areas: s.ioas.areas(),
    tablePages: s.ioas.tablePages,
    entries: s.ioas.entryCounts(),
    pinned: s.host.pinnedBytes(),
  };
}

function refuses(s: ReturnType<typeof setup>, call: () => unknown, code: Errno, message?: RegExp) {
  refusesWith(() => state(s), call, code, message);
}

// --- MAP -------------------------------------------------------------------------------------

Deno.test("iommufd MAP: iova, vaddr or size not 4 KiB aligned (or size 0) is EINVAL and changes nothing", () => {
  const s = setup();
  refuses(s, () => s.ioas.map(8 * GiB + 1, s.base, 4096), "EINVAL", /aligned/);
  refuses(s, () => s.ioas.map(8 * GiB, s.base + 1, 4096), "EINVAL");
  refuses(s, () => s.ioas.map(8 * GiB, s.base, 4095), "EINVAL");
  refuses(s, () => s.ioas.map(8 * GiB, s.base, 0), "EINVAL", /size/);
});

Deno.test("iommufd MAP: overlap with an existing area is EEXIST and changes nothing", () => {
  const s = setup();
  refuses(s, () => s.ioas.map(GiB - 4096, s.base, 8192), "EEXIST", /overlaps the area/);
  refuses(s, () => s.ioas.map(2 * GiB - 4096, s.base, 4096), "EEXIST");
  refuses(s, () => s.ioas.map(0, s.base, 4 * GiB), "EEXIST");
  s.ioas.map(2 * GiB, s.base + 2 * GiB, 4 * MiB); // adjacent on both sides
  assert.equal(s.ioas.areaCount, 3);
});

Deno.test("iommufd MAP: an iova or vaddr range that overflows is EOVERFLOW and changes nothing", () => {
  const s = setup();
  refuses(s, () => s.ioas.map(2 ** 64 - 4096, s.base, 8192), "EOVERFLOW");
  refuses(s, () => s.ioas.map(8 * GiB, 2 ** 64 - 4096, 8192), "EOVERFLOW");
  refuses(s, () => s.ioas.map(0, s.base, U64_MAX), "EOVERFLOW", /U64_MAX/);
});

Deno.test("iommufd MAP: touching a reserved range is EINVAL and changes nothing", () => {
  const s = setup({ reserved: [{ iova: 0xfee00000, size: MiB }] }); // the x86 MSI window
  refuses(s, () => s.ioas.map(0xfee00000 - 4096, s.base, 8192), "EINVAL", /reserved/);
  refuses(s, () => s.ioas.map(0xfe000000, s.base, 16 * MiB), "EINVAL", /reserved/);
  s.ioas.map(0xfee00000 + MiB, s.base, 4096);
});

Deno.test("iommufd MAP: beyond the page table's IOVA space is EINVAL and changes nothing", () => {
  const s = setup();
  refuses(s, () => s.ioas.map(2 ** 48 - 4096, s.base, 8192), "EINVAL", /48-bit/);
  const wide = new SimIoas({ iovaBits: 57 });
  wide.map(2 ** 50, 0, 4096); // 5-level table
  assert.equal(wide.tablePages, 1 + 4); // root, then one table per level below it
});

Deno.test("iommufd MAP: needing more table pages than the limit is ENOMEM and changes nothing", () => {
  const s = setup({ tablePageLimit: 4 });
  assert.equal(s.ioas.tablePages, 3); // root + one 512 GiB table + one 1 GiB table (2 MiB entries)
  refuses(s, () => s.ioas.map(8 * GiB + 4096, s.base, 4096), "ENOMEM", /page-table pages/);
  s.ioas.map(2 * GiB + 8 * MiB, s.base, 2 * MiB); // same 1 GiB table: no new page
});

// --- MAP: the order of the rules (Linux 6.18, drivers/iommu/iommufd/) ------------------------
// A call that breaks two rules gets the errno of the rule the kernel checks first; each
// test breaks a pair whose order shows in the errno.

Deno.test("ioas.map: a misaligned vaddr over an existing area is EEXIST (io_pagetable.c iopt_insert_area checks vaddr alignment after iopt_check_iova's overlap check)", () => {
  const s = setup();
  refuses(s, () => s.ioas.map(GiB, s.base + 1, 4096), "EEXIST", /overlaps the area/);
});

Deno.test("ioas.map: a wrapping iova with a misaligned vaddr is EOVERFLOW (io_pagetable.c iopt_check_iova checks the wrap before iopt_insert_area checks vaddr alignment)", () => {
  const s = setup();
  refuses(s, () => s.ioas.map(2 ** 64 - 4096, s.base + 1, 8192), "EOVERFLOW", /iova .* wraps/);
});

Deno.test("ioas.map: a wrapping vaddr with a misaligned iova is EOVERFLOW (pages.c iopt_alloc_user_pages checks the wrap before io_pagetable.c iopt_check_iova checks the iova)", () => {
  const s = setup();
  refuses(s, () => s.ioas.map(8 * GiB + 1, 2 ** 64 - 4096, 8192), "EOVERFLOW", /vaddr .* 2\^64/);
});

Deno.test("ioas.map: a wrapping vaddr with a misaligned size is EOVERFLOW (pages.c iopt_alloc_user_pages checks the wrap before io_pagetable.c iopt_alloc_area_pages checks the size)", () => {
  const s = setup();
  refuses(s, () => s.ioas.map(8 * GiB, 2 ** 64 - 4096, 10240), "EOVERFLOW", /vaddr/);
});

Deno.test("ioas.map: a misaligned vaddr whose range wraps is EOVERFLOW (pages.c iopt_alloc_user_pages checks the wrap before io_pagetable.c iopt_insert_area checks alignment)", () => {
  const s = setup();
  refuses(s, () => s.ioas.map(8 * GiB, 2 ** 64 - 2048, 4096), "EOVERFLOW", /vaddr/);
});

Deno.test("ioas.map: a vaddr range ending exactly at 2^64 is EOVERFLOW (pages.c iopt_alloc_user_pages adds vaddr + size, not size - 1)", () => {
  const s = setup();
  refuses(s, () => s.ioas.map(8 * GiB, 2 ** 64 - 4096, 4096), "EOVERFLOW", /reaches 2\^64/);
  refuses(s, () => s.ioas.map(8 * GiB, U64_MAX, 4096), "EOVERFLOW");
});

Deno.test("ioas.map: a size above SIZE_MAX - PAGE_SIZE with a wrapping iova is EINVAL (pages.c iopt_alloc_pages checks the size before io_pagetable.c iopt_check_iova checks the wrap)", () => {
  const s = setup();
  refuses(s, () => s.ioas.map(8192, 0, 2 ** 64 - 4096), "EINVAL", /SIZE_MAX - PAGE_SIZE/);
});

Deno.test("ioas.map: a size above SIZE_MAX - PAGE_SIZE with a wrapping vaddr is EOVERFLOW (pages.c iopt_alloc_user_pages checks the wrap before iopt_alloc_pages checks the size, since 6.13)", () => {
  const s = setup();
  refuses(s, () => s.ioas.map(0, 8192, 2 ** 64 - 4096), "EOVERFLOW", /vaddr/);
});

Deno.test("ioas.map: host memory that cannot be pinned, past RLIMIT_MEMLOCK, is EFAULT (pages.c iopt_area_fill_domains pins before pfn_reader_update_pinned charges locked memory)", () => {
  const host = new SimHost({ memlockLimit: 8 * MiB });
  const base = host.reserve(64 * MiB);
  const ioas = new SimIoas({ host });
  refusesWith(
    () => ({ areas: ioas.areas(), pinned: host.pinnedBytes(), locked: host.lockedBytes("user") }),
    () => ioas.map(0, base + 64 * MiB, 16 * MiB), // past the reservation: not mapped
    "EFAULT",
    /not mapped in the host/,
  );
  assert.throws(() => ioas.map(0, base, 16 * MiB), errno("ENOMEM", /RLIMIT_MEMLOCK/));
  assert.equal(host.pinnedBytes(), 0);
});

Deno.test("ioas.map: host memory that cannot be pinned, past tablePageLimit, is EFAULT (pages.c iopt_area_fill_domains pins a pfn batch before batch_to_domain maps it)", () => {
  const s = setup({ tablePageLimit: 4 });
  refuses(s, () => s.ioas.map(8 * GiB + 4096, s.base + 16 * GiB, 4096), "EFAULT");
  refuses(s, () => s.ioas.map(8 * GiB + 4096, s.base, 4096), "ENOMEM", /page-table pages/);
});

// --- UNMAP -----------------------------------------------------------------------------------

Deno.test("iommufd UNMAP: cutting through an area is ENOENT and changes nothing when it is the first", () => {
  const s = setup();
  refuses(s, () => s.ioas.unmap(GiB + 4096, GiB), "ENOENT", /cuts through the area 0x40000000/);
  refuses(s, () => s.ioas.unmap(0, GiB + 4096), "ENOENT");
});

Deno.test("iommufd UNMAP: cutting through a later area is ENOENT but areas already removed by the call stay removed", () => {
  const s = setup();
  assert.throws(
    () => s.ioas.unmap(GiB, GiB + 5 * MiB),
    errno("ENOENT", /stay unmapped/),
  );
  assert.deepEqual(s.ioas.areas(), [{
    iova: 2 * GiB + 4 * MiB,
    size: 2 * MiB,
    vaddr: s.base + 2 * GiB + 4 * MiB,
  }]);
  assert.equal(s.host.pinnedBytes(), 2 * MiB);
});

Deno.test("iommufd UNMAP: an empty range is ENOENT natively and changes nothing", () => {
  const s = setup();
  refuses(s, () => s.ioas.unmap(4 * GiB, GiB), "ENOENT", /no area/);
  refuses(s, () => s.ioas.unmap(0, 4096), "ENOENT");
});

Deno.test("iommufd UNMAP: an empty range succeeds with 0 bytes on the type1-compat interface", () => {
  const s = setup({ compat: "type1" });
  const before = state(s);
  assert.equal(s.ioas.unmap(4 * GiB, GiB), 0);
  assert.deepEqual(state(s), before);
  refuses(s, () => s.ioas.unmap(GiB + 4096, 4096), "ENOENT"); // cutting is still ENOENT
});

Deno.test("iommufd UNMAP: size 0 is EINVAL, wrapping or U64_MAX values are EOVERFLOW", () => {
  const s = setup();
  refuses(s, () => s.ioas.unmap(GiB, 0), "EINVAL");
  refuses(s, () => s.ioas.unmap(2 ** 64 - 4096, 8192), "EOVERFLOW");
  refuses(s, () => s.ioas.unmap(4096, U64_MAX), "EOVERFLOW");
});

Deno.test("iommufd UNMAP: iova 0 with size U64_MAX unmaps everything, and succeeds when empty", () => {
  const s = setup();
  assert.equal(s.ioas.unmap(0, U64_MAX), GiB + 2 * MiB);
  assert.equal(s.ioas.areaCount, 0);
  // No call covered the 512 GiB table's or the 2 MiB area's 1 GiB table's span: they stay
  // (intel/iommu.c dma_pte_clear_level, generic_pt/iommu_pt.h __unmap_range).
  assert.equal(s.ioas.tablePages, 3);
  assert.equal(s.ioas.retainedTablePages, 2);
  assert.deepEqual(s.ioas.entryCounts(), { entries4k: 0, entries2m: 0, entries1g: 0 });
  assert.equal(s.host.pinnedBytes(), 0);
  assert.equal(s.ioas.unmap(0, 2 ** 64 - 1), 0);
  assert.equal(s.ioas.peakAreaCount, 2);
});

Deno.test("iommufd UNMAP: whole areas inside the range are removed and their bytes returned", () => {
  const s = setup();
  assert.equal(s.ioas.unmap(GiB, GiB), GiB);
  assert.equal(s.ioas.unmap(2 * GiB, GiB), 2 * MiB);
  assert.equal(s.ioas.stats.unmappedBytes, GiB + 2 * MiB);
});

// --- cut_mapping -----------------------------------------------------------------------------

Deno.test("iommufd cut_mapping: an unaligned iova is EINVAL and changes nothing", () => {
  const s = setup();
  refuses(s, () => s.ioas.cutMapping(GiB + 100), "EINVAL", /aligned/);
});

Deno.test("iommufd cut_mapping: nothing mapped at the cut is ENOENT and changes nothing", () => {
  const s = setup();
  refuses(s, () => s.ioas.cutMapping(0), "ENOENT");
  refuses(s, () => s.ioas.cutMapping(2 * GiB + 4096), "ENOENT", /nothing is mapped/);
});

Deno.test("iommufd cut_mapping: at an existing area boundary it succeeds and changes nothing", () => {
  const s = setup();
  const before = state(s);
  s.ioas.cutMapping(GiB); // start of an area
  s.ioas.cutMapping(2 * GiB); // end of an area, nothing after it
  assert.deepEqual(state(s), before);
  assert.equal(s.ioas.stats.cuts, 0);
});

Deno.test("iommufd cut_mapping: splitting a 1 GiB entry allocates a 2 MiB-entry table and a 4 KiB-entry table", () => {
  const s = setup();
  const beforePages = s.ioas.tablePages;
  assert.deepEqual(s.ioas.entryCounts(), { entries4k: 0, entries2m: 1, entries1g: 1 });
  s.ioas.cutMapping(GiB + 4096);
  assert.deepEqual(s.ioas.areas().slice(0, 2), [
    { iova: GiB, size: 4096, vaddr: s.base + GiB },
    { iova: GiB + 4096, size: GiB - 4096, vaddr: s.base + GiB + 4096 },
  ]);
  // The 1 GiB entry became 511 2 MiB entries and 512 4 KiB entries.
  assert.deepEqual(s.ioas.entryCounts(), { entries4k: 512, entries2m: 1 + 511, entries1g: 0 });
  assert.equal(s.ioas.tablePages, beforePages + 2);
  assert.equal(s.ioas.stats.entrySplits, 1);
  // A second cut inside the same 2 MiB region needs no new table page.
  s.ioas.cutMapping(GiB + 8192);
  assert.equal(s.ioas.tablePages, beforePages + 2);
  // A cut at a 2 MiB boundary splits only the area, no entry.
  s.ioas.cutMapping(GiB + 4 * MiB);
  assert.equal(s.ioas.tablePages, beforePages + 2);
  assert.equal(s.ioas.stats.entrySplits, 1);
  assert.equal(s.ioas.stats.cuts, 3);
  assert.equal(s.ioas.areaCount, 5);
  assert.equal(s.ioas.peakAreaCount, 5);
  // The pins are unchanged by cutting; unmapping the pieces releases everything.
  assert.equal(s.host.pinnedBytes(), GiB + 2 * MiB);
  assert.equal(s.ioas.unmap(GiB, GiB), GiB);
  // The two tables the cuts made stay: no single unmap call covered their spans.
  assert.equal(s.ioas.tablePages, 5);
  assert.equal(s.ioas.retainedTablePages, 2);
});

Deno.test("iommufd cut_mapping: a format that cannot split is EOPNOTSUPP when an entry crosses the cut", () => {
  const s = setup({ splittable: false });
  refuses(s, () => s.ioas.cutMapping(GiB + 4096), "EOPNOTSUPP");
  const flat = new SimIoas({ splittable: false, kernel: "proposed" });
  flat.map(0, 4096, 64 * 4096); // vaddr congruent to 4 KiB only: all 4 KiB entries
  flat.cutMapping(16 * 4096); // no entry crosses: the area split is bookkeeping
  assert.equal(flat.areaCount, 2);
});

Deno.test("iommufd cut_mapping: a table page allocation beyond the limit is ENOMEM and changes nothing", () => {
  const s = setup({ tablePageLimit: 4 });
  refuses(s, () => s.ioas.cutMapping(GiB + 4096), "ENOMEM");
  s.ioas.cutMapping(GiB + 2 * MiB); // one 2 MiB-entry table page fits
  assert.equal(s.ioas.tablePages, 4);
});

Deno.test("iommufd cut_mapping: an injected allocation failure changes nothing", () => {
  const faults = new FaultInjector();
  const s = setup({ faults });
  faults.failNth("ioas.cutMapping", 1, "ENOMEM");
  const before = state(s);
  assert.throws(() => s.ioas.cutMapping(GiB + 4096), (e) => {
    assert.ok(e instanceof HwError && e.errno === "ENOMEM" && e.injected);
    return true;
  });
  assert.deepEqual(state(s), before);
});

// --- page-table model ------------------------------------------------------------------------

Deno.test("iommufd page table: entry sizes follow iova AND vaddr alignment", () => {
  const ioas = new SimIoas({ backingPageSize: IO_PAGE_1G }); // vaddrs stand for 1 GiB pages
  ioas.map(0, 2 * MiB, GiB); // congruent mod 2 MiB only: 512 2 MiB entries
  assert.deepEqual(ioas.entryCounts(), { entries4k: 0, entries2m: 512, entries1g: 0 });
  ioas.map(GiB, GiB + 4096, 4 * MiB); // congruent mod 4 KiB only
  assert.deepEqual(ioas.entryCounts(), { entries4k: 1024, entries2m: 512, entries1g: 0 });
  // root + 512 GiB table + 2 tables of 2 MiB entries + 2 tables of 4 KiB entries
  assert.equal(ioas.tablePages, 6);
  ioas.map(4 * GiB - 4096, 4 * GiB - 4096, GiB + 8192); // 1 GiB entry with a 4 KiB page on each side
  assert.deepEqual(ioas.entryCounts(), { entries4k: 1026, entries2m: 512, entries1g: 1 });
});

/** Page-by-page reference for one area: walk it with the largest fitting aligned entry. */
function walkArea(a: { iova: number; size: number; vaddr: number }) {
  const counts = { entries4k: 0, entries2m: 0, entries1g: 0 };
  const tables = new Set<string>();
  const regions = [IO_PAGE_2M, IO_PAGE_1G, 2 ** 39];
  let p = a.iova;
  const end = a.iova + a.size;
  while (p < end) {
    const v = a.vaddr + (p - a.iova);
    const s = [IO_PAGE_1G, IO_PAGE_2M, IO_PAGE_4K].find((s) =>
      p % s === 0 && v % s === 0 && p + s <= end
    )!;
    if (s === IO_PAGE_1G) counts.entries1g++;
    else if (s === IO_PAGE_2M) counts.entries2m++;
    else counts.entries4k++;
    regions.forEach((r, level) => {
      if (r > s) tables.add(`${level}:${Math.floor(p / r)}`);
    });
    p += s;
  }
  return { counts, tables };
}

/** The reference totals for a set of areas (areas never change, so walks are cached). */
function bruteForce(
  areas: { iova: number; size: number; vaddr: number }[],
  cache: Map<string, ReturnType<typeof walkArea>>,
) {
  const counts = { entries4k: 0, entries2m: 0, entries1g: 0 };
  const tables = new Set<string>();
  for (const a of areas) {
    const key = `${a.iova}:${a.size}:${a.vaddr}`;
    let walked = cache.get(key);
    if (walked === undefined) cache.set(key, walked = walkArea(a));
    counts.entries4k += walked.counts.entries4k;
    counts.entries2m += walked.counts.entries2m;
    counts.entries1g += walked.counts.entries1g;
    for (const t of walked.tables) tables.add(t);
  }
  return { counts, tablePages: 1 + tables.size };
}

Deno.test("iommufd page table: closed-form accounting equals a page-by-page walk under random map/cut/unmap", () => {
  const seed = seedFromEnv();
  console.log("seed", seed);
  const prng = new Prng(seed);
  const ioas = new SimIoas({ compat: "type1", kernel: "proposed", backingPageSize: IO_PAGE_1G });
  const span = 8 * GiB;
  const units = [IO_PAGE_4K, IO_PAGE_2M, IO_PAGE_1G];
  const cache = new Map<string, ReturnType<typeof walkArea>>();
  for (let step = 0; step < 300; step++) {
    const roll = prng.next();
    const unit = prng.pick(units);
    const iova = Math.floor(prng.int(span) / unit) * unit +
      (prng.chance(0.3) ? IO_PAGE_4K * prng.int(4) : 0);
    try {
      if (roll < 0.5) {
        const size = prng.chance(0.2)
          ? IO_PAGE_1G + IO_PAGE_4K * prng.int(600)
          : IO_PAGE_4K * (1 + prng.int(1200));
        const vaddr = prng.chance(0.7) ? iova : iova + IO_PAGE_4K * prng.int(3);
        ioas.map(iova, vaddr, size);
      } else if (roll < 0.85) {
        // Mostly cut inside a live area (a random iova rarely hits one), sometimes anywhere.
        const areas = ioas.areas();
        if (areas.length > 0 && prng.chance(0.8)) {
          const a = prng.pick(areas);
          ioas.cutMapping(a.iova + IO_PAGE_4K * prng.int(a.size / IO_PAGE_4K));
        } else {
          ioas.cutMapping(iova);
        }
      } else {
        ioas.unmap(iova, IO_PAGE_4K * (1 + prng.int(2 ** 19)));
      }
    } catch (e) {
      assert.ok(e instanceof HwError, `step ${step}: ${e}`);
    }
    const expected = bruteForce(ioas.areas(), cache);
    assert.deepEqual(ioas.entryCounts(), expected.counts, `step ${step}`);
    // The pages live areas need (retained ones: tests/hw_io_page_table_test.ts).
    assert.equal(ioas.tablePages - ioas.retainedTablePages, expected.tablePages, `step ${step}`);
  }
  console.log("stats", JSON.stringify(ioas.stats), "areas", ioas.areaCount);
  assert.ok(ioas.stats.mapCalls > 20 && ioas.stats.cuts > 5, "the walk exercised maps and cuts");
});

Deno.test("iommufd: thousands of areas in a 1 TiB space stay cheap and consistent", () => {
  const host = new SimHost();
  const base = host.reserve(2 ** 40, undefined, { pageSize: 2 * MiB }); // 2 MiB THP / hugetlb
  const ioas = new SimIoas({ host, kernel: "proposed" });
  const stride = 256 * MiB;
  for (let i = 0; i < 4096; i++) ioas.map(i * stride, base + i * stride, 128 * MiB);
  for (let i = 0; i < 4096; i++) ioas.cutMapping(i * stride + 64 * MiB + 4096);
  assert.equal(ioas.areaCount, 8192);
  assert.deepEqual(ioas.entryCounts(), {
    entries4k: 4096 * 512,
    entries2m: 4096 * (32 + 31),
    entries1g: 0,
  });
  assert.equal(ioas.unmap(0, U64_MAX), 4096 * 128 * MiB);
  // Each area is one unmap call (2 MiB runs, pages.c batches up to 5461 of them); the
  // leaf table at each cut and every 1 GiB and 512 GiB table are only partly covered.
  assert.equal(ioas.tablePages, 1 + 4096 + 1024 + 2); // 1 TiB spans two 512 GiB tables
  assert.equal(host.pinnedBytes(), 0);
});

// --- kernel setting, physical contiguity, locked memory ------------------------------------

Deno.test("iommufd cut_mapping on linux-6.18 is EOPNOTSUPP: it is only in the proposed series", () => {
  const s = setup({ kernel: "linux-6.18" });
  assert.equal(s.ioas.cutMappingSupported, false);
  refuses(s, () => s.ioas.cutMapping(GiB + 4096), "EOPNOTSUPP", /not in linux-6.18/);
  assert.equal(setup().ioas.cutMappingSupported, true);
});

Deno.test("IO page-table cost follows physical contiguity (drivers/iommu/iommu.c iommu_pgsize): 1 GiB on 4 KiB folios is 262144 IOPTEs in 515 table pages", () => {
  const cost = (pageSize: number) => {
    const host = new SimHost();
    const base = host.reserve(4 * GiB, undefined, { pageSize }); // 1 GiB aligned either way
    const ioas = new SimIoas({ host });
    ioas.map(GiB, base + GiB, GiB);
    return { entries: ioas.entryCounts(), tablePages: ioas.tablePages, bytes: ioas.tableBytes };
  };
  // shmem / memfd folios: every entry 4 KiB although iova and vaddr are 1 GiB aligned.
  assert.deepEqual(cost(4096), {
    entries: { entries4k: 262144, entries2m: 0, entries1g: 0 },
    tablePages: 512 + 1 + 1 + 1, // leaf tables, one per level above, root
    bytes: 515 * 4096,
  });
  // 2 MiB THP / hugetlb: 512 2 MiB entries; 1 GiB hugetlb: one 1 GiB entry.
  assert.deepEqual(cost(2 * MiB).entries, { entries4k: 0, entries2m: 512, entries1g: 0 });
  assert.equal(cost(2 * MiB).tablePages, 3);
  assert.deepEqual(cost(GiB).entries, { entries4k: 0, entries2m: 0, entries1g: 1 });
  assert.equal(cost(GiB).tablePages, 2);
});

Deno.test("iommufd pins charge the user's locked memory (drivers/iommu/iommufd/pages.c incr_user_locked_vm): ENOMEM past RLIMIT_MEMLOCK, nothing changes", () => {
  const host = new SimHost({ memlockLimit: 8 * MiB });
  const base = host.reserve(64 * MiB);
  const a = new SimIoas({ host });
  const b = new SimIoas({ host });
  a.map(0, base, 4 * MiB);
  b.map(0, base + 4 * MiB, 4 * MiB); // a second IOAS charges the same counter
  assert.equal(host.lockedBytes("user"), 8 * MiB);
  assert.equal(host.lockedBytes("mm"), 0, "native iommufd does not charge mm->locked_vm");
  assert.throws(() => b.map(8 * MiB, base + 8 * MiB, 4096), errno("ENOMEM", /user->locked_vm/));
  assert.equal(b.areaCount, 1);
  assert.equal(host.pinnedBytes(), 8 * MiB);
  a.unmap(0, 4 * MiB);
  assert.equal(host.lockedBytes("user"), 4 * MiB);
  b.map(8 * MiB, base + 8 * MiB, 4096);
  // The VFIO compat path charges mm->locked_vm, as type1 does.
  const compat = new SimIoas({ host, compat: "type1" });
  compat.map(0, base + 16 * MiB, 4096);
  assert.equal(host.lockedBytes("mm"), 4096);
});
