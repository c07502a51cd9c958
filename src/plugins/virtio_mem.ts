/**
 * virtio-mem as a state source: it owns the `PLUGGED` bit of its range and
 * answers the guest's PLUG / UNPLUG / UNPLUG_ALL / STATE requests the way
 * QEMU's hw/virtio/virtio-mem.c does:
 *
 * - a range that is not block aligned, empty, or outside the usable region: `ERROR`;
 * - a plug beyond the requested size: `NACK`;
 * - a range not entirely in the opposite state (plugging plugged blocks): `ERROR`
 *   (`virtio_mem_state_change_request`, in that order);
 * - while a migration is in progress (`busy`), plug, unplug and unplug-all:
 *   `BUSY` (`virtio_mem_set_block_state` and `virtio_mem_unplug_all` ask
 *   `virtio_mem_is_busy`: migration running or incoming postcopy);
 * - a listener refusing a plug (a DMA map failing): `BUSY`, the listeners
 *   rolled back as the region's policy says and the backing discarded again
 *   (`virtio_mem_notify_plug`);
 * - otherwise `ACK`.
 *
 * An unplug discards the backing (`ram_block_discard_range`, through the
 * `discardBacking` option) and tells the listeners. Under a QEMU policy the
 * discard comes first and the listeners cannot refuse (`notify_discard`
 * returns void); under memstate the listeners are told first and may refuse,
 * which rolls the unplug back (`BUSY`) before any memory is given up.
 * UNPLUG_ALL tells the listeners as QEMU's `virtio_mem_notify_unplug_all`
 * does ({@link Region.discardAll}): under QEMU 11.1 one discard of each
 * listener's whole section, not one per plugged block or page.
 *
 * The block size is at least 1 MiB and at least the backing's page size
 * (`virtio_mem_set_block_size`, `virtio_mem_device_realize`), under every
 * policy: it is the device's rule, not the VMM's propagation policy.
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
import { viewRuns } from "../bus/view_runs.ts";
import { checkPluginName, PluginCounters, type PluginStats } from "./plugin.ts";
import { isPowerOfTwo } from "../util/_bits.ts";
import { hex } from "../util/_hex.ts";

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
   * `ram_block_discard_range`); called on unplug, and after a refused plug.
   * A throw makes the request `BUSY`. Default: nothing to discard.
   */
  discardBacking?: (offset: number, size: number) => void;
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
  /** The host changes the requested size (a multiple of the block size, at most the region). */
  setRequestedSize(bytes: number): void;
  /** Statistics (calls by request and response, plugged bytes as `mappedBytes`). */
  stats(): PluginStats;
}

/**
 * Creates a virtio-mem device over `[offset, offset + size)` of `region`,
 * declares it as the region's `PLUGGED` source and unplugs its memory.
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

  constructor(o: VirtioMemOptions) {
    this.name = checkPluginName(o.name ?? "virtio-mem", "virtioMem");
    const who = `virtioMem ${this.name}`;
    const region = o.region;
    const offset = o.offset ?? 0;
    const size = o.size ?? region.size - offset;
    const b = o.blockSize;
    if (!isPowerOfTwo(b) || b % region.pageSize !== 0) {
      throw new RangeError(
        `${who}: blockSize must be a power of two multiple of ${region.pageSize}, got ${b}`,
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
      throw new RangeError(`${who}: backingPageSize must be a power of two, got ${backing}`);
    }
    if (b < backing) {
      throw new RangeError(
        `${who}: blockSize must be at least the backing page size ${hex(backing)} ` +
          `(hw/virtio/virtio-mem.c virtio_mem_device_realize), got ${b}`,
      );
    }
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % b !== 0) {
      throw new RangeError(
        `${who}: offset must be a non-negative multiple of blockSize ${b}, got ${offset}`,
      );
    }
    if (!Number.isSafeInteger(size) || size <= 0 || size % b !== 0 || offset + size > region.size) {
      throw new RangeError(
        `${who}: size must be a positive multiple of blockSize ${b} inside region ${region.name}, got ${size}`,
      );
    }
    this.#region = region;
    this.#offset = offset;
    this.#discardBacking = o.discardBacking;
    this.addr = region.base + offset;
    this.regionSize = size;
    this.blockSize = b;
    this.requestedSize = 0;
    this.setRequestedSize(o.requestedSize);
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
      if (!this.#apply(this.#offset, this.regionSize, false, true)) {
        return this.#count("unplugAll", "BUSY");
      }
      this.pluggedSize = 0;
    }
    this.#resizeUsable(true);
    return this.#count("unplugAll", "ACK");
  }

  state(gpa: number, nbBlocks: number): VirtioMemStateAnswer {
    if (!this.#validRange(gpa, nbBlocks)) {
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
          `in [0, ${this.regionSize}], got ${bytes}`,
      );
    }
    this.requestedSize = bytes;
    this.#resizeUsable(false);
  }

  stats(): PluginStats {
    const s = this.#counters.snapshot(this.name, this.kind);
    s.mappedBytes = this.pluggedSize;
    return s;
  }

  /** hw/virtio/virtio-mem.c `virtio_mem_state_change_request`, its checks in its order. */
  #stateChange(gpa: number, nbBlocks: number, plug: boolean): VirtioMemResponse {
    if (!this.#validRange(gpa, nbBlocks)) return "ERROR";
    const size = nbBlocks * this.blockSize;
    if (plug && this.pluggedSize + size > this.requestedSize) return "NACK";
    if (!this.#isAll(gpa, nbBlocks, !plug)) return "ERROR";
    if (this.busy) return "BUSY"; // virtio_mem_set_block_state: virtio_mem_is_busy()
    if (!this.#apply(gpa - this.#region.base, size, plug)) return "BUSY";
    this.pluggedSize += plug ? size : -size;
    return "ACK";
  }

  /**
   * Changes PLUGGED through the bus and discards the backing of what is
   * unplugged (`virtio_mem_set_block_state`); false when that fails: a
   * listener refused a plug, or the backing could not be discarded. `all`:
   * UNPLUG_ALL over the whole device (`virtio_mem_unplug_all`), which
   * notifies as {@link Region.discardAll} does.
   */
  #apply(offset: number, size: number, plug: boolean, all = false): boolean {
    const qemu = this.#region.vmm !== "memstate";
    if (!plug && qemu && !this.#discard(offset, size)) return false;
    // What is plugged now, to put back under memstate if the backing cannot be discarded.
    const plugged = !plug && !qemu ? this.#pluggedRuns(offset, size) : [];
    try {
      if (all) this.#region.discardAll(offset, size, PLUGGED);
      else this.#region.change(offset, size, plug ? PLUGGED : 0, plug ? 0 : PLUGGED);
    } catch (e) {
      if (!(e instanceof ConversionError)) throw e;
      // A refused plug may have populated memory: discard it again (virtio_mem_notify_plug).
      if (plug && qemu) this.#discard(offset, size);
      return false;
    }
    if (!plug && !qemu && !this.#discard(offset, size)) {
      // The memory stays plugged: undo the listeners' discards, exactly where it was plugged.
      for (const [from, to] of plugged) this.#region.change(from, to - from, PLUGGED, 0);
      return false;
    }
    return true;
  }

  /** The plugged byte ranges of `[offset, offset + size)` of the region, in order. */
  #pluggedRuns(offset: number, size: number): [number, number][] {
    const page = this.#region.pageSize;
    const out: [number, number][] = [];
    const view = { mask: PLUGGED, value: PLUGGED };
    for (const run of viewRuns(this.#region.store, offset / page, (offset + size) / page, view)) {
      if (run.populated) out.push([run.start * page, run.end * page]);
    }
    return out;
  }

  /** The `discardBacking` hook; false when it threw. */
  #discard(offset: number, size: number): boolean {
    if (!this.#discardBacking) return true;
    try {
      this.#counters.call("discardBacking", () => this.#discardBacking!(offset, size));
      return true;
    } catch {
      return false;
    }
  }

  #validRange(gpa: number, nbBlocks: number): boolean {
    if (!Number.isSafeInteger(gpa) || !Number.isInteger(nbBlocks) || nbBlocks <= 0) return false;
    const size = nbBlocks * this.blockSize;
    return gpa % this.blockSize === 0 && gpa >= this.addr &&
      gpa + size <= this.addr + this.usableRegionSize;
  }

  #isAll(gpa: number, nbBlocks: number, plugged: boolean): boolean {
    const page = this.#region.pageSize;
    const start = (gpa - this.#region.base) / page;
    const end = start + (nbBlocks * this.blockSize) / page;
    for (const run of viewRuns(this.#region.store, start, end, { mask: PLUGGED, value: PLUGGED })) {
      if (run.populated !== plugged) return false;
    }
    return true;
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
