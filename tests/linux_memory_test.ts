// Real memory through the real kernel: patterns written through the mappings
// of a shared memfd and a guest_memfd survive or vanish exactly as the
// conversions' hole punches say, and allocatedBytes follows the page cache.
import assert from "node:assert/strict";
import { HwError } from "../src/hw/errors.ts";
import {
  FALLOC_FL_KEEP_SIZE,
  GUEST_MEMFD_FLAG_INIT_SHARED,
  GUEST_MEMFD_FLAG_MMAP,
  KVM_MEMORY_ATTRIBUTE_PRIVATE,
} from "../src/hw/backend.ts";
import { createRegionBacking, openLinuxKvm } from "../src/hw/linux/mod.ts";
import { announceSkip, pattern, probe } from "./helpers/linux.ts";

announceSkip("linux_memory_test");

const PAGE = 4096;
const PAGES = 8;
const GPA = 0x1_0000_0000;
const ignore = !probe.available || !probe.capabilities!.guestMemfd;

/** Bytes allocated in each page of `file`. */
function perPage(file: { allocatedBytes(o: number, l: number): number }): number[] {
  return Array.from({ length: PAGES }, (_, p) => file.allocatedBytes(p * PAGE, PAGE));
}

const isZero = (bytes: Uint8Array) => bytes.every((b) => b === 0);

Deno.test({
  name: "conversions punch the side no longer used: it reads zero, the other keeps its data",
  ignore,
  fn() {
    using kvm = openLinuxKvm();
    using region = createRegionBacking(kvm, { slot: 0, guestPhysAddr: GPA, size: PAGES * PAGE });
    const { shared, guestMemfd } = region;
    assert.equal(guestMemfd.flags, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED);
    assert.notEqual(shared.hostAddress, 0);
    assert.notEqual(guestMemfd.hostAddress, 0);

    // Fill pages 0-3 of both sides with different patterns.
    for (let p = 0; p < 4; p++) {
      shared.write(p * PAGE, pattern(PAGE, p));
      guestMemfd.write(p * PAGE, pattern(PAGE, 100 + p));
    }
    assert.deepEqual(perPage(shared), [PAGE, PAGE, PAGE, PAGE, 0, 0, 0, 0]);
    assert.deepEqual(perPage(guestMemfd), [PAGE, PAGE, PAGE, PAGE, 0, 0, 0, 0]);

    // Pages 1-2 to private: attributes first, then discard the shared side.
    kvm.setMemoryAttributes(GPA + PAGE, 2 * PAGE, KVM_MEMORY_ATTRIBUTE_PRIVATE);
    shared.punchHole(PAGE, 2 * PAGE);
    assert.deepEqual(shared.read(0, PAGE), pattern(PAGE, 0));
    assert.ok(isZero(shared.read(PAGE, 2 * PAGE)), "punched shared pages read zero");
    assert.deepEqual(shared.read(3 * PAGE, PAGE), pattern(PAGE, 3));
    for (let p = 0; p < 4; p++) {
      assert.deepEqual(guestMemfd.read(p * PAGE, PAGE), pattern(PAGE, 100 + p));
    }
    assert.deepEqual(perPage(shared), [PAGE, 0, 0, PAGE, 0, 0, 0, 0]);

    // Page 2 back to shared: attributes, then punch the guest_memfd.
    kvm.setMemoryAttributes(GPA + 2 * PAGE, PAGE, 0);
    guestMemfd.punchHole(2 * PAGE, PAGE);
    assert.ok(isZero(guestMemfd.read(2 * PAGE, PAGE)), "punched guest_memfd page reads zero");
    assert.deepEqual(guestMemfd.read(PAGE, PAGE), pattern(PAGE, 101));
    assert.deepEqual(guestMemfd.read(3 * PAGE, PAGE), pattern(PAGE, 103));
    assert.deepEqual(perPage(guestMemfd), [PAGE, PAGE, 0, PAGE, 0, 0, 0, 0]);

    assert.deepEqual(
      [0, 1, 2, 3].map((p) => kvm.getMemoryAttributes(GPA + p * PAGE)),
      [0, KVM_MEMORY_ATTRIBUTE_PRIVATE, 0, 0],
    );
    assert.equal(kvm.privateBytes(), PAGE);
  },
});

Deno.test({
  name: "reading a hole returns zeros without allocating it",
  ignore,
  fn() {
    using kvm = openLinuxKvm();
    using gmem = kvm.createGuestMemfd(
      PAGES * PAGE,
      GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
    );
    using shared = kvm.createSharedMemory(PAGES * PAGE);
    for (const file of [gmem, shared]) {
      file.write(PAGE + 10, new Uint8Array([7, 8, 9]));
      const whole = file.read(0, PAGES * PAGE);
      assert.deepEqual([...whole.subarray(PAGE + 9, PAGE + 14)], [0, 7, 8, 9, 0]);
      assert.equal(file.allocatedBytes(), PAGE, "only the written page is allocated");
    }
  },
});

Deno.test({
  name: "allocatedBytes counts partial pages by their overlap and works without a mapping",
  ignore,
  fn() {
    using kvm = openLinuxKvm();
    using shared = kvm.createSharedMemory(PAGES * PAGE);
    shared.write(2 * PAGE, new Uint8Array(1)); // page 2
    shared.write(3 * PAGE, new Uint8Array(1)); // page 3
    assert.equal(shared.allocatedBytes(), 2 * PAGE);
    assert.equal(shared.allocatedBytes(2 * PAGE + 100, 50), 50);
    assert.equal(shared.allocatedBytes(PAGE + 4000, 200), 104); // 96 bytes of page 1 (hole) + 104 of page 2
    assert.equal(shared.allocatedBytes(2 * PAGE + 4000, PAGE + 196), PAGE + 96 + 0);
    assert.equal(shared.allocatedBytes(PAGE + 1, 3 * PAGE), 2 * PAGE);
    assert.equal(shared.allocatedBytes(0, 0), 0);
    assert.equal(shared.allocatedBytes(3 * PAGE, 100 * PAGE), PAGE, "clipped to the file");
    assert.equal(shared.allocatedBytes(PAGES * PAGE, 1), 0);

    // A guest_memfd without MMAP has no mapping, but the page cache still counts.
    using gmem = kvm.createGuestMemfd(PAGES * PAGE, 0);
    assert.equal(gmem.hostAddress, 0);
    gmem.fallocate(FALLOC_FL_KEEP_SIZE, 4 * PAGE, 2 * PAGE);
    assert.equal(gmem.allocatedBytes(), 2 * PAGE);
    assert.equal(gmem.allocatedBytes(5 * PAGE, PAGE), PAGE);
    gmem.punchHole(4 * PAGE, PAGE);
    assert.equal(gmem.allocatedBytes(), PAGE);
  },
});

Deno.test({
  name: "host access to guest_memfd follows the kernel's fault rules without faulting",
  ignore,
  fn() {
    using kvm = openLinuxKvm();
    // No MMAP flag: there is no host mapping at all (mmap would be ENODEV).
    using unmapped = kvm.createGuestMemfd(PAGES * PAGE, 0);
    assert.throws(
      () => unmapped.read(0, 1),
      (e) => e instanceof HwError && e.errno === "ENODEV" && e.op === "gmem.read",
    );
    assert.equal(unmapped.getAttributes(0), KVM_MEMORY_ATTRIBUTE_PRIVATE);

    // MMAP without INIT_SHARED: pages are private and a touch would SIGBUS.
    if ((probe.capabilities!.guestMemfdFlags & GUEST_MEMFD_FLAG_MMAP) === 0) return;
    using priv = kvm.createGuestMemfd(PAGES * PAGE, GUEST_MEMFD_FLAG_MMAP);
    assert.notEqual(priv.hostAddress, 0);
    assert.throws(
      () => priv.write(PAGE, new Uint8Array([1])),
      (e) => e instanceof HwError && e.errno === "EFAULT" && /private/.test(e.message),
    );
    assert.throws(() => priv.read(0, PAGE), (e) => e instanceof HwError && e.errno === "EFAULT");
    assert.equal(priv.allocatedBytes(), 0);
  },
});
