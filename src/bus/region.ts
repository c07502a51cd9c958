/**
 * A Region is one RAM block: its state store, the listeners that follow it and
 * the `change` that keeps them all in step, under the region's VMM policy.
 *
 * Under the memstate policy a change validates, plans the notifications each
 * listener needs (only where its view flips), runs them as a transaction
 * (discards by descending priority, then populates by ascending priority,
 * rolled back in reverse on refusal), and only then commits to the store and
 * tells observers. Under a QEMU policy the same change runs the way QEMU runs
 * it (_qemu_state_change.ts), with the KVM steps of `kvm_convert_memory` around
 * it (a {@link ConversionHook}), and what a failure leaves behind stays
 * behind: the error says so (`rolledBack`), and that QEMU stops the VM
 * (`vmStopped`) when the conversion came from a KVM memory-fault exit.
 *
 * @module
 */

import { BitmapStore } from "../store/bitmap_store.ts";
import { RangeTreeStore } from "../store/range_tree_store.ts";
import type { Run, StateStore } from "../store/state_store.ts";
import { MAX_BITS } from "../store/validate.ts";
import { type VmmPolicy, type VmmRules, vmmRules } from "../settings/vmm.ts";
import { readRuns } from "../store/_read_runs.ts";
import {
  ConversionError,
  InvalidChangeError,
  ListenerUndoError,
  RegionFailedError,
  type RolledBack,
  SourceError,
} from "./errors.ts";
import type {
  ChangeEvent,
  ChangeResult,
  ConversionHook,
  Listener,
  Notification,
  Observer,
  Range,
  Section,
} from "./listener.ts";
import { planCalls, type PlannedCall, type Registration } from "./_plan.ts";
import { type QemuRollback, qemuStateChange } from "./_qemu_state_change.ts";
import { replayRegistration, unregisterCalls } from "./_registration.ts";
import { PLUGGED, SHARED, StateBits } from "./state_bits.ts";
import {
  notificationsOf,
  type Refusal,
  rollBack,
  runTransaction,
  undoneItself,
} from "./_transaction.ts";
import { checkView, DMA_VIEW, isPopulatedState, PLUGGED_VIEW, type View } from "./view.ts";
import { viewRuns } from "./view_runs.ts";
// Saved state and rounds (issue 15): the code lives in snapshot.ts / dirty_tracker.ts.
import { type ChangeMark, DirtyTracker, StaleMarkError } from "./dirty_tracker.ts";
import {
  type RegionChanges,
  regionChanges,
  type RestoreOptions,
  restoreRegion,
  type SnapshotInput,
  snapshotRegion,
  snapshotRegionJson,
} from "./snapshot.ts";
import type { SnapshotJson } from "./snapshot_format.ts";
import { isMultipleOfPowerOfTwo, isPowerOfTwo } from "../util/_bits.ts";
import { causeChain } from "../util/_cause_chain.ts";
import { hex } from "../util/_hex.ts";
import { refuseAsync, refusePromise } from "../util/_sync.ts";
import { describeValue, errorLine } from "../util/text.ts";

/** Which store a region keeps its state in. */
export type StoreChoice = "range-tree" | "bitmap" | StateStore;

/** Options for a new {@link Region}. */
export interface RegionOptions {
  /** A name for errors and reports. */
  name: string;
  /** Size in bytes, a positive multiple of `pageSize`. */
  size: number;
  /** Page size in bytes, a power of two (default 4096). */
  pageSize?: number;
  /** Guest physical address of the region's first byte (default 0). */
  base?: number;
  /** Host virtual address of the region's shared backing (default: a made-up address). */
  hostAddress?: number;
  /**
   * The store (default `"range-tree"`). A region creates its store holding
   * only the `SHARED` bit and grows it as sources claim bits; a `StateStore`
   * given here must have `size / pageSize` pages (with 2 bits or more it is
   * taken to hold `PLUGGED` too).
   */
  store?: StoreChoice;
  /**
   * Starting state: `"private"` (default, as QEMU starts guest_memfd regions) or
   * `"shared"`.
   */
  initial?: "private" | "shared";
  /** The VMM policy changes follow (default `"memstate"`); see `src/settings/vmm.ts`. */
  vmm?: VmmPolicy;
}

/** Counters a region keeps about its own traffic. */
export interface RegionStats {
  /** Changes applied (not counting no-ops). */
  applied: number;
  /** Changes that were already applied and notified nobody. */
  noops: number;
  /** Requests refused by validation. */
  rejected: number;
  /** Changes refused by a participant (rolled back as the policy says). */
  refused: number;
  /** Notifications sent, rollbacks included. */
  notifications: number;
  /** Exceptions thrown by observers (they cannot veto, so they are only counted). */
  observerErrors: number;
  /** Discards that threw and were ignored (QEMU policies: a discard cannot be refused). */
  ignoredDiscardErrors: number;
}

/** A registered state source (QEMU 11's multi-source manager). */
export interface SourceInfo {
  /** The source's name, unique per region. */
  name: string;
  /** The state bits the source owns (set = populated). */
  bits: number;
  /** Bytes the source changes state in (its own requests are aligned to it). */
  granularity: number;
}

/** The name of the state source every region starts with: guest_memfd's SHARED bit. */
export const GUEST_MEMFD_SOURCE = "guest_memfd";

let nextHostAddress = 0x7f00_0000_0000;

/** One RAM block whose per-page state is kept in a store and followed by listeners. */
export class Region {
  /** Name, for errors and reports. */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** Page size in bytes: the unit of every change. */
  readonly pageSize: number;
  /** Guest physical address of the first byte. */
  readonly base: number;
  /** Number of pages. */
  readonly pages: number;
  /** The state store. Read it freely; change state only through the region. */
  readonly store: StateStore;
  /** Bits of the state word, by name; plugins claim extra bits here (the store grows). */
  readonly bits: StateBits;
  /** The VMM policy this region's changes follow. */
  readonly vmm: VmmPolicy;
  #hostAddress: number;
  /** Traffic counters. */
  readonly stats: RegionStats = {
    applied: 0,
    noops: 0,
    rejected: 0,
    refused: 0,
    notifications: 0,
    observerErrors: 0,
    ignoredDiscardErrors: 0,
  };
  readonly #rules: VmmRules;
  /**
   * In notification order: ascending priority (memstate) or newest first
   * (QEMU). Replaced, never edited in place, so a change that holds the list
   * calls exactly the listeners registered when it began, even if one of
   * them registers or unregisters another.
   */
  #registrations: readonly Registration[] = [];
  /** True while every registration takes the page size (see {@link Region.#changePage}). */
  #pageGranular = true;
  /** Replaced, never edited in place: a change tells those present when it began. */
  #observers: readonly Observer[] = [];
  #sources = new Map<string, SourceInfo>();
  #hook: ConversionHook | undefined;
  #failure: RegionFailedError | undefined;
  /** Built-in bits nobody claimed: every page counts as having them set. */
  #implied: number;
  /** The dirty log behind {@link Region.changesSince}: created by the first {@link Region.mark}. */
  #dirty: DirtyTracker | undefined;
  /** The run {@link Region.#readRuns} reuses for one-page changes. */
  #oneRun: [Run] = [{ start: 0, end: 0, state: 0 }];
  /** {@link Region.#section}, bound once instead of a closure per change. */
  #toSection = (call: PlannedCall): Section => this.#section(call);

  /** Creates a region; see {@link RegionOptions}. */
  constructor(options: RegionOptions) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`options: a region needs { name, size, ... }, got ${options}`);
    }
    const name = options.name;
    if (typeof name !== "string" || name === "") {
      throw new TypeError(`name: a region needs a non-empty name, got ${describeValue(name)}`);
    }
    this.#rules = vmmRules(options.vmm);
    this.vmm = this.#rules.name;
    const pageSize = options.pageSize ?? 4096;
    if (!isPowerOfTwo(pageSize)) {
      throw new InvalidChangeError(name, "pageSize", "a power of two", pageSize);
    }
    // QEMU tracks guest_memfd's shared state per host page, 4 KiB on x86
    // (system/ram-block-attributes.c `ram_block_attributes_get_block_size`).
    if (this.vmm !== "memstate" && pageSize !== 4096) {
      throw new InvalidChangeError(name, "pageSize", `4096 under ${this.vmm}`, pageSize);
    }
    const size = options.size;
    if (!Number.isSafeInteger(size) || size <= 0 || size % pageSize !== 0) {
      throw new InvalidChangeError(name, "size", `a positive multiple of ${pageSize}`, size);
    }
    const base = options.base ?? 0;
    if (!Number.isSafeInteger(base) || base < 0 || base % pageSize !== 0) {
      throw new InvalidChangeError(name, "base", `a non-negative multiple of ${pageSize}`, base);
    }
    if (!Number.isSafeInteger(base + size)) {
      throw new InvalidChangeError(name, "base", "such that base + size does not overflow", base);
    }
    const hostAddress = options.hostAddress;
    if (hostAddress !== undefined) checkHostAddress(name, hostAddress);
    const initial = options.initial ?? "private";
    if (initial !== "private" && initial !== "shared") {
      throw new InvalidChangeError(name, "initial", `"private" or "shared"`, initial);
    }
    this.name = name;
    this.size = size;
    this.pageSize = pageSize;
    this.base = base;
    this.pages = size / pageSize;
    this.store = makeStore(options.store, this.pages, initial === "shared" ? SHARED : 0, name);
    const store = this.store;
    this.bits = new StateBits(
      store.bits >= 2 ? SHARED | PLUGGED : SHARED,
      (bit, granularity) => this.#grow(bit, granularity),
      typeof store.addBit === "function" ? MAX_BITS : store.bits,
    );
    this.#implied = this.bits.implied;
    // guest_memfd's shared/private state is the first source of every region
    // (system/ram-block-attributes.c `ram_block_attributes_create`), one page
    // at a time (`ram_block_attributes_get_block_size`: the host page size).
    this.#sources.set(GUEST_MEMFD_SOURCE, {
      name: GUEST_MEMFD_SOURCE,
      bits: SHARED,
      granularity: pageSize,
    });
    this.#hostAddress = hostAddress ?? nextHostAddress;
    nextHostAddress += Math.ceil(size / 2 ** 30) * 2 ** 30 + 2 ** 30;
  }

  /**
   * Host virtual address of the shared backing, used by DMA plugins as the
   * `vaddr` of every mapping (`hostAddress + offset`); set by the plugin that
   * binds the backing (the KVM plugin). A multiple of 4096: see
   * {@link checkHostAddress}.
   */
  get hostAddress(): number {
    return this.#hostAddress;
  }

  set hostAddress(value: number) {
    checkHostAddress(this.name, value);
    this.#hostAddress = value;
  }

  /**
   * The smallest unit of change, in bytes: the minimum over the region's
   * sources, the page size when it has none (QEMU 11.1,
   * system/ram-discard-manager.c `ram_discard_manager_update_granularity`).
   */
  get granularity(): number {
    let g = 0;
    for (const s of this.#sources.values()) if (g === 0 || s.granularity < g) g = s.granularity;
    return g === 0 ? this.pageSize : g;
  }

  /** The error that marked this region failed, if any. */
  get failure(): RegionFailedError | undefined {
    return this.#failure;
  }

  /** The registered listeners, in the order they are notified (populates). */
  get listeners(): Listener[] {
    return this.#registrations.map((r) => r.listener);
  }

  /** The conversion hook, if one is installed. */
  get conversionHook(): ConversionHook | undefined {
    return this.#hook;
  }

  /** The state word every page counts as having on top of what the store holds. */
  get impliedBits(): number {
    return this.#implied;
  }

  /**
   * Changes the state of `[offset, offset + size)`: every page gets
   * `(state | setBits) & ~clearBits`. Listeners are told only where their view
   * flips; on refusal a {@link ConversionError} is thrown after the policy's
   * rollback. Returns what changed.
   */
  change(offset: number, size: number, setBits: number, clearBits: number): ChangeResult {
    this.#checkUsable();
    this.#checkChange(offset, size, setBits, clearBits);
    const startPage = offset / this.pageSize;
    const endPage = startPage + size / this.pageSize;
    // The observers present when the change began hear of it, on every path.
    const observers = this.#observers;
    if (this.#rules.order === "newest-first") {
      return this.#changeQemu(
        offset,
        size,
        startPage,
        endPage,
        setBits,
        clearBits,
        observers,
        "change",
      );
    }
    if (
      endPage - startPage === 1 && this.#pageGranular && this.#hook === undefined &&
      observers.length === 0
    ) {
      return this.#changePage(offset, startPage, setBits, clearBits);
    }
    const to = conversionTarget(setBits, clearBits);
    const hook = to === undefined ? undefined : this.#hook;
    if (hook) this.#hookStep(hook, "before", offset, size, to!);
    const runs = this.#readRuns(startPage, endPage);
    const result = this.#summarise(runs, setBits, clearBits);
    if (result.noop) {
      this.stats.noops++;
      if (hook) this.#hookStep(hook, "after", offset, size, to!);
      return result;
    }
    const calls = planCalls(runs, setBits, clearBits, this.#registrations, this.#implied);
    this.#checkAlignment(calls, offset, size);
    const refusal = runTransaction(calls, this.#toSection);
    if (refusal) this.#refused(refusal, offset, size);
    this.stats.notifications += calls.length;
    this.store.update(startPage, endPage, setBits, clearBits);
    this.#dirty?.record(startPage, endPage);
    this.stats.applied++;
    result.notified = callNames(calls);
    if (hook) this.#hookStep(hook, "after", offset, size, to!);
    // Most regions have no observers: do not build an event nobody reads.
    if (observers.length > 0) {
      const notifications = notificationsOf(calls, this.pageSize);
      this.#emit(observers, { offset, size, setBits, clearBits, result, notifications });
    }
    return result;
  }

  /**
   * {@link Region.change} of the one page `page` at byte `offset`, when no
   * listener needs more than a page (no alignment to check), no hook runs
   * and no observer reads the calls: the same calls, in the same order, with
   * the same result, stats and rollback as the general path, without
   * building the runs, the planned calls and their list first. Most
   * conversions are of one 4 KiB page, and this path is what brings a
   * region's share of the `linux 4k` rows' overhead from about 1.66x to 1.54x
   * of the bare punches (`bench/linux_rows.ts --parts`). The flips are the
   * general path's (_plan.ts `addFlips`) for a single run: each registration
   * whose view flips is called once, discards in descending order, then
   * populates in ascending order. On a refusal the calls are planned after
   * all, from the state they were chosen from (a listener may have changed
   * the region before it refused), to roll back and report them exactly as
   * the general path does.
   */
  #changePage(offset: number, page: number, setBits: number, clearBits: number): ChangeResult {
    const stored = this.store.get(page);
    const after = (stored | setBits) & ~clearBits;
    const flipped = stored ^ after;
    if (flipped === 0) {
      this.stats.noops++;
      return noChange();
    }
    // What the calls are chosen from, kept for a refusal: a listener may
    // change the region (this page, a claimed bit) before it refuses.
    const implied = this.#implied;
    const was = stored | implied;
    const now = (was | setBits) & ~clearBits;
    const registrations = this.#registrations;
    const bytes = this.pageSize;
    let made = 0;
    let notified: string[] = [];
    try {
      for (let i = registrations.length - 1; i >= 0; i--) {
        const reg = registrations[i];
        if (page < reg.startPage || page >= reg.endPage) continue;
        if (isPopulatedState(was, reg.view) && !isPopulatedState(now, reg.view)) {
          const section = { region: this, offset, size: bytes, uniform: true };
          refusePromise(reg.listener.discard(section), "discard");
          notified = withName(notified, made++, reg.listener.name);
        }
      }
      for (let i = 0; i < registrations.length; i++) {
        const reg = registrations[i];
        if (page < reg.startPage || page >= reg.endPage) continue;
        if (!isPopulatedState(was, reg.view) && isPopulatedState(now, reg.view)) {
          const section = { region: this, offset, size: bytes, uniform: true };
          refusePromise(reg.listener.populate(section), "populate");
          notified = withName(notified, made++, reg.listener.name);
        }
      }
    } catch (cause) {
      const runs = [{ start: page, end: page + 1, state: stored }];
      const calls = planCalls(runs, setBits, clearBits, registrations, implied);
      const call = calls[made];
      const rollbackFailure = rollBack(calls.slice(0, made), this.#toSection) ??
        undoneItself(call, cause);
      this.#refused(
        rollbackFailure ? { call, cause, rollbackFailure } : { call, cause },
        offset,
        bytes,
      );
    }
    this.stats.notifications += made;
    this.store.update(page, page + 1, setBits, clearBits);
    this.#dirty?.record(page, page + 1);
    this.stats.applied++;
    const result = noChange();
    countFlip(result, bytes, flipped, after);
    result.notified = notified;
    return result;
  }

  /** Converts `[offset, offset + size)` to shared or private (the SHARED bit). */
  convert(offset: number, size: number, to: "shared" | "private"): ChangeResult {
    if (to === "shared") return this.change(offset, size, SHARED, 0);
    if (to === "private") return this.change(offset, size, 0, SHARED);
    this.stats.rejected++;
    throw new InvalidChangeError(this.name, "to", `"shared" or "private"`, to);
  }

  /**
   * Clears a state source's `clearBits` over `[offset, offset + size)` the way
   * a source that drops all its memory at once does: virtio-mem's UNPLUG_ALL.
   * Under QEMU 11.1 every listener whose view needs those bits gets ONE
   * discard of its section inside the range, populated or not
   * (hw/virtio/virtio-mem.c `virtio_mem_notify_unplug_all` calls
   * system/ram-discard-manager.c `ram_discard_manager_notify_discard_all`);
   * under QEMU 10.1 a listener that accepts double discards does, the others
   * get one discard per run that was populated (`virtio_mem_notify_unplug_all`
   * before the multi-source series). Under memstate it is
   * {@link Region.change}: one discard per run that flips, one over all of
   * them to a listener that accepts double discards. guest_memfd's `SHARED`
   * bit has no such operation and is refused. Nothing changes when nothing in
   * the range has the bits.
   */
  discardAll(offset: number, size: number, clearBits: number): ChangeResult {
    this.#checkUsable();
    this.#checkChange(offset, size, 0, clearBits);
    if ((clearBits & SHARED) !== 0) {
      this.#reject(
        "clearBits",
        "a source's bits other than guest_memfd's SHARED (it has no discard-all)",
        clearBits,
      );
    }
    if (this.#rules.order !== "newest-first") return this.change(offset, size, 0, clearBits);
    const startPage = offset / this.pageSize;
    const endPage = startPage + size / this.pageSize;
    const observers = this.#observers;
    return this.#changeQemu(
      offset,
      size,
      startPage,
      endPage,
      0,
      clearBits,
      observers,
      "discard-all",
    );
  }

  /**
   * Installs (or with `undefined` removes) the {@link ConversionHook} that
   * makes kvm_convert_memory's KVM calls around every conversion. Its steps
   * must be synchronous: an async one is a `TypeError` here, and a step that
   * returns a promise fails its conversion.
   */
  setConversionHook(hook: ConversionHook | undefined): void {
    if (hook !== undefined) {
      if (typeof hook?.before !== "function" || typeof hook?.after !== "function") {
        throw new TypeError(`hook: must have before and after functions`);
      }
      for (const step of ["before", "after"] as const) {
        refuseAsync(hook[step], `hook ${hook.name}: ${step}`);
      }
      if (this.#hook !== undefined) {
        throw new RangeError(
          `hook: region ${this.name} already has the conversion hook "${this.#hook.name}"`,
        );
      }
    }
    this.#hook = hook;
  }

  /**
   * Registers `listener` on `range` (default: the whole region) and replays
   * `populate` for every populated part. A refused replay is handled as the
   * policy says: memstate discards what was replayed and does not register
   * (a {@link ConversionError}); QEMU 11.1 keeps the listener registered with
   * what was replayed and reports it (the error has `registered: true` in
   * its `cause` chain, see {@link ReplayError}); QEMU 10.1 exits (the region
   * fails), except on a region virtio-mem manages, which keeps the listener as
   * QEMU 11.1 does ({@link VmmRules.perManager}). A listener already
   * registered, or another of the same name, is a `RangeError`.
   */
  register(listener: Listener, range: Range = { offset: 0, size: this.size }): void {
    this.#checkUsable();
    const reg = this.#resolve(listener, range);
    const calls: PlannedCall[] = [];
    for (const run of viewRuns(this.store, reg.startPage, reg.endPage, reg.view, this.#implied)) {
      if (run.populated) {
        calls.push({ registration: reg, kind: "populate", startPage: run.start, endPage: run.end });
      }
    }
    this.#checkAlignment(calls, range.offset, range.size);
    // QEMU 10.1: virtio-mem's manager only reports a refused replay
    // (hw/virtio/virtio-mem.c virtio_mem_rdm_register_listener).
    const mode = this.#virtioMemManaged() ? "stay-registered" : this.#rules.failedReplay;
    const failed = replayRegistration(mode, calls, this.#toSection);
    this.stats.notifications += failed?.notified ?? calls.length;
    if (failed && mode === "rollback") {
      const { call, cause, rollbackFailure } = failed;
      this.#refused(
        rollbackFailure ? { call, cause, rollbackFailure } : { call, cause },
        range.offset,
        range.size,
      );
    }
    this.#insert(reg);
    if (failed) {
      const error = new ReplayError(this.name, listener.name, failed.call, this, failed.cause);
      if (mode === "exit") {
        this.#failure = new RegionFailedError(this.name, `QEMU exits: ${error.message}`, error);
        throw this.#failure;
      }
      throw error;
    }
  }

  /**
   * Unregisters `listener`, first discarding what is populated for it (one
   * discard of its whole range when it accepts double discards, or always
   * under QEMU 11.1; nothing under QEMU 10.1 on a region virtio-mem manages
   * while no block is plugged). If a discard throws, the listener is detached anyway
   * and the error is rethrown.
   */
  unregister(listener: Listener): void {
    const index = this.#registrations.findIndex((r) => r.listener === listener);
    if (index === -1) {
      throw new RangeError(
        `listener: "${listener?.name}" is not registered on region ${this.name}`,
      );
    }
    const reg = this.#registrations[index];
    this.#setRegistrations(this.#registrations.toSpliced(index, 1));
    const whole = this.#rules.wholeSectionUnregister || listener.acceptsDoubleDiscard === true;
    // QEMU 10.1 virtio-mem sends nothing while nothing is plugged
    // (hw/virtio/virtio-mem.c virtio_mem_rdm_unregister_listener: if (vmem->size)).
    const done = this.#virtioMemManaged() && !this.#anyPlugged()
      ? []
      : unregisterCalls(reg, whole, this.store, this.#implied);
    // Discarding what was populated is exactly a rollback of those populates.
    const failure = rollBack(done, this.#toSection);
    this.stats.notifications += done.length;
    if (failure) {
      throw new Error(
        `region ${this.name}: ${listener.name} failed to discard while unregistering ` +
          `(it is detached): ${errorLine(failure.cause)}`,
        { cause: failure.cause },
      );
    }
  }

  /**
   * QEMU 10.1 ({@link VmmRules.perManager}): true when virtio-mem (the source of
   * `PLUGGED`) is the region's one manager, whose register and unregister rules
   * differ from guest_memfd's.
   */
  #virtioMemManaged(): boolean {
    if (!this.#rules.perManager) return false;
    for (const s of this.#sources.values()) if (s.bits === PLUGGED) return true;
    return false;
  }

  /** True when some page of the region is plugged (QEMU's `vmem->size` is not 0). */
  #anyPlugged(): boolean {
    for (const run of viewRuns(this.store, 0, this.pages, PLUGGED_VIEW, this.#implied)) {
      if (run.populated) return true;
    }
    return false;
  }

  /** True only if every byte of `range` is populated under `view` (no alignment needed). */
  isPopulated(range: Range, view: View = DMA_VIEW): boolean {
    checkView(view, "view");
    const [start, end] = this.#pagesCovering(range);
    for (const run of viewRuns(this.store, start, end, view, this.#implied)) {
      if (!run.populated) return false;
    }
    return true;
  }

  /**
   * Calls `fn` for each maximal populated part of `range` under `view`, in
   * order; stops at the first exception and returns it (undefined if none). A
   * promise `fn` returns counts as an exception: the replay never awaits.
   */
  replayPopulated(range: Range, view: View, fn: (section: Section) => void): unknown {
    return this.#replay(range, view, true, fn);
  }

  /** Like {@link Region.replayPopulated}, for the parts that are not populated. */
  replayDiscarded(range: Range, view: View, fn: (section: Section) => void): unknown {
    return this.#replay(range, view, false, fn);
  }

  /**
   * Adds an observer of applied changes; returns a function that removes it.
   * A change tells the observers present when it began: one added or removed
   * by a listener during a change takes effect from the next. An observer
   * must be synchronous (an async one is a `TypeError`); one that throws or
   * returns a promise is counted in `stats.observerErrors`.
   */
  observe(observer: Observer): () => void {
    if (typeof observer !== "function") {
      throw new TypeError(`observer: must be a function, got ${typeof observer}`);
    }
    refuseAsync(observer, "observer:");
    this.#observers = [...this.#observers, observer];
    return () => {
      this.#observers = this.#observers.filter((o) => o !== observer);
    };
  }

  /**
   * Declares a state source. A second source of the same name is `EBUSY`, as
   * is a second source at all under QEMU 10.1 (one RamDiscardManager per
   * memory region: system/memory.c `memory_region_set_ram_discard_manager`).
   * A source of an unclaimed built-in bit (virtio-mem's `PLUGGED`) claims it:
   * the store grows by that bit, every page starting with it set (populated),
   * kept at the source's granularity where the store can.
   */
  addSource(source: SourceInfo): void {
    if (typeof source !== "object" || source === null || typeof source.name !== "string") {
      throw new TypeError(
        `region ${this.name}: addSource needs { name, bits, granularity }, got ${
          describeValue(source)
        }`,
      );
    }
    if (source.name === "") {
      throw new InvalidChangeError(this.name, "source.name", "a non-empty name", source.name);
    }
    if (!Number.isSafeInteger(source.bits) || source.bits <= 0) {
      throw new InvalidChangeError(this.name, "source.bits", "a positive bit mask", source.bits);
    }
    if (this.#sources.has(source.name)) {
      throw new SourceError("EBUSY", `region ${this.name}: source "${source.name}" already exists`);
    }
    if (!this.#rules.multipleSources && this.#sources.size > 0) {
      const first = [...this.#sources.keys()][0];
      throw new SourceError(
        "EBUSY",
        `region ${this.name}: ${this.vmm} allows one state source per memory region ` +
          `(system/memory.c memory_region_set_ram_discard_manager), and "${first}" is one; ` +
          `"${source.name}" needs qemu-11.1 or memstate`,
      );
    }
    if (
      !Number.isSafeInteger(source.granularity) || source.granularity <= 0 ||
      source.granularity % this.pageSize !== 0
    ) {
      throw new InvalidChangeError(
        this.name,
        "granularity",
        `a positive multiple of the page size ${this.pageSize}`,
        source.granularity,
      );
    }
    if (source.bits === PLUGGED && this.bits.get("plugged") === undefined) {
      this.bits.claim("plugged", { granularity: source.granularity / this.pageSize });
    }
    this.#sources.set(source.name, { ...source });
  }

  /**
   * Removes a state source; an unknown one is `ENOENT`. Its bits become
   * populated everywhere, and listeners get `populate` for every run that
   * becomes populated once the source no longer holds it back, one call per
   * run (QEMU 11.1, system/ram-discard-manager.c `ram_discard_manager_del_source`:
   * newest listener first, no KVM call). If a listener refuses, the listeners
   * told are rolled back (under QEMU 11.1 the failing one too), the state is
   * untouched, the source stays and a {@link ConversionError} is thrown.
   * QEMU 10.1 has one source per region and removes it only from a region no
   * listener follows (system/memory.c `memory_region_set_ram_discard_manager`
   * on an unmapped region): with listeners registered it is `EBUSY` there.
   */
  removeSource(name: string): void {
    const source = this.#sources.get(name);
    if (!source) throw new SourceError("ENOENT", `region ${this.name}: no source "${name}"`);
    const held = source.bits & this.bits.mask;
    const removal = this.#rules.sourceRemoval;
    if (removal === "unmapped-only" && this.#registrations.length > 0) {
      throw new SourceError(
        "EBUSY",
        `region ${this.name}: ${this.vmm} removes source "${name}" only from a region no ` +
          `listener follows (system/memory.c memory_region_set_ram_discard_manager on an ` +
          `unmapped region); unregister ${this.#registrations.length} listener(s) first`,
      );
    }
    if (held !== 0 && removal === "change") this.change(0, this.size, held, 0);
    else if (held !== 0) {
      this.#checkUsable();
      this.#changeQemu(0, this.size, 0, this.pages, held, 0, this.#observers, "del-source");
    }
    this.#sources.delete(name);
  }

  /** The declared state sources. */
  sources(): SourceInfo[] {
    return [...this.#sources.values()];
  }

  /** The state word of the page holding byte `offset` (implied bits included). */
  stateAt(offset: number): number {
    if (!Number.isInteger(offset) || offset < 0 || offset >= this.size) {
      throw new InvalidChangeError(this.name, "offset", `an integer in [0, ${this.size})`, offset);
    }
    return this.store.get(Math.floor(offset / this.pageSize)) | this.#implied;
  }

  // ---- saved state (issue 15): thin wrappers over snapshot.ts and dirty_tracker.ts ----

  /**
   * A versioned, checksummed binary snapshot of the region's shape and state
   * (see `snapshot_format.ts` for the layout). {@link Region.restore} rebuilds
   * a region from it; `applySnapshot` brings an existing one to it.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Region } from "@cvm/memstate";
   * const region = new Region({ name: "ram", size: 2 ** 40 }); // 1 TiB
   * region.convert(0, 2 ** 21, "shared");
   * const copy = Region.restore(region.snapshot(), { store: "bitmap" });
   * assert.deepEqual([...copy.store.runs()], [...region.store.runs()]);
   * ```
   */
  snapshot(): Uint8Array {
    return snapshotRegion(this);
  }

  /** The same snapshot in its JSON form, for people and tests. */
  snapshotJson(): SnapshotJson {
    return snapshotRegionJson(this);
  }

  /**
   * Rebuilds a region from a snapshot (binary or JSON) in a store of either
   * kind; listeners registered afterwards get `populate` replayed for what is
   * populated. Bad input throws a `SnapshotError` (with a `code`).
   */
  static restore(input: SnapshotInput, options: RestoreOptions = {}): Region {
    return restoreRegion(input, options, (o) => new Region(o));
  }

  /**
   * Marks this moment: {@link Region.changesSince} reports what changed after
   * it. The first mark starts the region's dirty log (before it, changes cost
   * nothing extra).
   */
  mark(): ChangeMark {
    this.#dirty ??= new DirtyTracker(this.name, this.pages);
    return this.#dirty.mark();
  }

  /**
   * The page ranges changed since `mark`, their runs and a delta snapshot of
   * them, with a new mark taken at the same moment (`next`): a migration sends
   * the map in rounds while conversions continue.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { applySnapshot, Region } from "@cvm/memstate";
   * const source = new Region({ name: "ram", size: 2 ** 30 });
   * const mark = source.mark();
   * const destination = Region.restore(source.snapshot());
   * source.convert(4096, 8192, "shared"); // the guest keeps converting
   * const round = source.changesSince(mark);
   * assert.deepEqual(round.ranges, [{ start: 1, end: 3 }]);
   * applySnapshot(destination, round.encode());
   * assert.deepEqual([...destination.store.runs()], [...source.store.runs()]);
   * ```
   */
  changesSince(mark: ChangeMark): RegionChanges {
    if (!this.#dirty) throw new StaleMarkError(this.name, mark, "is not a mark of this region");
    return regionChanges(this, this.#dirty, mark);
  }

  /** Forgets the dirty log before `mark` (older marks become stale), bounding its memory. */
  releaseMarks(mark: ChangeMark): void {
    if (!this.#dirty) throw new StaleMarkError(this.name, mark, "is not a mark of this region");
    this.#dirty.release(mark);
  }

  /**
   * The store's runs over `[start, end)`. One page (the common 4 KiB
   * conversion) is read into a run this region reuses: the runs are only read
   * before any listener is called, so a listener that changes the region
   * again cannot see them overwritten.
   */
  #readRuns(start: number, end: number): readonly Run[] {
    if (end - start !== 1) return readRuns(this.store, start, end);
    const run = this.#oneRun[0];
    run.start = start;
    run.end = end;
    run.state = this.store.get(start);
    return this.#oneRun;
  }

  #grow(bit: number, granularity: number): void {
    const store = this.store;
    const mask = 1 << bit;
    const held = bit < store.bits &&
      (!(store instanceof BitmapStore) || (store.heldBits & mask) !== 0);
    if (!held) {
      if (typeof store.addBit !== "function") {
        throw new RangeError(
          `name: the store of region ${this.name} holds ${store.bits} bits and cannot grow`,
        );
      }
      // Bitmaps keep a coarse bit at its source's granularity, as QEMU keeps one
      // bit per virtio-mem block; the region ends in a partial unit at most.
      store.addBit(bit, { granularity });
    }
    // A claimed built-in bit starts as it was implied: set everywhere.
    if (this.#implied & mask) {
      store.update(0, this.pages, mask, 0);
      this.#dirty?.record(0, this.pages);
    }
    this.#implied &= ~mask;
  }

  #checkUsable(): void {
    if (this.#failure) throw this.#failure;
  }

  #checkChange(offset: number, size: number, setBits: number, clearBits: number): void {
    // Plain conditions, no closures or arrays: this runs on every conversion.
    if (!Number.isSafeInteger(offset) || offset < 0) {
      this.#reject("offset", "a non-negative integer", offset);
    }
    if (!Number.isSafeInteger(size) || size <= 0) this.#reject("size", "a positive integer", size);
    // pageSize is a power of two (the constructor checks): no `%` of a double
    // (isMultipleOfPowerOfTwo).
    if (!isMultipleOfPowerOfTwo(offset, this.pageSize)) {
      this.#reject("offset", `aligned to ${this.pageSize}`, offset);
    }
    if (!isMultipleOfPowerOfTwo(size, this.pageSize)) {
      this.#reject("size", `a multiple of ${this.pageSize}`, size);
    }
    if (!Number.isSafeInteger(offset + size)) {
      this.#reject("size", "such that offset + size does not overflow", size);
    }
    if (offset + size > this.size) {
      this.#reject(
        "size",
        `such that offset + size <= region size ${hex(this.size)}`,
        size,
      );
    }
    const known = this.bits.mask;
    if (!isStateMask(setBits, known)) this.#rejectBits("setBits", setBits, known);
    if (!isStateMask(clearBits, known)) this.#rejectBits("clearBits", clearBits, known);
  }

  /** Counts a refused request and throws the error that names `argument`. */
  #reject(argument: string, rule: string, value: unknown): never {
    this.stats.rejected++;
    throw new InvalidChangeError(this.name, argument, rule, value);
  }

  #rejectBits(argument: string, value: number, known: number): never {
    this.#reject(
      argument,
      `made of claimed state bits (mask ${hex(known)}; claim "plugged" with ` +
        `region.bits.claim or a virtio-mem source)`,
      value,
    );
  }

  #checkAlignment(calls: readonly PlannedCall[], offset: number, size: number): void {
    for (let i = 0; i < calls.length; i++) {
      const c = calls[i];
      const g = c.registration.granularity;
      if (g === this.pageSize) continue; // every change is page aligned already
      const from = c.startPage * this.pageSize;
      const bytes = (c.endPage - c.startPage) * this.pageSize;
      if (from % g !== 0 || bytes % g !== 0) {
        this.stats.rejected++;
        throw new InvalidChangeError(
          this.name,
          "offset",
          `such that ${c.registration.listener.name} (granularity ${hex(g)}) is told ` +
            `aligned ranges, but [${hex(offset)}, +${hex(size)}) would ` +
            `${c.kind} [${hex(from)}, +${hex(bytes)})`,
          offset,
        );
      }
    }
  }

  /**
   * A QEMU-policy change: hook, QEMU's state change, hook; a failure stops the
   * VM. `op` says which of QEMU's paths it is: `"change"`, a source's state
   * change (guest_memfd's `ram_block_attributes_state_change` with
   * kvm_convert_memory's hook around it, or virtio-mem's
   * `virtio_mem_set_block_state`); `"discard-all"`, virtio-mem's unplug-all
   * ({@link Region.discardAll}); `"del-source"`, system/ram-discard-manager.c
   * `ram_discard_manager_del_source` (no hook, no bitmap written until every
   * listener accepted).
   */
  #changeQemu(
    offset: number,
    size: number,
    startPage: number,
    endPage: number,
    setBits: number,
    clearBits: number,
    observers: readonly Observer[],
    op: "change" | "discard-all" | "del-source",
  ): ChangeResult {
    const sharedChange = op === "change" && ((setBits | clearBits) & SHARED) !== 0;
    const to = sharedChange ? conversionTarget(setBits, clearBits) : undefined;
    if (sharedChange && to === undefined) {
      this.#reject("setBits", "one source's bits per change under a QEMU policy", setBits);
    }
    const hook = to === undefined ? undefined : this.#hook;
    if (hook) this.#hookStep(hook, "before", offset, size, to!);
    const runs = readRuns(this.store, startPage, endPage);
    const result = this.#summarise(runs, setBits, clearBits);
    const guestMemfd = sharedChange;
    const rollback: QemuRollback = this.#rules.rollback === "listeners"
      ? "notified-and-failing"
      : guestMemfd
      ? "none"
      : "notified";
    const discardAll = this.#rules.discardAll;
    const outcome = qemuStateChange({
      store: this.store,
      registrations: this.#registrations,
      implied: this.#implied,
      startPage,
      endPage,
      setBits,
      clearBits,
      // Only guest_memfd's state change handles a mixture page by page
      // (system/ram-block-attributes.c ram_block_attributes_state_change).
      perPageMixtures: guestMemfd && this.#rules.perPageMixtures,
      discardAll: op === "discard-all" && discardAll !== "per-run" ? discardAll : undefined,
      commitFirst: guestMemfd,
      rollback,
      toSection: this.#toSection,
    });
    // The store may have changed even if a listener refused (QEMU leaves it so).
    if (!result.noop) this.#dirty?.record(startPage, endPage);
    this.stats.notifications += outcome.notifications.length;
    this.stats.ignoredDiscardErrors += outcome.ignored.length;
    if (outcome.refusal) {
      const rolledBack: RolledBack = outcome.committed || rollback === "none"
        ? "none"
        : op === "del-source" // the source stays, its bitmap untouched: all is undone
        ? "all"
        : "listeners";
      this.#refused(outcome.refusal, offset, size, {
        rolledBack: guestMemfd && rollback !== "none" ? "listeners" : rolledBack,
        vmStopped: guestMemfd && this.#rules.failureStopsVm,
      });
    }
    if (result.noop) this.stats.noops++;
    else this.stats.applied++;
    result.notified = listenerNames(outcome.notifications);
    if (outcome.ignored.length > 0) {
      result.ignoredErrors = outcome.ignored.map(({ call, cause }) =>
        `${call.registration.listener.name} discard [${hex(call.startPage * this.pageSize)}, +${
          hex((call.endPage - call.startPage) * this.pageSize)
        }): ${errorLine(cause)} (ignored: notify_discard cannot fail)`
      );
    }
    if (hook) this.#hookStep(hook, "after", offset, size, to!);
    if (!result.noop && observers.length > 0) {
      const notifications = outcome.notifications;
      this.#emit(observers, { offset, size, setBits, clearBits, result, notifications });
    }
    return result;
  }

  /** Runs one step of the conversion hook; a failure fails the conversion. */
  #hookStep(
    hook: ConversionHook,
    step: "before" | "after",
    offset: number,
    size: number,
    to: "shared" | "private",
  ): void {
    try {
      refusePromise(hook[step]({ region: this, offset, size }, to), step);
    } catch (cause) {
      const qemu = this.#rules.failureStopsVm;
      const error = new ConversionError({
        listener: hook.name,
        region: this.name,
        offset,
        size,
        direction: to === "shared" ? "populate" : "discard",
        section: { offset, size },
        base: this.base,
        rolledBack: step === "before" ? "all" : "none",
        vmStopped: qemu,
      }, cause);
      this.stats.refused++;
      throw error;
    }
  }

  #refused(
    outcome: Refusal,
    offset: number,
    size: number,
    qemu?: { rolledBack: RolledBack; vmStopped: boolean },
  ): never {
    const section = this.#section(outcome.call);
    const error = new ConversionError({
      listener: outcome.call.registration.listener.name,
      region: this.name,
      offset,
      size,
      direction: outcome.call.kind,
      section: { offset: section.offset, size: section.size },
      base: this.base,
      ...qemu,
    }, outcome.cause);
    this.stats.refused++;
    if (outcome.rollbackFailure) {
      // The verdict first: a message quoted in one line (errorLine) keeps it.
      const failed = outcome.rollbackFailure;
      const refused = `${outcome.call.registration.listener.name} refused ${outcome.call.kind} ` +
        `of [${hex(section.offset)}, +${hex(section.size)})`;
      const cause = failed.cause;
      const message = cause instanceof ListenerUndoError && failed.call === outcome.call
        ? `${refused} (${errorLine(cause.refusal)}) and could not undo its own part: ` +
          errorLine(cause.cause)
        : `${failed.call.registration.listener.name} refused the inverse call after ${refused}: ` +
          errorLine(cause);
      this.#failure = new RegionFailedError(this.name, message, cause);
      throw this.#failure;
    }
    throw error;
  }

  #insert(reg: Registration): void {
    if (this.#rules.order === "newest-first") {
      // QLIST_INSERT_HEAD: the newest listener hears of every change first.
      this.#setRegistrations([reg, ...this.#registrations]);
      return;
    }
    // Stable insertion keeps registration order among equal priorities.
    const at = this.#registrations.findIndex((r) => r.priority > reg.priority);
    this.#setRegistrations(this.#registrations.toSpliced(at === -1 ? Infinity : at, 0, reg));
  }

  #setRegistrations(registrations: readonly Registration[]): void {
    this.#registrations = registrations;
    this.#pageGranular = registrations.every((r) => r.granularity === this.pageSize);
  }

  #resolve(listener: Listener, range: Range): Registration {
    if (typeof listener !== "object" || listener === null) {
      throw new TypeError(`listener: must be an object, got ${listener}`);
    }
    const name = listener.name;
    if (typeof name !== "string" || name === "") {
      throw new TypeError(`listener.name: must be a non-empty string, got ${describeValue(name)}`);
    }
    for (const fn of ["populate", "discard"] as const) {
      if (typeof listener[fn] !== "function") {
        throw new TypeError(`listener ${name}: ${fn} must be a function`);
      }
      refuseAsync(listener[fn], `listener ${name}: ${fn}`);
    }
    if (this.#registrations.some((r) => r.listener === listener)) {
      throw new RangeError(`listener ${name}: already registered on region ${this.name}`);
    }
    // Results, errors and reports name listeners (ChangeResult.notified lists each once): two
    // of one name would be told apart nowhere.
    if (this.#registrations.some((r) => r.listener.name === name)) {
      throw new RangeError(
        `listener ${name}: another listener of that name is registered on region ${this.name}`,
      );
    }
    const priority = listener.priority ?? 0;
    if (!Number.isFinite(priority)) {
      throw new TypeError(`listener ${name}: priority must be a finite number, got ${priority}`);
    }
    const view = listener.view ?? DMA_VIEW;
    checkView(view, `listener ${name}: view`);
    const granularity = listener.granularity ?? this.pageSize;
    if (!Number.isSafeInteger(granularity) || granularity <= 0 || granularity % this.pageSize) {
      throw new InvalidChangeError(
        this.name,
        `listener ${name}: granularity`,
        `a positive multiple of the page size ${this.pageSize}`,
        granularity,
      );
    }
    const { offset, size } = range ?? {};
    const bad = !Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 ||
      size <= 0 || offset + size > this.size;
    if (bad) {
      throw new InvalidChangeError(
        this.name,
        "range",
        `a non-empty byte range inside [0, ${hex(this.size)})`,
        `{ offset: ${offset}, size: ${size} }`,
      );
    }
    if (offset % granularity !== 0 || size % granularity !== 0) {
      throw new InvalidChangeError(
        this.name,
        "range",
        `aligned to listener ${name}'s granularity ${hex(granularity)}`,
        `{ offset: ${hex(offset)}, size: ${hex(size)} }`,
      );
    }
    return {
      listener,
      priority,
      view,
      granularity,
      coalesce: listener.coalesce === true,
      coalesceDiscards: listener.coalesce === true || listener.acceptsDoubleDiscard === true,
      startPage: offset / this.pageSize,
      endPage: (offset + size) / this.pageSize,
    };
  }

  #section(call: PlannedCall): Section {
    return {
      region: this,
      offset: call.startPage * this.pageSize,
      size: (call.endPage - call.startPage) * this.pageSize,
      uniform: call.parts === undefined && call.mixed !== true,
    };
  }

  #pagesCovering(range: Range): [number, number] {
    const { offset, size } = range ?? {};
    if (
      !Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 || size <= 0 ||
      offset + size > this.size
    ) {
      throw new InvalidChangeError(
        this.name,
        "range",
        `a non-empty byte range inside [0, ${hex(this.size)})`,
        `{ offset: ${offset}, size: ${size} }`,
      );
    }
    return [Math.floor(offset / this.pageSize), Math.ceil((offset + size) / this.pageSize)];
  }

  #replay(range: Range, view: View, populated: boolean, fn: (s: Section) => void): unknown {
    checkView(view, "view");
    const [start, end] = this.#pagesCovering(range);
    for (const run of viewRuns(this.store, start, end, view, this.#implied)) {
      if (run.populated !== populated) continue;
      // Clip to the byte range asked for: QEMU sections need not be page aligned.
      const from = Math.max(run.start * this.pageSize, range.offset);
      const to = Math.min(run.end * this.pageSize, range.offset + range.size);
      try {
        refusePromise(fn({ region: this, offset: from, size: to - from }), "fn");
      } catch (error) {
        return error;
      }
    }
    return undefined;
  }

  #summarise(runs: readonly Run[], setBits: number, clearBits: number): ChangeResult {
    const result = noChange();
    for (const run of runs) {
      const after = (run.state | setBits) & ~clearBits;
      const flipped = run.state ^ after;
      if (flipped !== 0) countFlip(result, (run.end - run.start) * this.pageSize, flipped, after);
    }
    return result;
  }

  /** Tells `observers` of an applied change of this region. */
  #emit(observers: readonly Observer[], change: Omit<ChangeEvent, "region">): void {
    const event: ChangeEvent = { region: this, ...change };
    for (const observer of observers) {
      try {
        refusePromise(observer(event), "observer");
      } catch {
        this.stats.observerErrors++;
      }
    }
  }
}

/**
 * A registration whose replay a listener refused, under a QEMU policy: QEMU
 * 11.1 keeps the listener registered with what was replayed before the
 * failure and reports the error (system/ram-discard-manager.c
 * `ram_discard_manager_register_listener`).
 */
export class ReplayError extends Error {
  /** The region. */
  readonly region: string;
  /** The listener that refused. */
  readonly listener: string;
  /** True: the listener stays registered. */
  readonly registered = true;

  /** Creates the error for `listener`'s refused replay of `call`. */
  constructor(region: string, listener: string, call: PlannedCall, r: Region, cause: unknown) {
    const from = call.startPage * r.pageSize, bytes = (call.endPage - call.startPage) * r.pageSize;
    super(
      `region ${region}: replaying populated ranges to ${listener} failed at ` +
        `[${hex(from)}, +${hex(bytes)}): ${
          cause instanceof Error ? cause.message : String(cause)
        }; the listener stays registered with what was replayed before`,
      { cause },
    );
    this.name = "ReplayError";
    this.region = region;
    this.listener = listener;
  }
}

/**
 * True when a failed {@link Region.register} of the listener named
 * `listener` left it registered: the error, or one it wraps, is that
 * listener's {@link ReplayError} (QEMU 11.1 keeps the listener; QEMU 10.1's
 * exit, a `RegionFailedError`, wraps one too, with the listener left on the
 * failed region). A region that had failed before refuses a registration
 * with the error of the listener that failed it, which is not this one's. A
 * plugin that keeps state per registration keeps it then, so that its
 * `detach` still finds it.
 */
export function listenerStayedRegistered(e: unknown, listener: string): boolean {
  const replay = causeChain(e).find((c) => c instanceof ReplayError);
  return replay instanceof ReplayError && replay.listener === listener;
}

/** `"shared"` / `"private"` for a change of the SHARED bit alone, else undefined. */
function conversionTarget(setBits: number, clearBits: number): "shared" | "private" | undefined {
  if (setBits === SHARED && clearBits === 0) return "shared";
  if (setBits === 0 && clearBits === SHARED) return "private";
  return undefined;
}

/**
 * True when `bits` is a non-negative integer made only of bits in `known`. The
 * bound comes first: `&` keeps only the low 32 bits, so 2^32 + 1 would pass
 * as 1 and reach the listeners before the store refused it.
 */
function isStateMask(bits: number, known: number): boolean {
  return Number.isInteger(bits) && bits >= 0 && bits <= 0x7fffffff && (bits & ~known) === 0;
}

/** The names of the listeners notified, in call order, each once (a handful: no Set). */
function listenerNames(notifications: readonly Notification[]): string[] {
  const names: string[] = [];
  for (const n of notifications) {
    if (!names.includes(n.listener)) names.push(n.listener);
  }
  return names;
}

/** A change's result before anything is counted: nothing changed, nobody notified. */
function noChange(): ChangeResult {
  return {
    noop: true,
    changedBytes: 0,
    toShared: 0,
    toPrivate: 0,
    plugged: 0,
    unplugged: 0,
    notified: [],
  };
}

/** Counts into `result` `bytes` whose state word had the bits `flipped` flipped, to `after`. */
function countFlip(result: ChangeResult, bytes: number, flipped: number, after: number): void {
  result.noop = false;
  result.changedBytes += bytes;
  if (flipped & SHARED) {
    if (after & SHARED) result.toShared += bytes;
    else result.toPrivate += bytes;
  }
  if (flipped & PLUGGED) {
    if (after & PLUGGED) result.plugged += bytes;
    else result.unplugged += bytes;
  }
}

/**
 * `names` with `name` added once, after `made` earlier calls. The first call
 * makes an array of one: most changes make one call, and `[]` grown by a
 * push reserves 17 slots.
 */
function withName(names: string[], made: number, name: string): string[] {
  if (made === 0) return [name];
  if (!names.includes(name)) names.push(name);
  return names;
}

/** {@link listenerNames} of calls that were all accepted. */
function callNames(calls: readonly PlannedCall[]): string[] {
  let names: string[] = [];
  for (let i = 0; i < calls.length; i++) {
    names = withName(names, i, calls[i].registration.listener.name);
  }
  return names;
}

function makeStore(
  choice: StoreChoice | undefined,
  pages: number,
  initial: number,
  region: string,
): StateStore {
  // One bit (SHARED); sources add theirs as they come.
  if (choice === undefined || choice === "range-tree") {
    return new RangeTreeStore(pages, { bits: 1, initial });
  }
  if (choice === "bitmap") return new BitmapStore(pages, { bits: 1, initial });
  if (typeof choice === "object" && choice !== null && typeof choice.runs === "function") {
    if (choice.length !== pages) {
      throw new InvalidChangeError(region, "store", `a store of ${pages} pages`, choice.length);
    }
    return choice;
  }
  throw new InvalidChangeError(region, "store", `"range-tree", "bitmap" or a StateStore`, choice);
}

/**
 * Throws unless `value` can be the vaddr base of a region's DMA mappings:
 * type1 refuses a vaddr off the smallest IOMMU page, 4 KiB on x86
 * (drivers/vfio/vfio_iommu_type1.c `vfio_dma_do_map`: EINVAL when
 * `(size | iova | vaddr) & (pgsize - 1)`), and QEMU's RAM blocks are host
 * mappings, page aligned. Refused when given, not at the first map.
 */
function checkHostAddress(region: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value % 4096 !== 0) {
    throw new InvalidChangeError(region, "hostAddress", "a non-negative multiple of 4096", value);
  }
}
