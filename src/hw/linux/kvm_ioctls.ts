/**
 * KVM ioctl numbers, capability numbers and the byte layouts of the structs
 * the backend passes to them (x86-64 uapi, little-endian, naturally aligned).
 *
 * Numbers are derived from the `_IOC` encoding (direction, size, type, nr) so
 * each one shows the struct size it expects; the tests compare them with the
 * values in the kernel headers. Structs are built in a `Uint8Array` with u64
 * fields written through `DataView.setBigUint64`, because JavaScript numbers
 * cannot hold every u64 and the kernel reads the whole field (a number equal
 * to 2^64 stands for U64_MAX, as in the simulator).
 *
 * @module
 */

import { toBigU64 } from "../u64.ts";

/** The ioctl type byte of KVM (`KVMIO`). */
export const KVMIO = 0xae;

const IOC_WRITE = 1; // userspace writes, the kernel reads
const IOC_READ = 2; // the kernel writes back

/** `_IOC(dir, type, nr, size)` as the kernel encodes it on x86-64. */
export function ioc(dir: number, type: number, nr: number, size: number): number {
  // dir in bits 30-31, size in 16-29, type in 8-15, nr in 0-7; `* 2**30` keeps it unsigned.
  return dir * 2 ** 30 + size * 2 ** 16 + type * 2 ** 8 + nr;
}

/** Byte size of `struct kvm_userspace_memory_region2`. */
export const USER_MEMORY_REGION2_SIZE = 160;
/** Byte size of `struct kvm_memory_attributes`. */
export const MEMORY_ATTRIBUTES_SIZE = 32;
/** Byte size of `struct kvm_memory_attributes2` (proposed in-place conversion). */
export const MEMORY_ATTRIBUTES2_SIZE = 128;
/** Byte size of `struct kvm_create_guest_memfd`. */
export const CREATE_GUEST_MEMFD_SIZE = 64;

/** KVM_GET_API_VERSION (`_IO(KVMIO, 0x00)`). */
export const KVM_GET_API_VERSION: number = ioc(0, KVMIO, 0x00, 0);
/** KVM_CREATE_VM (`_IO(KVMIO, 0x01)`): the argument is the VM type as an integer. */
export const KVM_CREATE_VM: number = ioc(0, KVMIO, 0x01, 0);
/** KVM_CHECK_EXTENSION (`_IO(KVMIO, 0x03)`): the argument is the capability number. */
export const KVM_CHECK_EXTENSION: number = ioc(0, KVMIO, 0x03, 0);
/** KVM_SET_USER_MEMORY_REGION2 (`_IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)`). */
export const KVM_SET_USER_MEMORY_REGION2: number = ioc(
  IOC_WRITE,
  KVMIO,
  0x49,
  USER_MEMORY_REGION2_SIZE,
);
/** KVM_SET_MEMORY_ATTRIBUTES (`_IOW(KVMIO, 0xd2, struct kvm_memory_attributes)`). */
export const KVM_SET_MEMORY_ATTRIBUTES: number = ioc(
  IOC_WRITE,
  KVMIO,
  0xd2,
  MEMORY_ATTRIBUTES_SIZE,
);
/**
 * KVM_SET_MEMORY_ATTRIBUTES2 (`_IOWR(KVMIO, 0xd2, struct kvm_memory_attributes2)`),
 * issued on a guest_memfd for in-place conversion. Proposed, not mainline.
 */
export const KVM_SET_MEMORY_ATTRIBUTES2: number = ioc(
  IOC_WRITE | IOC_READ,
  KVMIO,
  0xd2,
  MEMORY_ATTRIBUTES2_SIZE,
);
/** KVM_CREATE_GUEST_MEMFD (`_IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd)`). */
export const KVM_CREATE_GUEST_MEMFD: number = ioc(
  IOC_WRITE | IOC_READ,
  KVMIO,
  0xd4,
  CREATE_GUEST_MEMFD_SIZE,
);

/** The API version every KVM since Linux 2.6.22 reports. */
export const KVM_API_VERSION = 12;

/** KVM_CAP_* numbers the backend probes. */
export const KVM_CAP = {
  /** KVM_SET_USER_MEMORY_REGION2 exists. */
  USER_MEMORY2: 231,
  /** The supported memory attribute mask (ask the VM, not /dev/kvm). */
  MEMORY_ATTRIBUTES: 233,
  /** KVM_CREATE_GUEST_MEMFD exists. */
  GUEST_MEMFD: 234,
  /** Bit N set when VM type N can be created. */
  VM_TYPES: 235,
  /** The guest_memfd flags the kernel accepts (6.18+). */
  GUEST_MEMFD_FLAGS: 244,
} as const;

/** KVM VM types (x86). */
export const KVM_VM_TYPE = {
  /** A plain VM: no private memory. */
  DEFAULT: 0,
  /** Software-protected VM: private memory without hardware encryption (testing). */
  SW_PROTECTED: 1,
  /** AMD SEV. */
  SEV: 2,
  /** AMD SEV-ES. */
  SEV_ES: 3,
  /** AMD SEV-SNP. */
  SNP: 4,
  /** Intel TDX. */
  TDX: 5,
} as const;

/** The fields of `struct kvm_userspace_memory_region2`, numbers only. */
export interface UserMemoryRegion2 {
  /** Slot number (address space id in bits 16-31). */
  slot: number;
  /** KVM_MEM_* flags. */
  flags: number;
  /** Guest physical address. */
  guestPhysAddr: number;
  /** Size in bytes (0 deletes the slot). */
  memorySize: number;
  /** Host virtual address of the shared backing. */
  userspaceAddr: number;
  /** Offset into the guest_memfd. */
  guestMemfdOffset: number;
  /** The guest_memfd file descriptor (0 when not bound). */
  guestMemfd: number;
}

/** Encodes `struct kvm_userspace_memory_region2` (160 bytes; the padding stays zero). */
export function encodeUserMemoryRegion2(r: UserMemoryRegion2): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(USER_MEMORY_REGION2_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, r.slot, true);
  view.setUint32(4, r.flags, true);
  view.setBigUint64(8, toBigU64(r.guestPhysAddr), true);
  view.setBigUint64(16, toBigU64(r.memorySize), true);
  view.setBigUint64(24, toBigU64(r.userspaceAddr), true);
  view.setBigUint64(32, toBigU64(r.guestMemfdOffset), true);
  view.setUint32(40, r.guestMemfd, true);
  // u32 pad at 44, u64 pad2[14] at 48..160: zero.
  return bytes;
}

/** Encodes `struct kvm_memory_attributes` (address, size, attributes, flags). */
export function encodeMemoryAttributes(
  address: number,
  size: number,
  attributes: number,
  flags = 0,
): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(MEMORY_ATTRIBUTES_SIZE);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, toBigU64(address), true);
  view.setBigUint64(8, toBigU64(size), true);
  view.setBigUint64(16, toBigU64(attributes), true);
  view.setBigUint64(24, toBigU64(flags), true);
  return bytes;
}

/**
 * Encodes `struct kvm_memory_attributes2` (offset, size, attributes, flags,
 * then the kernel's out field `error_offset` at byte 32, then reserved).
 */
export function encodeMemoryAttributes2(
  offset: number,
  size: number,
  attributes: number,
  flags = 0,
): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(MEMORY_ATTRIBUTES2_SIZE);
  bytes.set(encodeMemoryAttributes(offset, size, attributes, flags));
  return bytes;
}

/** Reads `error_offset` back from a `struct kvm_memory_attributes2` the kernel filled in. */
export function decodeErrorOffset(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Number(view.getBigUint64(32, true));
}

/** Encodes `struct kvm_create_guest_memfd` (size, flags, reserved[6]). */
export function encodeCreateGuestMemfd(size: number, flags: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(CREATE_GUEST_MEMFD_SIZE);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, toBigU64(size), true);
  view.setBigUint64(8, toBigU64(flags), true);
  return bytes;
}
