/**
 * The KVM attributes plugin: keeps KVM's view of each page (shared or private)
 * and the backing memory in step with the region.
 *
 * Two modes. **Separate backing** (today's kernels): a region is backed by a
 * shared memfd and a guest_memfd; to-shared sets the attributes and then
 * punches the guest_memfd, to-private sets PRIVATE and then punches the shared
 * memfd, so each page is backed on exactly one side (QEMU's kvm_convert_memory
 * order, with the undo QEMU lacks). A shared side on hugetlb is not punched on
 * to-private: it is preallocated (accel/kvm/kvm-all.c `kvm_convert_memory`
 * skips the discard when the RAM block's page size is not the host's); a
 * virtio-mem unplug ({@link KvmAttributesPlugin.discardShared}) still punches it.
 * **In-place** (guest_memfd with mmap, the proposed kernel only): one
 * conversion call on the guest_memfd, which refuses with `EAGAIN` while an
 * IOMMU pin holds a page — why DMA must unmap first, and why this listener
 * has priority 0 and DMA listeners 10.
 *
 * How it is driven follows the region's VMM policy. Under `memstate` it is a
 * listener on the KVM view that coalesces: one attribute call and one punch
 * per change over the span of pages that flip (the calls are harmless over
 * pages already in the target state), never more than QEMU makes for a
 * conversion that succeeds (a refused one costs the attributes put back). Under
 * `qemu-10.1` / `qemu-11.1` it is kvm_convert_memory itself (a conversion
 * hook): the attribute ioctl over the whole range before the listeners and
 * the discard of the old side after them, even when nothing changes.
 *
 * @example Attach to a region over the simulated kernel
 * ```ts
 * import assert from "node:assert/strict";
 * import { KVM_MEMORY_ATTRIBUTE_PRIVATE, kvmAttributes, Region } from "@cvm/memstate";
 * import { SimKvm } from "@cvm/memstate/sim";
 *
 * const region = new Region({ name: "ram", size: 2 ** 30 });
 * const vm = new SimKvm();
 * const kvm = kvmAttributes({ vm, mode: "separate" });
 * kvm.attach(region); // guest_memfd + memfd + memslot, all pages PRIVATE
 * region.convert(0, 0x200000, "shared"); // attributes cleared, guest_memfd punched
 * assert.equal(vm.getMemoryAttributes(0), 0); // shared
 * assert.equal(vm.getMemoryAttributes(0x200000), KVM_MEMORY_ATTRIBUTE_PRIVATE);
 * assert.equal(kvm.stats().calls.setMemoryAttributes, 2); // at attach, then one per change
 * assert.deepEqual(kvm.verify(region), []); // attributes and backing agree with the store
 * ```
 *
 * @module
 */

import type { Listener, Range, Section } from "../bus/listener.ts";
import type { Region } from "../bus/region.ts";
import { KVM_VIEW } from "../bus/view.ts";
import {
  GUEST_MEMFD_FLAG_MMAP,
  KVM_MEMORY_ATTRIBUTE_PRIVATE,
  type KvmBackend,
  type MemoryFile,
} from "../hw/backend.ts";
import { createRegionBacking, type RegionBacking } from "../hw/region_backing.ts";
import {
  checkPluginName,
  type Plugin,
  PluginCounters,
  type PluginStats,
  resolveRange,
} from "./plugin.ts";
import { mergeSpans, populatedSpans, type Span, subtractSpans } from "./_spans.ts";
import { hex } from "../util/_hex.ts";
import { describeValue } from "../util/text.ts";
import { KVM_MAX_MEMSLOTS } from "../settings/kernel.ts";

/** The KVM attributes plugin's name unless its options give another. */
export const KVM_PLUGIN_NAME = "kvm";

/** Options for {@link kvmAttributes}. */
export interface KvmAttributesOptions {
  /** The VM to drive (`SimKvm` or the real Linux backend). */
  vm: KvmBackend;
  /** `"separate"` (default): memfd + guest_memfd; `"in-place"`: guest_memfd with mmap. */
  mode?: "separate" | "in-place";
  /** Plugin name (default `"kvm"`). */
  name?: string;
  /** First memslot number to use (default 0); each attached region takes the next. */
  firstSlot?: number;
  /** Listener priority (default 0: populates first, discards last). */
  priority?: number;
  /**
   * The shared memfd's page size (separate mode): 4 KiB shmem folios
   * (default), 2 MiB or 1 GiB hugetlb. It decides how large the IOMMU's
   * entries mapping the region can be, and hugetlb is not punched on
   * to-private (it is on a virtio-mem unplug).
   */
  backingPageSize?: number | ((region: Region) => number);
}

/** The backing of one attached region. */
export interface KvmBinding {
  /** The region's guest_memfd, shared memfd (separate mode) and memslot. */
  backing: RegionBacking;
  /** The shared memfd's page size (4096 unless hugetlb). */
  backingPageSize: number;
  /** The byte range of the region this binding follows. */
  range: Range;
}

/** The KVM attributes plugin; see the module documentation. */
export interface KvmAttributesPlugin extends Plugin {
  /** The mode it runs in. */
  readonly mode: "separate" | "in-place";
  /** The VM it drives. */
  readonly vm: KvmBackend;
  /** The backing it created for `region`, if attached. */
  binding(region: Region): KvmBinding | undefined;
  /**
   * Bytes of the ranges punched so far, both sides: what `fallocate(PUNCH_HOLE)`
   * was given, not what it freed (a hole punched over a hole frees nothing;
   * the files' `allocatedBytes` say what is there).
   */
  readonly punchedBytes: number;
  /** Attributes and backing of `region` against its store; one line per violation. */
  verify(region: Region): string[];
  /**
   * Discards the shared backing of `[offset, offset + size)` of `region`
   * (QEMU's `ram_block_discard_range`, as virtio-mem's unplug does). A no-op
   * on in-place backing. Hugetlb is punched too: system/physmem.c
   * `ram_block_discard_range` fallocates any file-backed block ("fallocate works
   * on hugepages and shmem"); only `kvm_convert_memory`'s to-private discard
   * skips hugetlb.
   */
  discardShared(region: Region, offset: number, size: number): void;
}

/** Creates the KVM attributes plugin; call `attach(region)` for each region. */
export function kvmAttributes(options: KvmAttributesOptions): KvmAttributesPlugin {
  return new KvmAttributes(options);
}

class KvmAttributes implements KvmAttributesPlugin {
  readonly name: string;
  readonly kind = "kvm-attributes";
  readonly mode: "separate" | "in-place";
  readonly vm: KvmBackend;
  punchedBytes = 0;
  #priority: number;
  #nextSlot: number;
  #backingPageSizeOf: (region: Region) => number;
  #counters = new PluginCounters();
  /**
   * The calls a conversion makes, counted in fields of their own and added to
   * the counters' in {@link stats}: `PluginCounters.count(op)` is a keyed
   * store that every plugin's ops share, which V8 handles as megamorphic (its
   * KeyedLoadIC_Megamorphic and KeyedStoreIC_Megamorphic builtins took 3% of
   * the `linux 4k` rows' profile, more than the plugin's own code). The first
   * count of each still enters its key there, so the stats list calls in the
   * order they were first made, as before.
   */
  #perConversion = { setAttributes: 0, setMemoryAttributes: 0, punchHole: 0 };
  #bindings = new Map<Region, { binding: KvmBinding; listener?: Listener }>();

  constructor(options: KvmAttributesOptions) {
    this.name = checkPluginName(options.name ?? KVM_PLUGIN_NAME, "kvmAttributes");
    this.mode = options.mode ?? "separate";
    if (this.mode !== "separate" && this.mode !== "in-place") {
      throw new TypeError(
        `kvmAttributes ${this.name}: mode must be "separate" or "in-place", got ${
          describeValue(this.mode)
        }`,
      );
    }
    if (typeof options.vm?.setMemoryAttributes !== "function") {
      throw new TypeError(`kvmAttributes ${this.name}: vm must be a KvmBackend`);
    }
    this.vm = options.vm;
    this.#priority = options.priority ?? 0;
    const firstSlot = options.firstSlot ?? 0;
    // KVM numbers a VM's memslots from 0 below KVM_USER_MEM_SLOTS (settings/kernel.ts).
    if (!Number.isSafeInteger(firstSlot) || firstSlot < 0 || firstSlot >= KVM_MAX_MEMSLOTS) {
      throw new RangeError(
        `kvmAttributes ${this.name}: firstSlot must be an integer from 0 to ` +
          `${KVM_MAX_MEMSLOTS - 1}, got ${describeValue(firstSlot)}`,
      );
    }
    this.#nextSlot = firstSlot;
    const page = options.backingPageSize ?? 4096;
    this.#backingPageSizeOf = typeof page === "function" ? page : () => page;
  }

  binding(region: Region): KvmBinding | undefined {
    return this.#bindings.get(region)?.binding;
  }

  attach(region: Region, range?: Range): void {
    const who = `kvmAttributes ${this.name}`;
    if (this.#bindings.has(region)) {
      throw new RangeError(`${who}: already attached to region ${region.name}`);
    }
    const r = resolveRange(region, range, who);
    const caps = this.vm.capabilities;
    if (this.mode === "in-place" && !caps.inPlaceConversion) {
      throw new RangeError(
        `${who}: in-place conversion needs KVM_SET_MEMORY_ATTRIBUTES2 on guest_memfd, which this ` +
          `${this.vm.kind} VM does not support (it is part of the proposed kernel series); use ` +
          `mode "separate"`,
      );
    }
    if (this.mode === "in-place" && region.vmm !== "memstate") {
      throw new RangeError(
        `${who}: ${region.vmm} has no in-place conversion (QEMU's support is an unmerged RFC); ` +
          `use the memstate policy or mode "separate"`,
      );
    }
    if (this.mode === "in-place" && !(caps.guestMemfdFlags & GUEST_MEMFD_FLAG_MMAP)) {
      throw new RangeError(
        `${who}: in-place conversion needs guest_memfd with GUEST_MEMFD_FLAG_MMAP`,
      );
    }
    const gpa = region.base + r.offset;
    const backing = this.#counters.call("createRegionBacking", () =>
      createRegionBacking(this.vm, {
        slot: this.#nextSlot,
        guestPhysAddr: gpa,
        size: r.size,
        mode: this.mode,
        backingPageSize: this.#backingPageSizeOf(region),
      }));
    const binding: KvmBinding = {
      backing,
      range: r,
      backingPageSize: this.#backingPageSizeOf(region),
    };
    try {
      // KVM starts every frame shared; make the private parts private before anyone listens.
      const err = region.replayDiscarded(r, KVM_VIEW, (s) => this.#toPrivate(binding, s));
      if (err) throw err;
      let listener: Listener | undefined;
      if (region.vmm === "memstate") {
        listener = {
          name: this.name,
          priority: this.#priority,
          view: KVM_VIEW,
          // Attribute ioctls and punches are harmless over pages already in
          // the target state: one call per change, never more than QEMU.
          coalesce: true,
          populate: (s: Section) => this.#toShared(binding, s),
          discard: (s: Section) => this.#toPrivate(binding, s),
        };
        region.register(listener, r);
      } else {
        region.setConversionHook({
          name: this.name,
          before: (s, to) => this.#setAttributes(binding, s, to),
          after: (s, to) => this.#discardOldSide(binding, s, to),
        });
      }
      this.#nextSlot++;
      region.hostAddress = backing.hostAddress - r.offset;
      this.#bindings.set(region, { binding, listener });
    } catch (e) {
      // Leave the VM as we found it: attributes back to shared (absent), slot and files gone.
      try {
        if (this.mode === "separate") this.vm.setMemoryAttributes(gpa, r.size, 0);
      } finally {
        backing.close();
      }
      throw e;
    }
  }

  detach(region: Region): void {
    const entry = this.#bindings.get(region);
    if (!entry) {
      throw new RangeError(`kvmAttributes ${this.name}: not attached to region ${region.name}`);
    }
    this.#bindings.delete(region);
    // Unregistering discards (makes private) what is shared; then slot and files go.
    try {
      if (entry.listener) region.unregister(entry.listener);
      else region.setConversionHook(undefined);
    } finally {
      entry.binding.backing.close();
    }
  }

  discardShared(region: Region, offset: number, size: number): void {
    const entry = this.#bindings.get(region);
    if (!entry) {
      throw new RangeError(`kvmAttributes ${this.name}: not attached to region ${region.name}`);
    }
    const shared = entry.binding.backing.shared;
    // Hugetlb too (system/physmem.c ram_block_discard_range: PUNCH_HOLE whatever the page size).
    if (shared === undefined) return;
    const off = offset - entry.binding.range.offset;
    this.#counters.call("punchHole", () => shared.punchHole(off, size));
    this.punchedBytes += size;
  }

  stats(): PluginStats {
    const s = this.#counters.snapshot(this.name, this.kind);
    for (const [op, n] of Object.entries(this.#perConversion)) {
      if (n > 0) s.calls[op] = (s.calls[op] ?? 0) + n;
    }
    s.calls.punchedBytes = this.punchedBytes;
    return s;
  }

  verify(region: Region): string[] {
    const entry = this.#bindings.get(region);
    if (!entry) return [];
    const { range, backing: { guestMemfd, shared } } = entry.binding;
    const problems: string[] = [];
    const sharedSpans = populatedSpans(region, range, KVM_VIEW);
    const privateSpans = subtractSpans([[range.offset, range.offset + range.size]], sharedSpans);
    const gpa = (n: number) => hex(region.base + n);
    // Attributes: PRIVATE exactly where the store says private.
    const attributed: Span[] = [];
    if (this.mode === "in-place") {
      for (const [s, e] of [...sharedSpans, ...privateSpans]) {
        const want = privateSpans.some(([ps, pe]) => ps <= s && e <= pe);
        for (const at of [s, e - region.pageSize]) {
          const isPrivate = (guestMemfd.getAttributes(at - range.offset) &
            KVM_MEMORY_ATTRIBUTE_PRIVATE) !== 0;
          if (isPrivate !== want) {
            problems.push(
              `${this.name}: guest_memfd attributes at ${gpa(at)} disagree with the store`,
            );
          }
        }
      }
    } else {
      for (const run of this.vm.memoryAttributeRuns(region.base + range.offset, range.size)) {
        if (run.attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE) {
          attributed.push([run.gpa - region.base, run.gpa - region.base + run.size]);
        }
      }
      const want = mergeSpans(privateSpans), have = mergeSpans(attributed);
      for (const [s, e] of subtractSpans(have, want)) {
        problems.push(
          `${this.name}: [${gpa(s)}, ${gpa(e)}) is PRIVATE in KVM but shared in the store`,
        );
      }
      for (const [s, e] of subtractSpans(want, have)) {
        problems.push(
          `${this.name}: [${gpa(s)}, ${gpa(e)}) is private in the store but not in KVM`,
        );
      }
      // Backing: the side a page no longer uses must hold no memory.
      for (const [s, e] of sharedSpans) {
        if (guestMemfd.allocatedBytes(s - range.offset, e - s) !== 0) {
          problems.push(`${this.name}: shared [${gpa(s)}, ${gpa(e)}) still has guest_memfd pages`);
        }
      }
      // A hugetlb shared side stays allocated by design (see #toPrivate).
      for (const [s, e] of entry.binding.backingPageSize === 4096 ? privateSpans : []) {
        if (shared!.allocatedBytes(s - range.offset, e - s) !== 0) {
          problems.push(
            `${this.name}: private [${gpa(s)}, ${gpa(e)}) still has shared memfd pages`,
          );
        }
      }
    }
    return problems;
  }

  #toShared(b: KvmBinding, s: Section): void {
    this.#convert(b, s, 0, b.backing.guestMemfd);
  }

  #toPrivate(b: KvmBinding, s: Section): void {
    // A hugetlb shared side stays allocated, as in QEMU (kvm_convert_memory).
    const punch = b.backingPageSize === 4096 ? b.backing.shared : undefined;
    this.#convert(b, s, KVM_MEMORY_ATTRIBUTE_PRIVATE, punch);
  }

  /**
   * One listener call: the attributes of the section, then a punch of the side
   * it no longer uses (`punch`, if any). If the punch fails, the attributes are
   * put back as they were run by run: a coalesced call covers pages that were
   * already in the target state, so the inverse over the whole section would
   * be wrong for them.
   */
  #convert(b: KvmBinding, s: Section, attributes: number, punch: MemoryFile | undefined): void {
    const off = s.offset - b.range.offset;
    const counters = this.#counters;
    const count = this.#perConversion;
    if (this.mode === "in-place") {
      if (count.setAttributes++ === 0) counters.calls.setAttributes ??= 0;
      try {
        b.backing.guestMemfd.setAttributes(off, s.size, attributes);
      } catch (e) {
        counters.failures++;
        throw e;
      }
      return;
    }
    const gpa = s.region.base + s.offset;
    // A coalesced call may cover pages already in the target state: keep their
    // attributes to put back. Any other call flips every page it covers.
    const before = punch && s.uniform === false
      ? [...this.vm.memoryAttributeRuns(gpa, s.size)]
      : undefined;
    if (count.setMemoryAttributes++ === 0) counters.calls.setMemoryAttributes ??= 0;
    try {
      this.vm.setMemoryAttributes(gpa, s.size, attributes);
    } catch (e) {
      counters.failures++;
      throw e;
    }
    if (!punch) return;
    if (count.punchHole++ === 0) counters.calls.punchHole ??= 0;
    try {
      punch.punchHole(off, s.size);
    } catch (e) {
      counters.failures++;
      // Undo our own half so the bus can roll everyone else back.
      if (before) {
        for (const run of before) this.vm.setMemoryAttributes(run.gpa, run.size, run.attributes);
      } else {
        this.vm.setMemoryAttributes(gpa, s.size, attributes ^ KVM_MEMORY_ATTRIBUTE_PRIVATE);
      }
      throw e;
    }
    this.punchedBytes += s.size;
  }

  /** kvm_convert_memory's KVM_SET_MEMORY_ATTRIBUTES over the whole range (QEMU policies). */
  #setAttributes(_b: KvmBinding, s: Section, to: "shared" | "private"): void {
    const attributes = to === "private" ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
    const gpa = s.region.base + s.offset;
    this.#counters.call(
      "setMemoryAttributes",
      () => this.vm.setMemoryAttributes(gpa, s.size, attributes),
    );
  }

  /**
   * kvm_convert_memory's last step (QEMU policies): to-shared punches the
   * guest_memfd (`ram_block_discard_guest_memfd_range`), to-private discards
   * the shared side (`ram_block_discard_range`) unless it is hugetlb.
   */
  #discardOldSide(b: KvmBinding, s: Section, to: "shared" | "private"): void {
    const off = s.offset - b.range.offset;
    if (to === "shared") {
      this.#counters.call("punchHole", () => b.backing.guestMemfd.punchHole(off, s.size));
    } else {
      if (b.backingPageSize !== 4096) return;
      this.#counters.call("punchHole", () => b.backing.shared!.punchHole(off, s.size));
    }
    this.punchedBytes += s.size;
  }
}
