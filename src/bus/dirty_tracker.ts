/**
 * Which pages of a region changed since a mark: the region-level dirty log
 * behind `region.mark()` / `region.changesSince(mark)`, the basis of sending
 * the shared / private / plugged map in rounds while conversions continue
 * (like KVM's dirty log for guest memory, but for the map itself).
 *
 * Why at the region and not inside the stores: every state change goes
 * through `Region.change` (and the QEMU engine it calls), so one call there
 * covers both store kinds and any custom `StateStore`, and the stores' hot
 * paths stay untouched. The cost is one `RangeTreeStore.update` of a 1-bit
 * store per applied change while a mark is outstanding, and nothing at all
 * before the first `mark()`.
 *
 * Each mark starts an *epoch*; changes are recorded in the newest epoch's
 * 1-bit {@link RangeTreeStore} (set = changed), whose memory follows the
 * fragmentation of what changed, not the region's size. `changesSince(mark)`
 * is the union of the epochs from the mark's on. Epochs live until released
 * ({@link DirtyTracker.release}), so a caller that takes marks forever should
 * release the ones it no longer needs (a migration releases each round's).
 *
 * @module
 */

import { RangeTreeStore } from "../store/range_tree_store.ts";

/** A half-open range of pages `[start, end)`. */
export interface PageRange {
  /** First page. */
  start: number;
  /** One past the last page. */
  end: number;
}

/**
 * A point in a region's history, from `region.mark()`: `region.changesSince(mark)`
 * reports what changed after it.
 */
export interface ChangeMark {
  /** The region's name. */
  readonly region: string;
  /** The epoch the mark opened (increasing per region). */
  readonly epoch: number;
}

/** Why a mark cannot be answered. */
export class StaleMarkError extends RangeError {
  /** Creates the error for `mark` on region `region`. */
  constructor(region: string, mark: ChangeMark, why: string) {
    super(`region ${region}: mark ${mark?.epoch} ${why}`);
    this.name = "StaleMarkError";
  }
}

interface Epoch {
  epoch: number;
  dirty: RangeTreeStore;
}

/**
 * The dirty log of one region: records changed page ranges per epoch.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DirtyTracker } from "./dirty_tracker.ts";
 * const log = new DirtyTracker("ram", 1024);
 * const a = log.mark();
 * log.record(10, 20);
 * const b = log.mark();
 * log.record(15, 30);
 * assert.deepEqual(log.rangesSince(a), [{ start: 10, end: 30 }]);
 * assert.deepEqual(log.rangesSince(b), [{ start: 15, end: 30 }]);
 * ```
 */
export class DirtyTracker {
  /** The region's name, for marks and errors. */
  readonly region: string;
  /** Pages of the region. */
  readonly pages: number;
  #epochs: Epoch[] = [];
  #current: RangeTreeStore | undefined;
  #next = 1;
  /** The marks this log handed out: a mark is recognised by identity, not by its fields. */
  #issued = new WeakSet<ChangeMark>();

  /** A log for region `region` of `pages` pages; it records nothing until the first mark. */
  constructor(region: string, pages: number) {
    this.region = region;
    this.pages = pages;
  }

  /** Starts a new epoch and returns its mark. */
  mark(): ChangeMark {
    const dirty = new RangeTreeStore(this.pages, { bits: 1 });
    const epoch = this.#next++;
    this.#epochs.push({ epoch, dirty });
    this.#current = dirty;
    const mark = Object.freeze({ region: this.region, epoch });
    this.#issued.add(mark);
    return mark;
  }

  /** Records that pages `[start, end)` may have changed (no-op before the first mark). */
  record(start: number, end: number): void {
    this.#current?.update(start, end, 1, 0);
  }

  /**
   * The ranges changed since `mark`: sorted, disjoint, maximal. Throws
   * {@link StaleMarkError} for a released mark or one of another region.
   */
  rangesSince(mark: ChangeMark): PageRange[] {
    const from = this.#indexOf(mark);
    const ranges: PageRange[] = [];
    for (let i = from; i < this.#epochs.length; i++) {
      for (const run of this.#epochs[i].dirty.runs()) {
        if (run.state !== 0) ranges.push({ start: run.start, end: run.end });
      }
    }
    if (this.#epochs.length - from <= 1) return ranges;
    ranges.sort((a, b) => a.start - b.start);
    const merged: PageRange[] = [];
    for (const r of ranges) {
      const last = merged[merged.length - 1];
      if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
      else merged.push({ ...r });
    }
    return merged;
  }

  /** Forgets the epochs before `mark`'s: marks older than it become stale. */
  release(mark: ChangeMark): void {
    const from = this.#indexOf(mark);
    this.#epochs.splice(0, from);
  }

  /** Marks still answerable: the oldest epoch kept, or undefined when none. */
  get oldestEpoch(): number | undefined {
    return this.#epochs[0]?.epoch;
  }

  #indexOf(mark: ChangeMark): number {
    if (typeof mark !== "object" || mark === null || !this.#issued.has(mark)) {
      throw new StaleMarkError(this.region, mark, "is not a mark of this region");
    }
    const i = this.#epochs.findIndex((e) => e.epoch === mark.epoch);
    if (i === -1) {
      throw new StaleMarkError(
        this.region,
        mark,
        "was released",
      );
    }
    return i;
  }
}
