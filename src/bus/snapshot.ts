/**
 * Saving and restoring a region's state, whole or in rounds: what
 * `region.snapshot()`, `Region.restore(...)` and `region.changesSince(mark)`
 * do (the format itself is in `snapshot_format.ts`).
 *
 * - **Save**: a full snapshot is the region's shape (size, page size, base,
 *   claimed bits with their granularity, declared sources) and every run of
 *   its store; a 1 TiB `boot` state is tens of KiB where the bitmap is 32 MiB
 *   per bit.
 * - **Restore** ({@link restoreRegion}): builds a new region with a store of
 *   either kind, claims the saved bits, writes the runs straight into the new
 *   store (nobody listens yet) and declares the saved sources. Listeners
 *   registered afterwards get `populate` replayed for what is populated, as
 *   for any registration, so plugins attached later follow the state.
 * - **Apply** ({@link applySnapshot}): brings an existing region, listeners
 *   and all, to a snapshot's state (full) or a delta's, through the bus: per
 *   state bit, the maximal ranges that must be set or cleared, clears first,
 *   each as one `region.change`, so every listener follows in order (a
 *   migration destination, a host resuming from a file).
 * - **Rounds** ({@link regionChanges}): the ranges changed since a mark, read
 *   from the region's dirty log, encoded as a delta snapshot.
 *
 * Bad input throws a {@link SnapshotError} before anything is built or
 * changed. A listener refusing while a snapshot is applied is not bad input:
 * its `ConversionError` propagates as from any change, with what was applied
 * before it left applied.
 *
 * @module
 */

import type { Run, StateStore } from "../store/state_store.ts";
import type { ChangeMark, DirtyTracker, PageRange } from "./dirty_tracker.ts";
import type { Region, RegionOptions, StoreChoice } from "./region.ts";
import {
  decodeSnapshot,
  encodeSnapshot,
  type Snapshot,
  type SnapshotBit,
  SnapshotError,
  snapshotFromJson,
  type SnapshotHeader,
  type SnapshotJson,
  snapshotToJson,
} from "./snapshot_format.ts";
import { InvalidChangeError } from "./errors.ts";
import { PLUGGED } from "./state_bits.ts";
import type { VmmPolicy } from "../settings/vmm.ts";
import { hex } from "../util/_hex.ts";

/** Saved state in any accepted form: binary bytes, the JSON form (parsed or text), or decoded. */
export type SnapshotInput = Uint8Array | SnapshotJson | string | Snapshot;

/** Options of {@link restoreRegion} / `Region.restore`. */
export interface RestoreOptions {
  /** The new region's name (default: the saved one). */
  name?: string;
  /** The store to rebuild into (default `"range-tree"`); a `StateStore` must be empty-able. */
  store?: StoreChoice;
  /** The VMM policy of the new region (default `"memstate"`). */
  vmm?: VmmPolicy;
  /** Host virtual address of the shared backing (default: made up, as for a new region). */
  hostAddress?: number;
  /** The size the caller expects, in bytes: another saved size is a `shape` error. */
  size?: number;
  /** The page size the caller expects: another saved page size is a `shape` error. */
  pageSize?: number;
  /** The guest physical base the caller expects: another saved base is a `shape` error. */
  base?: number;
  /**
   * Declare the saved state sources on the new region (default true). Pass
   * false when the caller re-creates them itself (the claimed bits and their
   * state are restored either way).
   */
  sources?: boolean;
}

/** Options of {@link applySnapshot}. */
export interface ApplyOptions {
  /**
   * Makes one change, in pages (default: `region.change` in bytes). A host
   * routes `PLUGGED` changes to its virtio-mem devices here so their own
   * bookkeeping follows.
   */
  change?: (startPage: number, endPage: number, setBits: number, clearBits: number) => void;
}

/** What {@link applySnapshot} did. */
export interface ApplyResult {
  /** Changes made (one per bit and maximal range, clears first). */
  changes: number;
  /** Pages changed, summed over the changes (a page whose two bits changed counts twice). */
  pages: number;
}

/** What changed in a region since a mark; see `region.changesSince`. */
export interface RegionChanges {
  /** The mark the changes are counted from. */
  readonly since: ChangeMark;
  /** A mark taken at the same moment: the next round's `since`. */
  readonly next: ChangeMark;
  /** The changed page ranges, sorted, disjoint and maximal. */
  readonly ranges: readonly PageRange[];
  /** Pages in `ranges`. */
  readonly pages: number;
  /** The region's runs over `ranges`, read now. */
  runs(): Run[];
  /** A delta snapshot of `ranges` (read now), to apply with {@link applySnapshot}. */
  encode(): Uint8Array;
  /** The same delta in the JSON form. */
  json(): SnapshotJson;
}

/** The header a snapshot of `region` carries. */
export function regionHeader(region: Region, kind: "full" | "delta"): SnapshotHeader {
  const bits: SnapshotBit[] = region.bits.entries().map(([name, mask]) => ({
    name,
    index: Math.log2(mask),
    granularity: region.bits.granularity(name) ?? 1,
  }));
  bits.sort((a, b) => a.index - b.index);
  return {
    version: 1,
    kind,
    name: region.name,
    size: region.size,
    pageSize: region.pageSize,
    base: region.base,
    bits,
    sources: region.sources(),
  };
}

/**
 * The binary snapshot of `region`: every page, or (a delta) only `ranges`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Region } from "../../mod.ts";
 * import { decodeSnapshot } from "./snapshot_format.ts";
 * import { snapshotRegion } from "./snapshot.ts";
 * const region = new Region({ name: "ram", size: 2 ** 40 }); // 1 TiB, private
 * region.convert(2 ** 32, 2 ** 30, "shared"); // a 1 GiB SWIOTLB pool
 * const bytes = snapshotRegion(region);
 * assert.ok(bytes.length < 100);
 * assert.equal([...decodeSnapshot(bytes).runs()].length, 3);
 * ```
 */
export function snapshotRegion(region: Region, ranges?: readonly PageRange[]): Uint8Array {
  const header = regionHeader(region, ranges === undefined ? "full" : "delta");
  const store = region.store;
  return encodeSnapshot(header, {
    ranges: ranges ?? [{ start: 0, end: region.pages }],
    runs: (start, end) => store.runs(start, end),
  });
}

/** The JSON form of {@link snapshotRegion}, built straight from the store. */
export function snapshotRegionJson(region: Region, ranges?: readonly PageRange[]): SnapshotJson {
  const header = regionHeader(region, ranges === undefined ? "full" : "delta");
  const runs: Run[] = [];
  for (const r of ranges ?? [{ start: 0, end: region.pages }]) {
    for (const run of region.store.runs(r.start, r.end)) {
      const last = runs[runs.length - 1];
      if (last && last.end === run.start && last.state === run.state) last.end = run.end;
      else runs.push({ start: run.start, end: run.end, state: run.state });
    }
  }
  return {
    format: "memstate-snapshot",
    version: header.version,
    kind: header.kind,
    region: { name: header.name, size: header.size, pageSize: header.pageSize, base: header.base },
    bits: header.bits,
    sources: header.sources,
    runs,
  };
}

/** Decodes and validates any {@link SnapshotInput}. */
export function readSnapshot(input: SnapshotInput): Snapshot {
  if (input instanceof Uint8Array) return decodeSnapshot(input);
  if (typeof input === "string") return snapshotFromJson(input);
  if (
    typeof input === "object" && input !== null && typeof (input as Snapshot).runs === "function"
  ) {
    return input as Snapshot;
  }
  return snapshotFromJson(input);
}

/** The JSON form of any {@link SnapshotInput} (binary input is decoded and validated first). */
export function toSnapshotJson(input: SnapshotInput): SnapshotJson {
  return snapshotToJson(readSnapshot(input));
}

function checkShape(
  snapshot: Snapshot,
  expected: { size?: number; pageSize?: number; base?: number },
  who: string,
): void {
  for (const key of ["size", "pageSize", "base"] as const) {
    const want = expected[key];
    if (want !== undefined && want !== snapshot[key]) {
      throw new SnapshotError(
        "shape",
        `${who}: the snapshot of region ${snapshot.name} has ${key} ${
          hex(snapshot[key])
        }, expected ${hex(want)}`,
      );
    }
  }
}

/**
 * `make(options)`, where a page size the region's policy does not take (a
 * QEMU policy tracks 4 KiB pages: Region's constructor) is a `shape` error
 * of the snapshot, not a bad argument of the caller's.
 */
function makeRegion(make: (options: RegionOptions) => Region, options: RegionOptions): Region {
  try {
    return make(options);
  } catch (e) {
    if (e instanceof InvalidChangeError && e.argument === "pageSize") {
      throw new SnapshotError("shape", `restore: ${e.message}`);
    }
    throw e;
  }
}

/**
 * Rebuilds a region from saved state; see the module documentation. `make`
 * constructs the region (`Region.restore` passes its constructor).
 */
export function restoreRegion(
  input: SnapshotInput,
  options: RestoreOptions,
  make: (options: RegionOptions) => Region,
): Region {
  const snapshot = readSnapshot(input);
  if (snapshot.kind !== "full") {
    throw new SnapshotError(
      "kind",
      `region ${snapshot.name}: a delta cannot make a region; restore a full snapshot, ` +
        `then apply deltas with applySnapshot`,
    );
  }
  checkShape(snapshot, options, "restore");
  const given = typeof options.store === "object" ? options.store : undefined;
  if (given) checkGivenStore(given, snapshot);
  const region = makeRegion(make, {
    name: options.name ?? snapshot.name,
    size: snapshot.size,
    pageSize: snapshot.pageSize,
    base: snapshot.base,
    store: options.store,
    vmm: options.vmm,
    hostAddress: options.hostAddress,
  });
  for (const b of snapshot.bits) {
    if (region.bits.get(b.name) !== undefined) continue;
    const mask = region.bits.claim(b.name, { granularity: b.granularity });
    if (mask !== 1 << b.index) {
      throw new SnapshotError(
        "bits",
        `restore: bit "${b.name}" was claimed as bit ${Math.log2(mask)}, saved as ${b.index}`,
      );
    }
  }
  // Nobody listens to a new region yet: write the store directly, bit by bit
  // (a coarse bit only ever changes on its granularity, as the store requires).
  const store = region.store;
  store.set(0, region.pages, 0);
  forEachBitRange(snapshot, (start, end, bit) => store.update(start, end, bit, 0));
  // A bit the region holds but the snapshot does not (a store given with PLUGGED)
  // was implied when saved: set everywhere.
  for (const [, mask] of region.bits.entries()) {
    if ((snapshot.mask & mask) === 0 && mask === PLUGGED) store.update(0, region.pages, mask, 0);
  }
  if (options.sources !== false) {
    // A region declares some sources itself (guest_memfd's): keep those if they agree.
    const declared = new Map(region.sources().map((x) => [x.name, x]));
    for (const source of snapshot.sources) {
      const have = declared.get(source.name);
      if (!have) region.addSource(source);
      else if (have.bits !== source.bits || have.granularity !== source.granularity) {
        throw new SnapshotError(
          "bits",
          `restore: source "${source.name}" is bits ${hex(have.bits)} per ` +
            `${have.granularity} bytes here, ${hex(source.bits)} per ` +
            `${source.granularity} bytes in the snapshot`,
        );
      }
    }
  }
  return region;
}

function checkGivenStore(store: StateStore, snapshot: Snapshot): void {
  if (store.length !== snapshot.pages) {
    throw new SnapshotError(
      "shape",
      `restore: the store has ${store.length} pages, the snapshot of region ` +
        `${snapshot.name} ${snapshot.pages}`,
    );
  }
  if (typeof store.addBit === "function") return;
  for (const b of snapshot.bits) {
    if (b.index >= store.bits) {
      throw new SnapshotError(
        "state-bits",
        `restore: bit "${b.name}" (index ${b.index}) is wider than the store's ${store.bits} ` +
          `bits, and the store cannot grow`,
      );
    }
  }
}

/**
 * Calls `fn(start, end, bitMask)` for every maximal page range where a
 * claimed bit of `snapshot` is set, in one pass over its runs.
 */
function forEachBitRange(
  snapshot: Snapshot,
  fn: (start: number, end: number, bit: number) => void,
): void {
  const masks = snapshot.bits.map((b) => 1 << b.index);
  const open = masks.map(() => -1);
  let end = -1;
  for (const run of snapshot.runs()) {
    for (let k = 0; k < masks.length; k++) {
      const on = (run.state & masks[k]) !== 0;
      if (open[k] >= 0 && (!on || run.start !== end)) {
        fn(open[k], end, masks[k]);
        open[k] = -1;
      }
      if (on && open[k] < 0) open[k] = run.start;
    }
    end = run.end;
  }
  for (let k = 0; k < masks.length; k++) if (open[k] >= 0) fn(open[k], end, masks[k]);
}

/** One change {@link applySnapshot} makes: set or clear `bit` over pages `[start, end)`. */
export interface ApplyAction {
  /** First page. */
  start: number;
  /** One past the last page. */
  end: number;
  /** The state bit (a mask of one bit). */
  bit: number;
  /** True to set the bit, false to clear it. */
  set: boolean;
}

/** A snapshot's apply, checked and not begun; see {@link planApply}. */
export interface PlannedApply {
  /**
   * The changes {@link PlannedApply.run} makes, in its order: per bit and
   * maximal range, clears first. Planned from the region's state when first
   * read, the bits the snapshot would claim counted as claimed, and made as
   * read: read it when nothing will change the region before `run`.
   */
  actions(): readonly ApplyAction[];
  /** Claims the snapshot's bits the region lacks, then makes {@link PlannedApply.actions}. */
  run(): ApplyResult;
}

/**
 * Validates `input` against `region` and returns the function that applies
 * it; nothing changes until that is called. Used by {@link applySnapshot}; a
 * caller that reads the planned actions first (the host state loader) uses
 * {@link planApply}.
 */
export function prepareApply(
  region: Region,
  input: SnapshotInput,
  options: ApplyOptions = {},
): () => ApplyResult {
  const planned = planApply(region, input, options);
  return () => planned.run();
}

/**
 * {@link prepareApply}, with the changes it will make readable before any is
 * made: validates `input` against `region` (bad input throws a
 * {@link SnapshotError}) and changes nothing until `run` is called.
 */
export function planApply(
  region: Region,
  input: SnapshotInput,
  options: ApplyOptions = {},
): PlannedApply {
  const snapshot = readSnapshot(input);
  checkShape(snapshot, region, `region ${region.name}`);
  if (region.failure) throw region.failure;
  // Bits the snapshot claims that the region does not: claim them, at the same index.
  const claims: SnapshotBit[] = [];
  let used = region.bits.mask;
  for (const b of snapshot.bits) {
    const have = region.bits.get(b.name);
    if (have !== undefined) {
      if (have !== 1 << b.index) {
        throw new SnapshotError(
          "bits",
          `region ${region.name}: bit "${b.name}" is bit ${Math.log2(have)} here, ${b.index} ` +
            `in the snapshot`,
        );
      }
      continue;
    }
    const next = b.name === "plugged" ? 1 : lowestFree(used | PLUGGED);
    if (next !== b.index) {
      throw new SnapshotError(
        "bits",
        `region ${region.name}: bit "${b.name}" would be claimed as bit ${next} here, it is ` +
          `${b.index} in the snapshot`,
      );
    }
    const store = region.store;
    if (typeof store.addBit !== "function" && b.index >= store.bits) {
      throw new SnapshotError(
        "state-bits",
        `region ${region.name}: the snapshot's bit "${b.name}" (index ${b.index}) is wider ` +
          `than the store's ${store.bits} bits`,
      );
    }
    claims.push(b);
    used |= 1 << b.index;
  }
  // Bits the region claims that the snapshot does not: PLUGGED was implied (set); others unknown.
  let implied = 0;
  for (const [name, mask] of region.bits.entries()) {
    if ((snapshot.mask & mask) !== 0) continue;
    if (mask !== PLUGGED) {
      throw new SnapshotError(
        "bits",
        `region ${region.name}: bit "${name}" is claimed here but not in the snapshot`,
      );
    }
    implied |= mask;
  }
  const change = options.change ??
    ((start: number, end: number, setBits: number, clearBits: number) => {
      region.change(
        start * region.pageSize,
        (end - start) * region.pageSize,
        setBits,
        clearBits,
      );
    });
  const claimed = claims.reduce((mask, b) => mask | 1 << b.index, 0);
  let planned: ApplyAction[] | undefined;
  const actions = () => planned ??= planActions(region, snapshot, implied, claimed);
  return {
    actions,
    run: () => {
      for (const b of claims) region.bits.claim(b.name, { granularity: b.granularity });
      const list = actions();
      planned = undefined; // a second run plans again, from the state the first left
      let pages = 0;
      for (const a of list) {
        change(a.start, a.end, a.set ? a.bit : 0, a.set ? 0 : a.bit);
        pages += a.end - a.start;
      }
      return { changes: list.length, pages };
    },
  };
}

/**
 * Brings `region` to the state `input` saves (full: every page; delta: the
 * ranges it covers) through the bus, so every listener follows; see the
 * module documentation. Checks everything first: bad input throws a
 * {@link SnapshotError} and changes nothing.
 *
 * @example A destination region following a source
 * ```ts
 * import assert from "node:assert/strict";
 * import { applySnapshot, Region } from "../../mod.ts";
 * const source = new Region({ name: "ram", size: 2 ** 30 });
 * source.convert(0, 2 ** 21, "shared");
 * const destination = new Region({ name: "ram", size: 2 ** 30 });
 * applySnapshot(destination, source.snapshot());
 * assert.deepEqual([...destination.store.runs()], [...source.store.runs()]);
 * ```
 */
export function applySnapshot(
  region: Region,
  input: SnapshotInput,
  options: ApplyOptions = {},
): ApplyResult {
  return prepareApply(region, input, options)();
}

function lowestFree(used: number): number {
  for (let b = 2; b < 31; b++) if ((used & (1 << b)) === 0) return b;
  return -1;
}

/**
 * The per-bit maximal ranges where `region` differs from `snapshot`, clears
 * first. `implied`: bits the snapshot lacks, set everywhere in it; `claimed`:
 * bits the apply claims before it changes anything, counted as claimed (a
 * built-in bit nobody claimed starts set, as claiming it leaves it).
 */
function planActions(
  region: Region,
  snapshot: Snapshot,
  implied: number,
  claimed: number,
): ApplyAction[] {
  // Every claimed bit (the region's, and the apply's, which it may have claimed already).
  const all = region.bits.mask | claimed;
  const masks: number[] = [];
  for (let bit = 1; bit <= all; bit *= 2) if ((all & bit) !== 0) masks.push(bit);
  const open: (ApplyAction | undefined)[] = masks.map(() => undefined);
  const actions: ApplyAction[] = [];
  const store = region.store;
  const unclaimed = region.impliedBits;
  for (const target of snapshot.runs()) {
    const want = target.state | implied;
    for (const current of store.runs(target.start, target.end)) {
      const state = current.state | unclaimed;
      for (let k = 0; k < masks.length; k++) {
        const bit = masks[k];
        const o = open[k];
        const differs = ((want ^ state) & bit) !== 0;
        const set = (want & bit) !== 0;
        if (o && (!differs || o.set !== set || o.end !== current.start)) {
          actions.push(o);
          open[k] = undefined;
        }
        if (!differs) continue;
        if (open[k]) open[k]!.end = current.end;
        else open[k] = { start: current.start, end: current.end, bit, set };
      }
    }
  }
  for (const o of open) if (o) actions.push(o);
  // Clears before sets: mappings go before new ones come, plugs after unplugs.
  return [...actions.filter((a) => !a.set), ...actions.filter((a) => a.set)];
}

/**
 * The changes of `region` since `since`, from its dirty log `log`, with a
 * new mark taken at the same moment.
 */
export function regionChanges(region: Region, log: DirtyTracker, since: ChangeMark): RegionChanges {
  const ranges = log.rangesSince(since);
  const next = log.mark();
  let pages = 0;
  for (const r of ranges) pages += r.end - r.start;
  return {
    since,
    next,
    ranges,
    pages,
    runs: () => {
      const runs: Run[] = [];
      for (const r of ranges) for (const run of region.store.runs(r.start, r.end)) runs.push(run);
      return runs;
    },
    encode: () => snapshotRegion(region, ranges),
    json: () => snapshotRegionJson(region, ranges),
  };
}
