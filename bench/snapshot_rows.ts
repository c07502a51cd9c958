/**
 * Saved-state rows of the benchmark report: the size and time of a region
 * snapshot (`region.snapshot()`, `Region.restore`) against serialising the
 * bitmap, which is what a VMM that keeps QEMU's bitmaps would write (one bit
 * per page per state bit, no structure to exploit).
 *
 * - `snapshot boot 1 TiB (save)`: a 1 TiB region after the `boot` workload of
 *   ./workloads.ts (a few thousand runs). Baseline: the bitmap image built
 *   from the store (32 MiB); candidates: the snapshot taken from a
 *   range-tree region and from a bitmap region.
 * - `snapshot boot 1 TiB (restore)`: baseline: copying the 32 MiB image into a
 *   fresh buffer, a lower bound for loading any bitmap; candidates: a full
 *   `Region.restore` (decode, validate, rebuild) into each store kind.
 * - `snapshot dma-scatter 16 GiB (save)`: the adversarial state (1,000,000
 *   random 4 KiB toggles): the snapshot falls back to bit planes and stays
 *   within a few bytes of the bitmap.
 *
 * `bytes` in these rows is the serialised size, not the store's memory.
 * Times are the best of `MEMSTATE_BENCH_REPS` repetitions (default 5, at least 3).
 *
 * @module
 */

import { parseOptions } from "./cli_args.ts";
import { benchReps } from "./measurement.ts";
import { Region } from "../src/bus/region.ts";
import type { StateStore } from "../src/store/state_store.ts";
import type { Measurement, ReportRow, RowSource } from "./report.ts";
import { boot, dmaScatter, PAGE_SIZE, type Workload } from "./workloads.ts";

/** Repetitions of each row: `MEMSTATE_BENCH_REPS`, default 5 (`benchReps`). */
function reps(): number {
  return benchReps("snapshot_rows", 5);
}

function timed<T>(n: number, fn: () => T): { value: T; seconds: number; median: number } {
  const times: number[] = [];
  let value!: T;
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    value = fn();
    times.push((performance.now() - t) / 1000);
  }
  const sorted = [...times].sort((a, b) => a - b);
  return { value, seconds: sorted[0], median: sorted[sorted.length >> 1] };
}

function region(workload: Workload, store: "range-tree" | "bitmap"): Region {
  const r = new Region({ name: workload.name, size: workload.pages * PAGE_SIZE, store });
  const { starts, ends, toShared } = workload.conversions;
  for (let i = 0; i < workload.conversions.length; i++) {
    const offset = starts[i] * PAGE_SIZE, size = (ends[i] - starts[i]) * PAGE_SIZE;
    r.convert(offset, size, toShared[i] === 1 ? "shared" : "private");
  }
  return r;
}

/** The bitmap image of a store: one bit per page per held bit, LSB first. */
function bitmapImage(store: StateStore): Uint8Array {
  const perBit = Math.ceil(store.length / 8);
  const image = new Uint8Array(perBit * store.bits);
  for (const run of store.runs()) {
    for (let b = 0; b < store.bits; b++) {
      if (((run.state >>> b) & 1) === 0) continue;
      let from = b * perBit * 8 + run.start;
      const to = b * perBit * 8 + run.end;
      while (from < to && (from & 7) !== 0) image[from >>> 3] |= 1 << (from++ & 7);
      if (to - from >= 8) {
        image.fill(0xff, from >>> 3, to >>> 3);
        from = to - ((to - from) & 7);
      }
      while (from < to) image[from >>> 3] |= 1 << (from++ & 7);
    }
  }
  return image;
}

function measure(
  label: string,
  t: { seconds: number; median: number },
  bytes: number,
  runs: number | null,
  repetitions: number,
  note?: string,
): Measurement {
  return {
    store: label,
    seconds: t.seconds,
    medianSeconds: t.median,
    repetitions,
    units: 1,
    bytes,
    runs,
    note,
  };
}

function saveRows(workload: Workload, n: number, title: string): ReportRow[] {
  const tree = region(workload, "range-tree");
  const bitmap = region(workload, "bitmap");
  const runs = tree.store.runCount;
  const image = timed(n, () => bitmapImage(bitmap.store));
  const fromTree = timed(n, () => tree.snapshot());
  const fromBitmap = timed(n, () => bitmap.snapshot());
  const rows: ReportRow[] = [{
    workload: `snapshot ${title} (save)`,
    description: `${workload.description}: serialised state`,
    unit: "save",
    results: [
      measure("bitmap image", image, image.value.length, runs, n, "1 bit per page, unchecked"),
      measure("snapshot of range-tree", fromTree, fromTree.value.length, runs, n),
      measure("snapshot of bitmap", fromBitmap, fromBitmap.value.length, runs, n),
    ],
    targets: workload.name === "boot"
      ? [{ metric: "bytes", max: 0.01 }]
      : [{ metric: "bytes", max: 1.01 }],
  }];
  if (workload.name === "boot") {
    const bytes = fromTree.value;
    const copy = timed(n, () => new Uint8Array(image.value));
    const intoTree = timed(n, () => Region.restore(bytes, { store: "range-tree" }));
    const intoBitmap = timed(n, () => Region.restore(bytes, { store: "bitmap" }));
    rows.push({
      workload: `snapshot ${title} (restore)`,
      description: `${workload.description}: rebuilt from the serialised state`,
      unit: "restore",
      results: [
        measure("bitmap image copy", copy, image.value.length, runs, n, "memcpy: a lower bound"),
        measure("restore to range-tree", intoTree, bytes.length, intoTree.value.store.runCount, n),
        measure("restore to bitmap", intoBitmap, bytes.length, intoBitmap.value.store.runCount, n),
      ],
      targets: [],
    });
  }
  return rows;
}

/** The saved-state rows as a report source. */
export const snapshotSource: RowSource = {
  name: "snapshot",
  rows(): Promise<ReportRow[]> {
    const n = reps();
    return Promise.resolve([
      ...saveRows(boot(2 ** 28), n, "boot 1 TiB"),
      ...saveRows(dmaScatter(), n, "dma-scatter 16 GiB"),
    ]);
  },
};

if (import.meta.main) {
  parseOptions("snapshot_rows", {}); // it takes none: an option given is a mistake, not ignored
  // Alone (`deno run -A bench/snapshot_rows.ts`); report.ts imports this module, so no
  // import of it here: a plain listing instead of its table.
  for (const row of await snapshotSource.rows()) {
    console.log(row.workload);
    for (const m of row.results) {
      const ms = m.seconds === null ? "-" : (m.seconds * 1000).toFixed(2);
      console.log(`  ${m.store.padEnd(24)} ${String(m.bytes).padStart(10)} bytes  ${ms} ms`);
    }
  }
}
