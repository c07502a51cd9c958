// The simulated kernels' limits at their exact edge: the last thing that fits
// is accepted and the first that does not is refused, with the kernel's errno,
// changing nothing.
import assert from "node:assert/strict";
import type { MemslotSpec } from "../src/hw/backend.ts";
import { KVM_USER_MEM_SLOTS, SimKvm, SimType1Container } from "../src/hw/sim/mod.ts";
import { errno, refuses } from "./helpers/errno.ts";

const PAGE = 4096;

Deno.test("limits: type1 without a host pins up to RLIMIT_MEMLOCK exactly; one page more is ENOMEM", () => {
  const type1 = new SimType1Container({ memlockLimit: 3 * PAGE });
  type1.map(0, 0x10000, 2 * PAGE);
  type1.map(2 * PAGE, 0x20000, PAGE); // exactly at the limit
  assert.equal(type1.lockedBytes, 3 * PAGE);
  refuses(() => type1.mappings(), () => type1.map(8 * PAGE, 0x30000, PAGE), "ENOMEM", /MEMLOCK/);
  type1.unmap(0, 2 * PAGE);
  type1.map(8 * PAGE, 0x30000, 2 * PAGE); // room again
  assert.equal(type1.lockedBytes, 3 * PAGE);
});

Deno.test("limits: type1 holds dma_entry_limit mappings exactly; the next is ENOSPC", () => {
  const type1 = new SimType1Container({ dmaEntryLimit: 3 });
  for (let i = 0; i < 3; i++) type1.map(i * PAGE, i * PAGE, PAGE);
  assert.equal(type1.remainingEntries(), 0);
  refuses(() => type1.mappings(), () => type1.map(16 * PAGE, 16 * PAGE, PAGE), "ENOSPC");
  // EEXIST comes first (vfio_dma_do_map checks the overlap before dma_avail).
  assert.throws(() => type1.map(0, 0, PAGE), errno("EEXIST"));
});

function memslot(over: Partial<MemslotSpec>): MemslotSpec {
  return {
    slot: 0,
    flags: 0,
    guestPhysAddr: 0,
    memorySize: 16 * PAGE,
    userspaceAddr: 2 ** 32,
    guestMemfdOffset: 0,
    ...over,
  };
}

Deno.test("limits: a memslot of KVM_MEM_MAX_NR_PAGES pages is accepted; one page more is EINVAL", () => {
  const kvm = new SimKvm();
  const most = 2 ** 31 - 1; // KVM_MEM_MAX_NR_PAGES
  kvm.setUserMemoryRegion2(memslot({ memorySize: most * PAGE }));
  assert.equal(kvm.memslots()[0].memorySize, most * PAGE);
  refuses(
    () => kvm.memslots(),
    () =>
      kvm.setUserMemoryRegion2(
        memslot({ slot: 1, guestPhysAddr: 2 ** 44, memorySize: (most + 1) * PAGE }),
      ),
    "EINVAL",
    /exceeds/,
  );
});

Deno.test("limits: memslot ids run to KVM_USER_MEM_SLOTS - 1 in each address space", () => {
  const kvm = new SimKvm({ privateMemory: false }); // the SMM space exists without private memory
  kvm.setUserMemoryRegion2(memslot({ slot: KVM_USER_MEM_SLOTS - 1 }));
  kvm.setUserMemoryRegion2(memslot({ slot: 65536 + KVM_USER_MEM_SLOTS - 1 })); // SMM space
  refuses(
    () => kvm.memslots(),
    () => kvm.setUserMemoryRegion2(memslot({ slot: KVM_USER_MEM_SLOTS, guestPhysAddr: 2 ** 40 })),
    "EINVAL",
    /out of range/,
  );
});
