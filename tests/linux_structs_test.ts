// The ioctl numbers and struct layouts of the real backend, checked without a
// kernel: numbers against include/uapi/linux/kvm.h, fields at their offsets.
import assert from "node:assert/strict";
import {
  CREATE_GUEST_MEMFD_SIZE,
  decodeErrorOffset,
  encodeCreateGuestMemfd,
  encodeMemoryAttributes,
  encodeMemoryAttributes2,
  encodeUserMemoryRegion2,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_GUEST_MEMFD,
  KVM_CREATE_VM,
  KVM_GET_API_VERSION,
  KVM_SET_MEMORY_ATTRIBUTES,
  KVM_SET_MEMORY_ATTRIBUTES2,
  KVM_SET_USER_MEMORY_REGION2,
  MEMORY_ATTRIBUTES2_SIZE,
  MEMORY_ATTRIBUTES_SIZE,
  USER_MEMORY_REGION2_SIZE,
} from "../src/hw/linux/kvm_ioctls.ts";
import { offArg } from "../src/hw/linux/arguments.ts";

const u64 = (b: Uint8Array, at: number) => new DataView(b.buffer).getBigUint64(at, true);
const u32 = (b: Uint8Array, at: number) => new DataView(b.buffer).getUint32(at, true);

Deno.test("ioctl numbers equal the values in include/uapi/linux/kvm.h", () => {
  assert.equal(KVM_GET_API_VERSION, 0xae00);
  assert.equal(KVM_CREATE_VM, 0xae01);
  assert.equal(KVM_CHECK_EXTENSION, 0xae03);
  assert.equal(KVM_SET_USER_MEMORY_REGION2, 0x40a0ae49);
  assert.equal(KVM_SET_MEMORY_ATTRIBUTES, 0x4020aed2);
  assert.equal(KVM_SET_MEMORY_ATTRIBUTES2, 0xc080aed2);
  assert.equal(KVM_CREATE_GUEST_MEMFD, 0xc040aed4);
});

Deno.test("kvm_userspace_memory_region2: 160 bytes, fields at their uapi offsets", () => {
  const b = encodeUserMemoryRegion2({
    slot: 0x1_0002,
    flags: 4,
    guestPhysAddr: 0x1_0000_0000,
    memorySize: 0x20_0000,
    userspaceAddr: 0x7f00_0000_0000,
    guestMemfdOffset: 0x1000,
    guestMemfd: 33,
  });
  assert.equal(b.length, USER_MEMORY_REGION2_SIZE);
  assert.equal(u32(b, 0), 0x1_0002);
  assert.equal(u32(b, 4), 4);
  assert.equal(u64(b, 8), 0x1_0000_0000n);
  assert.equal(u64(b, 16), 0x20_0000n);
  assert.equal(u64(b, 24), 0x7f00_0000_0000n);
  assert.equal(u64(b, 32), 0x1000n);
  assert.equal(u32(b, 40), 33);
  assert.ok(b.subarray(44).every((x) => x === 0), "pad and pad2[14] are zero");
});

Deno.test("kvm_memory_attributes(2) and kvm_create_guest_memfd layouts", () => {
  const a = encodeMemoryAttributes(0x20_0000, 0x3000, 8);
  assert.equal(a.length, MEMORY_ATTRIBUTES_SIZE);
  assert.deepEqual([u64(a, 0), u64(a, 8), u64(a, 16), u64(a, 24)], [0x20_0000n, 0x3000n, 8n, 0n]);
  // 2^64 is how a double spells U64_MAX.
  assert.equal(u64(encodeMemoryAttributes(2 ** 64, 1, 0), 0), (1n << 64n) - 1n);

  const a2 = encodeMemoryAttributes2(0x1000, 0x2000, 8);
  assert.equal(a2.length, MEMORY_ATTRIBUTES2_SIZE);
  assert.deepEqual([u64(a2, 0), u64(a2, 8), u64(a2, 16)], [0x1000n, 0x2000n, 8n]);
  new DataView(a2.buffer).setBigUint64(32, 0x5000n, true); // what the kernel writes back
  assert.equal(decodeErrorOffset(a2), 0x5000);

  const g = encodeCreateGuestMemfd(0x40_0000, 3);
  assert.equal(g.length, CREATE_GUEST_MEMFD_SIZE);
  assert.deepEqual([u64(g, 0), u64(g, 8)], [0x40_0000n, 3n]);
  assert.ok(g.subarray(16).every((x) => x === 0), "reserved[6] is zero");
});

Deno.test("offArg gives the exact off_t of every value, in and around its table of page multiples", () => {
  // The table holds the multiples of 4 KiB up to 2 MiB; all else converts directly.
  for (
    const v of [0, 1, 4095, 4096, 8192, 12288, 2 ** 21 - 4096, 2 ** 21 - 1, 2 ** 21, 2 ** 21 + 4096]
  ) {
    assert.equal(offArg("t", "offset", v), BigInt(v), `${v}`);
  }
  // Past 2^63 an off_t turns negative, as in C.
  assert.equal(offArg("t", "offset", 2 ** 63), -(2n ** 63n));
  assert.throws(() => offArg("t", "offset", 4096.5), TypeError);
});
