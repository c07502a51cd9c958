/**
 * What a run records besides its counts: the latency of its conversions (a
 * {@link LatencyHistogram} of every one or, in a long run, of a weighted
 * sample: see `conversionWeight`, exported with the report) and timelines of
 * the host's counters (a {@link TimelineSampler}): extents per region, live
 * IOMMU mappings per DMA device against its limit, IO page-table pages where
 * the hardware reports them, and conversions per second.
 *
 * The run loop talks to it through {@link RunProbe}, none of whose calls
 * allocates: `conversionTime` for each timed conversion, and `afterEvent` and
 * `nextEvent` only at the events where a timeline sample is due.
 *
 * @module
 */

import { RangeTreeStore } from "../../store/range_tree_store.ts";
import type { Host } from "../build.ts";
import { LatencyHistogram, type LatencyReport } from "./latency.ts";
import { ratePerSecond, TimelineSampler } from "./timeline.ts";

/** What the run loop tells a probe. Both calls must be cheap and must not allocate. */
export interface RunProbe {
  /**
   * One conversion event took `ms` milliseconds; its time stands for `weight`
   * conversions (a long run times a sample of its conversions, see
   * `conversionWeight`, exported with the report: each of the first
   * `TIMED_IN_FULL` counts for 1, then one in `SAMPLE_EVERY` counts for that
   * many). A probe that keeps its own statistics must weigh each time by
   * `weight`, or it overweights the start of a long run.
   */
  conversionTime(ms: number, weight: number): void;
  /**
   * An event finished: `events` done so far, `conversions` requested so far.
   * Called after every event that went through, unless the probe has
   * {@link RunProbe.nextEvent}.
   */
  afterEvent(events: number, conversions: number): void;
  /**
   * Optional, for a probe that wants only some events (the recorder samples
   * its timelines every N events): asked right after each `afterEvent`, it
   * returns the event count at which the probe next wants `afterEvent`, and
   * the run loop skips the calls for the events before it. `Infinity` means
   * not again in this run; anything that is not a number greater than the
   * events done (NaN, the past, the present) means the next event. Each run
   * starts by telling the probe of its first event, whatever the last run's
   * answer was.
   */
  nextEvent?(): number;
}

/** A region's sampled extents. */
export interface RegionTimeline {
  /** Region name. */
  name: string;
  /** Extents (maximal runs of equal state) at each sample. */
  extents: number[];
}

/** A DMA device's sampled mappings. */
export interface DeviceTimeline {
  /** Device (plugin) name. */
  name: string;
  /** Plugin kind, e.g. `"vfio-type1"`. */
  kind: string;
  /** Live IOMMU mappings (type1 entries, iommufd areas) at each sample. */
  mappings: number[];
  /** The hardware's limit on live mappings (`dma_entry_limit`), where it has one. */
  limit?: number;
  /** IO page-table pages in use at each sample, where the hardware reports them. */
  tablePages?: number[];
}

/** Timelines sampled during the run (`timeline` in the JSON report). */
export interface TimelineReport {
  /** Events between samples at the end of the run (doubles as the run grows). */
  every: number;
  /** Events done at each sample (the x axis). */
  events: number[];
  /** Milliseconds since the run started, at each sample. */
  timeMs: number[];
  /** Conversions per second over the interval ending at each sample. */
  conversionsPerSecond: number[];
  /** Extents per region (regions whose store counts extents cheaply). */
  regions: RegionTimeline[];
  /** Mappings per DMA device. */
  devices: DeviceTimeline[];
  /** What was not sampled, and why. */
  notes: string[];
}

/** Where a device's IO page-table size comes from, if anywhere. */
type TableSource = "stats" | "hardware" | undefined;

interface DeviceProbe {
  name: string;
  kind: string;
  stats: () => Record<string, unknown>;
  hardware: Record<string, unknown>;
  table: TableSource;
}

/** Records latency and timelines of one run on one host; see the module documentation. */
export class RunRecorder implements RunProbe {
  /** Per-conversion latency. */
  readonly latency: LatencyHistogram = new LatencyHistogram();
  readonly #sampler: TimelineSampler;
  readonly #regions: { name: string; runCount: () => number }[] = [];
  readonly #devices: DeviceProbe[] = [];
  readonly #notes: string[] = [];

  /** Prepares to record a run on `host`, keeping at most `capacity` samples (default 512). */
  constructor(host: Host, capacity = 512) {
    for (const region of host.regions) {
      const store = region.store;
      if (store instanceof RangeTreeStore) {
        this.#regions.push({ name: region.name, runCount: () => store.runCount });
      } else {
        this.#notes.push(
          `extents of ${region.name} are not sampled: its ${host.store} store counts them by scanning`,
        );
      }
    }
    // One row per container: the devices that share one share its mappings.
    for (const [name, device] of host.containers) {
      const plugin = device.plugin;
      const hardware = device.hardware as unknown as Record<string, unknown>;
      const stats = () => plugin.stats() as unknown as Record<string, unknown>;
      const first = stats();
      const table: TableSource = typeof tableBytesOf(first) === "number"
        ? "stats"
        : typeof hardware.tablePages === "number"
        ? "hardware"
        : undefined;
      this.#devices.push({ name, kind: plugin.kind, stats, hardware, table });
    }
    const width = this.#regions.length + 2 * this.#devices.length;
    this.#sampler = new TimelineSampler(width, (row) => this.#read(row), capacity);
    this.#sampler.sample(0, 0);
  }

  /** Records one conversion's time (see {@link RunProbe}). */
  conversionTime(ms: number, weight = 1): void {
    this.latency.record(ms, weight);
  }

  /** Samples the timelines when due (see {@link RunProbe}). */
  afterEvent(events: number, conversions: number): void {
    this.#sampler.tick(events, conversions);
  }

  /** The event count of the next timeline sample: the run loop calls `afterEvent` then. */
  nextEvent(): number {
    return this.#sampler.nextSample;
  }

  /** Takes the last sample; call once the run is over. */
  finish(events: number, conversions: number): void {
    this.#sampler.sample(events, conversions);
  }

  /** The timelines for the report. */
  timeline(): TimelineReport {
    const cols = this.#sampler.columns();
    const r = this.#regions.length;
    return {
      every: cols.every,
      events: cols.events,
      timeMs: cols.timeMs,
      conversionsPerSecond: ratePerSecond(cols.conversions, cols.timeMs),
      regions: this.#regions.map((g, i) => ({ name: g.name, extents: cols.values[i] })),
      devices: this.#devices.map((d, i) => {
        const stats = d.stats();
        const limit = limitOf(stats, d.hardware);
        return {
          name: d.name,
          kind: d.kind,
          mappings: cols.values[r + 2 * i],
          ...(limit !== undefined ? { limit } : {}),
          ...(d.table ? { tablePages: cols.values[r + 2 * i + 1] } : {}),
        };
      }),
      notes: [...this.#notes],
    };
  }

  /** The latency histogram for the report. */
  latencyReport(): LatencyReport {
    return this.latency.report();
  }

  #read(row: Float64Array): void {
    let c = 0;
    for (const g of this.#regions) row[c++] = g.runCount();
    for (const d of this.#devices) {
      const stats = d.stats();
      row[c++] = typeof stats.mappings === "number" ? stats.mappings : 0;
      row[c++] = d.table === "stats"
        ? Math.ceil((tableBytesOf(stats) ?? 0) / 4096)
        : d.table === "hardware"
        ? d.hardware.tablePages as number
        : 0;
    }
  }
}

/** IO page-table bytes a plugin reports, under either name the report may use. */
function tableBytesOf(stats: Record<string, unknown>): number | undefined {
  const v = stats.tableBytes ?? stats.ioPageTableBytes;
  return typeof v === "number" ? v : undefined;
}

/** A device's mapping limit: from its stats where they carry one, else from its hardware. */
function limitOf(
  stats: Record<string, unknown>,
  hardware: Record<string, unknown>,
): number | undefined {
  const v = stats.mappingLimit ?? stats.dmaEntryLimit ?? hardware.dmaEntryLimit;
  return typeof v === "number" ? v : undefined;
}
