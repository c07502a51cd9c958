// Nothing the real backend opens or maps outlives its owner: /proc/self/fd
// and /proc/self/maps look the same before and after, on success paths and on
// error paths (a later step failing after an fd was opened or a file mapped).
import assert from "node:assert/strict";
import { type Errno, HwError } from "../src/hw/errors.ts";
import { errno } from "./helpers/errno.ts";
import { createRegionBacking, openLinuxKvm } from "../src/hw/linux/mod.ts";
import { announceSkip, fdCount, kvmFds, kvmMappings, probe } from "./helpers/linux.ts";

announceSkip("linux_fd_leak_test");

const PAGE = 4096;
const ignore = !probe.available || !probe.capabilities!.guestMemfd;

/** Runs `body` and asserts the process holds the same fds and KVM mappings afterwards. */
function assertNoLeak(body: () => void): void {
  const fds = fdCount();
  body();
  assert.deepEqual(kvmFds(), [], "no /dev/kvm, VM, guest_memfd or memfd fd is left open");
  assert.deepEqual(kvmMappings(), [], "no guest_memfd or memfd mapping is left");
  assert.equal(fdCount(), fds, "/proc/self/fd has as many entries as before");
}

/** The VM's own files (guest_memfds, memfds) and their mappings: none may survive a failed call. */
function assertNoFiles(): void {
  assert.deepEqual(kvmFds().filter((fd) => /gmem|memstate-shared/.test(fd)), []);
  assert.deepEqual(kvmMappings(), []);
}

function expectHwError(fn: () => unknown, code: Errno): void {
  assert.throws(fn, errno(code));
}

Deno.test({
  name: "success paths: a VM with regions, closed by using, leaves nothing behind",
  ignore,
  fn() {
    assertNoLeak(() => {
      using kvm = openLinuxKvm();
      for (let slot = 0; slot < 4; slot++) {
        using region = createRegionBacking(kvm, {
          slot,
          guestPhysAddr: slot * 0x10_0000,
          size: 16 * PAGE,
        });
        region.shared.write(0, new Uint8Array([1]));
        region.guestMemfd.write(0, new Uint8Array([2]));
      }
      // Files left open on purpose are closed with the VM.
      kvm.createGuestMemfd(PAGE, 0);
      kvm.createSharedMemory(PAGE);
      createRegionBacking(kvm, { slot: 9, guestPhysAddr: 0x100_0000, size: 4 * PAGE });
    });
  },
});

Deno.test({
  name: "error paths release what was acquired before the failing step",
  ignore,
  fn() {
    assertNoLeak(() => {
      // /dev/kvm opened, then KVM_CREATE_VM fails.
      if ((probe.capabilities!.vmTypes & (1 << 3)) === 0) {
        expectHwError(() => openLinuxKvm({ vmType: 3 }), "EINVAL");
      }
      using kvm = openLinuxKvm();
      // Both files created and mapped, then the memslot ioctl fails.
      expectHwError(
        () => createRegionBacking(kvm, { slot: 0, guestPhysAddr: 1, size: 4 * PAGE }),
        "EINVAL",
      );
      assertNoFiles(); // released by the failed call itself, not later by the VM
      // memfd created, then ftruncate fails (beyond the largest file size).
      expectHwError(() => kvm.createSharedMemory(2 ** 63), "EINVAL");
      // memfd created and sized, then mmap fails (larger than the address space).
      expectHwError(() => kvm.createSharedMemory(2 ** 48), "ENOMEM");
      // The guest_memfd ioctl itself fails.
      expectHwError(() => kvm.createGuestMemfd(PAGE + 1, 0), "EINVAL");
      assertNoFiles();
      // An exception inside a using block still releases the region.
      assert.throws(() => {
        using region = createRegionBacking(kvm, { slot: 1, guestPhysAddr: 0, size: 4 * PAGE });
        region.guestMemfd.punchHole(1, PAGE);
      }, HwError);
      assertNoFiles();
      assert.equal(kvm.closed, false);
    });
  },
});

Deno.test({
  name: "a region closed after its VM closes without error",
  ignore,
  fn() {
    assertNoLeak(() => {
      const kvm = openLinuxKvm();
      const region = createRegionBacking(kvm, { slot: 0, guestPhysAddr: 0, size: 4 * PAGE });
      kvm.close();
      region.close();
      region.close();
    });
  },
});
