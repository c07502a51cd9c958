// Simulated KVM: memory attributes, memslots, guest_memfd and memfd rules, one
// test per errno rule of docs/semantics.md, each also checking that a failed call
// changes nothing.
import assert from "node:assert/strict";
import { type Errno, HwError } from "../src/hw/errors.ts";
import { errno, refuses } from "./helpers/errno.ts";
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  GUEST_MEMFD_FLAG_INIT_SHARED,
  GUEST_MEMFD_FLAG_MMAP,
  KVM_MEM_GUEST_MEMFD,
  KVM_MEMORY_ATTRIBUTE_PRIVATE as PRIVATE,
  type MemslotSpec,
} from "../src/hw/backend.ts";
import {
  FaultInjector,
  KVM_MEM_LOG_DIRTY_PAGES,
  KVM_MEM_READONLY,
  KVM_USER_MEM_SLOTS,
  type SimGuestMemfd,
  SimHost,
  SimIoas,
  SimKvm,
  SimMemoryAttributes,
  SimMemoryFile,
  SimType1Container,
} from "../src/hw/sim/mod.ts";
import { createRegionBacking, defaultGuestMemfdFlags } from "../src/hw/region_backing.ts";

const KiB = 1024;
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const MMAP_SHARED = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;

const attributeRuns = (kvm: SimKvm) => [...kvm.attributes.runs()];

/** Runs `call`, expects `code`, and checks the attribute table did not move. */
function refusesAttributes(kvm: SimKvm, call: () => unknown, code: Errno): void {
  const before = attributeRuns(kvm);
  const privateBefore = kvm.attributes.privateBytes();
  assert.throws(call, errno(code));
  assert.deepEqual(attributeRuns(kvm), before);
  assert.equal(kvm.attributes.privateBytes(), privateBefore);
}

function vmWithPrivateMiddle(): SimKvm {
  const kvm = new SimKvm();
  kvm.setMemoryAttributes(MiB, MiB, PRIVATE);
  return kvm;
}

// --- KVM_SET_MEMORY_ATTRIBUTES ---------------------------------------------------------------

Deno.test("kvm SET_MEMORY_ATTRIBUTES: unaligned address or size is EINVAL and changes nothing", () => {
  const kvm = vmWithPrivateMiddle();
  refusesAttributes(kvm, () => kvm.setMemoryAttributes(4096 + 1, 4096, PRIVATE), "EINVAL");
  refusesAttributes(kvm, () => kvm.setMemoryAttributes(0, 4096 + 512, PRIVATE), "EINVAL");
  refusesAttributes(kvm, () => kvm.setMemoryAttributes(2 * MiB, 2 * KiB, 0), "EINVAL");
});

Deno.test("kvm SET_MEMORY_ATTRIBUTES: size 0 is EINVAL and changes nothing", () => {
  const kvm = vmWithPrivateMiddle();
  refusesAttributes(kvm, () => kvm.setMemoryAttributes(MiB, 0, 0), "EINVAL");
});

Deno.test("kvm SET_MEMORY_ATTRIBUTES: a range that wraps past 2^64 is EINVAL and changes nothing", () => {
  const kvm = vmWithPrivateMiddle();
  const top = 2 ** 64 - 4096;
  refusesAttributes(kvm, () => kvm.setMemoryAttributes(top, 8192, PRIVATE), "EINVAL");
  refusesAttributes(kvm, () => kvm.setMemoryAttributes(top, 4096, PRIVATE), "EINVAL"); // end = 2^64
  kvm.setMemoryAttributes(top - 4096, 4096, PRIVATE); // the highest frame below the wrap works
  assert.equal(kvm.getMemoryAttributes(top - 4096), PRIVATE);
});

Deno.test("kvm SET_MEMORY_ATTRIBUTES: non-zero flags are EINVAL and change nothing", () => {
  const table = new SimMemoryAttributes(PRIVATE);
  table.set(0, 8192, PRIVATE);
  const before = [...table.runs()];
  assert.throws(() => table.set(0, 4096, 0, 1), errno("EINVAL", /flags must be 0/));
  assert.deepEqual([...table.runs()], before);
});

Deno.test("kvm SET_MEMORY_ATTRIBUTES: unsupported attribute bits are EINVAL and change nothing", () => {
  const kvm = vmWithPrivateMiddle();
  refusesAttributes(kvm, () => kvm.setMemoryAttributes(0, 4096, 1 << 4), "EINVAL");
  refusesAttributes(kvm, () => kvm.setMemoryAttributes(0, 4096, PRIVATE | 1), "EINVAL");
  // A VM without private memory reports mask 0: PRIVATE itself is unsupported.
  const plain = new SimKvm({ capabilities: { memoryAttributes: 0 } });
  assert.throws(() => plain.setMemoryAttributes(0, 4096, PRIVATE), errno("EINVAL", /supported/));
  plain.setMemoryAttributes(0, 4096, 0); // setting "shared" passes every check
  assert.equal(plain.attributes.privateBytes(), 0);
});

Deno.test("kvm SET_MEMORY_ATTRIBUTES: storage is per guest frame, independent of memslots; shared = absent", () => {
  const kvm = new SimKvm();
  assert.deepEqual(attributeRuns(kvm), [{ gpa: 0, size: 2 ** 64, attributes: 0 }]);
  kvm.setMemoryAttributes(64 * GiB, 8192, PRIVATE); // no memslot anywhere
  assert.equal(kvm.getMemoryAttributes(64 * GiB + 4095), PRIVATE);
  assert.equal(kvm.getMemoryAttributes(64 * GiB + 8192), 0);
  assert.equal(kvm.stats.privateBytes, 8192);
  kvm.setMemoryAttributes(64 * GiB, 4096, 0);
  assert.deepEqual(attributeRuns(kvm).map((r) => [r.gpa, r.size, r.attributes]), [
    [0, 64 * GiB + 4096, 0],
    [64 * GiB + 4096, 4096, PRIVATE],
    [64 * GiB + 8192, 2 ** 64 - 64 * GiB - 8192, 0],
  ]);
  assert.equal(kvm.attributes.privateBytes(), 4096);
  assert.equal(kvm.stats.attributeCalls, 2);
  assert.equal(kvm.stats.attributeBytes, 8192 + 4096);
});

Deno.test("kvm SET_MEMORY_ATTRIBUTES: all-or-nothing; an ENOMEM before any change leaves the table", () => {
  const faults = new FaultInjector();
  const kvm = new SimKvm({ faults });
  kvm.setMemoryAttributes(0, GiB, PRIVATE);
  const before = attributeRuns(kvm);
  faults.failNth("kvm.setMemoryAttributes", 1, "ENOMEM");
  assert.throws(() => kvm.setMemoryAttributes(0, 2 * GiB, 0), (e) => {
    assert.ok(e instanceof HwError && e.errno === "ENOMEM" && e.injected);
    return true;
  });
  assert.deepEqual(attributeRuns(kvm), before);
  assert.equal(kvm.stats.attributeCalls, 1);
});

Deno.test("kvm SET_MEMORY_ATTRIBUTES: bad argument types are programming errors naming the argument", () => {
  const kvm = new SimKvm();
  assert.throws(() => kvm.setMemoryAttributes(-4096, 4096, 0), /gpa must be a u64.*-4096/);
  assert.throws(() => kvm.setMemoryAttributes(0, 1.5, 0), /size must be an integer, got 1.5/);
  assert.throws(() => new SimMemoryAttributes(-1), /supportedMask/);
});

// --- KVM_CREATE_GUEST_MEMFD ------------------------------------------------------------------

Deno.test("kvm CREATE_GUEST_MEMFD: size 0 or not page aligned is EINVAL", () => {
  const kvm = new SimKvm();
  assert.throws(() => kvm.createGuestMemfd(0, 0), errno("EINVAL"));
  assert.throws(() => kvm.createGuestMemfd(4096 + 8, 0), errno("EINVAL"));
  assert.equal(kvm.stats.guestMemfds, 0);
});

Deno.test("kvm CREATE_GUEST_MEMFD: flags outside KVM_CAP_GUEST_MEMFD_FLAGS are EINVAL", () => {
  const kvm = new SimKvm();
  assert.throws(() => kvm.createGuestMemfd(MiB, 1 << 2), errno("EINVAL", /flags/));
  const noMmap = new SimKvm({ capabilities: { guestMemfdFlags: 0 } });
  assert.throws(() => noMmap.createGuestMemfd(MiB, GUEST_MEMFD_FLAG_MMAP), errno("EINVAL"));
  assert.equal(noMmap.createGuestMemfd(MiB, 0).flags, 0);
});

Deno.test("kvm CREATE_GUEST_MEMFD: without KVM_CAP_GUEST_MEMFD the ioctl is ENOTTY", () => {
  const kvm = new SimKvm({ capabilities: { guestMemfd: false } });
  assert.throws(() => kvm.createGuestMemfd(MiB, 0), errno("ENOTTY"));
});

// --- guest_memfd fallocate -------------------------------------------------------------------

/** A VM without private memory (VM type 0, as on the real machines): INIT_SHARED works. */
function plainVm(): SimKvm {
  return new SimKvm({ privateMemory: false });
}

function allocatedGmem(): SimGuestMemfd {
  const kvm = plainVm();
  const gmem = kvm.createSimGuestMemfd(4 * MiB, MMAP_SHARED);
  gmem.fallocate(FALLOC_FL_KEEP_SIZE, 0, 4 * MiB);
  gmem.write(8192, new Uint8Array([1, 2, 3]));
  return gmem;
}

function refusesFile(
  gmem: { allocatedBytes(): number; read(o: number, l: number): Uint8Array },
  call: () => unknown,
  code: Errno,
) {
  const allocated = gmem.allocatedBytes();
  const bytes = gmem.read(8192, 3);
  assert.throws(call, errno(code));
  assert.equal(gmem.allocatedBytes(), allocated);
  assert.deepEqual(gmem.read(8192, 3), bytes);
}

Deno.test("guest_memfd fallocate: without FALLOC_FL_KEEP_SIZE is EOPNOTSUPP and changes nothing", () => {
  const gmem = allocatedGmem();
  refusesFile(gmem, () => gmem.fallocate(0, 0, 4096), "EOPNOTSUPP");
  refusesFile(gmem, () => gmem.fallocate(FALLOC_FL_PUNCH_HOLE, 0, 4096), "EOPNOTSUPP");
});

Deno.test("fallocate (guest_memfd and memfd): a mode, offset or length that is not an integer is a TypeError naming it, and changes nothing", () => {
  // memory_file.ts beginFallocate: the syscall takes integers; the simulation refuses anything
  // else before any errno rule, so a caller's bug is not mistaken for a kernel's answer.
  const memfd = new SimMemoryFile(4 * MiB);
  memfd.fallocate(0, 0, 4 * MiB);
  memfd.write(8192, new Uint8Array([1, 2, 3]));
  for (const file of [allocatedGmem(), memfd]) {
    const op = file instanceof SimMemoryFile ? "memfd.fallocate" : "gmem.fallocate";
    const cases: [string, number, number, number][] = [
      ["mode", 1.5, 0, 4096],
      ["offset", FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, NaN, 4096],
      ["length", FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, 2 ** 53],
    ];
    for (const [name, mode, offset, length] of cases) {
      const allocated = file.allocatedBytes();
      assert.throws(() => file.fallocate(mode, offset, length), {
        name: "TypeError",
        message: `${op}: ${name} must be an integer, got ${
          name === "mode" ? mode : name === "offset" ? offset : length
        }`,
      });
      assert.equal(file.allocatedBytes(), allocated, `${op} ${name}`);
      assert.deepEqual(file.read(8192, 3), new Uint8Array([1, 2, 3]));
    }
  }
});

Deno.test("guest_memfd fallocate: any mode bit besides PUNCH_HOLE is EOPNOTSUPP and changes nothing", () => {
  const gmem = allocatedGmem();
  const FALLOC_FL_ZERO_RANGE = 0x10;
  refusesFile(
    gmem,
    () => gmem.fallocate(FALLOC_FL_KEEP_SIZE | FALLOC_FL_ZERO_RANGE, 0, 4096),
    "EOPNOTSUPP",
  );
  refusesFile(gmem, () => gmem.fallocate(FALLOC_FL_KEEP_SIZE | 0x20, 0, 4096), "EOPNOTSUPP");
});

Deno.test("guest_memfd fallocate: unaligned offset or length is EINVAL and changes nothing", () => {
  const gmem = allocatedGmem();
  refusesFile(gmem, () => gmem.punchHole(8192 + 1, 4096), "EINVAL");
  refusesFile(gmem, () => gmem.punchHole(8192, 100), "EINVAL");
  refusesFile(gmem, () => gmem.punchHole(8192, 0), "EINVAL");
  refusesFile(gmem, () => gmem.punchHole(-4096, 8192), "EINVAL");
  refusesFile(gmem, () => gmem.fallocate(FALLOC_FL_KEEP_SIZE, 4 * MiB, 4096), "EINVAL"); // past end
});

Deno.test("guest_memfd fallocate: a validated punch succeeds; the hole reads zero and is deallocated", () => {
  const gmem = allocatedGmem();
  gmem.punchHole(0, MiB);
  assert.deepEqual(gmem.read(8192, 3), new Uint8Array(3));
  assert.equal(gmem.allocatedBytes(), 3 * MiB);
  assert.equal(gmem.allocatedBytes(0, MiB), 0);
  gmem.punchHole(3 * MiB, 2 * MiB); // past the end is clipped, never an error
  assert.equal(gmem.allocatedBytes(), 2 * MiB);
  assert.equal(gmem.punchedBytes, 2 * MiB);
  assert.equal(gmem.punchCalls, 2);
});

// --- guest_memfd mmap ------------------------------------------------------------------------

Deno.test("guest_memfd mmap: a file created without GUEST_MEMFD_FLAG_MMAP cannot be touched (ENODEV)", () => {
  const kvm = plainVm();
  const gmem = kvm.createGuestMemfd(MiB, GUEST_MEMFD_FLAG_INIT_SHARED);
  assert.equal(gmem.hostAddress, 0);
  assert.throws(() => gmem.read(0, 16), errno("ENODEV", /GUEST_MEMFD_FLAG_MMAP/));
  assert.throws(() => gmem.write(0, new Uint8Array(1)), errno("ENODEV"));
  assert.equal(gmem.allocatedBytes(), 0);
});

Deno.test("guest_memfd mmap: touching a page of a file not created INIT_SHARED raises SIGBUS (EFAULT)", () => {
  const kvm = plainVm();
  const gmem = kvm.createGuestMemfd(MiB, GUEST_MEMFD_FLAG_MMAP);
  assert.throws(() => gmem.read(4096, 1), errno("EFAULT", /SIGBUS/));
  assert.throws(() => gmem.write(0, new Uint8Array(1)), errno("EFAULT", /SIGBUS.*private/));
  assert.equal(gmem.allocatedBytes(), 0);
  const shared = kvm.createGuestMemfd(MiB, MMAP_SHARED);
  shared.write(4095, new Uint8Array([7, 8]));
  assert.deepEqual(shared.read(4094, 4), new Uint8Array([0, 7, 8, 0]));
  assert.equal(shared.allocatedBytes(), 8192);
  assert.throws(() => shared.read(MiB - 1, 2), errno("EFAULT", /SIGBUS.*outside/));
});

// --- in-place conversion ---------------------------------------------------------------------

function inPlaceSetup() {
  const kvm = new SimKvm({ kernel: "proposed" });
  const gmem = kvm.createSimGuestMemfd(4 * MiB, MMAP_SHARED);
  const type1 = new SimType1Container({ host: kvm.host });
  return { kvm, gmem, type1 };
}

Deno.test("guest_memfd in-place: to private fails with EAGAIN and errorOffset while a page is pinned; nothing changes", () => {
  const { gmem, type1, kvm } = inPlaceSetup();
  gmem.write(3 * MiB, new Uint8Array([42]));
  type1.map(0, gmem.hostAddress + 3 * MiB + 8192, 4096); // pins one page at offset 3 MiB + 8 KiB
  const before = [...gmem.attributeRuns()];
  assert.throws(() => gmem.setAttributes(2 * MiB, 2 * MiB, PRIVATE), (e) => {
    assert.ok(e instanceof HwError);
    assert.equal(e.errno, "EAGAIN");
    assert.equal(e.errorOffset, 3 * MiB + 8192);
    return true;
  });
  assert.deepEqual([...gmem.attributeRuns()], before);
  assert.equal(gmem.conversions, 0);
  // A range that does not hold the pinned page converts.
  gmem.setAttributes(0, 2 * MiB, PRIVATE);
  assert.equal(gmem.getAttributes(MiB), PRIVATE);
  // Drop the pin and retry: the contents survive the conversion (it is in place).
  type1.unmap(0, 4096);
  gmem.setAttributes(2 * MiB, 2 * MiB, PRIVATE);
  assert.equal(gmem.privateBytes(), 4 * MiB);
  assert.throws(() => gmem.read(3 * MiB, 1), errno("EFAULT", /SIGBUS/));
  gmem.setAttributes(3 * MiB, 4096, 0); // to shared never checks pins
  assert.deepEqual(gmem.read(3 * MiB, 1), new Uint8Array([42]));
  assert.equal(kvm.stats.inPlaceConversions, 3);
});

Deno.test("guest_memfd in-place: to shared succeeds even while pages are pinned", () => {
  const { gmem, kvm } = inPlaceSetup();
  const ioas = new SimIoas({ host: kvm.host });
  ioas.map(0, gmem.hostAddress, 4 * MiB);
  gmem.setAttributes(0, 4 * MiB, 0);
  assert.equal(gmem.privateBytes(), 0);
});

Deno.test("guest_memfd in-place: without in-place support (linux-6.18) the call is ENOTTY", () => {
  const kvm = plainVm();
  const gmem = kvm.createGuestMemfd(MiB, MMAP_SHARED);
  assert.throws(() => gmem.setAttributes(0, 4096, PRIVATE), errno("ENOTTY"));
  assert.equal(gmem.getAttributes(0), 0);
});

Deno.test("guest_memfd in-place: unaligned, empty, out-of-file ranges and unknown bits are EINVAL", () => {
  const { gmem } = inPlaceSetup();
  const before = [...gmem.attributeRuns()];
  for (
    const call of [
      () => gmem.setAttributes(1, 4096, PRIVATE),
      () => gmem.setAttributes(0, 100, PRIVATE),
      () => gmem.setAttributes(0, 0, PRIVATE),
      () => gmem.setAttributes(4 * MiB - 4096, 8192, PRIVATE),
      () => gmem.setAttributes(0, 4096, 1),
    ]
  ) assert.throws(call, errno("EINVAL"));
  assert.deepEqual([...gmem.attributeRuns()], before);
});

Deno.test("guest_memfd: an IOMMU cannot pin a private page (GUP fails with EFAULT); the map changes nothing", () => {
  const kvm = new SimKvm({ kernel: "proposed" });
  const gmem = kvm.createGuestMemfd(4 * MiB, GUEST_MEMFD_FLAG_MMAP); // starts private
  const type1 = new SimType1Container({ host: kvm.host });
  assert.throws(() => type1.map(0, gmem.hostAddress, 4096), errno("EFAULT", /private/));
  assert.equal(type1.mappingCount, 0);
  assert.equal(kvm.host.pinnedBytes(), 0);
  gmem.setAttributes(0, MiB, 0);
  type1.map(0, gmem.hostAddress, MiB);
  assert.throws(() => type1.map(MiB, gmem.hostAddress + MiB, 4096), errno("EFAULT"));
  assert.equal(kvm.host.pinnedBytes(), MiB);
});

// --- shared memfd ----------------------------------------------------------------------------

Deno.test("memfd fallocate: PUNCH_HOLE without KEEP_SIZE and unknown mode bits are EOPNOTSUPP", () => {
  const kvm = new SimKvm();
  const memfd = kvm.createSharedMemory(MiB);
  memfd.write(8192, new Uint8Array([1, 2, 3]));
  refusesFile(memfd, () => memfd.fallocate(FALLOC_FL_PUNCH_HOLE, 0, MiB), "EOPNOTSUPP");
  refusesFile(memfd, () => memfd.fallocate(FALLOC_FL_KEEP_SIZE | 0x10, 0, MiB), "EOPNOTSUPP");
  refusesFile(memfd, () => memfd.punchHole(0, 0), "EINVAL");
  refusesFile(memfd, () => memfd.fallocate(0, MiB - 4096, 8192), "EFBIG");
});

Deno.test("memfd fallocate: an unaligned punch frees whole pages and zeroes the partial ones", () => {
  const kvm = new SimKvm();
  const memfd = kvm.createSharedMemory(MiB);
  memfd.write(0, new Uint8Array(3 * 4096).fill(9));
  memfd.punchHole(100, 8192); // [100, 8292): page 1 freed, pages 0 and 2 zeroed in part
  assert.equal(memfd.allocatedBytes(), 8192);
  assert.deepEqual(memfd.read(98, 4), new Uint8Array([9, 9, 0, 0]));
  assert.deepEqual(memfd.read(8290, 4), new Uint8Array([0, 0, 9, 9]));
  assert.equal(kvm.stats.sharedPunchedBytes, 8192);
});

Deno.test("kvm shared memory: size 0 or unaligned is EINVAL", () => {
  const kvm = new SimKvm();
  assert.throws(() => kvm.createSharedMemory(0), errno("EINVAL"));
  assert.throws(() => kvm.createSharedMemory(100), errno("EINVAL"));
  assert.equal(kvm.stats.sharedFiles, 0);
});

// --- KVM_SET_USER_MEMORY_REGION2 -------------------------------------------------------------

function slotSetup() {
  const kvm = new SimKvm();
  const shared = kvm.createSharedMemory(64 * MiB);
  const gmem = kvm.createGuestMemfd(64 * MiB, 0);
  const base = (over: Partial<MemslotSpec> = {}): MemslotSpec => ({
    slot: 0,
    flags: KVM_MEM_GUEST_MEMFD,
    guestPhysAddr: 0,
    memorySize: 16 * MiB,
    userspaceAddr: shared.hostAddress,
    guestMemfd: gmem,
    guestMemfdOffset: 0,
    ...over,
  });
  return { kvm, shared, gmem, base };
}

function refusesSlot(kvm: SimKvm, spec: MemslotSpec, code: Errno, message?: RegExp): void {
  refuses(() => kvm.memslots(), () => kvm.setUserMemoryRegion2(spec), code, message);
}

Deno.test("kvm SET_USER_MEMORY_REGION2: unaligned size, guest address or userspace address is EINVAL", () => {
  const { kvm, base } = slotSetup();
  refusesSlot(kvm, base({ memorySize: 16 * MiB + 512 }), "EINVAL", /memorySize/);
  refusesSlot(kvm, base({ guestPhysAddr: 100 }), "EINVAL", /guestPhysAddr/);
  refusesSlot(kvm, base({ userspaceAddr: 4097 }), "EINVAL", /userspaceAddr/);
  refusesSlot(kvm, base({ userspaceAddr: 2 ** 47 - 4096 }), "EINVAL", /user address space/);
});

Deno.test("kvm SET_USER_MEMORY_REGION2: flags outside LOG_DIRTY|READONLY|GUEST_MEMFD, or GUEST_MEMFD with the others, are EINVAL", () => {
  const { kvm, base } = slotSetup();
  refusesSlot(kvm, base({ flags: 1 << 3 }), "EINVAL", /flags/);
  refusesSlot(kvm, base({ flags: KVM_MEM_GUEST_MEMFD | KVM_MEM_LOG_DIRTY_PAGES }), "EINVAL");
  refusesSlot(kvm, base({ flags: KVM_MEM_GUEST_MEMFD | KVM_MEM_READONLY }), "EINVAL");
  const noGmem = new SimKvm({ capabilities: { guestMemfd: false } });
  assert.throws(
    () => noGmem.setUserMemoryRegion2(base({ guestMemfd: undefined })),
    errno("EINVAL"),
  );
});

Deno.test("kvm SET_USER_MEMORY_REGION2: unaligned or wrapping guest_memfd offset is EINVAL", () => {
  const { kvm, base } = slotSetup();
  refusesSlot(kvm, base({ guestMemfdOffset: 100 }), "EINVAL", /guestMemfdOffset/);
  refusesSlot(kvm, base({ guestMemfdOffset: 2 ** 64 - 4096 }), "EINVAL", /guestMemfdOffset/);
});

Deno.test("kvm SET_USER_MEMORY_REGION2: slot id or address space out of range is EINVAL", () => {
  const { kvm, base } = slotSetup();
  refusesSlot(kvm, base({ slot: KVM_USER_MEM_SLOTS }), "EINVAL", /slot/);
  refusesSlot(kvm, base({ slot: 2 << 16 }), "EINVAL", /address space/);
});

Deno.test("kvm SET_USER_MEMORY_REGION2: a guest physical range that wraps is EINVAL", () => {
  const { kvm, base } = slotSetup();
  refusesSlot(kvm, base({ guestPhysAddr: 2 ** 64 - 8 * MiB }), "EINVAL", /wraps/);
});

Deno.test("kvm SET_USER_MEMORY_REGION2: overlapping another slot in the same address space is EEXIST", () => {
  const { kvm, base } = slotSetup();
  kvm.setUserMemoryRegion2(base());
  refusesSlot(
    kvm,
    base({ slot: 1, flags: 0, guestPhysAddr: 16 * MiB - 4096, guestMemfd: undefined }),
    "EEXIST",
    /overlaps slot 0/,
  );
  // On a VM without private memory the SMM address space (1 << 16) is separate: the same
  // range is fine there.
  const plain = new SimKvm({ privateMemory: false });
  const memory = plain.createSharedMemory(16 * MiB);
  const spec = { flags: 0, guestPhysAddr: 0, memorySize: 16 * MiB };
  plain.setUserMemoryRegion2({ ...spec, slot: 0, userspaceAddr: memory.hostAddress });
  plain.setUserMemoryRegion2({ ...spec, slot: (1 << 16) | 1, userspaceAddr: memory.hostAddress });
  assert.equal(plain.memslots().length, 2);
  assert.equal(kvm.memslots().length, 1);
});

Deno.test("kvm SET_USER_MEMORY_REGION2: a VM with private memory has no SMM address space (kvm_arch_nr_memslot_as_ids: 1 with private memory, 2 without)", () => {
  const { kvm, base } = slotSetup();
  const smm = base({ slot: 1 << 16, flags: 0, guestMemfd: undefined });
  refusesSlot(kvm, smm, "EINVAL", /address space 1 .*no SMM space/);
  const plain = new SimKvm({ privateMemory: false });
  const memory = plain.createSharedMemory(16 * MiB);
  plain.setUserMemoryRegion2({ ...smm, userspaceAddr: memory.hostAddress });
  assert.equal(plain.memslots()[0].slot, 1 << 16);
});

Deno.test("kvm SET_USER_MEMORY_REGION2: deleting (size 0) a slot that does not exist is EINVAL", () => {
  const { kvm, base } = slotSetup();
  refusesSlot(kvm, base({ slot: 5, memorySize: 0 }), "EINVAL", /does not exist/);
  kvm.setUserMemoryRegion2(base());
  kvm.setUserMemoryRegion2(base({ memorySize: 0 }));
  assert.equal(kvm.memslots().length, 0);
  kvm.setUserMemoryRegion2(base()); // the guest_memfd range is free again
});

Deno.test("kvm SET_USER_MEMORY_REGION2: guest_memfd slots cannot be modified; others keep size, address and READONLY", () => {
  const { kvm, base, shared } = slotSetup();
  kvm.setUserMemoryRegion2(base());
  refusesSlot(kvm, base({ guestPhysAddr: 32 * MiB }), "EINVAL", /cannot be modified/);
  const plain = {
    slot: 1,
    flags: 0,
    guestPhysAddr: 32 * MiB,
    memorySize: 8 * MiB,
    userspaceAddr: shared.hostAddress + 16 * MiB,
  };
  kvm.setUserMemoryRegion2(plain);
  refusesSlot(kvm, { ...plain, memorySize: 4 * MiB }, "EINVAL", /size/);
  refusesSlot(kvm, { ...plain, userspaceAddr: shared.hostAddress }, "EINVAL");
  refusesSlot(kvm, { ...plain, flags: KVM_MEM_READONLY }, "EINVAL", /READONLY/);
  refusesSlot(kvm, { ...plain, guestPhysAddr: 8 * MiB }, "EEXIST"); // a move onto slot 0
  kvm.setUserMemoryRegion2({ ...plain, guestPhysAddr: 48 * MiB }); // a move
  kvm.setUserMemoryRegion2({ ...plain, guestPhysAddr: 48 * MiB, flags: KVM_MEM_LOG_DIRTY_PAGES });
  assert.deepEqual(kvm.memslots()[1].guestPhysAddr, 48 * MiB);
  assert.equal(kvm.memslots()[1].flags, KVM_MEM_LOG_DIRTY_PAGES);
});

Deno.test("kvm SET_USER_MEMORY_REGION2: GUEST_MEMFD needs a guest_memfd of this VM (EBADF / EINVAL)", () => {
  const { kvm, base } = slotSetup();
  refusesSlot(kvm, base({ guestMemfd: undefined }), "EBADF");
  const other = new SimKvm().createGuestMemfd(64 * MiB, 0);
  refusesSlot(kvm, base({ guestMemfd: other }), "EINVAL", /not created by this VM/);
  const closed = kvm.createGuestMemfd(64 * MiB, 0);
  closed.close();
  refusesSlot(kvm, base({ guestMemfd: closed }), "EBADF", /closed/);
});

Deno.test("kvm SET_USER_MEMORY_REGION2: a guest_memfd range past the end of the file is EINVAL", () => {
  const { kvm, base } = slotSetup();
  refusesSlot(kvm, base({ guestMemfdOffset: 56 * MiB }), "EINVAL", /past the end/);
});

Deno.test("kvm SET_USER_MEMORY_REGION2: a guest_memfd range already bound to another slot is EINVAL (kvm_gmem_bind on 6.18)", () => {
  // virt/kvm/guest_memfd.c kvm_gmem_bind: a binding found by xa_find fails with the -EINVAL the
  // function starts with; EEXIST came later (commit 7ea987a90585). The real-backend test in
  // linux_errors_test.ts asks this machine's kernel the same question.
  const { kvm, base } = slotSetup();
  kvm.setUserMemoryRegion2(base());
  refusesSlot(
    kvm,
    base({ slot: 1, guestPhysAddr: 32 * MiB, guestMemfdOffset: 8 * MiB }),
    "EINVAL",
    /already bound to slot 0/,
  );
  kvm.setUserMemoryRegion2(base({ slot: 1, guestPhysAddr: 32 * MiB, guestMemfdOffset: 16 * MiB }));
  assert.equal(kvm.stats.memslots, 2);
});

Deno.test("kvm SET_USER_MEMORY_REGION2: without KVM_CAP_USER_MEMORY2 the ioctl is ENOTTY", () => {
  const kvm = new SimKvm({ capabilities: { userMemory2: false } });
  refusesSlot(
    kvm,
    { slot: 0, flags: 0, guestPhysAddr: 0, memorySize: 4096, userspaceAddr: 0 },
    "ENOTTY",
  );
});

// --- lifecycle and defaults ------------------------------------------------------------------

Deno.test("kvm: a closed VM and its files fail with EBADF; close is idempotent", () => {
  const kvm = new SimKvm({ kernel: "proposed" });
  const gmem = kvm.createGuestMemfd(MiB, MMAP_SHARED);
  kvm.close();
  kvm.close();
  assert.throws(() => kvm.setMemoryAttributes(0, 4096, PRIVATE), errno("EBADF"));
  // EBADF whatever the arguments: the closed VM is found first (the real backend agrees).
  assert.throws(() => kvm.setMemoryAttributes(NaN, 4096, PRIVATE), errno("EBADF"));
  assert.throws(() => kvm.createSharedMemory(MiB), errno("EBADF"));
  assert.throws(() => gmem.punchHole(0, 4096), errno("EBADF"));
  assert.throws(() => gmem.read(0, 1), errno("EBADF"));
});

Deno.test("kvm: default capabilities are a private-memory VM on linux-6.18; options override them", () => {
  const kvm = new SimKvm();
  assert.equal(kvm.kind, "sim");
  assert.equal(kvm.kernel, "linux-6.18");
  assert.deepEqual(kvm.capabilities, {
    apiVersion: 12,
    userMemory2: true,
    memoryAttributes: PRIVATE,
    guestMemfd: true,
    guestMemfdFlags: GUEST_MEMFD_FLAG_MMAP, // no INIT_SHARED beside private memory
    vmTypes: 0b11,
    inPlaceConversion: false,
  });
  const proposed = new SimKvm({ kernel: "proposed" });
  assert.equal(proposed.capabilities.guestMemfdFlags, MMAP_SHARED);
  assert.equal(proposed.capabilities.inPlaceConversion, true);
  assert.equal(plainVm().capabilities.memoryAttributes, 0);
  assert.equal(plainVm().capabilities.guestMemfdFlags, MMAP_SHARED);
  const host = new SimHost();
  const inPlace = new SimKvm({ inPlace: true, host, capabilities: { vmTypes: 1 } });
  assert.equal(inPlace.capabilities.inPlaceConversion, true);
  assert.equal(inPlace.capabilities.vmTypes, 1);
  assert.equal(inPlace.host, host);
  assert.throws(() => new SimKvm({ pageSize: 1000 }), /pageSize: must be a power of two/);
});

Deno.test("kvm: a 1 TiB guest_memfd costs memory in proportion to what was written", () => {
  const kvm = plainVm();
  const gmem = kvm.createSimGuestMemfd(2 ** 40, MMAP_SHARED);
  gmem.fallocate(FALLOC_FL_KEEP_SIZE, 0, 2 ** 40);
  for (let i = 0; i < 100; i++) gmem.punchHole(i * GiB, 4096);
  gmem.write(2 ** 39, new Uint8Array([5]));
  assert.equal(gmem.allocatedBytes(), 2 ** 40 - 100 * 4096);
  assert.equal(gmem.writtenPages, 1);
  assert.deepEqual(gmem.read(2 ** 39, 2), new Uint8Array([5, 0]));
});

// --- kernel setting: INIT_SHARED and guest_memfd-only memslots -------------------------------

Deno.test("guest_memfd (linux-6.18): INIT_SHARED is EINVAL on a VM with private memory, MMAP alone is accepted (virt/kvm/guest_memfd.c kvm_gmem_create, kvm_arch_supports_gmem_init_shared = !kvm_arch_has_private_mem)", () => {
  const kvm = new SimKvm(); // private memory, linux-6.18
  assert.throws(
    () => kvm.createGuestMemfd(MiB, GUEST_MEMFD_FLAG_INIT_SHARED),
    errno("EINVAL", /flags 0x2 outside the supported 0x1/),
  );
  assert.throws(() => kvm.createGuestMemfd(MiB, MMAP_SHARED), errno("EINVAL"));
  assert.equal(kvm.createGuestMemfd(MiB, GUEST_MEMFD_FLAG_MMAP).flags, GUEST_MEMFD_FLAG_MMAP);
  assert.equal(kvm.stats.guestMemfds, 1, "a refused create leaves no file behind");
  // Without private memory (VM type 0) mainline offers it; the proposed series beside private memory.
  assert.equal(plainVm().createGuestMemfd(MiB, MMAP_SHARED).flags, MMAP_SHARED);
  assert.equal(
    new SimKvm({ kernel: "proposed" }).createGuestMemfd(MiB, MMAP_SHARED).flags,
    MMAP_SHARED,
  );
});

Deno.test("memslots: a slot bound to an mmap-able guest_memfd is guest_memfd-only (kvm_gmem_bind sets KVM_MEMSLOT_GMEM_ONLY)", () => {
  const kvm = new SimKvm();
  const bind = (slot: number, flags: number, gpa: number) => {
    const gmem = kvm.createGuestMemfd(MiB, flags);
    const shared = kvm.createSharedMemory(MiB);
    kvm.setUserMemoryRegion2({
      slot,
      flags: KVM_MEM_GUEST_MEMFD,
      guestPhysAddr: gpa,
      memorySize: MiB,
      userspaceAddr: shared.hostAddress,
      guestMemfd: gmem,
    });
  };
  bind(0, GUEST_MEMFD_FLAG_MMAP, 0);
  bind(1, 0, MiB);
  const [mmapable, plain] = kvm.memslots();
  assert.equal(mmapable.gmemOnly, true, "the shared memfd would be ignored for faults");
  assert.equal(plain.gmemOnly, false, "separate backing: guest_memfd without MMAP + a memfd");
});

Deno.test("region backing: separate backing on a private-memory VM uses a guest_memfd without MMAP or INIT_SHARED", () => {
  for (const kernel of ["linux-6.18", "proposed"] as const) {
    const kvm = new SimKvm({ kernel });
    assert.equal(defaultGuestMemfdFlags(kvm.capabilities), 0, kernel);
    using backing = createRegionBacking(kvm, { slot: 0, guestPhysAddr: 0, size: MiB });
    assert.equal(backing.guestMemfd.flags, 0);
    assert.equal(kvm.memslots()[0].gmemOnly, false);
  }
  // A VM without private memory keeps MMAP | INIT_SHARED, so its pages can be read back.
  assert.equal(defaultGuestMemfdFlags(plainVm().capabilities), MMAP_SHARED);
});
