/**
 * A Region is one RAM block: its state store, the listeners that follow it and
 * the transactional `change` that keeps them all in step.
 *
 * A change validates, plans the notifications each listener needs (only where
 * its view flips), runs them as a transaction (discards by descending
 * priority, then populates by ascending priority, rolled back in reverse on
 * refusal), and only then commits to the store and tells observers.
 *
 * @module
 */

import { BitmapStore } from "../store/bitmap_store.ts";
import { RangeTreeStore } from "../store/range_tree_store.ts";
import type { Run, StateStore } from "../store/state_store.ts";
import { ConversionError, InvalidChangeError, RegionFailedError, SourceError } from "./errors.ts";
import type {
  ChangeEvent,
  ChangeResult,
  Listener,
  Notification,
  Observer,
  Range,
  Section,
} from "./listener.ts";
import { planCalls, type PlannedCall, type Registration } from "./plan.ts";
import { PLUGGED, SHARED, StateBits } from "./state_bits.ts";
import { type Refusal, rollBack, runTransaction } from "./transaction.ts";
import { checkView, DMA_VIEW, type View } from "./view.ts";
import { viewRuns } from "./view_runs.ts";
import { readRuns } from "../util/store_runs.ts";

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
  /** The store (default `"range-tree"`); a `StateStore` must have `size / pageSize` pages. */
  store?: StoreChoice;
  /** Bits the store holds when the region creates it (default 8). */
  bits?: number;
  /**
   * Starting state: `"private"` (default, as QEMU starts guest_memfd regions) or
   * `"shared"`, both plugged; or a raw state word.
   */
  initial?: "private" | "shared" | number;
}

/** Counters a region keeps about its own traffic. */
export interface RegionStats {
  /** Changes applied (not counting no-ops). */
  applied: number;
  /** Changes that were already applied and notified nobody. */
  noops: number;
  /** Requests refused by validation. */
  rejected: number;
  /** Changes refused by a participant and rolled back. */
  refused: number;
  /** Notifications sent, rollbacks included. */
  notifications: number;
  /** Exceptions thrown by observers (they cannot veto, so they are only counted). */
  observerErrors: number;
}

/** A registered state source (QEMU 11's multi-source manager). */
export interface SourceInfo {
  /** The source's name, unique per region. */
  name: string;
  /** The state bits the source owns. */
  bits: number;
  /** Bytes the source changes state in (its own requests are aligned to it). */
  granularity: number;
}

let nextHostAddress = 0x7f00_0000_0000;

/** One RAM block whose per-page state is kept in a store and followed by listeners. */
export class Region {
  /** Name, for errors and reports. */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** Page size in bytes: the granularity of every change. */
  readonly pageSize: number;
  /** Guest physical address of the first byte. */
  readonly base: number;
  /** Number of pages. */
  readonly pages: number;
  /** The state store. Read it freely; change state only through the region. */
  readonly store: StateStore;
  /** Bits of the state word, by name; plugins claim extra bits here. */
  readonly bits: StateBits;
  /** Host virtual address of the shared backing, used by DMA plugins as `vaddr`. */
  hostAddress: number;
  /** Traffic counters. */
  readonly stats: RegionStats = {
    applied: 0,
    noops: 0,
    rejected: 0,
    refused: 0,
    notifications: 0,
    observerErrors: 0,
  };
  #registrations: Registration[] = [];
  #observers: Observer[] = [];
  #sources = new Map<string, SourceInfo>();
  #failure: RegionFailedError | undefined;
  /** {@link Region.#section}, bound once instead of a closure per change. */
  #toSection = (call: PlannedCall): Section => this.#section(call);

  /** Creates a region; see {@link RegionOptions}. */
  constructor(options: RegionOptions) {
    const name = options.name;
    if (typeof name !== "string" || name === "") {
      throw new TypeError(`name: a region needs a non-empty name, got ${JSON.stringify(name)}`);
    }
    const pageSize = options.pageSize ?? 4096;
    if (!Number.isInteger(pageSize) || pageSize < 1 || (pageSize & (pageSize - 1)) !== 0) {
      throw new InvalidChangeError(name, "pageSize", "a power of two", pageSize);
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
    this.name = name;
    this.size = size;
    this.pageSize = pageSize;
    this.base = base;
    this.pages = size / pageSize;
    const initial = options.initial === "shared"
      ? SHARED | PLUGGED
      : options.initial === "private" || options.initial === undefined
      ? PLUGGED
      : options.initial;
    this.store = makeStore(options.store, this.pages, options.bits ?? 8, initial, name);
    this.bits = new StateBits(this.store.bits);
    this.hostAddress = options.hostAddress ?? nextHostAddress;
    nextHostAddress += Math.ceil(size / 2 ** 30) * 2 ** 30 + 2 ** 30;
  }

  /** The smallest unit of change, in bytes (QEMU's get_min_granularity). */
  get granularity(): number {
    return this.pageSize;
  }

  /** The error that marked this region failed, if any. */
  get failure(): RegionFailedError | undefined {
    return this.#failure;
  }

  /** The registered listeners, in ascending priority. */
  get listeners(): Listener[] {
    return this.#registrations.map((r) => r.listener);
  }

  /**
   * Changes the state of `[offset, offset + size)`: every page gets
   * `(state | setBits) & ~clearBits`. Listeners are told only where their view
   * flips; on refusal everything is rolled back and a {@link ConversionError}
   * is thrown. Returns what changed.
   */
  change(offset: number, size: number, setBits: number, clearBits: number): ChangeResult {
    this.#checkUsable();
    this.#checkChange(offset, size, setBits, clearBits);
    const startPage = offset / this.pageSize;
    const endPage = startPage + size / this.pageSize;
    const runs = readRuns(this.store, startPage, endPage);
    const result = this.#summarise(runs, setBits, clearBits);
    if (result.noop) {
      this.stats.noops++;
      return result;
    }
    const calls = planCalls(runs, setBits, clearBits, this.#registrations);
    this.#checkAlignment(calls, offset, size);
    const outcome = runTransaction(calls, this.#toSection);
    if ("cause" in outcome) this.#refused(outcome, offset, size);
    const notifications = outcome.notifications;
    this.stats.notifications += notifications.length;
    this.store.update(startPage, endPage, setBits, clearBits);
    this.stats.applied++;
    result.notified = listenerNames(notifications);
    // Most regions have no observers: do not build an event nobody reads.
    if (this.#observers.length > 0) {
      this.#emit({ region: this, offset, size, setBits, clearBits, result, notifications });
    }
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
   * Registers `listener` on `range` (default: the whole region) and replays
   * `populate` for every populated part. If a replayed populate is refused,
   * what was populated is discarded again and a {@link ConversionError} is thrown.
   */
  register(listener: Listener, range: Range = { offset: 0, size: this.size }): void {
    this.#checkUsable();
    const reg = this.#resolve(listener, range);
    const calls: PlannedCall[] = [];
    for (const run of viewRuns(this.store, reg.startPage, reg.endPage, reg.view)) {
      if (run.populated) {
        calls.push({ registration: reg, kind: "populate", startPage: run.start, endPage: run.end });
      }
    }
    this.#checkAlignment(calls, range.offset, range.size);
    const outcome = runTransaction(calls, this.#toSection);
    if ("cause" in outcome) this.#refused(outcome, range.offset, range.size);
    this.stats.notifications += outcome.notifications.length;
    // Stable insertion keeps registration order among equal priorities.
    const at = this.#registrations.findIndex((r) => r.priority > reg.priority);
    if (at === -1) this.#registrations.push(reg);
    else this.#registrations.splice(at, 0, reg);
  }

  /**
   * Unregisters `listener`, first discarding everything populated for it (one
   * discard of its whole range when it accepts double discards). If a discard
   * throws, the listener is detached anyway and the error is rethrown.
   */
  unregister(listener: Listener): void {
    const index = this.#registrations.findIndex((r) => r.listener === listener);
    if (index === -1) {
      throw new RangeError(
        `listener: "${listener?.name}" is not registered on region ${this.name}`,
      );
    }
    const [reg] = this.#registrations.splice(index, 1);
    const done: PlannedCall[] = [];
    if (listener.acceptsDoubleDiscard) {
      done.push({
        registration: reg,
        kind: "populate",
        startPage: reg.startPage,
        endPage: reg.endPage,
      });
    } else {
      for (const run of viewRuns(this.store, reg.startPage, reg.endPage, reg.view)) {
        if (run.populated) {
          done.push({
            registration: reg,
            kind: "populate",
            startPage: run.start,
            endPage: run.end,
          });
        }
      }
    }
    // Discarding what was populated is exactly a rollback of those populates.
    const failure = rollBack(done, this.#toSection);
    this.stats.notifications += done.length;
    if (failure) {
      throw new Error(
        `region ${this.name}: ${listener.name} failed to discard while unregistering ` +
          `(it is detached): ${String((failure.cause as Error)?.message ?? failure.cause)}`,
        { cause: failure.cause },
      );
    }
  }

  /** True only if every byte of `range` is populated under `view` (no alignment needed). */
  isPopulated(range: Range, view: View = DMA_VIEW): boolean {
    const [start, end] = this.#pagesCovering(range);
    for (const run of viewRuns(this.store, start, end, view)) {
      if (!run.populated) return false;
    }
    return true;
  }

  /**
   * Calls `fn` for each maximal populated part of `range` under `view`, in
   * order; stops at the first exception and returns it (undefined if none).
   */
  replayPopulated(range: Range, view: View, fn: (section: Section) => void): unknown {
    return this.#replay(range, view, true, fn);
  }

  /** Like {@link Region.replayPopulated}, for the parts that are not populated. */
  replayDiscarded(range: Range, view: View, fn: (section: Section) => void): unknown {
    return this.#replay(range, view, false, fn);
  }

  /** Adds an observer of applied changes; returns a function that removes it. */
  observe(observer: Observer): () => void {
    if (typeof observer !== "function") {
      throw new TypeError(`observer: must be a function, got ${typeof observer}`);
    }
    this.#observers.push(observer);
    return () => {
      this.#observers = this.#observers.filter((o) => o !== observer);
    };
  }

  /** Declares a state source; a second source of the same name is `EBUSY`. */
  addSource(source: SourceInfo): void {
    if (this.#sources.has(source.name)) {
      throw new SourceError("EBUSY", `region ${this.name}: source "${source.name}" already exists`);
    }
    if (!Number.isInteger(source.granularity) || source.granularity % this.pageSize !== 0) {
      throw new InvalidChangeError(
        this.name,
        "granularity",
        `a multiple of the page size ${this.pageSize}`,
        source.granularity,
      );
    }
    this.#sources.set(source.name, { ...source });
  }

  /** Removes a state source; an unknown one is `ENOENT`. */
  removeSource(name: string): void {
    if (!this.#sources.delete(name)) {
      throw new SourceError("ENOENT", `region ${this.name}: no source "${name}"`);
    }
  }

  /** The declared state sources. */
  sources(): SourceInfo[] {
    return [...this.#sources.values()];
  }

  /** The state word of the page holding byte `offset`. */
  stateAt(offset: number): number {
    if (!Number.isInteger(offset) || offset < 0 || offset >= this.size) {
      throw new InvalidChangeError(this.name, "offset", `an integer in [0, ${this.size})`, offset);
    }
    return this.store.get(Math.floor(offset / this.pageSize));
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
    if (offset % this.pageSize !== 0) this.#reject("offset", `aligned to ${this.pageSize}`, offset);
    if (size % this.pageSize !== 0) this.#reject("size", `a multiple of ${this.pageSize}`, size);
    if (!Number.isSafeInteger(offset + size)) {
      this.#reject("size", "such that offset + size does not overflow", size);
    }
    if (offset + size > this.size) {
      this.#reject(
        "size",
        `such that offset + size <= region size 0x${this.size.toString(16)}`,
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
    this.#reject(argument, `made of claimed state bits (mask 0x${known.toString(16)})`, value);
  }

  #checkAlignment(calls: readonly PlannedCall[], offset: number, size: number): void {
    for (const c of calls) {
      const g = c.registration.granularity;
      const from = c.startPage * this.pageSize;
      const bytes = (c.endPage - c.startPage) * this.pageSize;
      if (from % g !== 0 || bytes % g !== 0) {
        this.stats.rejected++;
        throw new InvalidChangeError(
          this.name,
          "offset",
          `such that ${c.registration.listener.name} (granularity 0x${g.toString(16)}) is told ` +
            `aligned ranges, but [0x${offset.toString(16)}, +0x${size.toString(16)}) would ` +
            `${c.kind} [0x${from.toString(16)}, +0x${bytes.toString(16)})`,
          offset,
        );
      }
    }
  }

  #refused(outcome: Refusal, offset: number, size: number): never {
    const section = this.#section(outcome.call);
    const error = new ConversionError({
      listener: outcome.call.registration.listener.name,
      region: this.name,
      offset,
      size,
      direction: outcome.call.kind,
      section: { offset: section.offset, size: section.size },
    }, outcome.cause);
    this.stats.refused++;
    if (outcome.rollbackFailure) {
      const who = outcome.rollbackFailure.call.registration.listener.name;
      this.#failure = new RegionFailedError(
        this.name,
        `rolling back after "${error.message}" failed: ${who} refused the inverse call`,
        outcome.rollbackFailure.cause,
      );
      throw this.#failure;
    }
    throw error;
  }

  #resolve(listener: Listener, range: Range): Registration {
    if (typeof listener !== "object" || listener === null) {
      throw new TypeError(`listener: must be an object, got ${listener}`);
    }
    const name = listener.name;
    if (typeof name !== "string" || name === "") {
      throw new TypeError(`listener.name: must be a non-empty string, got ${JSON.stringify(name)}`);
    }
    for (const fn of ["populate", "discard"] as const) {
      if (typeof listener[fn] !== "function") {
        throw new TypeError(`listener ${name}: ${fn} must be a function`);
      }
    }
    if (this.#registrations.some((r) => r.listener === listener)) {
      throw new RangeError(`listener ${name}: already registered on region ${this.name}`);
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
    const { offset, size } = range;
    const bad = !Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 ||
      size <= 0 || offset + size > this.size;
    if (bad) {
      throw new InvalidChangeError(
        this.name,
        "range",
        `a non-empty byte range inside [0, 0x${this.size.toString(16)})`,
        `{ offset: ${offset}, size: ${size} }`,
      );
    }
    if (offset % granularity !== 0 || size % granularity !== 0) {
      throw new InvalidChangeError(
        this.name,
        "range",
        `aligned to listener ${name}'s granularity 0x${granularity.toString(16)}`,
        `{ offset: 0x${offset.toString(16)}, size: 0x${size.toString(16)} }`,
      );
    }
    return {
      listener,
      priority,
      view,
      granularity,
      startPage: offset / this.pageSize,
      endPage: (offset + size) / this.pageSize,
    };
  }

  #section(call: PlannedCall): Section {
    return {
      region: this,
      offset: call.startPage * this.pageSize,
      size: (call.endPage - call.startPage) * this.pageSize,
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
        `a non-empty byte range inside [0, 0x${this.size.toString(16)})`,
        `{ offset: ${offset}, size: ${size} }`,
      );
    }
    return [Math.floor(offset / this.pageSize), Math.ceil((offset + size) / this.pageSize)];
  }

  #replay(range: Range, view: View, populated: boolean, fn: (s: Section) => void): unknown {
    checkView(view, "view");
    const [start, end] = this.#pagesCovering(range);
    for (const run of viewRuns(this.store, start, end, view)) {
      if (run.populated !== populated) continue;
      // Clip to the byte range asked for: QEMU sections need not be page aligned.
      const from = Math.max(run.start * this.pageSize, range.offset);
      const to = Math.min(run.end * this.pageSize, range.offset + range.size);
      try {
        fn({ region: this, offset: from, size: to - from });
      } catch (error) {
        return error;
      }
    }
    return undefined;
  }

  #summarise(runs: readonly Run[], setBits: number, clearBits: number): ChangeResult {
    const result: ChangeResult = {
      noop: true,
      changedBytes: 0,
      toShared: 0,
      toPrivate: 0,
      plugged: 0,
      unplugged: 0,
      notified: [],
    };
    for (const run of runs) {
      const after = (run.state | setBits) & ~clearBits;
      const flipped = run.state ^ after;
      if (flipped === 0) continue;
      const bytes = (run.end - run.start) * this.pageSize;
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
    return result;
  }

  #emit(event: ChangeEvent): void {
    for (const observer of this.#observers) {
      try {
        observer(event);
      } catch {
        this.stats.observerErrors++;
      }
    }
  }
}

/** True when `bits` is a non-negative integer made only of bits in `known`. */
function isStateMask(bits: number, known: number): boolean {
  return Number.isInteger(bits) && bits >= 0 && (bits & ~known) === 0;
}

/** The names of the listeners notified, in call order, each once (a handful: no Set). */
function listenerNames(notifications: readonly Notification[]): string[] {
  const names: string[] = [];
  for (const n of notifications) {
    if (!names.includes(n.listener)) names.push(n.listener);
  }
  return names;
}

function makeStore(
  choice: StoreChoice | undefined,
  pages: number,
  bits: number,
  initial: number,
  region: string,
): StateStore {
  if (choice === undefined || choice === "range-tree") {
    return new RangeTreeStore(pages, { bits, initial });
  }
  if (choice === "bitmap") return new BitmapStore(pages, { bits, initial });
  if (typeof choice === "object" && choice !== null && typeof choice.runs === "function") {
    if (choice.length !== pages) {
      throw new InvalidChangeError(region, "store", `a store of ${pages} pages`, choice.length);
    }
    return choice;
  }
  throw new InvalidChangeError(region, "store", `"range-tree", "bitmap" or a StateStore`, choice);
}
