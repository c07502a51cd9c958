/**
 * The listener contract: how a component (KVM, an IOMMU, your own plugin) is
 * told that part of a region became populated or discarded under its view.
 *
 * This generalises QEMU's RamDiscardListener: `populate` comes *before* the
 * memory counts as populated and may refuse; `discard` comes when it stops
 * being populated. Unlike QEMU, both may refuse, and a refusal rolls the whole
 * change back (see {@link Listener}).
 *
 * @module
 */

import type { Region } from "./region.ts";
import type { View } from "./view.ts";

/** A byte range of a region handed to a listener. */
export interface Section {
  /** The region the range belongs to. */
  readonly region: Region;
  /** Byte offset from the start of the region (guest physical = `region.base + offset`). */
  readonly offset: number;
  /** Length in bytes, a whole multiple of the listener's granularity. */
  readonly size: number;
  /**
   * False when the section spans pages already in the target state: only a
   * coalescing listener (`Listener.coalesce`), or a discard to one that
   * accepts double discards, gets such a call, when one change flips several
   * separate runs. Otherwise every page of the section
   * flips, so the inverse of the call is the state before it.
   */
  readonly uniform?: boolean;
}

/** A byte range of a region, without the region: used to register on or query a part. */
export interface Range {
  /** Byte offset from the start of the region. */
  offset: number;
  /** Length in bytes. */
  size: number;
}

/**
 * A participant in state changes.
 *
 * **When calls happen.** For each change, the bus computes the sub-ranges
 * where this listener's `view` flips, inside the section it registered on.
 * Discards go out first, in *descending* priority (so DMA unmaps before KVM
 * makes memory private); then populates, in *ascending* priority (so KVM makes
 * memory shared before DMA maps it). A range whose view does not flip is never
 * notified: an already-applied change notifies nobody. Sections are aligned to
 * `granularity` and are whole multiples of it, but may be much larger, and a
 * discard may cover several earlier populates or part of one.
 *
 * **What throwing means.** Throwing from `populate` or `discard` refuses the
 * change. Before throwing, the listener must undo whatever it did for *that*
 * call (for example unmap what it mapped), because it will not be told again.
 * Every participant already notified in the same change then receives the
 * inverse call (populate for a discard, discard for a populate) in reverse
 * order, the store is left untouched, and the caller gets a `ConversionError`.
 * An inverse call must not fail; if it does the region is marked failed. A
 * listener whose own undo failed throws a `ListenerUndoError` instead: under
 * memstate's policy that too marks the region failed.
 *
 * **Synchronous.** The bus never awaits a call: `populate` and `discard` must
 * have done their work when they return. An `async` one is refused at
 * registration (a `TypeError`), and a call that returns a promise anyway
 * refuses the change as a throw would (its rejection is handled).
 *
 * **Registration.** `region.register(listener, range)` replays `populate` for
 * every populated part of the range; `region.unregister(listener)` discards
 * them (one discard of the whole range when `acceptsDoubleDiscard` is true).
 * Under memstate's policy such a listener also gets one discard per change
 * (see `acceptsDoubleDiscard`).
 *
 * @example A listener that records what it is told
 * ```ts
 * import assert from "node:assert/strict";
 * import { DMA_VIEW, type Listener, Region } from "@cvm/memstate";
 *
 * const region = new Region({ name: "ram", size: 1 << 30 });
 * const told: string[] = [];
 * const recorder: Listener = {
 *   name: "recorder",
 *   priority: 20,
 *   view: DMA_VIEW,
 *   populate: (s) => told.push(`map ${s.offset} ${s.size}`),
 *   discard: (s) => told.push(`unmap ${s.offset} ${s.size}`),
 * };
 * region.register(recorder); // nothing is shared yet: nothing replayed
 * region.convert(0, 2 << 20, "shared");
 * region.convert(4096, 4096, "private"); // only the page that flips
 * assert.deepEqual(told, ["map 0 2097152", "unmap 4096 4096"]);
 * ```
 */
export interface Listener {
  /** A name used in errors and reports: one listener of a name per region. */
  readonly name: string;
  /** Ordering: lower populates first and discards last. Default 0 (KVM is 0, VFIO 10). */
  readonly priority?: number;
  /** What "populated" means to this listener. Default: the DMA view (shared and plugged). */
  readonly view?: View;
  /** Bytes every notification is aligned to. Default: the region's page size. */
  readonly granularity?: number;
  /**
   * True when the listener tolerates a discard over parts it never saw
   * populated (an unmap of nothing succeeds). Under memstate's policy one
   * change then discards once, over the span from its first to its last
   * discarded run (`Section.uniform` false when that span has gaps), where
   * QEMU 11.1 discards a virtio-mem device's whole section at UNPLUG_ALL; a
   * rollback populates exactly the runs that were discarded. Default false.
   */
  readonly acceptsDoubleDiscard?: boolean;
  /**
   * True when the listener's calls are harmless over pages already in the
   * target state (KVM's attribute ioctl and hole punch are): one change then
   * tells it once, over the span from its first to its last flip, instead of
   * once per flipping run. A rollback still undoes exactly the pages that
   * flipped. Default false.
   */
  readonly coalesce?: boolean;
  /** Called before `section` becomes populated. Throw to refuse. */
  populate(section: Section): void;
  /** Called when `section` stops being populated. Throw to refuse (it rolls back). */
  discard(section: Section): void;
}

/** One notification the bus sent during a change. */
export interface Notification {
  /** The listener's name. */
  listener: string;
  /** Which call it was. */
  kind: "populate" | "discard";
  /** Byte offset in the region. */
  offset: number;
  /** Length in bytes. */
  size: number;
}

/** What one successful call to `Region.change` did. */
export interface ChangeResult {
  /** True when nothing changed (an already-applied change): nobody was notified. */
  noop: boolean;
  /** Bytes whose state word changed. */
  changedBytes: number;
  /** Bytes that went private to shared. */
  toShared: number;
  /** Bytes that went shared to private. */
  toPrivate: number;
  /** Bytes that became plugged. */
  plugged: number;
  /** Bytes that became unplugged. */
  unplugged: number;
  /** Names of the listeners notified, in call order, each once. */
  notified: string[];
  /**
   * Discards that threw and were ignored, one line each: under a QEMU policy a
   * discard cannot be refused (QEMU reports a failed unmap and goes on).
   */
  ignoredErrors?: string[];
}

/**
 * kvm_convert_memory's own steps around a QEMU state change (the qemu-10.1 and
 * qemu-11.1 policies): KVM_SET_MEMORY_ATTRIBUTES over the whole range before
 * any listener hears of it, and the discard of the side the range no longer
 * uses after them, both even when every page already is in the target state
 * (accel/kvm/kvm-all.c `kvm_convert_memory`). The KVM attributes plugin
 * installs one under those policies instead of registering a listener.
 */
export interface ConversionHook {
  /** A name for errors and reports. */
  readonly name: string;
  /** Before the state change: throw to fail the conversion (nothing else happens). */
  before(section: Section, to: "shared" | "private"): void;
  /** After the listeners accepted it: throw to fail the conversion. */
  after(section: Section, to: "shared" | "private"): void;
}

/** The post-commit event observers receive, once per applied change. */
export interface ChangeEvent {
  /** The region that changed. */
  region: Region;
  /** Byte offset of the requested change. */
  offset: number;
  /** Byte length of the requested change. */
  size: number;
  /** Bits the change set. */
  setBits: number;
  /** Bits the change cleared. */
  clearBits: number;
  /** The result returned to the caller. */
  result: ChangeResult;
  /** Every notification sent, in order. */
  notifications: Notification[];
}

/** Watches applied changes; it cannot veto (its exceptions are counted, not propagated). */
export type Observer = (event: ChangeEvent) => void;
