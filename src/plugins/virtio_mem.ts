/**
 * virtio-mem as a state source: it owns the `PLUGGED` bit of its range and
 * answers the guest's PLUG / UNPLUG / UNPLUG_ALL / STATE requests the way
 * QEMU's hw/virtio/virtio-mem.c does:
 *
 * - a range that is not block aligned, empty, or outside the usable region: `ERROR`;
 * - more than 65,535 blocks, which the 16-bit `nb_blocks` cannot name: `ERROR`;
 * - a plug beyond the requested size: `NACK`;
 * - a range not entirely in the opposite state (plugging plugged blocks): `ERROR`
 *   (`virtio_mem_state_change_request`, in that order);
 * - while a migration is in progress (`busy`), plug, unplug and unplug-all:
 *   `BUSY` (`virtio_mem_set_block_state` and `virtio_mem_unplug_all` ask
 *   `virtio_mem_is_busy`: migration running or incoming postcopy);
 * - a listener refusing a plug (a DMA map failing): `BUSY`, the listeners
 *   rolled back as the region's policy says and the backing discarded again,
 *   under every policy (`virtio_mem_set_block_state`);
 * - otherwise `ACK`.
 *
 * `check` gives the answer of those checks without making the request, and
 * `plug` / `unplug` ask it first, so a caller planning requests (a saved
 * state's load) and the device cannot disagree.
 *
 * An unplug discards the backing (`ram_block_discard_range`, through the
 * `discardBacking` option) and tells the listeners. Under a QEMU policy the
 * discard comes first and the listeners cannot refuse (`notify_discard`
 * returns void); under memstate the listeners are told first and may refuse,
 * which rolls the unplug back (`BUSY`) before any memory is given up. When
 * the backing then cannot be discarded, memstate plugs the blocks back
 * (`BUSY`); a block a listener refuses to take back (its populate fails, an
 * inverse that must not) stays unplugged with its backing kept: `pluggedSize`
 * counts it out, `stats().warnings` says so, and the request is `ACK` when no
 * block could be put back, `BUSY` otherwise: the answer is what the device holds.
 * UNPLUG_ALL tells the listeners as QEMU's `virtio_mem_notify_unplug_all`
 * does ({@link Region.discardAll}): under QEMU 11.1 one discard of each
 * listener's whole section, not one per plugged block or page.
 *
 * The block size is at least 1 MiB and at least the backing's page size
 * (`virtio_mem_set_block_size`, `virtio_mem_device_realize`), and the device's
 * guest-physical address is a multiple of it (`virtio_mem_device_realize`),
 * under every policy: they are the device's rules, not the VMM's propagation
 * policy. Creating a device discards its whole backing once, unless it is
 * migrating in (`incoming`; `virtio_mem_device_realize`).
 *
 * Because plugging goes through the bus, DMA listeners see only memory that is
 * plugged *and* shared (QEMU 11's multi-source rule).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Region, virtioMem } from "@cvm/memstate";
 *
 * const region = new Region({ name: "vmem", size: 2 ** 32, base: 2 ** 34 });
 * const vmem = virtioMem({ region, blockSize: 2 ** 21, requestedSize: 2 ** 30 });
 * assert.equal(vmem.plug(2 ** 34, 4), "ACK"); // 8 MiB plugged
 * assert.equal(vmem.plug(2 ** 34, 4), "ERROR"); // already plugged
 * assert.deepEqual(vmem.state(2 ** 34, 8), { response: "ACK", state: "mixed" });
 * vmem.busy = true; // a migration is running
 * assert.equal(vmem.unplug(2 ** 34, 4), "BUSY");
 * ```
 *
 * @module
 */

import { ConversionError } from "../bus/errors.ts";
import type { Region } from "../bus/region.ts";
import { PLUGGED } from "../bus/state_bits.ts";
import { PLUGGED_VIEW } from "../bus/view.ts";
import { type ViewRun, viewRuns } from "../bus/view_runs.ts";
import { checkPluginName, PluginCounters, type PluginStats } from "./plugin.ts";
import { isPowerOfTwo } from "../util/_bits.ts";
import { hex } from "../util/_hex.ts";
import { refuseAsync, refusePromise } from "../util/_sync.ts";
import { describeValue, errorLine } from "../util/text.ts";

/** A virtio-mem response type. */
export type VirtioMemResponse = "ACK" | "NACK" | "BUSY" | "ERROR";

/** The answer to a STATE request. */
export interface VirtioMemStateAnswer {
  /** `ACK`, or `ERROR` for an invalid range. */
  response: "ACK" | "ERROR";
  /** The blocks' state when the response is ACK. */
  state?: "plugged" | "unplugged" | "mixed";
}

/** QEMU's VIRTIO_MEM_USABLE_EXTENT on x86: how far past the requested size the guest may plug. */
export const VIRTIO_MEM_USABLE_EXTENT = 2 * 128 * 2 ** 20;

/**
 * QEMU's VIRTIO_MEM_MIN_BLOCK_SIZE, 1 MiB: the smallest block size the device
 * accepts ("to keep the tracking bitmap small"; hw/virtio/virtio-mem.c
 * `virtio_mem_set_block_size` refuses anything below it).
 */
export const VIRTIO_MEM_MIN_BLOCK_SIZE = 2 ** 20;

/**
 * The most blocks one request names: `nb_blocks` is a 16-bit field (the virtio
 * spec's `struct virtio_mem_req_plug`, `_unplug`, `_state`; hw/virtio/virtio-mem.c
 * `virtio_mem_plug_request` reads it with `le16_to_cpu`). A guest plugs more in
 * several requests; a call here with more is `ERROR` (rule `"nb-blocks"`): no
 * such request exists on the queue.
 */
export const VIRTIO_MEM_MAX_NB_BLOCKS = 0xffff;

/** What {@link VirtioMemDevice.check} returns (spelled out there, where the docs show it). */
export type VirtioMemCheck = ReturnType<VirtioMemDevice["check"]>;

/** The check that refuses a request: one of QEMU's, see {@link VirtioMemDevice.check}. */
type VirtioMemRule = NonNullable<VirtioMemCheck["rule"]>;

/** The answers {@link VirtioMemDevice.check} gives, one frozen object per outcome. */
const CHECKED: Readonly<Record<VirtioMemRule | "ack", VirtioMemCheck>> = Object.freeze({
  unaligned: Object.freeze({ response: "ERROR", rule: "unaligned" }),
  empty: Object.freeze({ response: "ERROR", rule: "empty" }),
  "nb-blocks": Object.freeze({ response: "ERROR", rule: "nb-blocks" }),
  outside: Object.freeze({ response: "ERROR", rule: "outside" }),
  "requested-size": Object.freeze({ response: "NACK", rule: "requested-size" }),
  state: Object.freeze({ response: "ERROR", rule: "state" }),
  busy: Object.freeze({ response: "BUSY", rule: "busy" }),
  ack: Object.freeze({ response: "ACK" }),
});

/** Options for {@link virtioMem}. */
export interface VirtioMemOptions {
  /** The region the device's memory lives in. */
  region: Region;
  /**
   * Block size in bytes: a power of two, at least {@link VIRTIO_MEM_MIN_BLOCK_SIZE}
   * (1 MiB) and at least `backingPageSize`, as QEMU requires.
   */
  blockSize: number;
  /**
   * Page size of the memory backing the device (QEMU's `qemu_ram_pagesize`:
   * 2 MiB or 1 GiB for hugetlb); the block size may not be smaller
   * (hw/virtio/virtio-mem.c `virtio_mem_device_realize`). Default: the
   * region's page size.
   */
  backingPageSize?: number;
  /** The size the host asks the guest to plug. */
  requestedSize: number;
  /** Byte offset of the device's memory in the region (default 0). */
  offset?: number;
  /** Bytes of device memory (default: the rest of the region). */
  size?: number;
  /** Device name (default `"virtio-mem"`). */
  name?: string;
  /**
   * Discards the backing of `[offset, offset + size)` of the region (QEMU's
   * `ram_block_discard_range`); called once over the whole device at creation
   * (unless `incoming`; a throw there fails the creation), on unplug, and after
   * a refused plug.
   * A throw makes the request `BUSY`. It must be synchronous (memstate does not
   * await it): an async function is refused here (a `TypeError`), and a call
   * that returns a promise anyway fails as a throw does. Default: nothing to
   * discard.
   */
  discardBacking?: (offset: number, size: number) => void;
  /**
   * The device is created for an incoming migration (QEMU's `RUN_STATE_INMIGRATE`):
   * its backing is not discarded at creation. Default false: the backing of the
   * whole device is discarded once (hw/virtio/virtio-mem.c `virtio_mem_device_realize`:
   * `ram_block_discard_range(rb, 0, used_length)`).
   */
  incoming?: boolean;
}

/** A virtio-mem device bound to a region; see the module documentation. */
export interface VirtioMemDevice {
  /** Device name. */
  readonly name: string;
  /** `"virtio-mem"`. */
  readonly kind: string;
  /** Guest physical address of the device's first byte. */
  readonly addr: number;
  /** Bytes of device memory. */
  readonly regionSize: number;
  /** Block size in bytes. */
  readonly blockSize: number;
  /** Bytes currently plugged. */
  readonly pluggedSize: number;
  /** Bytes the guest may plug up to. */
  readonly requestedSize: number;
  /** Bytes of device memory the guest may touch (QEMU's usable_region_size). */
  readonly usableRegionSize: number;
  /** While true (a migration is in progress) PLUG, UNPLUG and UNPLUG_ALL answer BUSY. */
  busy: boolean;
  /** PLUG `nbBlocks` blocks at guest physical `gpa`. */
  plug(gpa: number, nbBlocks: number): VirtioMemResponse;
  /** UNPLUG `nbBlocks` blocks at `gpa`. */
  unplug(gpa: number, nbBlocks: number): VirtioMemResponse;
  /** UNPLUG_ALL. */
  unplugAll(): VirtioMemResponse;
  /** STATE of `nbBlocks` blocks at `gpa`. */
  state(gpa: number, nbBlocks: number): VirtioMemStateAnswer;
  /**
   * What PLUG (`plug` true) or UNPLUG of `nbBlocks` blocks at `gpa` would be
   * answered now, without making it or counting it: the checks
   * {@link VirtioMemDevice.plug} and {@link VirtioMemDevice.unplug} make first,
   * in QEMU's order (hw/virtio/virtio-mem.c `virtio_mem_state_change_request`):
   * an invalid range (`rule` `"unaligned"`, `"empty"` or `"outside"` the usable
   * region) or more than {@link VIRTIO_MEM_MAX_NB_BLOCKS} blocks (`"nb-blocks"`)
   * is `ERROR`, a plug past the requested size (`"requested-size"`) `NACK`,
   * blocks not all in the opposite state (`"state"`) `ERROR`, a busy device
   * (`"busy"`) `BUSY`. `ACK` means the request passes them all; a
   * listener may still refuse it (`BUSY`). `pluggedSize` is the plugged size
   * to check a plug against (default: the device's own): a caller planning
   * several requests passes what the earlier ones leave plugged. The blocks'
   * state is read now.
   */
  check(gpa: number, nbBlocks: number, plug: boolean, pluggedSize?: number): {
    /** The answer the request would get. */
    readonly response: VirtioMemResponse;
    /** The check that gives an answer other than `ACK`. */
    readonly rule?:
      | "unaligned"
      | "empty"
      | "nb-blocks"
      | "outside"
      | "requested-size"
      | "state"
      | "busy";
  };
  /** The host changes the requested size (a multiple of the block size, at most the region). */
  setRequestedSize(bytes: number): void;
  /** Statistics (calls by request and response, plugged bytes as `mappedBytes`). */
  stats(): PluginStats;
}

/**
 * Creates a virtio-mem device over `[offset, offset + size)` of `region`,
 * discards its backing (`discardBacking`, once, unless `incoming`), declares it
 * as the region's `PLUGGED` source and unplugs its memory.
 */
export function virtioMem(options: VirtioMemOptions): VirtioMemDevice {
  return new VirtioMem(options);
}

class VirtioMem implements VirtioMemDevice {
  readonly name: string;
  readonly kind = "virtio-mem";
  readonly addr: number;
  readonly regionSize: number;
  readonly blockSize: number;
  pluggedSize = 0;
  requestedSize: number;
  usableRegionSize = 0;
  busy = false;
  #region: Region;
  #offset: number;
  #counters = new PluginCounters();
  #discardBacking?: (offset: number, size: number) => void;
  /** Blocks left unplugged because a listener refused to take them back, one line each. */
  #warnings: string[] = [];

  constructor(o: VirtioMemOptions) {
    this.name = checkPluginName(o.name ?? "virtio-mem", "virtioMem");
    const who = `virtioMem ${this.name}`;
    const region = o.region;
    if (typeof (region as Partial<Region> | null)?.register !== "function") {
      throw new TypeError(`${who}: region must be a Region, got ${describeValue(region)}`);
    }
    const offset = o.offset ?? 0;
    // Checked before the default size is worked out from it (a BigInt would not subtract).
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(
        `${who}: offset must be a non-negative integer, got ${describeValue(offset)}`,
      );
    }
    const size = o.size ?? region.size - offset;
    const b = o.blockSize;
    if (!isPowerOfTwo(b) || b % region.pageSize !== 0) {
      throw new RangeError(
        `${who}: blockSize must be a power of two multiple of ${region.pageSize}, got ${
          describeValue(b)
        }`,
      );
    }
    // QEMU's block-size property setter and realize refuse these, under every
    // policy: it is the device's own rule.
    if (b < VIRTIO_MEM_MIN_BLOCK_SIZE) {
      throw new RangeError(
        `${who}: blockSize must be at least 1 MiB (${hex(VIRTIO_MEM_MIN_BLOCK_SIZE)}, ` +
          `VIRTIO_MEM_MIN_BLOCK_SIZE: hw/virtio/virtio-mem.c virtio_mem_set_block_size), got ${b}`,
      );
    }
    const backing = o.backingPageSize ?? region.pageSize;
    if (!isPowerOfTwo(backing)) {
      throw new RangeError(
        `${who}: backingPageSize must be a power of two, got ${describeValue(backing)}`,
      );
    }
    if (b < backing) {
      throw new RangeError(
        `${who}: blockSize must be at least the backing page size ${hex(backing)} ` +
          `(hw/virtio/virtio-mem.c virtio_mem_device_realize), got ${b}`,
      );
    }
    // An integer >= 0 already (checked before the size default): only its alignment is left.
    if (offset % b !== 0) {
      throw new RangeError(
        `${who}: offset must be a non-negative multiple of blockSize ${b}, got ${offset}`,
      );
    }
    // QEMU refuses a device at a guest-physical address that is not block aligned
    // (hw/virtio/virtio-mem.c virtio_mem_device_realize: 'addr' multiples of 'block-size').
    if ((region.base + offset) % b !== 0) {
      throw new RangeError(
        `${who}: the guest-physical address ${hex(region.base + offset)} (region base + offset) ` +
          `must be a multiple of blockSize ${b} (hw/virtio/virtio-mem.c virtio_mem_device_realize)`,
      );
    }
    if (!Number.isSafeInteger(size) || size <= 0 || size % b !== 0 || offset + size > region.size) {
      throw new RangeError(
        `${who}: size must be a positive multiple of blockSize ${b} inside region ${region.name}, got ${
          describeValue(size)
        }`,
      );
    }
    const discard = o.discardBacking;
    if (discard !== undefined && typeof discard !== "function") {
      throw new TypeError(`${who}: discardBacking must be a function, got ${typeof discard}`);
    }
    refuseAsync(discard, `${who}: discardBacking`, " (memstate does not await it)");
    this.#region = region;
    this.#offset = offset;
    this.#discardBacking = discard;
    this.addr = region.base + offset;
    this.regionSize = size;
    this.blockSize = b;
    this.requestedSize = 0;
    this.setRequestedSize(o.requestedSize);
    // Every policy starts from a clean slate, as QEMU's realize does unless migrating in
    // (hw/virtio/virtio-mem.c virtio_mem_device_realize: ram_block_discard_range of the
    // whole block; a failure fails the realize): the backing may be reused.
    if (o.incoming !== true && !this.#discard(offset, size)) {
      const cause = this.#discardError;
      throw new Error(
        `${who}: discarding the device's backing at creation failed ` +
          `(hw/virtio/virtio-mem.c virtio_mem_device_realize: "Unexpected error discarding ` +
          `RAM"): ${errorLine(cause)}`,
        { cause },
      );
    }
    region.addSource({ name: this.name, bits: PLUGGED, granularity: b });
    // A new device has nothing plugged.
    region.change(offset, size, 0, PLUGGED);
  }

  plug(gpa: number, nbBlocks: number): VirtioMemResponse {
    return this.#count("plug", this.#stateChange(gpa, nbBlocks, true));
  }

  unplug(gpa: number, nbBlocks: number): VirtioMemResponse {
    return this.#count("unplug", this.#stateChange(gpa, nbBlocks, false));
  }

  unplugAll(): VirtioMemResponse {
    if (this.pluggedSize > 0) {
      if (this.busy) return this.#count("unplugAll", "BUSY");
      const response = this.#apply(this.#offset, this.regionSize, false, true);
      if (response !== "ACK") return this.#count("unplugAll", response);
    }
    this.#resizeUsable(true);
    return this.#count("unplugAll", "ACK");
  }

  state(gpa: number, nbBlocks: number): VirtioMemStateAnswer {
    if (this.#rangeRule(gpa, nbBlocks) !== undefined) {
      this.#count("state", "ERROR");
      return { response: "ERROR" };
    }
    const plugged = this.#isAll(gpa, nbBlocks, true);
    const unplugged = !plugged && this.#isAll(gpa, nbBlocks, false);
    this.#count("state", "ACK");
    return { response: "ACK", state: plugged ? "plugged" : unplugged ? "unplugged" : "mixed" };
  }

  setRequestedSize(bytes: number): void {
    if (
      !Number.isSafeInteger(bytes) || bytes < 0 || bytes % this.blockSize !== 0 ||
      bytes > this.regionSize
    ) {
      throw new RangeError(
        `virtioMem ${this.name}: requestedSize must be a multiple of blockSize ${this.blockSize} ` +
          `in [0, ${this.regionSize}], got ${describeValue(bytes)}`,
      );
    }
    this.requestedSize = bytes;
    this.#resizeUsable(false);
  }

  check(gpa: number, nbBlocks: number, plug: boolean, pluggedSize?: number): VirtioMemCheck {
    if (pluggedSize !== undefined && (!Number.isSafeInteger(pluggedSize) || pluggedSize < 0)) {
      throw new RangeError(
        `virtioMem ${this.name}: check: pluggedSize must be a non-negative integer, ` +
          `got ${pluggedSize}`,
      );
    }
    const invalid = this.#rangeRule(gpa, nbBlocks);
    if (invalid !== undefined) return CHECKED[invalid];
    const size = nbBlocks * this.blockSize;
    if (plug && (pluggedSize ?? this.pluggedSize) + size > this.requestedSize) {
      return CHECKED["requested-size"];
    }
    if (!this.#isAll(gpa, nbBlocks, !plug)) return CHECKED.state;
    if (this.busy) return CHECKED.busy; // virtio_mem_set_block_state: virtio_mem_is_busy()
    return CHECKED.ack;
  }

  stats(): PluginStats {
    const s = this.#counters.snapshot(this.name, this.kind);
    s.mappedBytes = this.pluggedSize;
    if (this.#warnings.length > 0) s.warnings = [...this.#warnings];
    return s;
  }

  /** hw/virtio/virtio-mem.c `virtio_mem_state_change_request`: {@link check}, then the change. */
  #stateChange(gpa: number, nbBlocks: number, plug: boolean): VirtioMemResponse {
    const checked = this.check(gpa, nbBlocks, plug);
    if (checked.response !== "ACK") return checked.response;
    return this.#apply(gpa - this.#region.base, nbBlocks * this.blockSize, plug);
  }

  /**
   * Changes PLUGGED through the bus and discards the backing of what is
   * unplugged (`virtio_mem_set_block_state`), keeping `pluggedSize` to what
   * the store holds; `BUSY` when that fails: a listener refused, or the
   * backing could not be discarded and some of what was unplugged could be
   * plugged back (`ACK` when none could: see {@link VirtioMem.#putBack}). `all`:
   * UNPLUG_ALL over the whole device (`virtio_mem_unplug_all`), which
   * notifies as {@link Region.discardAll} does.
   */
  #apply(offset: number, size: number, plug: boolean, all = false): VirtioMemResponse {
    const qemu = this.#region.vmm !== "memstate";
    if (!plug && qemu && !this.#discard(offset, size)) return "BUSY";
    // UNPLUG_ALL's plugged runs, to put back under memstate if the backing cannot be discarded.
    const plugged = !plug && !qemu && all ? this.#pluggedRuns(offset, size) : undefined;
    try {
      if (all) this.#region.discardAll(offset, size, PLUGGED);
      else this.#region.change(offset, size, plug ? PLUGGED : 0, plug ? 0 : PLUGGED);
    } catch (e) {
      if (!(e instanceof ConversionError)) throw e;
      // A refused plug may have populated memory: discard it again, under every policy
      // (hw/virtio/virtio-mem.c virtio_mem_set_block_state: ram_block_discard_range on error).
      if (plug) this.#discard(offset, size);
      return "BUSY";
    }
    if (!plug && !qemu && !this.#discard(offset, size)) {
      // The memory stays plugged: put back what was (an UNPLUG's range was plugged whole).
      return this.#putBack(plugged ?? [[offset, offset + size]]);
    }
    this.pluggedSize = all ? 0 : this.pluggedSize + (plug ? size : -size);
    return "ACK";
  }

  /**
   * memstate, an unplug whose backing could not be discarded: plugs `runs`
   * (byte ranges, what was plugged) back, each through the bus. A run a
   * listener refuses to take back (its populate fails: an inverse that must
   * not) stays unplugged, its backing kept: it leaves `pluggedSize`, a warning
   * says so, and the answer is the state the device is left in: `BUSY` when
   * some run is plugged again, `ACK` when none could be. Another error (the
   * region failed) is thrown once `pluggedSize` counts out every run not put back.
   */
  #putBack(runs: readonly (readonly [number, number])[]): VirtioMemResponse {
    const total = runs.reduce((n, [from, to]) => n + to - from, 0);
    let lost = 0;
    let failure: unknown;
    for (const [from, to] of runs) {
      let why = "the region failed first";
      if (failure === undefined) {
        try {
          this.#region.change(from, to - from, PLUGGED, 0);
          continue;
        } catch (e) {
          if (!(e instanceof ConversionError)) failure = e;
          why = errorLine(e);
        }
      }
      this.#warnings.push(
        `[${hex(this.#region.base + from)}, ${hex(this.#region.base + to)}) stays unplugged ` +
          `with its backing kept: the backing could not be discarded and plugging it back ` +
          `failed: ${why}`,
      );
      lost += to - from;
    }
    this.pluggedSize -= lost;
    if (failure !== undefined) throw failure;
    return lost === total ? "ACK" : "BUSY";
  }

  /** The plugged byte ranges of `[offset, offset + size)` of the region, in order. */
  #pluggedRuns(offset: number, size: number): [number, number][] {
    const page = this.#region.pageSize;
    const out: [number, number][] = [];
    for (const run of this.#runs(offset, size)) {
      if (run.populated) out.push([run.start * page, run.end * page]);
    }
    return out;
  }

  /** What the last failed `discardBacking` call threw, for the creation's error. */
  #discardError: unknown;

  /** The `discardBacking` hook; false when it threw or returned a promise (rejection handled). */
  #discard(offset: number, size: number): boolean {
    const discard = this.#discardBacking;
    if (!discard) return true;
    try {
      this.#counters.call(
        "discardBacking",
        () => refusePromise(discard(offset, size), "discardBacking"),
      );
      return true;
    } catch (e) {
      this.#discardError = e;
      return false;
    }
  }

  /**
   * hw/virtio/virtio-mem.c `virtio_mem_valid_range`, its checks in its order:
   * the rule an invalid range breaks, or undefined.
   */
  #rangeRule(gpa: number, nbBlocks: number): VirtioMemRule | undefined {
    if (!Number.isSafeInteger(gpa) || gpa % this.blockSize !== 0) return "unaligned";
    if (!Number.isInteger(nbBlocks)) return "unaligned"; // a part of a block
    if (nbBlocks <= 0) return "empty";
    if (nbBlocks > VIRTIO_MEM_MAX_NB_BLOCKS) return "nb-blocks"; // le16 nb_blocks
    const size = nbBlocks * this.blockSize;
    if (gpa < this.addr || gpa + size > this.addr + this.usableRegionSize) return "outside";
    return undefined;
  }

  /** True when every block of the `nbBlocks` at `gpa` is plugged (`plugged`) or unplugged. */
  #isAll(gpa: number, nbBlocks: number, plugged: boolean): boolean {
    for (const run of this.#runs(gpa - this.#region.base, nbBlocks * this.blockSize)) {
      if (run.populated !== plugged) return false;
    }
    return true;
  }

  /** The runs of region bytes `[offset, offset + size)`, populated where plugged. */
  #runs(offset: number, size: number): Generator<ViewRun> {
    const page = this.#region.pageSize;
    return viewRuns(this.#region.store, offset / page, (offset + size) / page, PLUGGED_VIEW);
  }

  #resizeUsable(canShrink: boolean): void {
    const b = this.blockSize;
    let size = Math.min(this.regionSize, this.requestedSize + VIRTIO_MEM_USABLE_EXTENT);
    size = Math.ceil(size / b) * b;
    if (this.requestedSize === 0) size = 0;
    if (size < this.usableRegionSize && !canShrink) return;
    this.usableRegionSize = size;
  }

  #count(op: string, response: VirtioMemResponse): VirtioMemResponse {
    const key = `${op}.${response}`;
    this.#counters.calls[key] = (this.#counters.calls[key] ?? 0) + 1;
    if (response === "BUSY") this.#counters.failures++;
    return response;
  }
}
