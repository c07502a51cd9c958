// A listener that remembers what it was told, page by page, and checks the
// contract as it goes: never populate what is populated, never discard what is not.
import { BitmapStore } from "../../src/store/bitmap_store.ts";
import type { Listener, Section } from "../../src/bus/listener.ts";
import type { Region } from "../../src/bus/region.ts";
import { isPopulatedState, type View } from "../../src/bus/view.ts";

export interface Call {
  name: string;
  kind: "populate" | "discard";
  offset: number;
  size: number;
}

export class RecordingListener implements Listener {
  readonly seen: BitmapStore;
  /** When set, the call with this 1-based index (counted across the listener) throws. */
  failOnCall?: number;
  /** Decides per call whether to refuse (after failOnCall). */
  refuse?: (kind: "populate" | "discard", s: Section) => boolean;
  calls = 0;
  contractViolations: string[] = [];

  constructor(
    readonly name: string,
    readonly priority: number,
    readonly view: View,
    pages: number,
    readonly log: Call[] = [],
    readonly granularity?: number,
  ) {
    this.seen = new BitmapStore(pages, { bits: 1 });
  }

  populate(s: Section): void {
    this.#call("populate", s);
  }

  discard(s: Section): void {
    this.#call("discard", s);
  }

  #call(kind: "populate" | "discard", s: Section): void {
    this.calls++;
    if (this.failOnCall === this.calls || this.refuse?.(kind, s)) {
      throw new Error(`${this.name} refuses ${kind} #${this.calls}`);
    }
    const start = s.offset / s.region.pageSize, end = start + s.size / s.region.pageSize;
    for (const run of this.seen.runs(start, end)) {
      if (kind === "populate" && run.state === 1) {
        this.contractViolations.push(`double populate [${run.start}, ${run.end})`);
      }
      if (kind === "discard" && run.state === 0) {
        this.contractViolations.push(`discard of unpopulated [${run.start}, ${run.end})`);
      }
    }
    this.seen.set(start, end, kind === "populate" ? 1 : 0);
    this.log.push({ name: this.name, kind, offset: s.offset, size: s.size });
  }

  /** The pages the listener believes populated, as runs. */
  populatedRuns(): [number, number][] {
    return [...this.seen.runs()].filter((r) => r.state === 1).map((r) => [r.start, r.end]);
  }

  /** The pages the region's store says are populated under this view. */
  static expected(region: Region, view: View): [number, number][] {
    const out: [number, number][] = [];
    for (const run of region.store.runs()) {
      if (!isPopulatedState(run.state | region.impliedBits, view)) continue;
      const last = out[out.length - 1];
      if (last && last[1] === run.start) last[1] = run.end;
      else out.push([run.start, run.end]);
    }
    return out;
  }
}
