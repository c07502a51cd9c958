/**
 * A real guest_memfd (KVM_CREATE_GUEST_MEMFD) with, when it was created with
 * GUEST_MEMFD_FLAG_MMAP, its host mapping.
 *
 * Host access follows the kernel's fault rule rather than triggering it: a
 * guest_memfd created without GUEST_MEMFD_FLAG_INIT_SHARED starts private and
 * a host touch of a private page raises SIGBUS, which would kill the Deno
 * process. `read`/`write` therefore check the page's attributes first and
 * throw `EFAULT` instead, as the simulator does.
 *
 * In-place conversion (KVM_SET_MEMORY_ATTRIBUTES2 on the file) is a proposed
 * kernel interface, not mainline: `setAttributes` issues the real ioctl and
 * reports the kernel's errno (ENOTTY on mainline kernels). If a kernel ever
 * accepts it, the result is recorded so `getAttributes` can answer (the kernel
 * has no getter).
 *
 * @module
 */

import { HwError } from "../errors.ts";
import {
  GUEST_MEMFD_FLAG_INIT_SHARED,
  GUEST_MEMFD_FLAG_MMAP,
  type GuestMemfd,
  KVM_MEMORY_ATTRIBUTE_PRIVATE,
} from "../backend.ts";
import { SimMemoryAttributes } from "../memory_attributes.ts";
import { u64Arg } from "./arguments.ts";
import {
  decodeErrorOffset,
  encodeCreateGuestMemfd,
  encodeMemoryAttributes2,
  KVM_CREATE_GUEST_MEMFD,
  KVM_SET_MEMORY_ATTRIBUTES2,
} from "./kvm_ioctls.ts";
import { ioctlPtr, lastError, libc } from "./libc.ts";
import { closeQuietly, LinuxMemoryFile, mapShared } from "./linux_memory_file.ts";

/** A guest_memfd file; see the module doc. */
export class LinuxGuestMemfd extends LinuxMemoryFile implements GuestMemfd {
  /** The GUEST_MEMFD_FLAG_* flags it was created with. */
  readonly flags: number;
  /** In-place attributes, created on the first conversion the kernel accepts. */
  #inPlace?: SimMemoryAttributes;

  /** Takes ownership of `fd` and `mapping` (see {@link createLinuxGuestMemfd}). */
  constructor(
    fd: number,
    size: number,
    flags: number,
    mapping: Deno.PointerObject | null,
    onClose?: () => void,
  ) {
    super({ kind: "gmem", fd, size, mapping, onClose });
    this.flags = flags;
  }

  /**
   * KVM_SET_MEMORY_ATTRIBUTES2 on this file (proposed in-place conversion).
   * Throws the kernel's errno; `EAGAIN` carries the kernel's `error_offset`.
   */
  setAttributes(offset: number, size: number, attributes: number): void {
    const op = "gmem.setAttributes";
    u64Arg(op, "offset", offset);
    u64Arg(op, "size", size);
    u64Arg(op, "attributes", attributes);
    if (this.closed) throw new HwError(op, "EBADF", "the guest_memfd is closed");
    const request = encodeMemoryAttributes2(offset, size, attributes);
    if (ioctlPtr(this.fd, KVM_SET_MEMORY_ATTRIBUTES2, request) === -1) {
      const error = lastError(op, "KVM_SET_MEMORY_ATTRIBUTES2");
      if (error.errno === "ENOTTY") {
        throw new HwError(
          op,
          "ENOTTY",
          "this kernel has no in-place conversion (KVM_SET_MEMORY_ATTRIBUTES2 on a " +
            "guest_memfd is a proposed interface, not mainline)",
        );
      }
      if (error.errno === "EAGAIN") {
        const errorOffset = decodeErrorOffset(request);
        throw new HwError(op, "EAGAIN", `page at offset ${errorOffset} is still in use`, {
          errorOffset,
        });
      }
      throw error;
    }
    this.#tracker().set(offset, size, attributes);
  }

  /** The attributes of the page at `offset` (in-place view; 0 = shared). */
  getAttributes(offset: number): number {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= this.size) {
      throw new RangeError(
        `gmem.getAttributes: offset must be an integer in [0, ${this.size}), got ${offset}`,
      );
    }
    if (this.#inPlace) return this.#inPlace.get(offset);
    return this.#initialAttributes();
  }

  /** Private pages would SIGBUS on a host touch: refuse with `EFAULT` instead. */
  protected override checkHostAccess(op: string, offset: number, length: number): void {
    if (length === 0) return;
    const runs = this.#inPlace
      ? this.#inPlace.runs(offset, length)
      : [{ gpa: offset, size: length, attributes: this.#initialAttributes() }];
    for (const run of runs) {
      if ((run.attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE) !== 0) {
        const at = Math.max(run.gpa, offset);
        throw new HwError(
          op,
          "EFAULT",
          `SIGBUS: offset ${at} is in a page private to the guest; the host may not touch it`,
        );
      }
    }
  }

  #initialAttributes(): number {
    return (this.flags & GUEST_MEMFD_FLAG_INIT_SHARED) !== 0 ? 0 : KVM_MEMORY_ATTRIBUTE_PRIVATE;
  }

  #tracker(): SimMemoryAttributes {
    if (!this.#inPlace) {
      this.#inPlace = new SimMemoryAttributes(KVM_MEMORY_ATTRIBUTE_PRIVATE, libc().pageSize);
      const initial = this.#initialAttributes();
      if (initial !== 0) this.#inPlace.set(0, this.size, initial);
    }
    return this.#inPlace;
  }
}

/**
 * KVM_CREATE_GUEST_MEMFD on `vmFd`, then (with GUEST_MEMFD_FLAG_MMAP) mmap of
 * the whole file. If the mapping fails the new fd is closed before the error
 * is thrown, so nothing leaks.
 */
export function createLinuxGuestMemfd(
  vmFd: number,
  size: number,
  flags: number,
  onClose?: () => void,
): LinuxGuestMemfd {
  const op = "kvm.createGuestMemfd";
  u64Arg(op, "size", size);
  u64Arg(op, "flags", flags);
  const request = encodeCreateGuestMemfd(size, flags);
  const fd = ioctlPtr(vmFd, KVM_CREATE_GUEST_MEMFD, request);
  if (fd === -1) {
    throw lastError(op, `KVM_CREATE_GUEST_MEMFD(size ${size}, flags 0x${flags.toString(16)})`);
  }
  try {
    const mapping = (flags & GUEST_MEMFD_FLAG_MMAP) !== 0 ? mapShared(op, fd, size) : null;
    return new LinuxGuestMemfd(fd, size, flags, mapping, onClose);
  } catch (error) {
    closeQuietly(fd);
    throw error;
  }
}
