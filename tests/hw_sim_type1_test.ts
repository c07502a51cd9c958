// Simulated VFIO type1 v2: one test per errno rule of docs/semantics.md, each checking
// that the failed call changed nothing, plus the 65,535-entry limit at full size.
import assert from "node:assert/strict";
import { type Errno, HwError } from "../src/hw/errors.ts";
import { errno, refuses as refusesWith } from "./helpers/errno.ts";
import { SimHost, SimType1Container } from "../src/hw/sim/mod.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";
import type { KernelSetting } from "../src/settings/kernel.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** A container with mappings [1 MiB, 2 MiB) and [4 MiB, 8 MiB), pins tracked. */
function setup(
  options: {
    dmaEntryLimit?: number;
    memlockLimit?: number;
    iovaBits?: number;
    kernel?: KernelSetting;
  } = {},
) {
  const host = new SimHost({ memlockLimit: options.memlockLimit });
  const base = host.reserve(GiB);
  const type1 = new SimType1Container({ host, ...options });
  type1.map(MiB, base + MiB, MiB);
  type1.map(4 * MiB, base + 4 * MiB, 4 * MiB);
  return { host, base, type1 };
}

function state(s: ReturnType<typeof setup>) {
  return {
    mappings: s.type1.mappings(),
    count: s.type1.mappingCount,
    remaining: s.type1.remainingEntries(),
    locked: s.type1.lockedBytes,
    pinned: s.host.pinnedBytes(),
  };
}

function refuses(s: ReturnType<typeof setup>, call: () => unknown, code: Errno, message?: RegExp) {
  refusesWith(() => state(s), call, code, message);
}

Deno.test("type1 MAP: size, iova or vaddr not 4 KiB aligned is EINVAL and changes nothing", () => {
  const s = setup();
  refuses(s, () => s.type1.map(16 * MiB, s.base, 4096 + 1), "EINVAL", /aligned/);
  refuses(s, () => s.type1.map(16 * MiB + 512, s.base, 4096), "EINVAL");
  refuses(s, () => s.type1.map(16 * MiB, s.base + 8, 4096), "EINVAL");
});

Deno.test("type1 MAP: size 0 is EINVAL and changes nothing", () => {
  const s = setup();
  refuses(s, () => s.type1.map(16 * MiB, s.base, 0), "EINVAL", /size/);
});

for (const kernel of ["linux-6.18", "proposed"] as const) {
  Deno.test(`type1 MAP on ${kernel}: a wrapping iova or vaddr range is EOVERFLOW, checked before alignment (vfio_dma_do_map since the overflow fixes of 6.18-rc4)`, () => {
    const s = setup({ kernel });
    assert.equal(s.type1.kernel, kernel);
    refuses(s, () => s.type1.map(2 ** 64 - 4096, s.base, 8192), "EOVERFLOW", /wraps/);
    refuses(s, () => s.type1.map(16 * MiB, 2 ** 64 - 4096, 8192), "EOVERFLOW", /wraps/);
    // Overflow is found even when the size is misaligned too: it comes first.
    refuses(s, () => s.type1.map(2 ** 64 - 4096, s.base, 8192 + 512), "EOVERFLOW");
    // Size 0 comes before both: EINVAL.
    refuses(s, () => s.type1.map(2 ** 64 - 4096, s.base, 0), "EINVAL");
    // Ending exactly at 2^64 does not wrap (the last byte is U64_MAX).
    const top = new SimType1Container({ kernel });
    top.map(2 ** 64 - 8192, 0, 8192);
    assert.deepEqual(top.mappings(), [{ iova: 2 ** 64 - 8192, size: 8192, vaddr: 0 }]);
  });
}

Deno.test("type1 MAP: any overlap with an existing mapping is EEXIST and changes nothing", () => {
  const s = setup();
  refuses(s, () => s.type1.map(MiB, s.base, MiB), "EEXIST"); // identical
  refuses(s, () => s.type1.map(MiB - 4096, s.base, 8192), "EEXIST"); // over the start
  refuses(s, () => s.type1.map(2 * MiB - 4096, s.base, 8192), "EEXIST"); // over the end
  refuses(s, () => s.type1.map(5 * MiB, s.base, 4096), "EEXIST"); // inside
  refuses(s, () => s.type1.map(0, s.base, 16 * MiB), "EEXIST", /overlaps/); // around both
  s.type1.map(2 * MiB, s.base, 2 * MiB); // exactly between: adjacent is fine
  assert.equal(s.type1.mappingCount, 3);
});

Deno.test("type1 MAP: with no DMA entry left under dma_entry_limit it is ENOSPC and changes nothing", () => {
  const s = setup({ dmaEntryLimit: 3 });
  s.type1.map(16 * MiB, s.base, 4096);
  assert.equal(s.type1.remainingEntries(), 0);
  refuses(s, () => s.type1.map(32 * MiB, s.base, 4096), "ENOSPC", /dma_entry_limit 3/);
  s.type1.unmap(16 * MiB, 4096);
  s.type1.map(32 * MiB, s.base, 4096);
});

Deno.test("type1 MAP: pinning beyond RLIMIT_MEMLOCK is ENOMEM and changes nothing; every container of the process charges mm->locked_vm (vfio_lock_acct)", () => {
  const s = setup({ memlockLimit: 6 * MiB });
  refuses(s, () => s.type1.map(16 * MiB, s.base, 2 * MiB), "ENOMEM", /RLIMIT_MEMLOCK/);
  s.type1.map(16 * MiB, s.base, MiB);
  assert.equal(s.type1.lockedBytes, 6 * MiB);
  assert.equal(s.host.lockedBytes("mm"), 6 * MiB);
  // A second container of the same process shares the counter: nothing is left.
  const other = new SimType1Container({ host: s.host });
  assert.throws(() => other.map(0, s.base, 4096), errno("ENOMEM", /mm->locked_vm/));
  s.type1.unmap(MiB, MiB);
  other.map(0, s.base, 4096);
  assert.equal(s.host.lockedBytes("mm"), 5 * MiB + 4096);
  assert.equal(s.host.lockedBytes("user"), 0, "type1 does not charge user->locked_vm");
});

Deno.test("type1: the IO page table behind the container follows physical contiguity", () => {
  const host = new SimHost();
  const small = host.reserve(GiB);
  const huge = host.reserve(GiB, undefined, { pageSize: 2 * MiB });
  const type1 = new SimType1Container({ host });
  type1.map(0, small, 2 * MiB); // 512 4 KiB entries: one leaf table
  assert.equal(type1.tableBytes, (1 + 1 + 1 + 1) * 4096);
  type1.map(GiB, huge, 2 * MiB); // one 2 MiB entry in a new 1 GiB table
  assert.equal(type1.tableBytes, (4 + 1) * 4096);
  type1.unmap(0, 2 * GiB);
  // vfio_unmap_unpin unmaps run by run (4 KiB, then one 2 MiB run): no call covers a
  // table's span, so every table page stays (intel/iommu.c dma_pte_clear_level).
  assert.equal(type1.tableBytes, 5 * 4096);
  assert.equal(type1.retainedTablePages, 4);
  assert.equal(type1.peakTablePages, 5);
});

Deno.test("type1 MAP: host memory that cannot be pinned is EFAULT and changes nothing", () => {
  const s = setup();
  refuses(s, () => s.type1.map(16 * MiB, 4096, 4096), "EFAULT", /not mapped/);
  refuses(s, () => s.type1.map(16 * MiB, s.base + GiB - 4096, 8192), "EFAULT");
});

Deno.test("type1 MAP: a page that cannot be pinned and RLIMIT_MEMLOCK fail in page order: EFAULT when every page before the bad one fits under the limit, else ENOMEM (drivers/vfio/vfio_iommu_type1.c vfio_pin_pages_remote)", () => {
  // Rule (Linux 6.18): vfio_pin_pages_remote pins a batch (vaddr_get_pfns, EFAULT at the first
  // page that cannot be pinned), then charges its pages to mm->locked_vm (ENOMEM past the
  // limit), so the first failure in page order wins.
  const s = setup({ memlockLimit: 6 * MiB }); // 5 MiB mapped: 1 MiB of room
  const end = s.base + GiB; // the first page past the reservation cannot be pinned
  // 1 MiB before the bad page: it all fits, so the pin fails first.
  refuses(s, () => s.type1.map(16 * MiB, end - MiB, 2 * MiB), "EFAULT", /not mapped/);
  // 1 MiB + 4 KiB before the bad page: the limit is passed first.
  refuses(s, () => s.type1.map(16 * MiB, end - MiB - 4096, 2 * MiB), "ENOMEM", /RLIMIT/);
  s.type1.map(16 * MiB, end - MiB, MiB); // no bad page, and it fits
});

Deno.test("type1 MAP: outside the IOMMU aperture (iovaBits) is EINVAL and changes nothing", () => {
  const s = setup({ iovaBits: 39 });
  refuses(s, () => s.type1.map(2 ** 39 - 4096, s.base, 8192), "EINVAL", /aperture/);
  s.type1.map(2 ** 39 - 4096, s.base, 4096);
});

Deno.test("type1 MAP: a map is all-or-nothing and pins exactly its pages", () => {
  const s = setup();
  assert.equal(s.host.pinnedBytes(), 5 * MiB);
  assert.equal(s.host.pinCount(s.base + MiB), 1);
  s.type1.map(64 * MiB, s.base + MiB, 4096); // the same host page twice: two references
  assert.equal(s.host.pinCount(s.base + MiB), 2);
  assert.equal(s.host.pinnedBytes(), 5 * MiB);
  assert.equal(s.type1.peakMappingCount, 3);
});

Deno.test("type1 UNMAP: an unaligned iova or size is EINVAL and changes nothing", () => {
  const s = setup();
  refuses(s, () => s.type1.unmap(MiB + 1, MiB), "EINVAL", /iova/);
  refuses(s, () => s.type1.unmap(MiB, MiB - 1), "EINVAL", /size/);
  refuses(s, () => s.type1.unmap(MiB, 0), "EINVAL", /size/);
});

Deno.test("type1 UNMAP: a range that bisects a mapping (holds its start or end, not both) is EINVAL and changes nothing", () => {
  const s = setup();
  refuses(s, () => s.type1.unmap(0, MiB + 4096), "EINVAL", /bisects the mapping 0x100000/);
  refuses(s, () => s.type1.unmap(MiB + 4096, MiB), "EINVAL", /bisects/);
  refuses(s, () => s.type1.unmap(5 * MiB, 4096), "EINVAL"); // inside a mapping
  refuses(s, () => s.type1.unmap(MiB, 4 * MiB), "EINVAL"); // whole first, part of second
});

Deno.test("type1 UNMAP: a range holding no mapping succeeds with 0 bytes unmapped", () => {
  const s = setup();
  const before = state(s);
  assert.equal(s.type1.unmap(2 * MiB, 2 * MiB), 0);
  assert.equal(s.type1.unmap(GiB, GiB), 0);
  assert.deepEqual(state(s), before);
});

Deno.test("type1 UNMAP: a range covering whole mappings removes them and returns their bytes", () => {
  const s = setup();
  assert.equal(s.type1.unmap(0, 16 * MiB), 5 * MiB);
  assert.equal(s.type1.mappingCount, 0);
  assert.equal(s.host.pinnedBytes(), 0);
  assert.equal(s.type1.lockedBytes, 0);
  assert.equal(s.type1.peakMappingCount, 2);
  assert.deepEqual(s.type1.stats, {
    mapCalls: 2,
    unmapCalls: 1,
    mappedBytes: 5 * MiB,
    unmappedBytes: 5 * MiB,
  });
});

Deno.test("type1 UNMAP: the ALL flag requires iova 0 and size 0 (else EINVAL) and removes everything", () => {
  const s = setup();
  refuses(s, () => s.type1.unmap(0, 4096, { all: true }), "EINVAL", /FLAG_ALL/);
  refuses(s, () => s.type1.unmap(MiB, 0, { all: true }), "EINVAL");
  assert.equal(s.type1.unmap(0, 0, { all: true }), 5 * MiB);
  assert.deepEqual(s.type1.mappings(), []);
  assert.equal(s.host.pinnedBytes(), 0);
  assert.equal(s.type1.unmap(0, 0, { all: true }), 0);
});

Deno.test("type1: bad argument types are programming errors naming the argument", () => {
  const type1 = new SimType1Container();
  assert.throws(() => type1.map(-4096, 0, 4096), /iova must be a u64.*-4096/);
  assert.throws(() => type1.map(0, 0.5, 4096), /vaddr must be an integer, got 0.5/);
  assert.throws(() => new SimType1Container({ dmaEntryLimit: -1 }), /dmaEntryLimit/);
  assert.equal(type1.mappingCount, 0);
});

Deno.test("type1: 65,535 single-page mappings fill the default limit; the next is ENOSPC", () => {
  const host = new SimHost();
  const base = host.reserve(GiB);
  const type1 = new SimType1Container({ host });
  assert.equal(type1.dmaEntryLimit, 65535);
  for (let i = 0; i < 65535; i++) type1.map(i * 8192, base + i * 4096, 4096);
  assert.equal(type1.remainingEntries(), 0);
  assert.throws(() => type1.map(2 ** 40, base, 4096), errno("ENOSPC"));
  assert.equal(host.pinnedBytes(), 65535 * 4096);
  assert.equal(type1.unmap(0, 65535 * 8192), 65535 * 4096);
  assert.equal(type1.peakMappingCount, 65535);
  assert.equal(host.pinnedBytes(), 0);
});

Deno.test("type1: random map/unmap agree with a linear-scan oracle, errno for errno", () => {
  const seed = seedFromEnv();
  console.log("seed", seed);
  const prng = new Prng(seed);
  const limit = 40;
  const type1 = new SimType1Container({ dmaEntryLimit: limit });
  let oracle: { iova: number; size: number; vaddr: number }[] = [];
  const page = 4096;
  for (let step = 0; step < 2000; step++) {
    const iova = prng.int(512) * page;
    const size = (1 + prng.int(16)) * page;
    const end = iova + size;
    let expected: Errno | number;
    let actual: Errno | number;
    const attempt = (call: () => number | void) => {
      try {
        const r = call();
        return typeof r === "number" ? r : 0;
      } catch (e) {
        assert.ok(e instanceof HwError, String(e));
        return e.errno;
      }
    };
    if (prng.chance(0.5)) {
      if (oracle.some((m) => m.iova < end && iova < m.iova + m.size)) expected = "EEXIST";
      else if (oracle.length >= limit) expected = "ENOSPC";
      else {
        oracle.push({ iova, size, vaddr: iova });
        oracle.sort((a, b) => a.iova - b.iova);
        expected = 0;
      }
      actual = attempt(() => type1.map(iova, iova, size));
    } else {
      const bisected = oracle.some((m) =>
        (m.iova < iova && iova < m.iova + m.size) || (m.iova < end && end < m.iova + m.size)
      );
      if (bisected) expected = "EINVAL";
      else {
        const gone = oracle.filter((m) => m.iova >= iova && m.iova < end);
        expected = gone.reduce((a, m) => a + m.size, 0);
        oracle = oracle.filter((m) => !gone.includes(m));
      }
      actual = attempt(() => type1.unmap(iova, size));
    }
    assert.equal(actual, expected, `step ${step}`);
    assert.deepEqual(type1.mappings(), oracle, `step ${step}`);
  }
});
