/**
 * The real KVM backend: /dev/kvm, one VM, its guest_memfds, shared memfds and
 * memslots, through Deno FFI into libc.
 *
 * Every part the running kernel supports is done for real; the one part a
 * kernel may lack is KVM_SET_MEMORY_ATTRIBUTES (it needs a VM type with
 * private memory, and kernels built without CONFIG_KVM_GENERIC_MEMORY_ATTRIBUTES
 * have no such ioctl at all). Where the VM does not support the private
 * attribute, attributes are kept in a {@link SimMemoryAttributes} table with
 * the kernel's validation rules, {@link LinuxKvm.realParts} says so, and one
 * notice in {@link LinuxKvm.notices} explains why. Where the kernel call is
 * real, the same table records what the kernel accepted, because the kernel
 * has no getter for attributes.
 *
 * Resources: the VM owns every file it created. `close()` (or `using`)
 * unmaps and closes them, then the VM and /dev/kvm; every error path releases
 * what it acquired before throwing.
 *
 * @module
 */

import { HwError } from "../errors.ts";
import {
  type AttributeSpan,
  GUEST_MEMFD_FLAG_MMAP,
  type GuestMemfd,
  KVM_MEMORY_ATTRIBUTE_PRIVATE,
  type KvmBackend,
  type KvmCapabilities,
  type MemoryFile,
  type MemslotSpec,
  type SharedMemoryOptions,
} from "../backend.ts";
import { SimMemoryAttributes } from "../memory_attributes.ts";
import { defaultGuestMemfdFlags } from "../region_backing.ts";
import { u32Arg, u64Arg } from "./arguments.ts";
import { checkU64 } from "../u64.ts";
import {
  encodeMemoryAttributes,
  encodeUserMemoryRegion2,
  KVM_API_VERSION,
  KVM_CAP,
  KVM_CHECK_EXTENSION,
  KVM_CREATE_VM,
  KVM_GET_API_VERSION,
  KVM_SET_MEMORY_ATTRIBUTES,
  KVM_SET_USER_MEMORY_REGION2,
} from "./kvm_ioctls.ts";
import { cString, ioctlInt, ioctlPtr, lastError, libc, withSignalsBlocked } from "./libc.ts";
import { createLinuxGuestMemfd, LinuxGuestMemfd } from "./linux_guest_memfd.ts";
import { closeQuietly, type LinuxMemoryFile, openSharedMemfd } from "./linux_memory_file.ts";
import { KVM_DEVICE, requireKvmPermissions } from "./permissions.ts";

const O_RDWR = 0o2;
const O_CLOEXEC = 0o2000000;

/** Options for {@link openLinuxKvm}. */
export interface LinuxKvmOptions {
  /** KVM VM type (KVM_CREATE_VM argument); default 0, the only type on most hosts. */
  vmType?: number;
  /** Called once per notice as the backend opens (the same text is in `notices`). */
  onNotice?: (message: string) => void;
}

/** Which parts of the backend run on the real kernel (false = emulated in memory). */
export interface RealParts {
  /** KVM_SET_MEMORY_ATTRIBUTES reaches the kernel. */
  attributes: boolean;
  /** guest_memfd files are real (KVM_CAP_GUEST_MEMFD). */
  guestMemfd: boolean;
  /** Hole punching is a real fallocate(PUNCH_HOLE | KEEP_SIZE). */
  punch: boolean;
  /** Memslots are bound with the real KVM_SET_USER_MEMORY_REGION2. */
  memslots: boolean;
}

/** Opens /dev/kvm and creates one VM; see {@link LinuxKvm}. */
export function openLinuxKvm(options: LinuxKvmOptions = {}): LinuxKvm {
  return LinuxKvm.open(options);
}

/** A real KVM VM implementing {@link KvmBackend}; see the module doc. */
export class LinuxKvm implements KvmBackend {
  /** Always `"linux"`. */
  readonly kind: "linux" = "linux";
  /** What this VM supports, as the kernel reports it. */
  readonly capabilities: KvmCapabilities;
  /** The VM type it was created with. */
  readonly vmType: number;
  /** Which parts are real; the others are emulated (see {@link notices}). */
  readonly realParts: Readonly<RealParts>;
  /** One message per part that is not real, saying why and what is done instead. */
  readonly notices: readonly string[];
  #kvmFd: number;
  #vmFd: number;
  #files = new Set<LinuxMemoryFile>();
  #attributes: SimMemoryAttributes;

  private constructor(
    kvmFd: number,
    vmFd: number,
    vmType: number,
    capabilities: KvmCapabilities,
    notices: string[],
  ) {
    this.#kvmFd = kvmFd;
    this.#vmFd = vmFd;
    this.vmType = vmType;
    this.capabilities = capabilities;
    const attributes = (capabilities.memoryAttributes & KVM_MEMORY_ATTRIBUTE_PRIVATE) !== 0;
    this.realParts = Object.freeze({
      attributes,
      guestMemfd: capabilities.guestMemfd,
      punch: true,
      memslots: capabilities.userMemory2,
    });
    // Emulated attributes accept what a VM with private memory would accept.
    this.#attributes = new SimMemoryAttributes(
      attributes ? capabilities.memoryAttributes : KVM_MEMORY_ATTRIBUTE_PRIVATE,
      libc().pageSize,
    );
    this.notices = Object.freeze([...notices]);
  }

  /**
   * Checks permissions, opens /dev/kvm, checks the API version, creates a VM
   * of `options.vmType` and probes its capabilities. Throws `NotCapable`
   * naming a missing permission flag, or a {@link HwError} (`ENOENT` when
   * /dev/kvm is absent, `EACCES` when it cannot be opened, the kernel's errno
   * otherwise). Nothing stays open when it throws.
   */
  static open(options: LinuxKvmOptions = {}): LinuxKvm {
    const vmType = options.vmType ?? 0;
    u32Arg("kvm.open", "vmType", vmType);
    requireKvmPermissions();
    const kvmFd = openDevice();
    let vmFd = -1;
    try {
      const api = checkedIoctl(kvmFd, KVM_GET_API_VERSION, 0, "kvm.open", "KVM_GET_API_VERSION");
      if (api !== KVM_API_VERSION) {
        throw new HwError(
          "kvm.open",
          "EINVAL",
          `${KVM_DEVICE} reports KVM API version ${api}, expected ${KVM_API_VERSION}`,
        );
      }
      const vmTypes = checkExtension(kvmFd, KVM_CAP.VM_TYPES);
      vmFd = createVm(kvmFd, vmType, vmTypes);
      const capabilities: KvmCapabilities = {
        apiVersion: api,
        userMemory2: checkExtension(vmFd, KVM_CAP.USER_MEMORY2) > 0,
        memoryAttributes: checkExtension(vmFd, KVM_CAP.MEMORY_ATTRIBUTES),
        guestMemfd: checkExtension(vmFd, KVM_CAP.GUEST_MEMFD) > 0,
        guestMemfdFlags: checkExtension(vmFd, KVM_CAP.GUEST_MEMFD_FLAGS),
        vmTypes,
        // No mainline capability announces it; the proposed ioctl fails with ENOTTY.
        inPlaceConversion: false,
      };
      const notices = describeMissingParts(vmFd, vmType, capabilities);
      for (const notice of notices) options.onNotice?.(notice);
      return new LinuxKvm(kvmFd, vmFd, vmType, capabilities, notices);
    } catch (error) {
      if (vmFd >= 0) closeQuietly(vmFd);
      closeQuietly(kvmFd);
      throw error;
    }
  }

  /** True once {@link close} ran. */
  get closed(): boolean {
    return this.#vmFd < 0;
  }

  /** KVM_CHECK_EXTENSION on the VM: the raw answer for capability `cap`. */
  checkExtension(cap: number): number {
    u32Arg("kvm.checkExtension", "cap", cap);
    return checkExtension(this.#vm("kvm.checkExtension"), cap);
  }

  /** KVM_CREATE_GUEST_MEMFD, mapped into the host when `flags` has GUEST_MEMFD_FLAG_MMAP. */
  createGuestMemfd(size: number, flags: number): GuestMemfd {
    const vmFd = this.#vm("kvm.createGuestMemfd");
    const file = createLinuxGuestMemfd(vmFd, size, flags, () => this.#files.delete(file));
    this.#files.add(file);
    return file;
  }

  /** memfd_create + ftruncate + mmap(MAP_SHARED): the shared backing. */
  createSharedMemory(size: number, options: SharedMemoryOptions = {}): MemoryFile {
    this.#vm("kvm.createSharedMemory");
    if ((options.backingPageSize ?? 4096) !== 4096) {
      throw new RangeError(
        `kvm.createSharedMemory: backingPageSize ${options.backingPageSize}: the Linux backend ` +
          `creates 4 KiB memfds only (hugetlb backing is modelled by the simulator)`,
      );
    }
    const file = openSharedMemfd(size, () => this.#files.delete(file));
    this.#files.add(file);
    return file;
  }

  /**
   * KVM_SET_USER_MEMORY_REGION2. `spec.guestMemfd` must be a guest_memfd this
   * VM created (`EINVAL` otherwise, as the kernel says for a file that is not
   * one of its guest_memfds) and still open (`EBADF`); the kernel checks the rest.
   */
  setUserMemoryRegion2(spec: MemslotSpec): void {
    const op = "kvm.setUserMemoryRegion2";
    u32Arg(op, "slot", spec.slot);
    u32Arg(op, "flags", spec.flags);
    u64Arg(op, "guestPhysAddr", spec.guestPhysAddr);
    u64Arg(op, "memorySize", spec.memorySize);
    u64Arg(op, "userspaceAddr", spec.userspaceAddr);
    const guestMemfdOffset = spec.guestMemfdOffset ?? 0;
    u64Arg(op, "guestMemfdOffset", guestMemfdOffset);
    // No file: fd -1 (as u32), which the kernel refuses with EBADF if the flag asks for one.
    let gmemFd = 0xffff_ffff;
    if (spec.guestMemfd !== undefined) {
      const gmem = spec.guestMemfd;
      if (gmem instanceof LinuxGuestMemfd && gmem.closed) {
        throw new HwError(op, "EBADF", "guestMemfd is closed");
      }
      if (!(gmem instanceof LinuxGuestMemfd) || !this.#files.has(gmem)) {
        throw new HwError(op, "EINVAL", "guestMemfd was not created by this VM");
      }
      gmemFd = gmem.fd;
    }
    const vmFd = this.#vm(op);
    const request = encodeUserMemoryRegion2({ ...spec, guestMemfdOffset, guestMemfd: gmemFd });
    if (ioctlPtr(vmFd, KVM_SET_USER_MEMORY_REGION2, request) === -1) {
      throw lastError(
        op,
        `KVM_SET_USER_MEMORY_REGION2(slot ${spec.slot}, gpa ${spec.guestPhysAddr}, ` +
          `size ${spec.memorySize})`,
      );
    }
  }

  /**
   * KVM_SET_MEMORY_ATTRIBUTES, all-or-nothing. Real when
   * `realParts.attributes`; otherwise validated and recorded in memory with
   * the kernel's rules (see `notices`).
   */
  setMemoryAttributes(gpa: number, size: number, attributes: number): void {
    const op = "kvm.setMemoryAttributes";
    // A closed VM first, as the simulator's `SimKvm.setMemoryAttributes` does
    // (its `#begin`), so both backends give EBADF for any arguments.
    const vmFd = this.#vm(op);
    if (this.realParts.attributes) {
      // The ioctl must see exact u64s. Emulated, the record checks the same
      // arguments with the same names and messages (SimMemoryAttributes.set).
      checkU64(op, "gpa", gpa);
      checkU64(op, "size", size);
      checkU64(op, "attributes", attributes);
      const request = encodeMemoryAttributes(gpa, size, attributes);
      if (ioctlPtr(vmFd, KVM_SET_MEMORY_ATTRIBUTES, request) === -1) {
        throw lastError(op, `KVM_SET_MEMORY_ATTRIBUTES(gpa ${gpa}, size ${size})`);
      }
    }
    // The kernel accepted it (or is emulated): record it, it has no getter.
    this.#attributes.set(gpa, size, attributes);
  }

  /** The attributes of the guest frame containing `gpa`, as recorded (0 = shared). */
  getMemoryAttributes(gpa: number): number {
    return this.#attributes.get(gpa);
  }

  /** Maximal runs of recorded attributes over `[gpa, gpa + size)` (the kernel has no getter). */
  memoryAttributeRuns(gpa: number, size: number): Iterable<AttributeSpan> {
    return this.#attributes.runs(gpa, size);
  }

  /** Bytes of guest physical memory recorded as private. */
  privateBytes(): number {
    return this.#attributes.privateBytes();
  }

  /** Closes every file this VM created, then the VM and /dev/kvm (idempotent). */
  close(): void {
    if (this.#vmFd < 0) return;
    for (const file of [...this.#files]) file.close();
    const { sym } = libc();
    sym.close(this.#vmFd);
    sym.close(this.#kvmFd);
    this.#vmFd = -1;
    this.#kvmFd = -1;
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #vm(op: string): number {
    if (this.#vmFd < 0) throw new HwError(op, "EBADF", "the KVM VM is closed");
    return this.#vmFd;
  }
}

/** open("/dev/kvm", O_RDWR | O_CLOEXEC), with errors that say what is wrong. */
export function openDevice(): number {
  const op = "kvm.open";
  const fd = libc().sym.open(cString(KVM_DEVICE), O_RDWR | O_CLOEXEC);
  if (fd !== -1) return fd;
  const error = lastError(op, `open(${KVM_DEVICE})`);
  if (error.errno === "ENOENT") {
    throw new HwError(
      op,
      "ENOENT",
      `${KVM_DEVICE} is absent: this host has no KVM (no kvm_intel/kvm_amd module, ` +
        `or virtualization is not exposed to this machine)`,
    );
  }
  if (error.errno === "EACCES" || error.errno === "EPERM") {
    throw new HwError(
      op,
      error.errno,
      `${KVM_DEVICE} exists but cannot be opened read-write by this user ` +
        `(add the user to the kvm group)`,
    );
  }
  throw error;
}

/** KVM_CHECK_EXTENSION: 0 for unknown capabilities, a value or mask otherwise. */
function checkExtension(fd: number, cap: number): number {
  return checkedIoctl(fd, KVM_CHECK_EXTENSION, cap, "kvm.checkExtension", `capability ${cap}`);
}

/**
 * KVM_CREATE_VM with every signal blocked; an unsupported type gets a message
 * listing the types there are. A signal pending while the VM registers its
 * MMU notifier makes mm_take_all_locks (mm/vma.c) give up with -EINTR, which
 * kvm_create_vm (virt/kvm/kvm_main.c) returns as is; QEMU's kvm_init
 * (accel/kvm/kvm-all.c) retries for as long as that happens. A blocked signal
 * is not pending for the kernel (recalc_sigpending, kernel/signal.c), so the
 * call cannot be interrupted, and no handler can overwrite errno before it is
 * read (tests/linux_signals_test.ts shows both under V8's profiler and under a
 * SIGUSR1 flood).
 */
function createVm(kvmFd: number, vmType: number, vmTypes: number): number {
  const created = withSignalsBlocked(() => {
    const fd = ioctlInt(kvmFd, KVM_CREATE_VM, vmType);
    return fd !== -1 ? fd : lastError("kvm.createVm", `KVM_CREATE_VM(type ${vmType})`);
  });
  if (typeof created === "number") return created;
  const error = created;
  if (error.errno === "EINVAL" && (vmType > 30 || (vmTypes & (1 << vmType)) === 0)) {
    const types = [...Array(31).keys()].filter((t) => (vmTypes & (1 << t)) !== 0);
    throw new HwError(
      "kvm.createVm",
      "EINVAL",
      `VM type ${vmType} is not supported here (KVM_CAP_VM_TYPES = 0x${
        vmTypes.toString(16)
      }: types ${types.join(", ") || "none"})`,
    );
  }
  throw error;
}

/** An integer-argument ioctl that returns a non-negative value or throws. */
function checkedIoctl(fd: number, request: number, arg: number, op: string, what: string): number {
  const rc = ioctlInt(fd, request, arg);
  if (rc === -1) throw lastError(op, what);
  return rc;
}

/**
 * The notices for parts that cannot be real on this VM. For attributes it
 * asks the kernel once with a zero size (always EINVAL when the ioctl exists,
 * and changes nothing) to tell "no such ioctl" from "not on this VM type".
 */
function describeMissingParts(vmFd: number, vmType: number, caps: KvmCapabilities): string[] {
  const notices: string[] = [];
  if ((caps.memoryAttributes & KVM_MEMORY_ATTRIBUTE_PRIVATE) === 0) {
    const probe = encodeMemoryAttributes(0, 0, 0);
    const rc = ioctlPtr(vmFd, KVM_SET_MEMORY_ATTRIBUTES, probe);
    const why = rc === -1 && lastError("kvm.setMemoryAttributes", "probe").errno === "ENOTTY"
      ? "this kernel has no KVM_SET_MEMORY_ATTRIBUTES ioctl (ENOTTY)"
      : `VM type ${vmType} supports no memory attributes (KVM_CAP_MEMORY_ATTRIBUTES = ${caps.memoryAttributes})`;
    // Without private memory the backing's guest_memfd is mmap-able and INIT_SHARED (so the
    // host can read it back: region_backing.ts defaultGuestMemfdFlags), which makes its memslot
    // guest_memfd-only (virt/kvm/guest_memfd.c `kvm_gmem_bind`, KVM_MEMSLOT_GMEM_ONLY).
    const gmemOnly = caps.guestMemfd && (defaultGuestMemfdFlags(caps) & GUEST_MEMFD_FLAG_MMAP) !== 0
      ? " With no private memory the guest_memfd is made mmap-able and INIT_SHARED, which makes " +
        "each memslot guest_memfd-only: the shared memfd memstate punches, as QEMU does on a " +
        "confidential VM, backs no page this guest reads."
      : "";
    notices.push(
      `KVM memory attributes are emulated, not real: ${why}. ` +
        "setMemoryAttributes is validated with the kernel's rules and recorded in memory; " +
        "guest_memfd, memslots and hole punching stay real where listed in realParts." + gmemOnly,
    );
  }
  if (!caps.guestMemfd) {
    notices.push(
      "guest_memfd is not supported by this kernel (KVM_CAP_GUEST_MEMFD = 0): " +
        "createGuestMemfd will fail with the kernel's errno.",
    );
  }
  if (!caps.userMemory2) {
    notices.push(
      "KVM_SET_USER_MEMORY_REGION2 is not supported by this kernel (KVM_CAP_USER_MEMORY2 = 0): " +
        "setUserMemoryRegion2 will fail with the kernel's errno.",
    );
  }
  return notices;
}
