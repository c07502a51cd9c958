/**
 * The guest's memory layout as a trace records it: QEMU logs
 * `kvm_set_user_memory` for every memslot it sets or deletes
 * (accel/kvm/kvm-all.c `kvm_set_user_memory_region`), before the guest runs
 * and again when the layout changes. A configuration with `"regions":
 * "from-trace"` (and `memstate run --trace FILE` without a configuration)
 * takes one region per memslot that holds guest_memfd memory
 * (KVM_MEM_GUEST_MEMFD in its flags: the memory a confidential guest converts)
 * in address space 0, as the memslots stand when the first event comes.
 *
 * Skipped, and said so in the report: memslots of other address spaces (x86
 * SMM's address space 1 maps the same RAM again), memslots without
 * guest_memfd (ROM, flash, device memory: `kvm_convert_memory` refuses to
 * convert them), and memslot calls that failed (`ret` not 0). A memslot set
 * with size 0 is deleted; setting a slot again replaces it.
 *
 * @module
 */

import { KVM_MEM_GUEST_MEMFD } from "../../hw/backend.ts";
import type { MemslotEvent } from "./event.ts";

/** One region found in a trace. */
export interface TraceMemoryRegion {
  /** The region's name: `slot<N>`. */
  name: string;
  /** The memslot number. */
  slot: number;
  /** Guest physical base. */
  base: number;
  /** Size in bytes. */
  size: number;
  /** The line (or record) of the `kvm_set_user_memory` event that set it. */
  line: number;
}

/** A memslot event that did not make a region, and why. */
export interface SkippedMemslot {
  /** The memslot number. */
  slot: number;
  /** Its KVM address space. */
  as: number;
  /** Guest physical base. */
  gpa: number;
  /** Size in bytes. */
  size: number;
  /** The line (or record) of the event. */
  line: number;
  /** Why it is not a region. */
  reason: string;
}

/** The regions a trace's memslots give, and the memslots that gave none. */
export interface TraceMemoryMap {
  /** The regions, by ascending base. */
  regions: TraceMemoryRegion[];
  /** Memslots that are not regions, by slot (the last event of each). */
  skipped: SkippedMemslot[];
}

/**
 * The memory map `memslots` (in trace order) leave behind; see the module
 * documentation.
 */
export function memoryMapFromMemslots(memslots: Iterable<MemslotEvent>): TraceMemoryMap {
  const live = new Map<number, TraceMemoryRegion>();
  const skipped = new Map<string, SkippedMemslot>();
  for (const m of memslots) {
    const key = `${m.as}:${m.slot}`;
    const skip = (reason: string) =>
      skipped.set(key, { slot: m.slot, as: m.as, gpa: m.gpa, size: m.size, line: m.line, reason });
    if (m.ret !== 0) {
      skip(`the KVM_SET_USER_MEMORY_REGION call failed (ret ${m.ret})`);
      continue;
    }
    if (m.as !== 0) {
      skip(`address space ${m.as}${m.as === 1 ? " (SMM: the same RAM mapped again)" : ""}`);
      continue;
    }
    if (m.size === 0) {
      live.delete(m.slot);
      skipped.delete(key);
      continue;
    }
    if ((m.flags & KVM_MEM_GUEST_MEMFD) === 0) {
      live.delete(m.slot);
      skip(`no guest_memfd (flags 0x${m.flags.toString(16)}): not convertible`);
      continue;
    }
    skipped.delete(key);
    live.set(m.slot, {
      name: `slot${m.slot}`,
      slot: m.slot,
      base: m.gpa,
      size: m.size,
      line: m.line,
    });
  }
  return {
    regions: [...live.values()].sort((a, b) => a.base - b.base),
    skipped: [...skipped.values()].sort((a, b) => a.as - b.as || a.slot - b.slot),
  };
}
