/**
 * virtio-mem as a state source: it owns the `PLUGGED` bit of its range and
 * answers the guest's PLUG / UNPLUG / UNPLUG_ALL / STATE requests the way
 * QEMU's hw/virtio/virtio-mem.c does:
 *
 * - a range that is not block aligned, empty, or outside the usable region: `ERROR`;
 * - a plug beyond the requested size: `NACK`;
 * - a range not entirely in the opposite state (plugging plugged blocks): `ERROR`;
 * - a listener refusing the change (a DMA map failing): `BUSY`, with the change rolled back;
 * - otherwise `ACK`.
 *
 * Because plugging goes through the bus, DMA listeners see only memory that is
 * plugged *and* shared (QEMU 11's multi-source rule).
 *
 * @example
 * ```ts
 * import { Region, virtioMem } from "@cvm/memstate";
 *
 * const region = new Region({ name: "vmem", size: 2 ** 32, base: 2 ** 34 });
 * const vmem = virtioMem({ region, blockSize: 2 ** 21, requestedSize: 2 ** 30 });
 * console.log(vmem.plug(2 ** 34, 4)); // "ACK": 8 MiB plugged
 * console.log(vmem.plug(2 ** 34, 4)); // "ERROR": already plugged
 * console.log(vmem.state(2 ** 34, 8)); // { response: "ACK", state: "mixed" }
 * ```
 *
 * @module
 */

import { ConversionError } from "../bus/errors.ts";
import type { Region } from "../bus/region.ts";
import { PLUGGED } from "../bus/state_bits.ts";
import { viewRuns } from "../bus/view_runs.ts";
import { checkPluginName, PluginCounters, type PluginStats } from "./plugin.ts";

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

/** Options for {@link virtioMem}. */
export interface VirtioMemOptions {
  /** The region the device's memory lives in. */
  region: Region;
  /** Block size in bytes: a power of two, a multiple of the region's page size. */
  blockSize: number;
  /** The size the host asks the guest to plug. */
  requestedSize: number;
  /** Byte offset of the device's memory in the region (default 0). */
  offset?: number;
  /** Bytes of device memory (default: the rest of the region). */
  size?: number;
  /** Device name (default `"virtio-mem"`). */
  name?: string;
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
  /** While true (e.g. during migration) UNPLUG_ALL answers BUSY. */
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

  constructor(o: VirtioMemOptions) {
    this.name = checkPluginName(o.name ?? "virtio-mem", "virtioMem");
    const who = `virtioMem ${this.name}`;
    const region = o.region;
    const offset = o.offset ?? 0;
    const size = o.size ?? region.size - offset;
    const b = o.blockSize;
    if (!Number.isSafeInteger(b) || b <= 0 || (b & (b - 1)) !== 0 || b % region.pageSize !== 0) {
      throw new RangeError(
        `${who}: blockSize must be a power of two multiple of ${region.pageSize}, got ${b}`,
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
      if (!this.#apply(this.#offset, this.regionSize, false)) {
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

  #stateChange(gpa: number, nbBlocks: number, plug: boolean): VirtioMemResponse {
    if (!this.#validRange(gpa, nbBlocks)) return "ERROR";
    const size = nbBlocks * this.blockSize;
    if (plug && this.pluggedSize + size > this.requestedSize) return "NACK";
    if (!this.#isAll(gpa, nbBlocks, !plug)) return "ERROR";
    if (!this.#apply(gpa - this.#region.base, size, plug)) return "BUSY";
    this.pluggedSize += plug ? size : -size;
    return "ACK";
  }

  /** Changes PLUGGED through the bus; false when a listener refused (rolled back). */
  #apply(offset: number, size: number, plug: boolean): boolean {
    try {
      this.#region.change(offset, size, plug ? PLUGGED : 0, plug ? 0 : PLUGGED);
      return true;
    } catch (e) {
      if (e instanceof ConversionError) return false;
      throw e;
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
