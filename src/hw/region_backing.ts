/**
 * The backing of one guest RAM region: a guest_memfd for the private side, a
 * shared memfd for the host-visible side, and the memslot that binds both at
 * a guest physical address (KVM_SET_USER_MEMORY_REGION2 with
 * KVM_MEM_GUEST_MEMFD), acquired as one unit. In in-place mode there is no
 * shared memfd: the guest_memfd is mmap()ed and serves both sides.
 *
 * It is written against the {@link KvmBackend} interface, so the same code
 * sets up a region on the real kernel and on the simulator (the differential
 * test relies on that). Acquisition goes through a `DisposableStack`: if any
 * step fails (say the memslot ioctl after both files were created and
 * mapped), everything acquired so far is released before the error
 * propagates.
 *
 * @module
 */

import { HwError } from "./errors.ts";
import {
  GUEST_MEMFD_FLAG_INIT_SHARED,
  GUEST_MEMFD_FLAG_MMAP,
  type GuestMemfd,
  KVM_MEM_GUEST_MEMFD,
  type KvmBackend,
  type KvmCapabilities,
  type MemoryFile,
} from "./backend.ts";

/** Where and how big a region is. */
export interface RegionBackingSpec {
  /** Memslot number. */
  slot: number;
  /** Guest physical address of the region, page aligned. */
  guestPhysAddr: number;
  /** Size in bytes, page aligned. */
  size: number;
  /** guest_memfd flags; default {@link defaultGuestMemfdFlags} of the backend. */
  guestMemfdFlags?: number;
  /**
   * `"separate"` (default): guest_memfd + shared memfd. `"in-place"`: only a
   * guest_memfd created with GUEST_MEMFD_FLAG_MMAP, mapped as the shared side.
   */
  mode?: "separate" | "in-place";
  /** The shared memfd's page size (separate mode): 4 KiB (default), 2 MiB or 1 GiB hugetlb. */
  backingPageSize?: number;
}

/** A region's guest_memfd, shared memfd and memslot; released together. */
export interface RegionBacking extends Disposable {
  /** The memslot number. */
  readonly slot: number;
  /** Guest physical address of the region. */
  readonly guestPhysAddr: number;
  /** Size in bytes. */
  readonly size: number;
  /** The private side. */
  readonly guestMemfd: GuestMemfd;
  /** The shared (host-visible) side; absent in in-place mode. */
  readonly shared?: MemoryFile;
  /** Host virtual address the memslot maps as its shared side. */
  readonly hostAddress: number;
  /** Deletes the memslot and closes both files (idempotent). */
  close(): void;
}

/** A separate-mode backing: the shared memfd is always there. */
export interface SeparateRegionBacking extends RegionBacking {
  /** The shared (host-visible) side. */
  readonly shared: MemoryFile;
}

/**
 * The guest_memfd flags of a separate backing. On a VM with private memory,
 * 0: a guest_memfd for private pages beside ordinary shared memory, because a
 * memslot bound to an mmap-able guest_memfd is guest_memfd-only
 * (virt/kvm/guest_memfd.c `kvm_gmem_bind` sets `KVM_MEMSLOT_GMEM_ONLY`) and
 * would ignore the shared memfd. On a VM without private memory (the real
 * machines' VM type 0), MMAP | INIT_SHARED when the kernel accepts both, so
 * the host can read the guest_memfd's pages back to check them.
 */
export function defaultGuestMemfdFlags(capabilities: KvmCapabilities): number {
  if (capabilities.memoryAttributes !== 0) return 0;
  const wanted = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
  return (capabilities.guestMemfdFlags & wanted) === wanted ? wanted : 0;
}

/** Separate mode (the default): the result always has a shared memfd. */
export function createRegionBacking(
  backend: KvmBackend,
  spec: RegionBackingSpec & { mode?: "separate" },
): SeparateRegionBacking;
/**
 * Creates the guest_memfd and the shared memfd (separate mode) and binds them
 * in memslot `spec.slot`. All or nothing: on failure nothing stays open or bound.
 */
export function createRegionBacking(backend: KvmBackend, spec: RegionBackingSpec): RegionBacking;
export function createRegionBacking(backend: KvmBackend, spec: RegionBackingSpec): RegionBacking {
  const inPlace = spec.mode === "in-place";
  const flags = spec.guestMemfdFlags ??
    (inPlace ? GUEST_MEMFD_FLAG_MMAP : defaultGuestMemfdFlags(backend.capabilities));
  using stack = new DisposableStack();
  const guestMemfd = stack.use(backend.createGuestMemfd(spec.size, flags));
  const shared = inPlace ? undefined : stack.use(
    backend.createSharedMemory(spec.size, { backingPageSize: spec.backingPageSize }),
  );
  const hostAddress = (shared ?? guestMemfd).hostAddress;
  backend.setUserMemoryRegion2({
    slot: spec.slot,
    flags: KVM_MEM_GUEST_MEMFD,
    guestPhysAddr: spec.guestPhysAddr,
    memorySize: spec.size,
    userspaceAddr: hostAddress,
    guestMemfd,
    guestMemfdOffset: 0,
  });
  const owned = stack.move();
  let open = true;
  const close = (): void => {
    if (!open) return;
    open = false;
    try {
      deleteMemslot(backend, spec.slot);
    } finally {
      owned.dispose();
    }
  };
  return {
    slot: spec.slot,
    guestPhysAddr: spec.guestPhysAddr,
    size: spec.size,
    guestMemfd,
    shared,
    hostAddress,
    close,
    [Symbol.dispose]: close,
  };
}

/**
 * Deletes a memslot (memory_size 0). A VM that is already closed has no
 * memslots left, so `EBADF` from it is not an error here.
 */
function deleteMemslot(backend: KvmBackend, slot: number): void {
  try {
    backend.setUserMemoryRegion2({
      slot,
      flags: 0,
      guestPhysAddr: 0,
      memorySize: 0,
      userspaceAddr: 0,
    });
  } catch (error) {
    if (!(error instanceof HwError && error.errno === "EBADF")) throw error;
  }
}
