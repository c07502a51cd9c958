/**
 * The saved-state format of a region: a versioned, checksummed binary
 * encoding of the region's shape and its runs (delta and varint coded), and a
 * JSON form of the same content for people and tests. Encoding and decoding
 * only; `snapshot.ts` connects it to regions.
 *
 * ## Binary layout, version 1
 *
 * All multi-byte integers in the fixed header and trailer are little-endian;
 * everything in the body is an unsigned LEB128 varint (strings are a varint
 * byte count and UTF-8). Page counts and offsets are in pages.
 *
 * | bytes    | field                                                                |
 * | -------- | -------------------------------------------------------------------- |
 * | 0-3      | magic `"MSTS"`                                                       |
 * | 4        | version (1)                                                          |
 * | 5        | kind: 0 full (every page), 1 delta (the ranges changed since a mark) |
 * | 6-7      | flags, 0                                                             |
 * | 8-11     | total length in bytes, header and checksum included (u32)            |
 * | body     | name, log2(page size), pages, base / page size                       |
 * |          | bits: count, then per claimed bit: index, name, granularity (pages)  |
 * |          | sources: count, then per source: name, bit mask, granularity (pages) |
 * |          | segments: count, then per segment (below)                            |
 * | last 4   | CRC-32 (IEEE) of every byte before it (u32)                          |
 *
 * A segment is a range of pages: the gap from the previous segment's end (the
 * first: from page 0), its length, a mode byte and the mode's data:
 *
 * - **0, runs**: a run count, then per run its length and a state code: the
 *   first run's state word, then each state XOR the previous one (never 0).
 * - **1, toggle runs**: a run count, the first state, one XOR that every
 *   run boundary flips (a store of one bit always qualifies), then the lengths.
 * - **2, planes**: per claimed bit, ascending, the segment's pages as a
 *   bitmap (`ceil(length / 8)` bytes, LSB first, unused high bits 0): what a
 *   segment fragmented page by page costs at most.
 *
 * The encoder looks at the pages in chunks of {@link SNAPSHOT_SEGMENT_PAGES}:
 * a chunk whose bit planes are smaller than its runs is saved as planes, and
 * the runs of neighbouring chunks join one segment in the smaller run mode.
 * So a calm region is one segment of a few bytes per run (a 1 TiB `boot` state
 * of 6,151 runs: 12.5 KiB), and a stretch fragmented page by page costs
 * the bitmap's bytes, never more.
 *
 * Decoding checks, in order: the magic (`magic`), the header's and the
 * declared length (`truncated`), version and kind (`version`; read before the
 * checksum, which a later version may place differently), the checksum
 * (`checksum`), then every structural rule
 * (`corrupt`) and that every state word uses only claimed bits
 * (`state-bits`); a {@link SnapshotError} says which. Nothing is built or
 * changed until the whole input has passed.
 *
 * @module
 */

import { crc32 } from "../util/_crc32.ts";
import { ByteReader, ByteReadError, ByteWriter, varintLength } from "../util/_varint.ts";
import type { Run } from "../store/state_store.ts";
import { MAX_BITS } from "../store/validate.ts";
import type { PageRange } from "./dirty_tracker.ts";
import type { SourceInfo } from "./region.ts";
import { isPowerOfTwo } from "../util/_bits.ts";
import { hex } from "../util/_hex.ts";

/** The first four bytes of every binary snapshot. */
export const SNAPSHOT_MAGIC = "MSTS";
/** The format version this code writes and reads. */
export const SNAPSHOT_VERSION = 1;
/** Bytes of the fixed header (magic, version, kind, flags, length). */
export const SNAPSHOT_HEADER_BYTES = 12;
/** Bytes of the CRC-32 trailer. */
export const SNAPSHOT_CRC_BYTES = 4;
/** Pages per segment of a full snapshot (16 GiB of 4 KiB pages): the unit of the mode choice. */
export const SNAPSHOT_SEGMENT_PAGES = 2 ** 22;

const MAGIC_BYTES = [0x4d, 0x53, 0x54, 0x53];
const MODE_RUNS = 0, MODE_TOGGLE = 1, MODE_PLANES = 2;
/** The largest page size a snapshot may declare: 2^40 (1 TiB pages). */
const MAX_PAGE_SHIFT = 40;

/** What was wrong with saved state; see {@link SnapshotError}. */
export type SnapshotErrorCode =
  | "truncated"
  | "magic"
  | "version"
  | "checksum"
  | "corrupt"
  | "state-bits"
  | "shape"
  | "bits"
  | "kind"
  | "region";

/**
 * Saved state that cannot be used, and why (`code`):
 *
 * - `truncated`: the input ends before the snapshot does;
 * - `magic`: not a memstate snapshot;
 * - `version`: a version (or kind) this code does not know;
 * - `checksum`: the CRC-32 does not match (damaged in storage or transit);
 * - `corrupt`: the checksum holds but a structural rule does not;
 * - `state-bits`: a state word wider than the bits claimed or the store holds;
 * - `shape`: a region of another size, page size or base than expected;
 * - `bits`: the claimed bits disagree with the target region's;
 * - `kind`: a delta given where a full snapshot is needed;
 * - `region`: a host's saved regions do not match its configured ones.
 *
 * Whatever the code, nothing was built or changed.
 */
export class SnapshotError extends Error {
  /** What was wrong. */
  readonly code: SnapshotErrorCode;

  /** Creates the error; `message` says what and where. */
  constructor(code: SnapshotErrorCode, message: string, options?: ErrorOptions) {
    super(`saved state: ${message}`, options);
    this.name = "SnapshotError";
    this.code = code;
  }
}

/** A claimed state bit as saved. */
export interface SnapshotBit {
  /** The name it was claimed under (`"shared"`, `"plugged"`, a plugin's). */
  name: string;
  /** Its index in the state word (`SHARED` is 0, `PLUGGED` 1). */
  index: number;
  /** Pages one stored bit stands for (a virtio-mem block; 1 for page granular bits). */
  granularity: number;
}

/** Everything a snapshot says about the region besides its runs. */
export interface SnapshotHeader {
  /** Format version. */
  version: number;
  /** `"full"`: every page; `"delta"`: the ranges changed since a mark. */
  kind: "full" | "delta";
  /** The region's name. */
  name: string;
  /** Region size in bytes. */
  size: number;
  /** Page size in bytes. */
  pageSize: number;
  /** Guest physical address of the region. */
  base: number;
  /** The claimed bits, by ascending index; `shared` (index 0) is always first. */
  bits: SnapshotBit[];
  /** The declared state sources (granularity in bytes, as {@link SourceInfo}). */
  sources: SourceInfo[];
}

/** A decoded, fully validated snapshot. */
export interface Snapshot extends SnapshotHeader {
  /** Pages of the region. */
  readonly pages: number;
  /** The union of the claimed bits. */
  readonly mask: number;
  /** Bytes of the binary encoding it came from (0 for the JSON form). */
  readonly encodedBytes: number;
  /**
   * The saved runs, ascending and maximal where contiguous: every page for a
   * full snapshot, the changed ranges for a delta.
   */
  runs(): Iterable<Run>;
}

/** The JSON form of a snapshot: the same content, pages as plain numbers, no checksum. */
export interface SnapshotJson {
  /** Always `"memstate-snapshot"`. */
  format: "memstate-snapshot";
  /** Format version. */
  version: number;
  /** `"full"` or `"delta"`. */
  kind: "full" | "delta";
  /** The region's shape. */
  region: { name: string; size: number; pageSize: number; base: number };
  /** The claimed bits. */
  bits: SnapshotBit[];
  /** The declared state sources. */
  sources: SourceInfo[];
  /** Runs in pages, ascending: all pages (full) or the changed ranges (delta). */
  runs: Run[];
}

/** Where the runs of a snapshot being encoded come from. */
export interface RunSource {
  /** The ranges to save (sorted, disjoint): all pages for a full snapshot. */
  ranges: Iterable<PageRange>;
  /** The runs of `[start, end)`, ascending, clipped to it. */
  runs(start: number, end: number): Iterable<Run>;
}

// ---------------------------------------------------------------- header checks

function corrupt(message: string): SnapshotError {
  return new SnapshotError("corrupt", message);
}

/**
 * Checks the header's rules (shape, bits, sources) and returns the claimed
 * mask; throws a `corrupt` {@link SnapshotError} naming the first broken rule.
 */
export function checkSnapshotHeader(h: SnapshotHeader): number {
  if (h.kind !== "full" && h.kind !== "delta") {
    throw new SnapshotError("version", `unknown kind ${JSON.stringify(h.kind)}`);
  }
  if (typeof h.name !== "string" || h.name === "") throw corrupt("the region has no name");
  if (!isPowerOfTwo(h.pageSize) || h.pageSize > 2 ** MAX_PAGE_SHIFT) {
    throw corrupt(`page size ${h.pageSize} is not a power of two up to 2^${MAX_PAGE_SHIFT}`);
  }
  if (!Number.isSafeInteger(h.size) || h.size <= 0 || h.size % h.pageSize !== 0) {
    throw corrupt(`size ${h.size} is not a positive multiple of the page size ${h.pageSize}`);
  }
  if (!Number.isSafeInteger(h.base) || h.base < 0 || h.base % h.pageSize !== 0) {
    throw corrupt(`base ${h.base} is not a multiple of the page size ${h.pageSize}`);
  }
  if (!Number.isSafeInteger(h.base + h.size)) throw corrupt(`base + size overflows`);
  if (!Array.isArray(h.bits) || h.bits.length === 0) throw corrupt("no claimed bits");
  let mask = 0;
  const names = new Set<string>();
  h.bits.forEach((b, i) => {
    const what = `bit ${JSON.stringify(b?.name)}`;
    if (typeof b !== "object" || b === null) throw corrupt(`bits[${i}] is not an object`);
    if (typeof b.name !== "string" || b.name === "" || names.has(b.name)) {
      throw corrupt(`bits[${i}]: a claimed bit needs a unique non-empty name`);
    }
    names.add(b.name);
    if (!Number.isInteger(b.index) || b.index < 0 || b.index >= MAX_BITS) {
      throw corrupt(`${what}: index ${b.index} is not in [0, ${MAX_BITS})`);
    }
    if (i > 0 && b.index <= h.bits[i - 1].index) throw corrupt(`bits are not in ascending order`);
    if ((b.index === 0) !== (b.name === "shared") || (b.index === 1) !== (b.name === "plugged")) {
      throw corrupt(`${what}: "shared" is bit 0 and "plugged" bit 1, got index ${b.index}`);
    }
    if (!isPowerOfTwo(b.granularity)) {
      throw corrupt(`${what}: granularity ${b.granularity} is not a power of two`);
    }
    mask |= 1 << b.index;
  });
  if (h.bits[0].index !== 0) throw corrupt(`the "shared" bit is missing`);
  if (!Array.isArray(h.sources)) throw corrupt("sources is not a list");
  const sources = new Set<string>();
  h.sources.forEach((s, i) => {
    if (typeof s !== "object" || s === null) throw corrupt(`sources[${i}] is not an object`);
    if (typeof s.name !== "string" || s.name === "" || sources.has(s.name)) {
      throw corrupt(`sources[${i}]: a source needs a unique non-empty name`);
    }
    sources.add(s.name);
    if (!Number.isInteger(s.bits) || s.bits <= 0 || s.bits >= 2 ** MAX_BITS) {
      throw corrupt(`source ${JSON.stringify(s.name)}: bits ${s.bits} is not a state mask`);
    }
    if (
      !Number.isSafeInteger(s.granularity) || s.granularity <= 0 ||
      s.granularity % h.pageSize !== 0
    ) {
      throw corrupt(
        `source ${JSON.stringify(s.name)}: granularity ${s.granularity} is not a positive ` +
          `multiple of the page size`,
      );
    }
  });
  return mask;
}

// ---------------------------------------------------------------- run checks

/**
 * Checks runs as they stream by and merges contiguous runs of equal state:
 * ascending, non-empty, inside the region, only claimed bits, coarse bits
 * changing only on their granularity, and (full) covering every page.
 */
class RunChecker {
  #pages: number;
  #mask: number;
  #full: boolean;
  /** Claimed bits kept coarser than a page: [mask, granularity]. */
  #coarse: [number, number][];
  #end = 0;
  #lastState = -1;
  #runs = 0;

  constructor(header: SnapshotHeader, pages: number, mask: number) {
    this.#pages = pages;
    this.#mask = mask;
    this.#full = header.kind === "full";
    this.#coarse = header.bits.filter((b) => b.granularity > 1).map((b) => [
      1 << b.index,
      b.granularity,
    ]);
  }

  check(run: Run, where: string): void {
    const { start, end, state } = run;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end <= start) {
      throw corrupt(`${where}: [${start}, ${end}) is not a non-empty page range`);
    }
    if (end > this.#pages) {
      throw corrupt(`${where}: [${start}, ${end}) ends past the region's ${this.#pages} pages`);
    }
    if (start < this.#end) throw corrupt(`${where}: [${start}, ${end}) overlaps or goes back`);
    if (this.#full && start !== this.#end) {
      throw corrupt(`${where}: pages [${this.#end}, ${start}) are missing from a full snapshot`);
    }
    if (!Number.isInteger(state) || state < 0 || state >= 2 ** MAX_BITS) {
      throw corrupt(`${where}: state ${state} is not a state word`);
    }
    if ((state & ~this.#mask) !== 0) {
      throw new SnapshotError(
        "state-bits",
        `${where}: state ${hex(state)} has bits the snapshot does not claim ` +
          `(claimed: ${hex(this.#mask)})`,
      );
    }
    if (start === this.#end && this.#lastState >= 0) {
      const flipped = state ^ this.#lastState;
      for (const [bit, g] of this.#coarse) {
        if ((flipped & bit) !== 0 && start % g !== 0) {
          throw corrupt(
            `${where}: bit ${hex(bit)}, kept per ${g} pages, changes at page ${start}`,
          );
        }
      }
    }
    this.#end = end;
    this.#lastState = state;
    this.#runs++;
  }

  finish(): void {
    if (this.#full && this.#end !== this.#pages) {
      throw corrupt(`pages [${this.#end}, ${this.#pages}) are missing from a full snapshot`);
    }
  }
}

/** Yields `runs` with contiguous runs of equal state merged. */
function* mergeRuns(runs: Iterable<Run>): Generator<Run> {
  let open: Run | undefined;
  for (const r of runs) {
    if (open && open.end === r.start && open.state === r.state) {
      open.end = r.end;
      continue;
    }
    if (open) yield open;
    open = { start: r.start, end: r.end, state: r.state };
  }
  if (open) yield open;
}

// ---------------------------------------------------------------- encoding

/**
 * Encodes `header` and the runs of `source` as one binary snapshot.
 * `header.kind` says whether the ranges must cover every page (checked).
 *
 * @example Two runs of a 1 GiB region
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSnapshot, encodeSnapshot } from "./snapshot_format.ts";
 * const header = {
 *   version: 1, kind: "full" as const, name: "ram", size: 2 ** 30, pageSize: 4096, base: 0,
 *   bits: [{ name: "shared", index: 0, granularity: 1 }], sources: [],
 * };
 * const runs = [{ start: 0, end: 512, state: 1 }, { start: 512, end: 2 ** 18, state: 0 }];
 * const bytes = encodeSnapshot(header, {
 *   ranges: [{ start: 0, end: 2 ** 18 }],
 *   runs: (s, e) => runs.filter((r) => r.start < e && r.end > s),
 * });
 * assert.ok(bytes.length < 64); // fixed header, shape, two runs and the CRC
 * assert.deepEqual([...decodeSnapshot(bytes).runs()], runs);
 * ```
 */
export function encodeSnapshot(header: SnapshotHeader, source: RunSource): Uint8Array {
  const mask = checkSnapshotHeader(header);
  const pages = header.size / header.pageSize;
  const indexes = header.bits.map((b) => b.index);
  const w = new ByteWriter(1024);
  for (const b of MAGIC_BYTES) w.u8(b);
  w.u8(SNAPSHOT_VERSION);
  w.u8(header.kind === "full" ? 0 : 1);
  w.u8(0);
  w.u8(0);
  w.u32(0); // length, patched below
  w.string(header.name);
  w.varint(Math.log2(header.pageSize));
  w.varint(pages);
  w.varint(header.base / header.pageSize);
  w.varint(header.bits.length);
  for (const b of header.bits) {
    w.varint(b.index);
    w.string(b.name);
    w.varint(b.granularity);
  }
  w.varint(header.sources.length);
  for (const s of header.sources) {
    w.string(s.name);
    w.varint(s.bits);
    w.varint(s.granularity / header.pageSize);
  }
  const segments = new SegmentWriter(indexes, mask, new RunChecker(header, pages, mask));
  let previousEnd = 0;
  for (const r of source.ranges) {
    if (r.start < previousEnd || r.end > pages || r.end <= r.start) {
      throw new RangeError(`ranges: must be non-empty, sorted, disjoint and inside ${pages} pages`);
    }
    segments.range(r, source);
    previousEnd = r.end;
  }
  segments.finish(w);
  const length = w.length + SNAPSHOT_CRC_BYTES;
  if (length > 0xffff_ffff) throw new RangeError(`the snapshot would exceed 4 GiB`);
  w.patchU32(8, length);
  const body = w.bytes();
  const out = new Uint8Array(length);
  out.set(body);
  const crc = crc32(out, 0, body.length);
  new DataView(out.buffer).setUint32(body.length, crc, true);
  return out;
}

/**
 * Cuts the saved ranges into segments: each {@link SNAPSHOT_SEGMENT_PAGES}
 * chunk goes as bit planes when that is smaller than its runs; runs of
 * neighbouring chunks join one segment, so a calm region is one segment.
 */
class SegmentWriter {
  readonly #indexes: number[];
  readonly #mask: number;
  readonly #checker: RunChecker;
  readonly #out = new ByteWriter(1024);
  #count = 0;
  #previousEnd = 0;
  /** The runs segment being gathered: from `#start`, runs as lengths and states. */
  #start = -1;
  #lengths: number[] = [];
  #states: number[] = [];

  constructor(indexes: number[], mask: number, checker: RunChecker) {
    this.#indexes = indexes;
    this.#mask = mask;
    this.#checker = checker;
  }

  range(range: PageRange, source: RunSource): void {
    for (let s = range.start; s < range.end; s += SNAPSHOT_SEGMENT_PAGES) {
      const e = Math.min(range.end, s + SNAPSHOT_SEGMENT_PAGES);
      const [lengths, states] = this.#read(s, e, source.runs(s, e));
      const planeBytes = this.#indexes.length * Math.ceil((e - s) / 8);
      const best = Math.min(
        runsBytes(lengths, states),
        toggleBytes(lengths, states, toggleOf(states)),
      );
      if (planeBytes < best) {
        this.#flush();
        this.#head(s, e, MODE_PLANES);
        for (const index of this.#indexes) {
          const plane = new Uint8Array(Math.ceil((e - s) / 8));
          let pos = 0;
          for (let i = 0; i < lengths.length; i++) {
            if ((states[i] >>> index) & 1) setBits(plane, pos, pos + lengths[i]);
            pos += lengths[i];
          }
          this.#out.raw(plane);
        }
        continue;
      }
      if (this.#start < 0) this.#start = s;
      let k = 0;
      const last = this.#states.length - 1;
      if (last >= 0 && this.#states[last] === states[0]) {
        this.#lengths[last] += lengths[0];
        k = 1;
      }
      for (; k < lengths.length; k++) {
        this.#lengths.push(lengths[k]);
        this.#states.push(states[k]);
      }
    }
    this.#flush();
  }

  finish(w: ByteWriter): void {
    this.#flush();
    this.#checker.finish();
    w.varint(this.#count);
    w.raw(this.#out.bytes());
  }

  /** The runs of `[s, e)` as lengths and states, maximal, checked. */
  #read(s: number, e: number, runs: Iterable<Run>): [number[], number[]] {
    const lengths: number[] = [], states: number[] = [];
    let at = s;
    for (const run of mergeRuns(runs)) {
      const start = Math.max(run.start, s), end = Math.min(run.end, e);
      if (start !== at || end <= start) {
        throw new RangeError(`runs: [${run.start}, ${run.end}) does not continue page ${at}`);
      }
      if ((run.state & ~this.#mask) !== 0) {
        throw new SnapshotError(
          "state-bits",
          `the store has state ${hex(run.state)} at page ${start}, wider than the ` +
            `claimed bits ${hex(this.#mask)}`,
        );
      }
      this.#checker.check({ start, end, state: run.state }, "encoding");
      lengths.push(end - start);
      states.push(run.state);
      at = end;
    }
    if (at !== e) throw new RangeError(`runs: pages [${at}, ${e}) are missing`);
    return [lengths, states];
  }

  #head(start: number, end: number, mode: number): void {
    this.#out.varint(start - this.#previousEnd);
    this.#out.varint(end - start);
    this.#out.u8(mode);
    this.#previousEnd = end;
    this.#count++;
  }

  /** Writes the gathered runs as one segment, in whichever run mode is smaller. */
  #flush(): void {
    if (this.#start < 0) return;
    const lengths = this.#lengths, states = this.#states, n = lengths.length;
    let end = this.#start;
    for (const l of lengths) end += l;
    const toggle = toggleOf(states);
    if (toggle > 0 && toggleBytes(lengths, states, toggle) <= runsBytes(lengths, states)) {
      this.#head(this.#start, end, MODE_TOGGLE);
      this.#out.varint(n);
      this.#out.varint(states[0]);
      this.#out.varint(toggle);
      for (const l of lengths) this.#out.varint(l);
    } else {
      this.#head(this.#start, end, MODE_RUNS);
      this.#out.varint(n);
      for (let i = 0; i < n; i++) {
        this.#out.varint(lengths[i]);
        this.#out.varint(i === 0 ? states[0] : states[i] ^ states[i - 1]);
      }
    }
    this.#start = -1;
    this.#lengths = [];
    this.#states = [];
  }
}

/** The XOR every boundary of `states` flips, or -1 when they differ (or there is one run). */
function toggleOf(states: number[]): number {
  if (states.length < 2) return -1;
  const t = states[1] ^ states[0];
  for (let i = 2; i < states.length; i++) if ((states[i] ^ states[i - 1]) !== t) return -1;
  return t;
}

/** Bytes of mode 0 (runs) for these runs. */
function runsBytes(lengths: number[], states: number[]): number {
  let n = varintLength(lengths.length);
  for (let i = 0; i < lengths.length; i++) {
    n += varintLength(lengths[i]) + varintLength(i === 0 ? states[0] : states[i] ^ states[i - 1]);
  }
  return n;
}

/** Bytes of mode 1 (toggle runs), or Infinity when the runs do not toggle. */
function toggleBytes(lengths: number[], states: number[], toggle: number): number {
  if (toggle <= 0) return Infinity;
  let n = varintLength(lengths.length) + varintLength(states[0]) + varintLength(toggle);
  for (const l of lengths) n += varintLength(l);
  return n;
}

/** Sets bits `[from, to)` of a little-endian byte bitmap. */
function setBits(plane: Uint8Array, from: number, to: number): void {
  while (from < to && (from & 7) !== 0) plane[from >>> 3] |= 1 << (from++ & 7);
  while (from + 8 <= to) {
    plane[from >>> 3] = 0xff;
    from += 8;
  }
  while (from < to) plane[from >>> 3] |= 1 << (from++ & 7);
}

// ---------------------------------------------------------------- decoding

interface Frame {
  version: number;
  kind: "full" | "delta";
  /** Offset of the first byte after the snapshot. */
  end: number;
}

/** Reads and checks the fixed header, length and checksum of the snapshot at `at`. */
function readFrame(bytes: Uint8Array, at: number): Frame {
  const available = bytes.length - at;
  const prefix = Math.min(available, 4);
  for (let i = 0; i < prefix; i++) {
    if (bytes[at + i] !== MAGIC_BYTES[i]) {
      throw new SnapshotError("magic", `byte ${at}: not a memstate snapshot (no "MSTS")`);
    }
  }
  if (available < SNAPSHOT_HEADER_BYTES) {
    throw new SnapshotError(
      "truncated",
      `byte ${at}: ${available} bytes, less than the ${SNAPSHOT_HEADER_BYTES}-byte header`,
    );
  }
  const version = bytes[at + 4];
  if (version !== SNAPSHOT_VERSION) {
    throw new SnapshotError(
      "version",
      `byte ${at}: version ${version}; this memstate reads version ${SNAPSHOT_VERSION}`,
    );
  }
  const kindByte = bytes[at + 5];
  if (kindByte > 1) throw new SnapshotError("version", `byte ${at}: unknown kind ${kindByte}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(at + 8, true);
  if (length < SNAPSHOT_HEADER_BYTES + SNAPSHOT_CRC_BYTES) {
    throw corrupt(`byte ${at}: declared length ${length} is shorter than header and checksum`);
  }
  if (length > available) {
    throw new SnapshotError(
      "truncated",
      `byte ${at}: the snapshot is ${length} bytes but only ${available} are there`,
    );
  }
  const end = at + length;
  const stored = view.getUint32(end - SNAPSHOT_CRC_BYTES, true);
  const actual = crc32(bytes, at, end - SNAPSHOT_CRC_BYTES);
  if (stored !== actual) {
    throw new SnapshotError(
      "checksum",
      `byte ${at}: CRC-32 ${hex(actual)} does not match the stored ` +
        `${hex(stored)}: the data is damaged`,
    );
  }
  if (bytes[at + 6] !== 0 || bytes[at + 7] !== 0) {
    throw corrupt(`byte ${at}: unknown flags ${hex(view.getUint16(at + 6, true))}`);
  }
  return { version, kind: kindByte === 0 ? "full" : "delta", end };
}

/** Turns a reader's out-of-bounds into a `corrupt` error (the checksum held, so it is not truncation). */
function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ByteReadError) {
      throw corrupt(
        `byte ${e.offset}: ${
          e.problem === "truncated" ? "a value runs past the end" : "a varint is too long"
        }`,
      );
    }
    throw e;
  }
}

class BinarySnapshot implements Snapshot {
  readonly version: number;
  readonly kind: "full" | "delta";
  readonly name: string;
  readonly size: number;
  readonly pageSize: number;
  readonly base: number;
  readonly bits: SnapshotBit[];
  readonly sources: SourceInfo[];
  readonly pages: number;
  readonly mask: number;
  readonly encodedBytes: number;
  readonly #bytes: Uint8Array;
  readonly #segmentsAt: number;
  readonly #end: number;

  constructor(bytes: Uint8Array, at: number, frame: Frame) {
    this.#bytes = bytes;
    this.#end = frame.end - SNAPSHOT_CRC_BYTES;
    this.encodedBytes = frame.end - at;
    this.version = frame.version;
    this.kind = frame.kind;
    const r = new ByteReader(bytes, at + SNAPSHOT_HEADER_BYTES, this.#end);
    const header = guard(() => {
      const name = r.string();
      const shift = r.varint();
      if (shift > MAX_PAGE_SHIFT) throw corrupt(`page size 2^${shift} is too large`);
      const pageSize = 2 ** shift;
      const pages = r.varint();
      const base = r.varint() * pageSize;
      const bits: SnapshotBit[] = [];
      for (let n = r.varint(); n > 0; n--) {
        if (bits.length >= MAX_BITS) throw corrupt(`more than ${MAX_BITS} claimed bits`);
        bits.push({ index: r.varint(), name: r.string(), granularity: r.varint() });
      }
      const sources: SourceInfo[] = [];
      for (let n = r.varint(); n > 0; n--) {
        if (sources.length >= 1024) throw corrupt(`more than 1024 sources`);
        sources.push({ name: r.string(), bits: r.varint(), granularity: r.varint() * pageSize });
      }
      return { name, pageSize, size: pages * pageSize, base, bits, sources };
    });
    this.name = header.name;
    this.pageSize = header.pageSize;
    this.size = header.size;
    this.base = header.base;
    this.bits = header.bits;
    this.sources = header.sources;
    this.mask = checkSnapshotHeader(this);
    this.pages = this.size / this.pageSize;
    this.#segmentsAt = r.offset;
    // Validate every run now, so that nothing downstream can fail half way.
    const checker = new RunChecker(this, this.pages, this.mask);
    let where = "";
    guard(() => {
      for (const run of this.#segments((w) => where = w)) checker.check(run, where);
    });
    checker.finish();
  }

  runs(): Iterable<Run> {
    return mergeRuns(this.#segments());
  }

  /** The runs segment by segment, as stored (not merged across segments). */
  *#segments(at?: (where: string) => void): Generator<Run> {
    const r = new ByteReader(this.#bytes, this.#segmentsAt, this.#end);
    const indexes = this.bits.map((b) => b.index);
    const count = r.varint();
    let previousEnd = 0;
    for (let k = 0; k < count; k++) {
      const where = `segment ${k} (byte ${r.offset})`;
      at?.(where);
      const start = previousEnd + r.varint();
      const length = r.varint();
      const end = start + length;
      if (length === 0 || !Number.isSafeInteger(end) || end > this.pages) {
        throw corrupt(`${where}: pages [${start}, ${end}) are not a range inside the region`);
      }
      const mode = r.u8();
      if (mode === MODE_PLANES) {
        const planes = indexes.map(() => r.raw(Math.ceil(length / 8)));
        if (length % 8 !== 0) {
          const unused = 0xff << (length % 8) & 0xff;
          for (const p of planes) {
            if ((p[p.length - 1] & unused) !== 0) throw corrupt(`${where}: bits past its end`);
          }
        }
        yield* planeRuns(planes, indexes, start, length);
      } else if (mode === MODE_RUNS || mode === MODE_TOGGLE) {
        const n = r.varint();
        if (n === 0 || n > length) throw corrupt(`${where}: ${n} runs in ${length} pages`);
        let state = 0, toggle = 0, pos = start;
        if (mode === MODE_TOGGLE) {
          state = r.varint();
          toggle = r.varint();
          if (toggle === 0) throw corrupt(`${where}: a toggle of 0`);
        }
        for (let i = 0; i < n; i++) {
          const len = r.varint();
          if (mode === MODE_RUNS) {
            const code = r.varint();
            if (i > 0 && code === 0) throw corrupt(`${where}: run ${i} repeats the state`);
            state = i === 0 ? code : state ^ code;
          } else if (i > 0) state ^= toggle;
          if (len === 0 || pos + len > end) {
            throw corrupt(`${where}: run ${i} of ${len} pages overruns the segment`);
          }
          yield { start: pos, end: pos + len, state };
          pos += len;
        }
        if (pos !== end) throw corrupt(`${where}: runs cover ${pos - start} of ${length} pages`);
      } else {
        throw corrupt(`${where}: unknown mode ${mode}`);
      }
      previousEnd = end;
    }
    if (r.remaining !== 0) throw corrupt(`${r.remaining} bytes after the last segment`);
  }
}

/** The runs of a planes segment, using whole bytes where every plane is uniform. */
function* planeRuns(
  planes: Uint8Array[],
  indexes: number[],
  start: number,
  length: number,
): Generator<Run> {
  let runStart = 0, runState = -1;
  let p = 0;
  while (p < length) {
    let state = 0;
    let step = 1;
    if ((p & 7) === 0 && p + 8 <= length) {
      const at = p >>> 3;
      let uniform = true;
      for (let k = 0; k < planes.length; k++) {
        const v = planes[k][at];
        if (v === 0xff) state |= 1 << indexes[k];
        else if (v !== 0) {
          uniform = false;
          break;
        }
      }
      if (uniform) step = 8;
    }
    if (step === 1) {
      state = 0;
      for (let k = 0; k < planes.length; k++) {
        if ((planes[k][p >>> 3] >>> (p & 7)) & 1) state |= 1 << indexes[k];
      }
    }
    if (state !== runState) {
      if (runState >= 0) yield { start: start + runStart, end: start + p, state: runState };
      runStart = p;
      runState = state;
    }
    p += step;
  }
  yield { start: start + runStart, end: start + length, state: runState };
}

/**
 * Decodes and fully validates one binary snapshot that fills `bytes`; a
 * {@link SnapshotError} says what is wrong.
 */
export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  const [snapshot, end] = decodeOne(bytes, 0);
  if (end !== bytes.length) {
    throw corrupt(`${bytes.length - end} bytes follow the snapshot`);
  }
  return snapshot;
}

/**
 * Decodes and validates a sequence of binary snapshots written back to back
 * (a host's state file: one per region). Empty input is `truncated`.
 */
export function decodeSnapshots(bytes: Uint8Array): Snapshot[] {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`bytes: must be a Uint8Array`);
  if (bytes.length === 0) throw new SnapshotError("truncated", "the input is empty");
  const out: Snapshot[] = [];
  let at = 0;
  while (at < bytes.length) {
    const [snapshot, end] = decodeOne(bytes, at);
    out.push(snapshot);
    at = end;
  }
  return out;
}

function decodeOne(bytes: Uint8Array, at: number): [Snapshot, number] {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`bytes: must be a Uint8Array`);
  const frame = readFrame(bytes, at);
  return [new BinarySnapshot(bytes, at, frame), frame.end];
}

// ---------------------------------------------------------------- JSON

/** The JSON form of `snapshot` (every run listed). */
export function snapshotToJson(snapshot: Snapshot): SnapshotJson {
  return {
    format: "memstate-snapshot",
    version: snapshot.version,
    kind: snapshot.kind,
    region: {
      name: snapshot.name,
      size: snapshot.size,
      pageSize: snapshot.pageSize,
      base: snapshot.base,
    },
    bits: snapshot.bits.map((b) => ({ ...b })),
    sources: snapshot.sources.map((s) => ({ ...s })),
    runs: [...snapshot.runs()],
  };
}

/**
 * Validates a JSON snapshot (parsed, or as text) by the same rules as the
 * binary form (without a checksum) and returns it as a {@link Snapshot}.
 */
export function snapshotFromJson(json: unknown): Snapshot {
  let value = json;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch (e) {
      throw corrupt(`not JSON: ${(e as Error).message}`);
    }
  }
  const j = value as Partial<SnapshotJson>;
  if (typeof j !== "object" || j === null || j.format !== "memstate-snapshot") {
    throw new SnapshotError("magic", `not a memstate snapshot (no format "memstate-snapshot")`);
  }
  if (j.version !== SNAPSHOT_VERSION) {
    throw new SnapshotError(
      "version",
      `version ${j.version}; this memstate reads version ${SNAPSHOT_VERSION}`,
    );
  }
  const region = j.region;
  if (typeof region !== "object" || region === null) throw corrupt(`no region`);
  const header: SnapshotHeader = {
    version: j.version,
    kind: j.kind as "full" | "delta",
    name: region.name,
    size: region.size,
    pageSize: region.pageSize,
    base: region.base,
    bits: (j.bits ?? []).map((b) => ({ ...b })),
    sources: Array.isArray(j.sources) ? j.sources.map((s) => ({ ...s })) : j.sources as never,
  };
  const mask = checkSnapshotHeader(header);
  const pages = header.size / header.pageSize;
  if (!Array.isArray(j.runs)) throw corrupt(`runs is not a list`);
  const checker = new RunChecker(header, pages, mask);
  const runs: Run[] = j.runs.map((r, i) => {
    if (typeof r !== "object" || r === null) throw corrupt(`runs[${i}] is not an object`);
    const run = { start: r.start, end: r.end, state: r.state };
    checker.check(run, `runs[${i}]`);
    return run;
  });
  checker.finish();
  return {
    ...header,
    pages,
    mask,
    encodedBytes: 0,
    runs: () => mergeRuns(runs),
  };
}
