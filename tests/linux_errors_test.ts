// Every failed real call surfaces as a HwError with the kernel's errno (the
// same typed error the simulator throws), and a bad JavaScript argument is
// rejected before any system call.
import assert from "node:assert/strict";
import { type Errno, HwError } from "../src/hw/errors.ts";
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  GUEST_MEMFD_FLAG_INIT_SHARED,
  GUEST_MEMFD_FLAG_MMAP,
  type GuestMemfd,
  KVM_MEM_GUEST_MEMFD,
  KVM_MEMORY_ATTRIBUTE_PRIVATE,
  type MemoryFile,
} from "../src/hw/backend.ts";
import { openLinuxKvm } from "../src/hw/linux/mod.ts";
import { defaultGuestMemfdFlags } from "../src/hw/region_backing.ts";
import { announceSkip, kernelRelease, probe } from "./helpers/linux.ts";
import { errno } from "./helpers/errno.ts";

announceSkip("linux_errors_test");

const PAGE = 4096;
const FLAGS = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
/** KVM_CAP_MULTI_ADDRESS_SPACE (include/uapi/linux/kvm.h). */
const KVM_CAP_MULTI_ADDRESS_SPACE = 118;
const ignore = !probe.available || !probe.capabilities!.guestMemfd;

/** Memslot 3 at 1 MiB: four pages of `gmem` from its start, the shared side in `shared`. */
function slotOver(gmem: GuestMemfd, shared: MemoryFile) {
  return {
    slot: 3,
    flags: KVM_MEM_GUEST_MEMFD,
    guestPhysAddr: 0x10_0000,
    memorySize: 4 * PAGE,
    userspaceAddr: shared.hostAddress,
    guestMemfd: gmem,
    guestMemfdOffset: 0,
  };
}

/** Asserts `fn` throws a HwError with `code` from `op`. */
function throwsHw(fn: () => unknown, code: Errno, op: string, message?: RegExp): void {
  assert.throws(fn, errno(code, { op, message }));
}

Deno.test({
  name: "guest_memfd fallocate: misaligned punch EINVAL, no KEEP_SIZE EOPNOTSUPP",
  ignore,
  fn() {
    using kvm = openLinuxKvm();
    using gmem = kvm.createGuestMemfd(4 * PAGE, FLAGS);
    gmem.write(0, new Uint8Array([1]));
    throwsHw(() => gmem.punchHole(1, PAGE), "EINVAL", "gmem.fallocate", /errno 22/);
    throwsHw(() => gmem.punchHole(0, 100), "EINVAL", "gmem.fallocate");
    throwsHw(() => gmem.fallocate(FALLOC_FL_PUNCH_HOLE, 0, PAGE), "EOPNOTSUPP", "gmem.fallocate");
    throwsHw(() => gmem.fallocate(0, 0, PAGE), "EOPNOTSUPP", "gmem.fallocate");
    // Allocating beyond the size cannot grow a guest_memfd.
    throwsHw(() => gmem.fallocate(FALLOC_FL_KEEP_SIZE, 4 * PAGE, PAGE), "EINVAL", "gmem.fallocate");
    // The failed calls changed nothing.
    assert.equal(gmem.allocatedBytes(), PAGE);
    assert.equal(gmem.read(0, 1)[0], 1);
  },
});

Deno.test({
  name: "attributes the VM cannot set for real are reported as emulated and tracked",
  ignore: ignore || probe.realParts!.attributes,
  fn() {
    using kvm = openLinuxKvm();
    assert.equal(kvm.realParts.attributes, false);
    assert.match(kvm.notices.join("\n"), /memory attributes are emulated, not real/);
    // Without private memory the backing's guest_memfd is mmap-able and INIT_SHARED, which makes
    // its memslots guest_memfd-only (kvm_gmem_bind): said, since the memfd then backs nothing.
    const gmemOnly = (defaultGuestMemfdFlags(kvm.capabilities) & GUEST_MEMFD_FLAG_MMAP) !== 0;
    assert.equal(/memslot guest_memfd-only/.test(kvm.notices.join("\n")), gmemOnly);
    kvm.setMemoryAttributes(0x20_0000, 3 * PAGE, KVM_MEMORY_ATTRIBUTE_PRIVATE);
    assert.equal(kvm.getMemoryAttributes(0x20_0000 + 2 * PAGE + 5), KVM_MEMORY_ATTRIBUTE_PRIVATE);
    assert.equal(kvm.getMemoryAttributes(0x20_0000 + 3 * PAGE), 0);
    // The kernel's EINVAL rules still apply, and a refused call changes nothing.
    const op = "kvm.setMemoryAttributes";
    throwsHw(() => kvm.setMemoryAttributes(0x20_0000 + 1, PAGE, 0), "EINVAL", op);
    throwsHw(() => kvm.setMemoryAttributes(0x20_0000, 0, 0), "EINVAL", op);
    throwsHw(() => kvm.setMemoryAttributes(0x20_0000, PAGE, 1), "EINVAL", op, /supported mask/);
    throwsHw(() => kvm.setMemoryAttributes(2 ** 64 - PAGE, 2 * PAGE, 0), "EINVAL", op, /wraps/);
    assert.equal(kvm.privateBytes(), 3 * PAGE);
    assert.deepEqual([...kvm.memoryAttributeRuns(0x20_0000, 4 * PAGE)], [
      { gpa: 0x20_0000, size: 3 * PAGE, attributes: KVM_MEMORY_ATTRIBUTE_PRIVATE },
      { gpa: 0x20_0000 + 3 * PAGE, size: PAGE, attributes: 0 },
    ]);
  },
});

Deno.test({
  name: "KVM_CREATE_GUEST_MEMFD and memslot errors carry the kernel's errno",
  ignore,
  fn() {
    using kvm = openLinuxKvm();
    throwsHw(() => kvm.createGuestMemfd(PAGE + 1, 0), "EINVAL", "kvm.createGuestMemfd");
    throwsHw(() => kvm.createGuestMemfd(0, 0), "EINVAL", "kvm.createGuestMemfd");
    throwsHw(() => kvm.createGuestMemfd(PAGE, 1 << 20), "EINVAL", "kvm.createGuestMemfd");

    using gmem = kvm.createGuestMemfd(4 * PAGE, FLAGS);
    using shared = kvm.createSharedMemory(4 * PAGE);
    const slot = slotOver(gmem, shared);
    const op = "kvm.setUserMemoryRegion2";
    throwsHw(() => kvm.setUserMemoryRegion2({ ...slot, guestPhysAddr: 1 }), "EINVAL", op);
    throwsHw(() => kvm.setUserMemoryRegion2({ ...slot, guestMemfdOffset: PAGE }), "EINVAL", op);
    kvm.setUserMemoryRegion2(slot);
    // A second slot over the same guest physical range overlaps: EEXIST.
    throwsHw(() => kvm.setUserMemoryRegion2({ ...slot, slot: 4 }), "EEXIST", op);

    // A guest_memfd of another VM is refused before the kernel sees its fd.
    using other = openLinuxKvm();
    using foreign = other.createGuestMemfd(4 * PAGE, FLAGS);
    throwsHw(
      () =>
        kvm.setUserMemoryRegion2({
          ...slot,
          slot: 5,
          guestPhysAddr: 0x20_0000,
          guestMemfd: foreign,
        }),
      "EINVAL",
      op,
      /not created by this VM/,
    );
    // KVM_MEM_GUEST_MEMFD without a file, or with a closed one: EBADF (the kernel's fget fails).
    const second = { ...slot, slot: 6, guestPhysAddr: 0x40_0000 };
    throwsHw(() => kvm.setUserMemoryRegion2({ ...second, guestMemfd: undefined }), "EBADF", op);
    const closed = kvm.createGuestMemfd(4 * PAGE, FLAGS);
    closed.close();
    throwsHw(() => kvm.setUserMemoryRegion2({ ...second, guestMemfd: closed }), "EBADF", op);
  },
});

Deno.test({
  name:
    "a guest_memfd range bound to another slot: EINVAL before 7.2, as the simulated linux-6.18 says",
  ignore,
  fn() {
    // virt/kvm/guest_memfd.c kvm_gmem_bind: an existing binding in the range fails with -EINVAL
    // until commit 7ea987a90585 ("Return -EEXIST for overlapping bindings", after 6.18); the
    // simulator's linux-6.18 setting answers EINVAL (tests/hw_sim_kvm_test.ts).
    using kvm = openLinuxKvm();
    using gmem = kvm.createGuestMemfd(8 * PAGE, FLAGS);
    using shared = kvm.createSharedMemory(8 * PAGE);
    const slot = slotOver(gmem, shared);
    kvm.setUserMemoryRegion2(slot);
    const overlapping = {
      ...slot,
      slot: 4,
      guestPhysAddr: 0x20_0000,
      userspaceAddr: shared.hostAddress + 4 * PAGE,
      guestMemfdOffset: 2 * PAGE,
    };
    // EEXIST came with 7ea987a90585, in linux-next from June 2026: kernels before 7.2 answer
    // EINVAL.
    const release = kernelRelease();
    const [major, minor] = release.split(".").map(Number);
    const before72 = major < 7 || (major === 7 && minor < 2);
    const op = "kvm.setUserMemoryRegion2";
    if (before72) throwsHw(() => kvm.setUserMemoryRegion2(overlapping), "EINVAL", op);
    else {
      assert.throws(
        () => kvm.setUserMemoryRegion2(overlapping),
        (e) => e instanceof HwError && (e.errno === "EINVAL" || e.errno === "EEXIST"),
      );
      console.log(`  kernel ${release}: EINVAL or EEXIST both taken for an overlapping binding`);
    }
    // Past the bound range it binds.
    kvm.setUserMemoryRegion2({ ...overlapping, guestMemfdOffset: 4 * PAGE });
  },
});

Deno.test({
  name: "memslot address space 1 (SMM) exists exactly where KVM_CAP_MULTI_ADDRESS_SPACE says 2",
  ignore: !probe.available,
  fn() {
    // virt/kvm/kvm_main.c kvm_set_memory_region: an address space at or past
    // kvm_arch_nr_memslot_as_ids is EINVAL, and kvm_vm_ioctl_check_extension_generic answers
    // KVM_CAP_MULTI_ADDRESS_SPACE with that number (0 where the kernel has one: built without
    // CONFIG_KVM_SMM). The simulator models a kernel with SMM: two on a VM without private
    // memory, one with it (tests/hw_sim_kvm_test.ts).
    using kvm = openLinuxKvm();
    using shared = kvm.createSharedMemory(4 * PAGE);
    const spaces = kvm.checkExtension(KVM_CAP_MULTI_ADDRESS_SPACE);
    const smm = {
      slot: 1 << 16,
      flags: 0,
      guestPhysAddr: 0x10_0000,
      memorySize: 4 * PAGE,
      userspaceAddr: shared.hostAddress,
    };
    if (spaces >= 2) kvm.setUserMemoryRegion2(smm);
    else throwsHw(() => kvm.setUserMemoryRegion2(smm), "EINVAL", "kvm.setUserMemoryRegion2");
    console.log(
      `  KVM_CAP_MULTI_ADDRESS_SPACE ${spaces}: address space 1 ${
        spaces >= 2 ? "taken" : "refused (EINVAL)"
      }`,
    );
    kvm.setUserMemoryRegion2({ ...smm, slot: 0 }); // address space 0 always exists
  },
});

Deno.test({
  name: "in-place conversion is not mainline: setAttributes fails with ENOTTY",
  ignore: ignore || probe.capabilities!.inPlaceConversion,
  fn() {
    using kvm = openLinuxKvm();
    using gmem = kvm.createGuestMemfd(4 * PAGE, FLAGS);
    throwsHw(
      () => gmem.setAttributes(0, PAGE, KVM_MEMORY_ATTRIBUTE_PRIVATE),
      "ENOTTY",
      "gmem.setAttributes",
      /not mainline/,
    );
    assert.equal(gmem.getAttributes(0), 0, "nothing changed");
  },
});

Deno.test({
  name: "closed objects fail with EBADF; close is idempotent",
  ignore,
  fn() {
    const kvm = openLinuxKvm();
    const gmem = kvm.createGuestMemfd(PAGE, FLAGS);
    const shared = kvm.createSharedMemory(PAGE);
    shared.close();
    shared.close();
    throwsHw(() => shared.read(0, 1), "EBADF", "memfd.read");
    kvm.close(); // also closes gmem
    kvm.close();
    assert.equal(kvm.closed, true);
    throwsHw(() => gmem.punchHole(0, PAGE), "EBADF", "gmem.fallocate");
    throwsHw(() => kvm.createSharedMemory(PAGE), "EBADF", "kvm.createSharedMemory");
    throwsHw(() => kvm.setMemoryAttributes(0, PAGE, 0), "EBADF", "kvm.setMemoryAttributes");
    // A closed VM is EBADF whatever the arguments, as in the simulator (hw_sim_kvm_test.ts).
    throwsHw(() => kvm.setMemoryAttributes(NaN, PAGE, 0), "EBADF", "kvm.setMemoryAttributes");
    gmem.close();
  },
});

Deno.test({
  name: "bad JavaScript arguments are rejected by name before any system call",
  ignore,
  fn() {
    using kvm = openLinuxKvm();
    using shared = kvm.createSharedMemory(PAGE);
    assert.throws(
      () => shared.punchHole(1.5, PAGE),
      (e) => e instanceof TypeError && /offset.*1\.5/.test(e.message),
    );
    assert.throws(
      () => shared.punchHole(-1, PAGE),
      (e) => e instanceof RangeError && /offset.*-1/.test(e.message),
    );
    // Outside the file is where a mapping access would SIGBUS: EFAULT, as in the simulator.
    throwsHw(() => shared.read(0, PAGE + 1), "EFAULT", "memfd.read", /SIGBUS/);
    throwsHw(() => shared.write(PAGE, new Uint8Array(1)), "EFAULT", "memfd.write", /SIGBUS/);
    assert.throws(
      () => kvm.setMemoryAttributes(NaN, PAGE, 0),
      (e) => e instanceof TypeError && /gpa.*NaN/.test(e.message),
    );
    assert.throws(
      () => openLinuxKvm({ vmType: -1 }),
      (e) => e instanceof RangeError && /vmType/.test(e.message),
    );
  },
});
