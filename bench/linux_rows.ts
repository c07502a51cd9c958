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
 * skipped. Run alone: `deno run -A bench/linux_rows.ts [--reps N] [--count N]`;
 * `--rows` prints the report's rows as JSON (the report runs them so, in a
 * process of their own); `--parts` takes memstate's loop apart (see
 * {@link PARTS}), each variant in a process of its own (`--part NAME` runs one
 * and prints JSON).
 *
 * @module
 */

import { integerOption, parseOptions, usage as usageOf } from "./cli_args.ts";
import { jsonFromProcess } from "./subprocess.ts";
import { kvmAttributes, Region, type Section } from "../mod.ts";
import { type LinuxKvm, openLinuxKvm, probeKvm } from "../src/hw/linux/mod.ts";
import { libc } from "../src/hw/linux/libc.ts";
import type { LinuxMemoryFile } from "../src/hw/linux/linux_memory_file.ts";
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  KVM_MEMORY_ATTRIBUTE_PRIVATE,
} from "../src/hw/backend.ts";
import type { RegionBacking } from "../src/hw/region_backing.ts";
import { Prng } from "../src/util/prng.ts";
import { benchReps, median, pairedMedianRatio, timedMeasurement } from "./measurement.ts";
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

/**
 * What `--parts` takes out of memstate's loop, to see what each part costs
 * next to the real punches. `attributes: false` makes the VM's
 * `setMemoryAttributes` do nothing (where the kernel has no private memory,
 * as on a machine without TDX or SEV-SNP, that call is memstate's own record
 * of the attributes, checked with the kernel's rules); `checks: false` punches
 * through a bare FFI call instead of `LinuxMemoryFile`'s argument checks;
 * `listener: "punch"` converts a second region whose one listener only
 * punches the KVM plugin's files (and makes the attribute call if
 * `attributes`): the bus's floor under any plugin. Every variant checks that
 * each conversion made its punch and, where stubbed, its attribute call.
 */
export interface Strip {
  /** `"kvm"`: the KVM attributes plugin; `"punch"`: a listener that only punches. */
  listener: "kvm" | "punch";
  /** False: `setMemoryAttributes` is not made (a no-op on this VM). */
  attributes: boolean;
  /** False: the files punch without argument checks. */
  checks: boolean;
  /**
   * The store of the region converted (default the range tree). The bitmap
   * reads and writes one word per page: for these one-page conversions no
   * store does less, so the difference bounds what a store change could take
   * off the row.
   */
  store?: "bitmap";
}

/** The variants `--parts` runs, each in a process of its own beside the bare punches. */
export const PARTS: Record<string, Strip> = {
  "memstate": { listener: "kvm", attributes: true, checks: true },
  "without the attribute call": { listener: "kvm", attributes: false, checks: true },
  "without the punch's checks": { listener: "kvm", attributes: true, checks: false },
  "without either": { listener: "kvm", attributes: false, checks: false },
  "on the bitmap store": { listener: "kvm", attributes: true, checks: true, store: "bitmap" },
  "punch listener": { listener: "punch", attributes: false, checks: false },
  "punch listener + attribute call": { listener: "punch", attributes: true, checks: false },
};

const WHOLE: Strip = PARTS.memstate;

/** A bare `fallocate(PUNCH_HOLE)` of `file`, counted by `count`. */
function barePunch(fd: number, count: () => void): (offset: number, length: number) => void {
  const fallocate = libc().sym.fallocate;
  return (offset, length) => {
    count();
    if (fallocate(fd, PUNCH, BigInt(offset), BigInt(length)) !== 0) {
      throw new Error("fallocate failed");
    }
  };
}

/**
 * The region `strip`'s loop converts, over the KVM plugin's binding of
 * `attached` on `vm`, and what it must have done after `count` conversions:
 * `check` throws unless every conversion was applied and made its bare punch
 * and its attribute call, where `strip` made them countable (bare or stubbed).
 */
function stripped(strip: Strip, vm: LinuxKvm, attached: Region, b: RegionBacking) {
  let punches = 0, attributeCalls = 0;
  const counted = () => void punches++;
  const files = [b.guestMemfd, b.shared] as unknown as LinuxMemoryFile[];
  const checker = (region: Region, bare: boolean, attributes: boolean) => (count: number) => {
    if (
      region.stats.applied !== count || (bare && punches !== count) ||
      (attributes && attributeCalls !== count)
    ) {
      throw new Error(
        `memstate: ${region.stats.applied} of ${count} conversions applied, ` +
          `${punches} bare punches, ${attributeCalls} counted attribute calls`,
      );
    }
  };
  if (strip.listener === "kvm") {
    if (!strip.attributes) vm.setMemoryAttributes = () => void attributeCalls++;
    if (!strip.checks) { for (const file of files) file.punchHole = barePunch(file.fd, counted); }
    return { region: attached, check: checker(attached, !strip.checks, !strip.attributes) };
  }
  const region = new Region({
    name: "punched",
    size: REGION_BYTES,
    base: attached.base,
    store: strip.store,
  });
  const [toShared, toPrivate] = files.map((file) => barePunch(file.fd, counted));
  const attributes = (s: Section, value: number) => {
    attributeCalls++;
    vm.setMemoryAttributes(region.base + s.offset, s.size, value);
  };
  region.register(
    strip.attributes
      ? {
        name: "punch + attributes",
        coalesce: true,
        populate(s) {
          attributes(s, 0);
          toShared(s.offset, s.size);
        },
        discard(s) {
          attributes(s, KVM_MEMORY_ATTRIBUTE_PRIVATE);
          toPrivate(s.offset, s.size);
        },
      }
      : {
        name: "punch",
        coalesce: true,
        populate: (s) => toShared(s.offset, s.size),
        discard: (s) => toPrivate(s.offset, s.size),
      },
  );
  return { region, check: checker(region, true, strip.attributes) };
}

/**
 * A region of {@link REGION_BYTES} on `store` (default the range tree) with
 * the KVM plugin attached on `vm`: its files and memslot.
 */
function attachedRegion(vm: LinuxKvm, store?: "bitmap") {
  const region = new Region({ name: "ram", size: REGION_BYTES, base: 2 ** 32, store });
  const kvm = kvmAttributes({ vm });
  kvm.attach(region);
  return { region, kvm, backing: kvm.binding(region)!.backing };
}

/**
 * Times `reps` runs of both loops, which go first by turns; `written` writes
 * the page about to be punched; `strip` takes parts out of memstate's loop
 * (see {@link Strip}). `realAttributes` says the VM made
 * `KVM_SET_MEMORY_ATTRIBUTES` for real (a TDX or SEV-SNP VM type), which the
 * bare loop does not make.
 */
function measure(
  count: number,
  reps: number,
  written: boolean,
  strip = WHOLE,
): Timing & { realAttributes: boolean } {
  const { pages, toShared } = plan(count, 11);
  const timing = { memstate: [] as number[], raw: [] as number[], realAttributes: false };
  const one = new Uint8Array([1]);
  const throughMemstate = () => {
    using vm = openLinuxKvm();
    timing.realAttributes = vm.realParts.attributes;
    const { region, kvm, backing: b } = attachedRegion(vm, strip.store);
    const { region: converted, check } = stripped(strip, vm, region, b);
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const off = pages[i] * PAGE;
      if (written) (toShared[i] ? b.guestMemfd : b.shared!).write(off, one);
      converted.convert(off, PAGE, toShared[i] ? "shared" : "private");
    }
    timing.memstate.push(performance.now() - t0);
    check(count);
    kvm.detach(region);
  };
  const direct = () => {
    using vm = openLinuxKvm();
    const { backing: b } = attachedRegion(vm); // the same files and memslot, driven directly
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
  };
  for (let r = 0; r < reps + WARMUP_REPS; r++) {
    for (const loop of r % 2 === 0 ? [throughMemstate, direct] : [direct, throughMemstate]) loop();
  }
  // The first repetitions of each loop ran while V8 compiled it: not what a conversion costs.
  timing.memstate.splice(0, WARMUP_REPS);
  timing.raw.splice(0, WARMUP_REPS);
  return timing;
}

/**
 * Repetitions of both loops run first and not kept. In a process of its own
 * the first repetition of memstate's loop took 1.5x-1.7x as long as the
 * others (2.42 µs per conversion against 1.39-1.57 µs, 20,000 conversions),
 * the second sometimes 1.1x: V8 still compiling the loop and what it calls.
 * Kept, they put the row's median ratio at 1.65x-1.75x where its best read
 * 1.44x-1.46x.
 */
export const WARMUP_REPS = 2;

/** Why the rows cannot run here, or undefined when /dev/kvm is usable. */
function unavailable(): string | undefined {
  const probe = probeKvm();
  return probe.available ? undefined : `skipped: ${probe.reason}`;
}

/**
 * The row's note where the VM makes KVM_SET_MEMORY_ATTRIBUTES for real: the
 * bare loop makes only the punch, though QEMU's `kvm_convert_memory` makes
 * both, so the ratio then charges memstate for the kernel's ioctl too.
 */
export const REAL_ATTRIBUTES_NOTE =
  "this VM makes KVM_SET_MEMORY_ATTRIBUTES for real and the raw loop does not: " +
  "the ratio charges memstate for that ioctl";

/** Conversions per repetition of the report's rows (and of every run, unless `--count`). */
export const ROW_CONVERSIONS = 20_000;
/** Timed repetitions of the report's rows (`--rows`, unless `--reps`). */
export const ROW_REPS = 4;

/**
 * The real-kernel rows: memstate on /dev/kvm against the bare punches, two
 * cases; each skipped, with `why` as its note, when `why` is given (by
 * default, where /dev/kvm is not usable).
 */
export function linuxRows(
  count = ROW_CONVERSIONS,
  reps = ROW_REPS,
  why = unavailable(),
): ReportRow[] {
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
        timedMeasurement(
          "memstate",
          t.memstate,
          count,
          t.realAttributes ? REAL_ATTRIBUTES_NOTE : undefined,
        ),
      ],
      targets: [{ metric: "time", max: 1.5 }],
    };
  });
}

/**
 * The rows for `bench/report.ts`, measured in a process of their own
 * (`--rows`): a VMM process that converts on /dev/kvm has not run the
 * report's other rows first. After the store and end-to-end rows in one
 * process, Region's and the store's call sites have seen both store kinds
 * and the simulators' listeners, and the `linux 4k (unallocated)` row read
 * 1.56x-1.60x where a process of its own read 1.48x-1.50x (two runs each,
 * the same code).
 */
export const linuxSource: RowSource = {
  name: "linux",
  rows: async () => {
    if (Deno.permissions.querySync({ name: "run" }).state !== "granted") {
      return linuxRows(
        0,
        0,
        "skipped: measured in a process of their own, which needs --allow-run",
      );
    }
    // The repetitions go to the rows' process as --reps: it reads no environment of its own.
    const reps = benchReps("linux_rows", ROW_REPS);
    const rows = await jsonFromProcess<ReportRow[]>(import.meta.url, [
      "--rows",
      "--reps",
      String(reps),
    ]);
    if (rows === undefined) throw new Error("linux_rows: the process of the rows failed (above)");
    return rows;
  },
};

/** One `--parts` variant's times, milliseconds per repetition, as its process prints them. */
interface PartTiming {
  part: string;
  memstate: number[];
  raw: number[];
}

/**
 * Runs variant `part` (a key of {@link PARTS}) in a process of its own,
 * never-written pages; undefined when the process failed (it said why).
 */
function partInProcess(part: string, count: number, reps: number): Promise<PartTiming | undefined> {
  const args = ["--part", part, "--count", String(count), "--reps", String(reps)];
  return jsonFromProcess<PartTiming>(import.meta.url, args);
}

/**
 * `--parts`: each variant of {@link PARTS} beside the bare punches, one
 * process each, and the median over repetitions of memstate's time over the
 * punches' (the two ran side by side in each repetition).
 */
async function printParts(count: number, reps: number): Promise<void> {
  const why = unavailable();
  if (why) {
    console.log(`linux 4k parts: ${why}`);
    return;
  }
  for (const part of Object.keys(PARTS)) {
    const t = await partInProcess(part, count, reps);
    if (t === undefined) {
      console.error(`linux_rows: the process of part ${JSON.stringify(part)} failed (above)`);
      Deno.exit(1);
    }
    const us = (ms: number) => `${((ms * 1000) / count).toFixed(2)} µs`;
    const ratio = pairedMedianRatio(t.memstate, t.raw);
    console.log(
      `${part.padEnd(32)} ${us(median(t.memstate))} against ${us(median(t.raw))} raw: ` +
        `${ratio.toFixed(2)}x (paired median)`,
    );
  }
}

/** One line naming the bad option and the rule; exit status 2. */
function usage(message: string): never {
  return usageOf("linux_rows", message);
}

/** `--name`'s value as an integer in [1, `max`], `fallback` when absent. */
function positive(name: string, value: string | undefined, fallback: number, max: number): number {
  return integerOption("linux_rows", name, value, { fallback, min: 1, max });
}

/** Most conversions a run takes: the plan's typed arrays, and minutes of punches. */
export const MAX_COUNT = 10_000_000;
/** Most repetitions a run takes. */
export const MAX_REPS = 1000;

if (import.meta.main) {
  const values = parseOptions("linux_rows", {
    reps: { type: "string" },
    count: { type: "string" },
    parts: { type: "boolean" },
    part: { type: "string" },
    rows: { type: "boolean" },
  });
  const count = positive("count", values.count, ROW_CONVERSIONS, MAX_COUNT);
  if (values.part !== undefined && values.parts) usage("--part: one part, or --parts for all");
  if (values.rows && (values.part !== undefined || values.parts)) {
    usage("--rows: the report's rows as JSON, without --part or --parts");
  }
  if (values.part !== undefined) {
    const strip = PARTS[values.part];
    if (strip === undefined) {
      usage(
        `--part: one of ${Object.keys(PARTS).map((p) => JSON.stringify(p)).join(", ")}, ` +
          `got ${JSON.stringify(values.part)}`,
      );
    }
    const why = unavailable();
    if (why) usage(`--part: /dev/kvm is not usable here (${why})`);
    const t = measure(count, positive("reps", values.reps, 6, MAX_REPS), false, strip);
    console.log(JSON.stringify({ part: values.part, memstate: t.memstate, raw: t.raw }));
  } else if (values.rows) {
    const reps = positive("reps", values.reps, ROW_REPS, MAX_REPS);
    console.log(JSON.stringify(linuxRows(count, reps)));
  } else if (values.parts) {
    await printParts(count, positive("reps", values.reps, 16, MAX_REPS));
  } else {
    for (const row of linuxRows(count, positive("reps", values.reps, 6, MAX_REPS))) {
      const [raw, ms] = row.results;
      if (raw.seconds === null) {
        console.log(`${row.workload}: ${raw.note}`);
        continue;
      }
      const us = (m: Measurement, s: number) => ((s * 1e6) / m.units).toFixed(2);
      console.log(
        `${row.workload}: raw ${us(raw, raw.seconds)} us (median ${
          us(raw, raw.medianSeconds!)
        }), ` +
          `memstate ${us(ms, ms.seconds!)} us (median ${us(ms, ms.medianSeconds!)}), ` +
          `ratio min ${(ms.seconds! / raw.seconds).toFixed(2)}x` +
          (ms.note ? ` (${ms.note})` : ""),
      );
    }
  }
}
