/**
 * A simulated KVM virtual machine: capabilities, memslots
 * (KVM_SET_USER_MEMORY_REGION2), the memory attribute table
 * (KVM_SET_MEMORY_ATTRIBUTES), guest_memfd creation and the shared memfd.
 *
 * The rules follow the kernel's checks as of Linux 6.18 (x86-64):
 *
 * - memslots: flags limited to LOG_DIRTY_PAGES | READONLY | GUEST_MEMFD, and
 *   GUEST_MEMFD excludes both others (`EINVAL`); size, guest physical address
 *   and userspace address page aligned, the userspace range below the user
 *   address limit, the guest_memfd offset aligned and not wrapping, slot id and
 *   address space in range (only address space 0 on a VM with private memory:
 *   no SMM), no guest physical wrap, at most 2^31 - 1 pages (`EINVAL`); size 0
 *   deletes and needs an existing slot (`EINVAL`); an existing slot can only
 *   move or change flags, never change size, userspace address, READONLY or
 *   GUEST_MEMFD, and guest_memfd slots cannot change at all (`EINVAL`); a new
 *   or moved slot overlapping another in the same address space is `EEXIST`;
 *   binding a guest_memfd needs a guest_memfd of this VM (`EINVAL`; a closed
 *   one `EBADF`), a range inside the file (`EINVAL`) not bound by another slot
 *   (`EINVAL`: `kvm_gmem_bind` fails with the `-EINVAL` it starts with when
 *   `xa_find` meets a binding; EEXIST only since commit 7ea987a90585 "KVM:
 *   guest_memfd: Return -EEXIST for overlapping bindings", after 6.18, and this
 *   machine's 6.18 kernel answers EINVAL).
 * - guest_memfd creation: `ENOTTY` without KVM_CAP_GUEST_MEMFD, flags outside
 *   KVM_CAP_GUEST_MEMFD_FLAGS `EINVAL`, size 0 or unaligned `EINVAL`
 *   (virt/kvm/guest_memfd.c `kvm_gmem_create`). The supported flags follow the
 *   kernel setting: GUEST_MEMFD_FLAG_MMAP always, GUEST_MEMFD_FLAG_INIT_SHARED
 *   only on a VM without private memory on `linux-6.18`
 *   (`kvm_gmem_get_supported_flags`; x86 `kvm_arch_supports_gmem_init_shared`
 *   is `!kvm_arch_has_private_mem`), and beside private memory on `proposed`.
 * - A memslot bound to a guest_memfd created with GUEST_MEMFD_FLAG_MMAP is
 *   guest_memfd-only (`kvm_gmem_bind` sets `KVM_MEMSLOT_GMEM_ONLY`): KVM
 *   ignores its userspace address for faults ({@link SimMemslot.gmemOnly}).
 * - memory attributes: see {@link SimMemoryAttributes}; the supported mask is
 *   `capabilities.memoryAttributes`.
 *
 * With in-place conversion the file's attribute view and the VM's table are
 * separate (as in the proposed series, where the VM-wide ioctl is not used for
 * such files); the plugin decides which one it drives.
 *
 * @module
 */

import { HwError } from "../errors.ts";
import {
  type AttributeSpan,
  GUEST_MEMFD_FLAG_INIT_SHARED,
  GUEST_MEMFD_FLAG_MMAP,
  type GuestMemfd,
  KVM_MEM_GUEST_MEMFD,
  KVM_MEMORY_ATTRIBUTE_PRIVATE,
  type KvmBackend,
  type KvmCapabilities,
  type MemoryFile,
  type MemslotSpec,
  type SharedMemoryOptions,
} from "../backend.ts";
import type { FaultInjector } from "./faults.ts";
import { HOST_ADDRESS_LIMIT, SimHost } from "./host_memory.ts";
import { SimMemoryAttributes } from "../memory_attributes.ts";
import { SimGuestMemfd, SimMemoryFile } from "./memory_file.ts";
import { addWrapsU64, checkPowerOfTwo, checkU64, hex, isAligned } from "../u64.ts";
import { kernelFeatures, type KernelSetting } from "../../settings/kernel.ts";

/** KVM_MEM_LOG_DIRTY_PAGES. */
export const KVM_MEM_LOG_DIRTY_PAGES = 1 << 0;
/** KVM_MEM_READONLY. */
export const KVM_MEM_READONLY = 1 << 1;
/**
 * Memslots userspace may create per address space on x86-64:
 * `KVM_USER_MEM_SLOTS` = `KVM_MEM_SLOTS_NUM` (SHRT_MAX, include/linux/kvm_host.h)
 * minus `KVM_INTERNAL_MEM_SLOTS` (3, arch/x86/include/asm/kvm_host.h), what
 * KVM_CAP_NR_MEMSLOTS reports and QEMU's `kvm_get_max_memslots()` returns.
 */
export const KVM_USER_MEM_SLOTS = 32764;
/**
 * Memslot address spaces on x86-64: normal and SMM, but only the first on a
 * VM with private memory, where SMM is not supported (arch/x86/include/asm/kvm_host.h
 * `kvm_arch_nr_memslot_as_ids`: `kvm_arch_has_private_mem(kvm) ? 1 : 2`, checked by
 * virt/kvm/kvm_main.c `kvm_set_memory_region`).
 */
function addressSpaces(privateMemory: boolean): number {
  return privateMemory ? 1 : 2;
}
/** KVM_MEM_MAX_NR_PAGES: the most pages one memslot may have. */
const MAX_SLOT_PAGES = 2 ** 31 - 1;

/** Options of {@link SimKvm}. */
export interface SimKvmOptions {
  /** Overrides of the default capabilities (see {@link DEFAULT_SIM_CAPABILITIES}). */
  capabilities?: Partial<KvmCapabilities>;
  /** In-place conversion on guest_memfd (sets `capabilities.inPlaceConversion`). */
  inPlace?: boolean;
  /** The host address space (default: a new one, see {@link SimKvm.host}). */
  host?: SimHost;
  /** Fault injection for every call of this VM and of its files. */
  faults?: FaultInjector;
  /** Guest page size in bytes (default 4096). */
  pageSize?: number;
  /** The kernel (default `"linux-6.18"`); see the module doc. */
  kernel?: KernelSetting;
  /**
   * Whether the VM has private memory (a confidential VM type: default
   * true). The real machines here create VM type 0, which has none. A VM with
   * private memory has one memslot address space (no SMM); it is modelled as
   * KVM_X86_SW_PROTECTED_VM, whose state is not protected, so READONLY slots
   * without a guest_memfd stay allowed (SEV-ES, SEV-SNP and TDX refuse them:
   * arch/x86/include/asm/kvm_host.h `kvm_arch_has_readonly_mem`).
   */
  privateMemory?: boolean;
}

/** The capabilities a {@link SimKvm} has unless told otherwise. */
export const DEFAULT_SIM_CAPABILITIES: Readonly<KvmCapabilities> = Object.freeze({
  apiVersion: 12,
  userMemory2: true,
  memoryAttributes: KVM_MEMORY_ATTRIBUTE_PRIVATE,
  guestMemfd: true,
  guestMemfdFlags: GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
  vmTypes: (1 << 0) | (1 << 1),
  inPlaceConversion: false,
});

/** A memslot as the simulated VM holds it. */
export interface SimMemslot {
  /** Slot number including the address space in the upper 16 bits. */
  slot: number;
  /** KVM_MEM_* flags. */
  flags: number;
  /** Guest physical address. */
  guestPhysAddr: number;
  /** Size in bytes. */
  memorySize: number;
  /** Host virtual address of the shared backing. */
  userspaceAddr: number;
  /** The bound guest_memfd, if any. */
  guestMemfd?: SimGuestMemfd;
  /** Offset into the guest_memfd. */
  guestMemfdOffset: number;
  /** True when KVM serves every fault from the guest_memfd (`KVM_MEMSLOT_GMEM_ONLY`). */
  gmemOnly: boolean;
}

/** Counters for plugin statistics and invariant checks. */
export interface SimKvmStats {
  /** Successful KVM_SET_MEMORY_ATTRIBUTES calls. */
  attributeCalls: number;
  /** Bytes covered by successful KVM_SET_MEMORY_ATTRIBUTES calls. */
  attributeBytes: number;
  /** Bytes currently private in the VM's attribute table. */
  privateBytes: number;
  /** Successful KVM_SET_USER_MEMORY_REGION2 calls. */
  memslotCalls: number;
  /** Live memslots. */
  memslots: number;
  /** guest_memfd files created. */
  guestMemfds: number;
  /** Shared memfd files created. */
  sharedFiles: number;
  /** Successful hole punches on guest_memfd files. */
  guestMemfdPunchCalls: number;
  /** Bytes punched from guest_memfd files. */
  guestMemfdPunchedBytes: number;
  /** Successful hole punches on shared memfd files. */
  sharedPunchCalls: number;
  /** Bytes punched from shared memfd files. */
  sharedPunchedBytes: number;
  /** Successful in-place conversions on guest_memfd files. */
  inPlaceConversions: number;
}

/** A simulated KVM VM with the kernel's rules, errno values and fault injection. */
export class SimKvm implements KvmBackend {
  /** Always `"sim"`. */
  readonly kind = "sim" as const;
  /** What this VM supports. */
  readonly capabilities: KvmCapabilities;
  /** Guest page size in bytes. */
  readonly pageSize: number;
  /** The host address space files are mapped into; hand it to the IOMMU simulators. */
  readonly host: SimHost;
  /** Fault injection, if any. */
  readonly faults?: FaultInjector;
  /** The VM-wide attribute table (KVM_SET_MEMORY_ATTRIBUTES). */
  readonly attributes: SimMemoryAttributes;
  /** The kernel this VM models. */
  readonly kernel: KernelSetting;
  /** Whether the VM has private memory. */
  readonly privateMemory: boolean;
  #slots = new Map<number, SimMemslot>();
  #guestMemfds: SimGuestMemfd[] = [];
  #sharedFiles: SimMemoryFile[] = [];
  #closed = false;
  #attributeBytes = 0;
  #memslotCalls = 0;

  /** Creates a VM; see {@link SimKvmOptions} for the defaults. */
  constructor(options: SimKvmOptions = {}) {
    this.pageSize = options.pageSize ?? 4096;
    checkPowerOfTwo("pageSize", this.pageSize, 4096, 2 ** 30);
    const kernel = kernelFeatures(options.kernel);
    this.kernel = kernel.name;
    this.privateMemory = options.privateMemory ?? true;
    const initShared = !this.privateMemory || kernel.initSharedWithPrivate;
    this.capabilities = {
      ...DEFAULT_SIM_CAPABILITIES,
      memoryAttributes: this.privateMemory ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
      guestMemfdFlags: GUEST_MEMFD_FLAG_MMAP | (initShared ? GUEST_MEMFD_FLAG_INIT_SHARED : 0),
      inPlaceConversion: kernel.inPlaceConversion,
      ...options.capabilities,
      ...(options.inPlace === undefined ? {} : { inPlaceConversion: options.inPlace }),
    };
    this.host = options.host ?? new SimHost();
    this.faults = options.faults;
    this.attributes = new SimMemoryAttributes(this.capabilities.memoryAttributes, this.pageSize);
  }

  /** KVM_CREATE_GUEST_MEMFD. */
  createGuestMemfd(size: number, flags: number): GuestMemfd {
    return this.createSimGuestMemfd(size, flags);
  }

  /** {@link createGuestMemfd} typed as the simulated file, for tests and invariant checks. */
  createSimGuestMemfd(size: number, flags: number): SimGuestMemfd {
    const op = "kvm.createGuestMemfd";
    this.#begin(op);
    if (!this.capabilities.guestMemfd) {
      throw new HwError(op, "ENOTTY", "KVM_CAP_GUEST_MEMFD is not supported");
    }
    checkU64(op, "size", size);
    checkU64(op, "flags", flags);
    if (flags > 0x7fffffff || (flags & ~this.capabilities.guestMemfdFlags) !== 0) {
      throw new HwError(
        op,
        "EINVAL",
        `flags ${hex(flags)} outside the supported ${hex(this.capabilities.guestMemfdFlags)}`,
      );
    }
    if (size === 0 || !isAligned(size, this.pageSize)) {
      throw new HwError(op, "EINVAL", `size ${hex(size)} must be > 0 and page aligned`);
    }
    if (size > Number.MAX_SAFE_INTEGER) {
      throw new HwError(op, "ENOMEM", `size ${hex(size)} is too large to simulate`);
    }
    const file = new SimGuestMemfd(size, {
      host: this.host,
      faults: this.faults,
      pageSize: this.pageSize,
      flags,
      inPlace: this.capabilities.inPlaceConversion,
      name: `guest_memfd#${this.#guestMemfds.length + 1}`,
    });
    this.#guestMemfds.push(file);
    return file;
  }

  /** memfd_create + ftruncate + mmap(MAP_SHARED): `EINVAL` for size 0 or unaligned. */
  createSharedMemory(size: number, options: SharedMemoryOptions = {}): MemoryFile {
    return this.createSimSharedMemory(size, options);
  }

  /**
   * {@link createSharedMemory} typed as the simulated file; a hugetlb backing
   * (`backingPageSize` 2 MiB or 1 GiB) needs a size that is a multiple of it
   * (`EINVAL`, as ftruncate on hugetlbfs).
   */
  createSimSharedMemory(size: number, options: SharedMemoryOptions = {}): SimMemoryFile {
    const op = "kvm.createSharedMemory";
    this.#begin(op);
    checkU64(op, "size", size);
    if (size === 0 || !isAligned(size, this.pageSize)) {
      throw new HwError(op, "EINVAL", `size ${hex(size)} must be > 0 and page aligned`);
    }
    if (size > Number.MAX_SAFE_INTEGER) {
      throw new HwError(op, "ENOMEM", `size ${hex(size)} is too large to simulate`);
    }
    const backingPageSize = options.backingPageSize ?? 4096;
    if (![4096, 2 ** 21, 2 ** 30].includes(backingPageSize)) {
      throw new RangeError(
        `${op}: backingPageSize must be 4 KiB, 2 MiB or 1 GiB, got ${backingPageSize}`,
      );
    }
    if (!isAligned(size, backingPageSize)) {
      throw new HwError(
        op,
        "EINVAL",
        `size ${hex(size)} must be a multiple of the hugetlb page size ${hex(backingPageSize)}`,
      );
    }
    const file = new SimMemoryFile(size, {
      host: this.host,
      faults: this.faults,
      pageSize: this.pageSize,
      backingPageSize,
      name: `memfd#${this.#sharedFiles.length + 1}`,
    });
    this.#sharedFiles.push(file);
    return file;
  }

  /** KVM_SET_USER_MEMORY_REGION2 with the checks listed in the module doc. */
  setUserMemoryRegion2(spec: MemslotSpec): void {
    const op = "kvm.setUserMemoryRegion2";
    this.#begin(op);
    if (!this.capabilities.userMemory2) {
      throw new HwError(op, "ENOTTY", "KVM_CAP_USER_MEMORY2 is not supported");
    }
    if (typeof spec !== "object" || spec === null) {
      throw new TypeError(`${op}: spec must be an object, got ${String(spec)}`);
    }
    const { slot, flags, guestPhysAddr: gpa, memorySize: size, userspaceAddr: uaddr } = spec;
    const gmemOffset = spec.guestMemfdOffset ?? 0;
    for (
      const [name, value] of [
        ["slot", slot],
        ["flags", flags],
        ["guestPhysAddr", gpa],
        ["memorySize", size],
        ["userspaceAddr", uaddr],
        ["guestMemfdOffset", gmemOffset],
      ] as const
    ) checkU64(op, name, value);
    if (slot > 0xffffffff) throw new RangeError(`${op}: slot must be a u32, got ${slot}`);
    if (flags > 0xffffffff) throw new RangeError(`${op}: flags must be a u32, got ${flags}`);
    const withGmem = (flags & KVM_MEM_GUEST_MEMFD) !== 0;
    const einval = (why: string): never => {
      throw new HwError(op, "EINVAL", why);
    };

    // check_memory_region_flags
    let valid = KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY;
    if (this.capabilities.guestMemfd) valid |= KVM_MEM_GUEST_MEMFD;
    // Dirty logging and read-only slots are not supported with private memory.
    if (withGmem) valid &= ~(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY);
    if ((flags & ~valid) !== 0) einval(`flags ${hex(flags)} not valid here (valid: ${hex(valid)})`);

    // General sanity checks, in the kernel's order.
    if (!isAligned(size, this.pageSize)) einval(`memorySize ${hex(size)} is not page aligned`);
    if (!isAligned(gpa, this.pageSize)) einval(`guestPhysAddr ${hex(gpa)} is not page aligned`);
    if (!isAligned(uaddr, this.pageSize)) einval(`userspaceAddr ${hex(uaddr)} is not page aligned`);
    if (uaddr + size > HOST_ADDRESS_LIMIT) {
      einval(`userspaceAddr ${hex(uaddr)}+${hex(size)} is beyond the user address space`);
    }
    if (withGmem && (!isAligned(gmemOffset, this.pageSize) || addWrapsU64(gmemOffset, size))) {
      einval(`guestMemfdOffset ${hex(gmemOffset)} is unaligned or wraps`);
    }
    const asId = Math.floor(slot / 65536);
    const id = slot % 65536;
    if (asId >= addressSpaces(this.privateMemory) || id >= KVM_USER_MEM_SLOTS) {
      einval(
        `slot ${hex(slot)}: address space ${asId} or id ${id} out of range` +
          (asId === 1 && this.privateMemory ? " (a VM with private memory has no SMM space)" : ""),
      );
    }
    if (addWrapsU64(gpa, size)) einval(`guestPhysAddr ${hex(gpa)}+${hex(size)} wraps`);
    if (size / this.pageSize > MAX_SLOT_PAGES) {
      einval(`memorySize ${hex(size)} exceeds ${MAX_SLOT_PAGES} pages`);
    }

    const old = this.#slots.get(slot);
    if (size === 0) {
      if (old === undefined) einval(`slot ${slot} does not exist, cannot delete it`);
      this.#slots.delete(slot);
      this.#memslotCalls++;
      return;
    }
    if (old !== undefined) {
      // Private memslots are immutable; the others may only move or change flags.
      if (withGmem) einval(`slot ${slot} exists; guest_memfd slots cannot be modified`);
      if (uaddr !== old.userspaceAddr || size !== old.memorySize) {
        einval(`slot ${slot} exists; its size and userspace address cannot change`);
      }
      if (((flags ^ old.flags) & (KVM_MEM_READONLY | KVM_MEM_GUEST_MEMFD)) !== 0) {
        einval(`slot ${slot} exists; READONLY and GUEST_MEMFD cannot change`);
      }
      if (gpa === old.guestPhysAddr && flags === old.flags) {
        this.#memslotCalls++; // nothing to change, as in the kernel
        return;
      }
    }
    if (old === undefined || gpa !== old.guestPhysAddr) {
      const other = this.#overlapping(asId, slot, gpa, size);
      if (other !== undefined) {
        throw new HwError(
          op,
          "EEXIST",
          `${hex(gpa)}+${hex(size)} overlaps slot ${other.slot} at ${hex(other.guestPhysAddr)}+${
            hex(other.memorySize)
          }`,
        );
      }
    }
    let file: SimGuestMemfd | undefined;
    if (withGmem) file = this.#checkBinding(op, spec.guestMemfd, gmemOffset, size);
    this.#slots.set(slot, {
      slot,
      flags,
      guestPhysAddr: gpa,
      memorySize: size,
      userspaceAddr: uaddr,
      guestMemfd: file,
      guestMemfdOffset: withGmem ? gmemOffset : 0,
      gmemOnly: file !== undefined && (file.flags & GUEST_MEMFD_FLAG_MMAP) !== 0,
    });
    this.#memslotCalls++;
  }

  /** KVM_SET_MEMORY_ATTRIBUTES: `EINVAL` for bits outside `capabilities.memoryAttributes`. */
  setMemoryAttributes(gpa: number, size: number, attributes: number): void {
    const op = "kvm.setMemoryAttributes";
    this.#begin(op);
    this.attributes.set(gpa, size, attributes, 0);
    this.#attributeBytes += size;
  }

  /** The attributes of the guest frame containing `gpa` (shared = 0). */
  getMemoryAttributes(gpa: number): number {
    return this.attributes.get(gpa);
  }

  /** Maximal runs of equal attributes over `[gpa, gpa + size)`. */
  memoryAttributeRuns(gpa: number, size: number): Iterable<AttributeSpan> {
    return this.attributes.runs(gpa, size);
  }

  /** The live memslots, by slot number. */
  memslots(): SimMemslot[] {
    return [...this.#slots.values()].sort((a, b) => a.slot - b.slot).map((s) => ({ ...s }));
  }

  /** Every guest_memfd created by this VM. */
  guestMemfds(): readonly SimGuestMemfd[] {
    return [...this.#guestMemfds];
  }

  /** Every shared memfd created by this VM. */
  sharedFiles(): readonly SimMemoryFile[] {
    return [...this.#sharedFiles];
  }

  /** Counters for statistics and invariant checks. */
  get stats(): SimKvmStats {
    const sum = (files: readonly { punchCalls: number; punchedBytes: number }[]) =>
      files.reduce((a, f) => [a[0] + f.punchCalls, a[1] + f.punchedBytes], [0, 0]);
    const [gCalls, gBytes] = sum(this.#guestMemfds);
    const [sCalls, sBytes] = sum(this.#sharedFiles);
    return {
      attributeCalls: this.attributes.setCalls,
      attributeBytes: this.#attributeBytes,
      privateBytes: this.attributes.privateBytes(),
      memslotCalls: this.#memslotCalls,
      memslots: this.#slots.size,
      guestMemfds: this.#guestMemfds.length,
      sharedFiles: this.#sharedFiles.length,
      guestMemfdPunchCalls: gCalls,
      guestMemfdPunchedBytes: gBytes,
      sharedPunchCalls: sCalls,
      sharedPunchedBytes: sBytes,
      inPlaceConversions: this.#guestMemfds.reduce((a, f) => a + f.conversions, 0),
    };
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes the VM and every file created from it (idempotent); later calls fail with `EBADF`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const f of this.#guestMemfds) f.close();
    for (const f of this.#sharedFiles) f.close();
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  #begin(op: Parameters<FaultInjector["check"]>[0]): void {
    this.faults?.check(op);
    if (this.#closed) throw new HwError(op, "EBADF", "the VM is closed");
  }

  #overlapping(asId: number, slot: number, gpa: number, size: number): SimMemslot | undefined {
    const end = gpa + size;
    for (const s of this.#slots.values()) {
      if (s.slot === slot || Math.floor(s.slot / 65536) !== asId) continue;
      if (s.guestPhysAddr < end && gpa < s.guestPhysAddr + s.memorySize) return s;
    }
    return undefined;
  }

  /**
   * kvm_gmem_bind: the file must be ours and open, the range inside it and not
   * bound yet (each `EINVAL` on 6.18, see the module documentation).
   */
  #checkBinding(
    op: string,
    file: GuestMemfd | undefined,
    offset: number,
    size: number,
  ): SimGuestMemfd {
    if (file === undefined) {
      throw new HwError(op, "EBADF", "KVM_MEM_GUEST_MEMFD set but no guestMemfd given");
    }
    if (!(file instanceof SimGuestMemfd) || !this.#guestMemfds.includes(file)) {
      throw new HwError(op, "EINVAL", "guestMemfd was not created by this VM");
    }
    if (file.closed) throw new HwError(op, "EBADF", `${file.name} is closed`);
    if (offset + size > file.size) {
      throw new HwError(
        op,
        "EINVAL",
        `guest_memfd range ${hex(offset)}+${hex(size)} is past the end of ${file.name} (${
          hex(file.size)
        })`,
      );
    }
    for (const s of this.#slots.values()) {
      if (s.guestMemfd !== file) continue;
      if (s.guestMemfdOffset < offset + size && offset < s.guestMemfdOffset + s.memorySize) {
        throw new HwError(
          op,
          "EINVAL",
          `${file.name} range ${hex(offset)}+${hex(size)} is already bound to slot ${s.slot}`,
        );
      }
    }
    return file;
  }
}
