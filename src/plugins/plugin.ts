/**
 * What every plugin has in common: a name, a kind, attaching to regions, and
 * statistics in one shape so reports can list built-in and custom plugins alike.
 *
 * @module
 */

import type { Range } from "../bus/listener.ts";
import type { Region } from "../bus/region.ts";
import { describeValue } from "../util/text.ts";

/** Statistics every plugin reports. */
export interface PluginStats {
  /** The plugin's name. */
  name: string;
  /** Its kind, e.g. `"vfio-type1"`. */
  kind: string;
  /** Hardware calls made, by operation name. */
  calls: Record<string, number>;
  /** Live mappings (or areas) now; 0 for plugins that map nothing. */
  mappings: number;
  /** The most mappings live at once. */
  peakMappings: number;
  /** Bytes currently mapped. */
  mappedBytes: number;
  /** Hardware calls that failed (each refused a change or an attach). */
  failures: number;
  /** The hardware's limit on live mappings (VFIO type1's `dma_entry_limit`), where it has one. */
  mappingLimit?: number;
  /**
   * Bytes of IO page-table memory allocated now, where known: what the live
   * mappings need and the pages unmaps did not free (see src/hw/sim/io_page_table.ts).
   */
  tableBytes?: number;
  /** The most IO page-table memory allocated at once, where known. */
  peakTableBytes?: number;
  /** Problems the policy only warns about (QEMU 10.1's type1 budget), one line each. */
  warnings?: string[];
}

/**
 * A component that follows regions' state. Custom plugins implement this too:
 * every method is called synchronously and never awaited, so none may be
 * `async` (a plugin module with one is refused).
 */
export interface Plugin {
  /** A unique name, e.g. `"nic0"`. */
  readonly name: string;
  /** The plugin's kind, e.g. `"iommufd"`. */
  readonly kind: string;
  /** Starts following `range` of `region` (default: all of it). */
  attach(region: Region, range?: Range): void;
  /** Stops following `region`, undoing what it set up. */
  detach(region: Region): void;
  /** Current statistics. */
  stats(): PluginStats;
  /**
   * Compares the hardware with `region`'s store and returns one line per
   * violation (empty when consistent). Optional for custom plugins.
   */
  verify?(region: Region): string[];
}

/** A DMA plugin (VFIO type1, iommufd): its container can drop every mapping from under it. */
export interface DmaPlugin extends Plugin {
  /**
   * The container dropped every mapping left (its last device went:
   * `SimType1Container.release`, `SimIoas.release`, after an unmap that
   * failed left some): the live counts restart from zero; the peak stays.
   */
  containerReleased(): void;
}

/** A plugin refused to attach because the hardware cannot hold what it may need. */
export class CapacityError extends Error {
  /** How many entries the attach may need. */
  readonly needed: number;
  /** How many are available. */
  readonly available: number;

  /** Creates the error; `message` says how to raise the limit. */
  constructor(message: string, needed: number, available: number) {
    super(message);
    this.name = "CapacityError";
    this.needed = needed;
    this.available = available;
  }
}

/** Counts calls and failures and tracks live/peak mappings for a plugin's stats. */
export class PluginCounters {
  /** Calls by operation. */
  readonly calls: Record<string, number> = {};
  /** Failed calls. */
  failures = 0;
  /** Live mappings. */
  mappings = 0;
  /** Peak live mappings. */
  peakMappings = 0;
  /** Bytes mapped now. */
  mappedBytes = 0;

  /** Runs `fn` as hardware call `op`, counting it and its failure. */
  call<T>(op: string, fn: () => T): T {
    this.calls[op] = (this.calls[op] ?? 0) + 1;
    try {
      return fn();
    } catch (e) {
      this.failures++;
      throw e;
    }
  }

  /**
   * Counts one hardware call `op` without wrapping it (for hot paths, where a
   * closure per call shows: the caller counts a failure with `failures++`).
   */
  count(op: string): void {
    this.calls[op] = (this.calls[op] ?? 0) + 1;
  }

  /** Records `count` mappings of `bytes` in all added (negative: removed). */
  mapped(count: number, bytes: number): void {
    this.mappings += count;
    this.mappedBytes += bytes;
    if (this.mappings > this.peakMappings) this.peakMappings = this.mappings;
  }

  /** The stats object for plugin `name` of `kind`. */
  snapshot(name: string, kind: string): PluginStats {
    return {
      name,
      kind,
      calls: { ...this.calls },
      mappings: this.mappings,
      peakMappings: this.peakMappings,
      mappedBytes: this.mappedBytes,
      failures: this.failures,
    };
  }
}

/** Checks a plugin name: non-empty string. */
export function checkPluginName(name: unknown, kind: string): string {
  if (typeof name !== "string" || name === "") {
    throw new TypeError(`${kind}: name must be a non-empty string, got ${describeValue(name)}`);
  }
  return name;
}

/** Throws unless `range` lies inside `region`; returns it with defaults filled. */
export function resolveRange(region: Region, range: Range | undefined, who: string): Range {
  if (typeof (region as Partial<Region> | null)?.register !== "function") {
    throw new TypeError(`${who}: attach needs a Region, got ${describeValue(region)}`);
  }
  const r = range ?? { offset: 0, size: region.size };
  if (
    !Number.isSafeInteger(r.offset) || !Number.isSafeInteger(r.size) || r.offset < 0 ||
    r.size <= 0 || r.offset + r.size > region.size
  ) {
    throw new RangeError(
      `${who}: range { offset: ${r.offset}, size: ${r.size} } must be non-empty and inside ` +
        `region ${region.name} (size ${region.size})`,
    );
  }
  return r;
}
