/**
 * The VMM policy: whose rules a conversion follows. `qemu-10.1` and
 * `qemu-11.1` reproduce QEMU exactly, including what a failure leaves behind;
 * `memstate` (the default) is this framework's own policy, which runs on
 * today's kernels: listener priorities, full rollback, and never more kernel
 * calls than QEMU for the same conversion that succeeds (a refused one costs
 * it the calls that undo it).
 *
 * Each rule is a field of {@link VmmRules} and names the QEMU source it
 * follows, so a reader can check the model against the code.
 *
 * @module
 */
import { describeValue } from "../util/text.ts";

/** A VMM policy name. */
export type VmmPolicy = "qemu-10.1" | "qemu-11.1" | "memstate";

/** Every {@link VmmPolicy}, default last. */
export const VMM_POLICIES: readonly VmmPolicy[] = ["qemu-10.1", "qemu-11.1", "memstate"];

/** The default policy. */
export const DEFAULT_VMM: VmmPolicy = "memstate";

/** The rules a policy follows; each field says where QEMU's comes from. */
export interface VmmRules {
  /** The policy's name. */
  readonly name: VmmPolicy;
  /**
   * The order listeners hear about a change. `"priority"`: discards by
   * descending, populates by ascending priority. `"newest-first"`: QEMU's
   * listener list, where registration inserts at the head
   * (system/ram-block-attributes.c `ram_block_attributes_rdm_register_listener`,
   * system/ram-discard-manager.c `ram_discard_manager_register_listener`:
   * `QLIST_INSERT_HEAD`), for both directions; priorities are ignored.
   */
  readonly order: "priority" | "newest-first";
  /**
   * Who is undone when a listener refuses. `"all"`: every participant, and the
   * store is untouched. `"listeners"`: the listeners notified for that
   * populate, the failing one included, get a discard (QEMU 11.1,
   * system/ram-discard-manager.c `ram_discard_manager_notify_populate`); the
   * state bitmap and the KVM attributes stay changed. `"none"`: nothing
   * (QEMU 10.1, system/ram-block-attributes.c
   * `ram_block_attributes_notify_populate` stops at the first error).
   */
  readonly rollback: "all" | "listeners" | "none";
  /**
   * A failed conversion stops the VM: `kvm_convert_memory` returns an error
   * and, for a KVM_EXIT_MEMORY_FAULT exit or an SEV-SNP KVM_HC_MAP_GPA_RANGE
   * hypercall, accel/kvm/kvm-all.c `kvm_cpu_exec` leaves its loop and calls
   * `vm_stop(RUN_STATE_INTERNAL_ERROR)`. (A TDX MapGPA call instead answers
   * the guest TDG_VP_VMCALL_INVALID_OPERAND and the VM runs on with whatever
   * state the failure left: target/i386/kvm/tdx.c `tdx_handle_map_gpa`.)
   * Under `memstate` everything was rolled back and the guest is told.
   */
  readonly failureStopsVm: boolean;
  /**
   * A change of guest_memfd's SHARED bit whose pages are partly in the target
   * state is notified one page at a time (system/ram-block-attributes.c
   * `ram_block_attributes_state_change`, "Unexpected mixture: process
   * individual blocks"); `memstate` notifies each maximal run once (a listener
   * that accepts double discards gets one discard over all of them). Only that
   * function does this: virtio-mem answers ERROR to a range not entirely in
   * the opposite state (hw/virtio/virtio-mem.c `virtio_mem_state_change_request`),
   * and its unplug-all and a source's removal have their own rules
   * ({@link VmmRules.discardAll}, {@link VmmRules.sourceRemoval}).
   */
  readonly perPageMixtures: boolean;
  /**
   * What a source that drops all its memory at once (virtio-mem's UNPLUG_ALL)
   * tells each listener whose view depends on the source's bits.
   * `"whole-section"`: one discard of the listener's whole section, populated
   * or not (QEMU 11.1: hw/virtio/virtio-mem.c `virtio_mem_notify_unplug_all`
   * calls system/ram-discard-manager.c `ram_discard_manager_notify_discard_all`).
   * `"double-discard"`: that for a listener that accepts double discards
   * (VFIO does), one discard per plugged run for the others (QEMU 10.1
   * `virtio_mem_notify_unplug_all`: `double_discard_supported`, else
   * `virtio_mem_for_each_plugged_section`). `"per-run"`: one discard per run
   * that flips, as any change, or one over the span of those runs to a
   * listener that accepts double discards (`memstate`).
   */
  readonly discardAll: "whole-section" | "double-discard" | "per-run";
  /**
   * Removing a state source while listeners are registered. `"notify"`: the
   * listeners get populate for every run the source held back, one call per
   * run, newest listener first; a refusal discards what the listeners up to
   * and including the failing one were told and the source stays (QEMU 11.1,
   * system/ram-discard-manager.c `ram_discard_manager_del_source`); no KVM
   * call is made. `"change"`: a change setting the source's bits everywhere,
   * one call per run, with full rollback (`memstate`). `"unmapped-only"`:
   * refused while any listener is registered: QEMU 10.1 has one
   * RamDiscardManager per memory region and unsets it only on a region that
   * is not mapped, so no listener follows it (system/memory.c
   * `memory_region_set_ram_discard_manager`, declared "must not be called
   * for a mapped MemoryRegion").
   */
  readonly sourceRemoval: "notify" | "unmapped-only" | "change";
  /**
   * KVM_SET_MEMORY_ATTRIBUTES and the discard of the old side cover the whole
   * requested range, before and after the listeners, even when every page is
   * already in the target state (accel/kvm/kvm-all.c `kvm_convert_memory`).
   * `memstate` calls KVM once over the span of pages that change, or not at all.
   */
  readonly wholeRangeKvmCalls: boolean;
  /**
   * What a refused replay at registration does. `"rollback"`: the replayed
   * populates are discarded and the listener is not registered (`memstate`).
   * `"stay-registered"`: the error is reported and the listener stays, with
   * what was replayed before the failure (QEMU 11.1,
   * system/ram-discard-manager.c `ram_discard_manager_register_listener`).
   * `"exit"`: QEMU exits (QEMU 10.1, system/ram-block-attributes.c
   * `ram_block_attributes_rdm_register_listener` calls `exit(1)`): guest_memfd's
   * manager; a region virtio-mem manages differs ({@link VmmRules.perManager}).
   */
  readonly failedReplay: "rollback" | "stay-registered" | "exit";
  /**
   * Unregistering sends one discard of the listener's whole section
   * regardless of what is populated (QEMU 11.1,
   * system/ram-discard-manager.c `ram_discard_manager_unregister_listener`);
   * otherwise a listener that accepts double discards gets one, the others one
   * per populated run (QEMU 10.1 `ram_block_attributes_rdm_unregister_listener`,
   * and `memstate`).
   */
  readonly wholeSectionUnregister: boolean;
  /**
   * Registering and unregistering are the region's one manager's own functions
   * (QEMU 10.1: one RamDiscardManager per memory region). On a region virtio-mem
   * manages, a refused replay is reported and the listener stays registered with
   * what was replayed (hw/virtio/virtio-mem.c `virtio_mem_rdm_register_listener`:
   * `error_report` only), and unregistering sends nothing while no block is
   * plugged (`virtio_mem_rdm_unregister_listener`: `if (vmem->size)`; memstate
   * reads that as "no page of the region is plugged", the same for a host
   * configuration, whose virtio-mem devices cover their regions under QEMU
   * policies; src/host/config/settings_rules.ts). guest_memfd's manager
   * follows {@link VmmRules.failedReplay} and {@link VmmRules.wholeSectionUnregister}.
   */
  readonly perManager: boolean;
  /**
   * A region may have several state sources (virtio-mem beside guest_memfd).
   * QEMU 10.1 allows one RamDiscardManager per memory region
   * (system/memory.c `memory_region_set_ram_discard_manager` fails when one is
   * set), so virtio-mem cannot share a region with guest_memfd there.
   */
  readonly multipleSources: boolean;
  /**
   * Listeners may refuse a discard (the change rolls back). In QEMU
   * `notify_discard` returns void (include/system/memory.h
   * `NotifyRamDiscard`): an unplug or a to-private conversion cannot be
   * refused, and a failed unmap is reported and ignored.
   */
  readonly refusableDiscard: boolean;
  /**
   * A DMA map that fails in the middle of a populate is undone by ONE unmap of
   * the whole section, even when its first granule failed and nothing was
   * mapped (hw/vfio/listener.c `vfio_ram_discard_notify_populate` calls
   * `vfio_ram_discard_notify_discard` on any map error; type1 answers 0
   * bytes, iommufd ENOENT, which backends/iommufd.c `iommufd_backend_unmap_dma`
   * takes as success). `memstate` unmaps only when something was mapped.
   */
  readonly failedMapAlwaysUnmaps: boolean;
  /**
   * VFIO type1's start-up budget adds `kvm_get_max_memslots()` minus the
   * number of sections as headroom (hw/vfio/listener.c
   * `vfio_ram_discard_register_listener`); `memstate` sums the sections only.
   */
  readonly memslotHeadroom: boolean;
  /**
   * What exceeding the type1 budget does at start. `"warn"`: QEMU 10.1 only
   * warns ("possibly running out of DMA mappings", `warn_report`) and runs
   * into ENOSPC later. `"refuse"`: since "vfio: Report an error when the
   * 'dma_max_mappings' limit is reached" (2025, after 10.1) device realize
   * fails; memstate refuses too.
   */
  readonly budgetExceeded: "warn" | "refuse";
  /**
   * Listener priorities are honoured. No QEMU release or merged series has
   * them (a 2025 proposal to make KVM a listener was dropped over exactly this
   * ordering question); `memstate` has them.
   */
  readonly priorities: boolean;
}

const QEMU_10_1: VmmRules = Object.freeze({
  name: "qemu-10.1",
  order: "newest-first",
  rollback: "none",
  failureStopsVm: true,
  perPageMixtures: true,
  discardAll: "double-discard",
  sourceRemoval: "unmapped-only",
  wholeRangeKvmCalls: true,
  failedReplay: "exit",
  wholeSectionUnregister: false,
  perManager: true,
  multipleSources: false,
  refusableDiscard: false,
  failedMapAlwaysUnmaps: true,
  memslotHeadroom: true,
  budgetExceeded: "warn",
  priorities: false,
});

const QEMU_11_1: VmmRules = Object.freeze({
  ...QEMU_10_1,
  name: "qemu-11.1",
  rollback: "listeners",
  failedReplay: "stay-registered",
  wholeSectionUnregister: true,
  perManager: false,
  multipleSources: true,
  discardAll: "whole-section",
  sourceRemoval: "notify",
  budgetExceeded: "refuse",
});

const MEMSTATE: VmmRules = Object.freeze({
  name: "memstate",
  order: "priority",
  rollback: "all",
  failureStopsVm: false,
  perPageMixtures: false,
  discardAll: "per-run",
  sourceRemoval: "change",
  wholeRangeKvmCalls: false,
  failedReplay: "rollback",
  wholeSectionUnregister: false,
  perManager: false,
  multipleSources: true,
  refusableDiscard: true,
  failedMapAlwaysUnmaps: false,
  memslotHeadroom: false,
  budgetExceeded: "refuse",
  priorities: true,
});

const RULES: Record<VmmPolicy, VmmRules> = {
  "qemu-10.1": QEMU_10_1,
  "qemu-11.1": QEMU_11_1,
  "memstate": MEMSTATE,
};

/** The rules of `policy`; throws a `RangeError` naming the known policies for anything else. */
export function vmmRules(policy: VmmPolicy | undefined): VmmRules {
  const rules = RULES[policy ?? DEFAULT_VMM];
  if (rules === undefined) {
    throw new RangeError(
      `vmm: must be one of ${VMM_POLICIES.join(", ")}, got ${describeValue(policy)}`,
    );
  }
  return rules;
}

/** True for the policies that emulate QEMU. */
export function isQemu(policy: VmmPolicy): boolean {
  return policy !== "memstate";
}
