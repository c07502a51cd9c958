/**
 * The interfaces plugins drive. Each has a simulated implementation in
 * `src/hw/sim` (faithful to the kernel's rules and errno values, with fault
 * injection) and, for KVM and guest_memfd, a real one in `src/hw/linux`.
 *
 * Addresses and sizes are JavaScript numbers (byte counts up to 2^53 are exact,
 * which covers a 4 PiB guest); the u64 corner cases the kernel checks
 * (wrap-around, "everything" ranges) are handled inside the implementations.
 * Every failed call throws a `HwError` (`src/hw/errors.ts`) and changes nothing unless said.
 *
 * @module
 */

/** KVM_MEMORY_ATTRIBUTE_PRIVATE: the only memory attribute KVM defines today. */
export const KVM_MEMORY_ATTRIBUTE_PRIVATE = 1 << 3;
/** guest_memfd flag: the file can be mmap()ed by the host. */
export const GUEST_MEMFD_FLAG_MMAP = 1 << 0;
/** guest_memfd flag: pages start shared (host-accessible) rather than private. */
export const GUEST_MEMFD_FLAG_INIT_SHARED = 1 << 1;
/** KVM_MEM_GUEST_MEMFD: a memslot whose private side is backed by a guest_memfd. */
export const KVM_MEM_GUEST_MEMFD = 1 << 2;
/** fallocate mode bit: keep the file size (required by guest_memfd). */
export const FALLOC_FL_KEEP_SIZE = 0x01;
/** fallocate mode bit: deallocate the range (a hole reads as zero). */
export const FALLOC_FL_PUNCH_HOLE = 0x02;

/** What a KVM implementation can do, as probed (or as simulated). */
export interface KvmCapabilities {
  /** KVM_GET_API_VERSION (12 on every kernel since 2.6.22). */
  apiVersion: number;
  /** KVM_CAP_USER_MEMORY2. */
  userMemory2: boolean;
  /** KVM_CAP_MEMORY_ATTRIBUTES on the VM: the supported attribute mask (0 = none). */
  memoryAttributes: number;
  /** KVM_CAP_GUEST_MEMFD. */
  guestMemfd: boolean;
  /** KVM_CAP_GUEST_MEMFD_FLAGS: the guest_memfd flags the kernel accepts. */
  guestMemfdFlags: number;
  /** KVM_CAP_VM_TYPES: bit N set when VM type N can be created. */
  vmTypes: number;
  /** In-place conversion through KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd (proposed). */
  inPlaceConversion: boolean;
}

/** Options of {@link KvmBackend.createSharedMemory}. */
export interface SharedMemoryOptions {
  /** The backing's page size in bytes: 4096 (default), 2 MiB or 1 GiB (hugetlb). */
  backingPageSize?: number;
}

/** A memslot as passed to KVM_SET_USER_MEMORY_REGION2. */
export interface MemslotSpec {
  /** Slot number (address space in the upper 16 bits, as in the kernel). */
  slot: number;
  /** KVM_MEM_* flags; {@link KVM_MEM_GUEST_MEMFD} binds `guestMemfd`. */
  flags: number;
  /** Guest physical address of the slot, page aligned. */
  guestPhysAddr: number;
  /** Size in bytes, page aligned; 0 deletes the slot. */
  memorySize: number;
  /** Host virtual address of the shared backing. */
  userspaceAddr: number;
  /** The guest_memfd that backs the private side (with KVM_MEM_GUEST_MEMFD). */
  guestMemfd?: GuestMemfd;
  /** Offset into `guestMemfd`, page aligned. */
  guestMemfdOffset?: number;
}

/**
 * A file of host memory: the shared memfd or a guest_memfd. Offsets and lengths
 * are bytes. `read`/`write` go through the host mapping (they throw where the
 * kernel would fault).
 */
export interface MemoryFile extends Disposable {
  /** File size in bytes. */
  readonly size: number;
  /** Host virtual address of the file's mapping (0 when it cannot be mapped). */
  readonly hostAddress: number;
  /** fallocate(2) with `mode` over `[offset, offset + length)`. */
  fallocate(mode: number, offset: number, length: number): void;
  /** Shorthand for fallocate(PUNCH_HOLE | KEEP_SIZE): the range reads zero afterwards. */
  punchHole(offset: number, length: number): void;
  /** Bytes inside `[offset, offset + length)` that are backed by allocated pages. */
  allocatedBytes(offset?: number, length?: number): number;
  /** Reads through the host mapping. */
  read(offset: number, length: number): Uint8Array;
  /** Writes through the host mapping (allocates the touched pages). */
  write(offset: number, data: Uint8Array): void;
  /** Releases the file (idempotent). */
  close(): void;
}

/** A guest_memfd file (KVM_CREATE_GUEST_MEMFD). */
export interface GuestMemfd extends MemoryFile {
  /** The GUEST_MEMFD_FLAG_* flags it was created with. */
  readonly flags: number;
  /**
   * In-place conversion (KVM_SET_MEMORY_ATTRIBUTES2 on the file, proposed):
   * sets `attributes` on `[offset, offset + size)`. Converting to private fails
   * with `EAGAIN` and `errorOffset` = the first page with an extra reference
   * (an IOMMU pin, for example); nothing changes on failure. `ENOTTY` where the
   * kernel has no such call.
   */
  setAttributes(offset: number, size: number, attributes: number): void;
  /** The attributes of the page at `offset` as the file tracks them (in-place mode). */
  getAttributes(offset: number): number;
}

/** A run of guest frames with equal memory attributes. */
export interface AttributeSpan {
  /** Guest physical address of the first frame. */
  gpa: number;
  /** Length in bytes. */
  size: number;
  /** The attributes (0 = shared). */
  attributes: number;
}

/** A KVM virtual machine and the host memory files bound to it. */
export interface KvmBackend extends Disposable {
  /** `"sim"` for the simulator, `"linux"` for real /dev/kvm. */
  readonly kind: "sim" | "linux";
  /** What this VM supports. */
  readonly capabilities: KvmCapabilities;
  /** KVM_CREATE_GUEST_MEMFD. */
  createGuestMemfd(size: number, flags: number): GuestMemfd;
  /**
   * memfd_create + mmap(MAP_SHARED): the host-visible (shared) backing.
   * `options.backingPageSize` is its page (folio) size: 4 KiB (default), or
   * 2 MiB / 1 GiB for hugetlb, which decides how large the IO page-table
   * entries mapping it can be.
   */
  createSharedMemory(size: number, options?: SharedMemoryOptions): MemoryFile;
  /** KVM_SET_USER_MEMORY_REGION2. */
  setUserMemoryRegion2(spec: MemslotSpec): void;
  /** KVM_SET_MEMORY_ATTRIBUTES: all-or-nothing over `[gpa, gpa + size)`. */
  setMemoryAttributes(gpa: number, size: number, attributes: number): void;
  /** The attributes of the guest frame containing `gpa` (shared = 0). */
  getMemoryAttributes(gpa: number): number;
  /**
   * Maximal runs of equal attributes over `[gpa, gpa + size)`, for invariant
   * checks that must not walk a 1 TiB guest page by page.
   */
  memoryAttributeRuns(gpa: number, size: number): Iterable<AttributeSpan>;
  /** Releases the VM and everything created from it (idempotent). */
  close(): void;
}

/** One DMA mapping as an IOMMU backend reports it. */
export interface DmaMapping {
  /** IO virtual address (bytes). */
  iova: number;
  /** Length in bytes. */
  size: number;
  /** Host virtual address it maps. */
  vaddr: number;
}

/** A VFIO type1 (v2) container. */
export interface Type1Container {
  /** VFIO_IOMMU_MAP_DMA: all-or-nothing. */
  map(iova: number, vaddr: number, size: number): void;
  /** VFIO_IOMMU_UNMAP_DMA: returns the bytes unmapped (0 for an empty range). */
  unmap(iova: number, size: number, opts?: { all?: boolean }): number;
  /** DMA entries still available under `dma_entry_limit`. */
  remainingEntries(): number;
  /** The `dma_entry_limit` this container was created with. */
  readonly dmaEntryLimit: number;
  /** Current mappings, sorted by iova. */
  mappings(): DmaMapping[];
  /** Number of live mappings. */
  readonly mappingCount: number;
  /** Bytes of IO page-table memory the mappings use, where the implementation knows. */
  readonly tableBytes?: number;
}

/** An iommufd IO address space (IOAS). */
export interface IommufdIoas {
  /** IOMMU_IOAS_MAP at a fixed iova: all-or-nothing. */
  map(iova: number, vaddr: number, size: number): void;
  /** IOMMU_IOAS_UNMAP: must cover whole areas; returns bytes unmapped. */
  unmap(iova: number, size: number): number;
  /**
   * cut_mapping (proposed): split IO page-table entries and the area so no
   * mapping crosses `iova`. `ENOENT` when nothing is mapped there, `ENOMEM`
   * when a table page cannot be allocated; unchanged on failure.
   */
  cutMapping(iova: number): void;
  /** Whether `cutMapping` exists on this kernel (only the proposed series has it). */
  readonly cutMappingSupported: boolean;
  /** Current areas, sorted by iova. */
  areas(): DmaMapping[];
  /** Number of live areas. */
  readonly areaCount: number;
  /** Bytes of IO page-table memory the areas use, where the implementation knows. */
  readonly tableBytes?: number;
}
