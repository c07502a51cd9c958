/**
 * The real kernel: what memstate adds to a 4 KiB conversion on /dev/kvm.
 *
 * The same sequence of single-page conversions runs twice in one process:
 * through a Region with the KVM attributes plugin on `openLinuxKvm()`
 * (separate backing: a guest_memfd and a memfd bound by a memslot), and as
 * the bare `fallocate(PUNCH_HOLE | KEEP_SIZE)` calls that sequence makes,
 * issued directly through FFI on the same two files. The ratio is memstate's
 * whole cost (bus, plugin, attribute table, argument checks) over the system
 * calls alone. Two cases: punching pages that were never allocated (the
 * cheapest syscall, so the worst ratio), and the realistic one where the side
 * about to be punched was written first (both loops write the same page).
 *
 * Where /dev/kvm is absent (or permissions lack) the row says so and is
 * skipped. Run alone: `deno run -A bench/linux_rows.ts [--reps N]`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { kvmAttributes, Region } from "../mod.ts";
import { openLinuxKvm, probeKvm } from "../src/hw/linux/mod.ts";
import { libc } from "../src/hw/linux/libc.ts";
import type { LinuxMemoryFile } from "../src/hw/linux/linux_memory_file.ts";
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE } from "../src/hw/backend.ts";
import { Prng } from "../src/util/prng.ts";
import { timedMeasurement } from "./measurement.ts";
import type { Measurement, ReportRow, RowSource } from "./report.ts";

const PAGE = 4096;
/** 64 MiB: large enough that random pages rarely repeat back to back, small for a memslot. */
export const REGION_BYTES = 64 * 2 ** 20;
const PUNCH = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
const PAGE_BIG = BigInt(PAGE);

/** The conversions of a 4 KiB row: page index and direction, each flipping its page's state. */
export function plan(count: number, seed: number): { pages: Uint32Array; toShared: Uint8Array } {
  const rng = new Prng(seed);
  const pages = new Uint32Array(count);
  const toShared = new Uint8Array(count);
  const shared = new Uint8Array(REGION_BYTES / PAGE);
  for (let i = 0; i < count; i++) {
    const p = rng.int(shared.length);
    pages[i] = p;
    toShared[i] = shared[p] = shared[p] ^ 1;
  }
  return { pages, toShared };
}

interface Timing {
  memstate: number[];
  raw: number[];
}

/** Times `reps` alternating runs of both loops; `written` writes the page about to be punched. */
function measure(count: number, reps: number, written: boolean): Timing {
  const { pages, toShared } = plan(count, 11);
  const timing: Timing = { memstate: [], raw: [] };
  const one = new Uint8Array([1]);
  for (let r = 0; r < reps; r++) {
    {
      using vm = openLinuxKvm();
      const region = new Region({ name: "ram", size: REGION_BYTES, base: 2 ** 32 });
      const kvm = kvmAttributes({ vm });
      kvm.attach(region);
      const b = kvm.binding(region)!.backing;
      const t0 = performance.now();
      for (let i = 0; i < count; i++) {
        const off = pages[i] * PAGE;
        if (written) (toShared[i] ? b.guestMemfd : b.shared!).write(off, one);
        region.convert(off, PAGE, toShared[i] ? "shared" : "private");
      }
      timing.memstate.push(performance.now() - t0);
      kvm.detach(region);
    }
    {
      using vm = openLinuxKvm();
      const region = new Region({ name: "ram", size: REGION_BYTES, base: 2 ** 32 });
      const kvm = kvmAttributes({ vm });
      kvm.attach(region); // the same files and memslot, driven directly
      const b = kvm.binding(region)!.backing;
      const gmem = b.guestMemfd as unknown as LinuxMemoryFile;
      const memfd = b.shared as unknown as LinuxMemoryFile;
      const fallocate = libc().sym.fallocate;
      const t0 = performance.now();
      for (let i = 0; i < count; i++) {
        const off = pages[i] * PAGE;
        const file = toShared[i] ? gmem : memfd;
        if (written) file.write(off, one);
        // BigInt arguments: the fastest way Deno's FFI makes this call (numbers take a slow path).
        if (fallocate(file.fd, PUNCH, BigInt(off), PAGE_BIG) !== 0) {
          throw new Error("fallocate failed");
        }
      }
      timing.raw.push(performance.now() - t0);
    }
  }
  return timing;
}

/** Why the rows cannot run here, or undefined when /dev/kvm is usable. */
function unavailable(): string | undefined {
  const probe = probeKvm();
  return probe.available ? undefined : `skipped: ${probe.reason}`;
}

/** The real-kernel rows: memstate on /dev/kvm against the bare punches, two cases. */
export function linuxRows(count = 20_000, reps = 3): ReportRow[] {
  const why = unavailable();
  const rows: [string, string, boolean][] = [
    [
      "linux 4k (unallocated)",
      "4 KiB conversions on /dev/kvm; the punched page was never allocated",
      false,
    ],
    [
      "linux 4k (written)",
      "4 KiB conversions on /dev/kvm; the punched page was written first",
      true,
    ],
  ];
  return rows.map(([workload, description, written]) => {
    if (why) {
      const skipped: Measurement = {
        store: "raw",
        seconds: null,
        units: 0,
        bytes: 0,
        runs: null,
        note: why,
      };
      return {
        workload,
        description,
        unit: "conversion",
        results: [skipped, { ...skipped, store: "memstate" }],
        targets: [],
      };
    }
    const t = measure(count, reps, written);
    return {
      workload,
      description,
      unit: "conversion",
      results: [
        timedMeasurement("raw fallocate", t.raw, count),
        timedMeasurement("memstate", t.memstate, count),
      ],
      targets: [{ metric: "time", max: 1.5 }],
    };
  });
}

/** The rows for `bench/report.ts`. */
export const linuxSource: RowSource = {
  name: "linux",
  rows: () => Promise.resolve(linuxRows()),
};

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { reps: { type: "string" }, count: { type: "string" } },
  });
  const rows = linuxRows(Number(values.count ?? 20_000), Number(values.reps ?? 5));
  for (const row of rows) {
    const [raw, ms] = row.results;
    if (raw.seconds === null) {
      console.log(`${row.workload}: ${raw.note}`);
      continue;
    }
    const us = (m: Measurement, s: number) => ((s * 1e6) / m.units).toFixed(2);
    console.log(
      `${row.workload}: raw ${us(raw, raw.seconds)} us (median ${us(raw, raw.medianSeconds!)}), ` +
        `memstate ${us(ms, ms.seconds!)} us (median ${us(ms, ms.medianSeconds!)}), ` +
        `ratio min ${(ms.seconds! / raw.seconds).toFixed(2)}x`,
    );
  }
}
