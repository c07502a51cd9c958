/**
 * The `linux 4k` rows taken apart: memstate's own work per 4 KiB conversion,
 * alone and next to a system call. Needs no /dev/kvm, so it runs where the
 * report's real-kernel rows are skipped.
 *
 * Three cases, each in a process of its own (so that no case's loops leave
 * their type feedback in another's), each loop timed `--reps` times,
 * interleaved, over the same single-page conversions as the `linux 4k` rows:
 *
 * - `alone`: a region with no listener, and a region with the KVM attributes
 *   plugin on a backend that keeps the attribute table `LinuxKvm` keeps where
 *   the kernel has no KVM_SET_MEMORY_ATTRIBUTES and whose files check their
 *   arguments as `LinuxMemoryFile.fallocate` does, then return: every cost
 *   but the kernel's, and no system call in the process;
 * - `getpid`: the cheapest system call alone, after each conversion of the
 *   region with no listener, and in place of the plugin's punch;
 * - `memfd`: `fallocate(PUNCH_HOLE)` on two memfds alone, and through the
 *   real `LinuxMemoryFile` (a memfd stands in for the guest_memfd, which only
 *   /dev/kvm can create).
 *
 * What memstate adds next to a system call is the median over repetitions
 * of the time with memstate minus the time of the call alone (the two ran
 * side by side); compare it with the same work alone. Every loop checks that
 * it did its work (conversions applied, one punch each).
 * Run: `deno run -A bench/linux_parts.ts [--reps N] [--count N] [--case C]`.
 *
 * @module
 */

import { integerOption, parseOptions, usage } from "./cli_args.ts";
import { jsonFromProcess } from "./subprocess.ts";
import { kvmAttributes, Region } from "../mod.ts";
import { SimKvm } from "../src/hw/sim/mod.ts";
import { SimMemoryAttributes } from "../src/hw/memory_attributes.ts";
import { checkU64 } from "../src/hw/u64.ts";
import { offArg, u32Arg } from "../src/hw/linux/arguments.ts";
import { openSharedMemfd } from "../src/hw/linux/linux_memory_file.ts";
import { libc } from "../src/hw/linux/libc.ts";
import {
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  type GuestMemfd,
  KVM_MEMORY_ATTRIBUTE_PRIVATE,
  type KvmBackend,
  type MemoryFile,
} from "../src/hw/backend.ts";
import { MAX_COUNT, MAX_REPS, plan, REGION_BYTES } from "./linux_rows.ts";
import { median } from "./measurement.ts";

const PAGE = 4096;
const PUNCH = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
const PAGE_BIG = BigInt(PAGE);

/** Stands for getpid outside the `getpid` case. */
const closedGetpid = (): number => {
  throw new Error("getpid: only the getpid case opens it");
};
/** libc's getpid, opened by the `getpid` case only (nothing is opened at import). */
let getpid: () => number = closedGetpid;

/** A file whose punch checks its arguments as `LinuxMemoryFile.fallocate` does, then returns. */
class QuietFile implements GuestMemfd {
  readonly hostAddress = 0;
  readonly flags = 0;
  constructor(readonly size: number) {}
  fallocate(mode: number, offset: number, length: number): void {
    u32Arg("bench.fallocate", "mode", mode);
    offArg("bench.fallocate", "offset", offset);
    offArg("bench.fallocate", "length", length);
  }
  punchHole(offset: number, length: number): void {
    this.fallocate(PUNCH, offset, length);
  }
  allocatedBytes(): number {
    return 0;
  }
  read(_offset: number, length: number): Uint8Array {
    return new Uint8Array(length);
  }
  write(): void {}
  setAttributes(): void {}
  getAttributes(): number {
    return 0;
  }
  close(): void {}
  [Symbol.dispose](): void {}
}

/** A {@link QuietFile} whose punch makes a `getpid` in place of the `fallocate`. */
class GetpidFile extends QuietFile {
  override fallocate(mode: number, offset: number, length: number): void {
    super.fallocate(mode, offset, length);
    getpid();
  }
}

/**
 * `LinuxKvm` without /dev/kvm: the emulated attribute table with its argument
 * checks (linux_kvm.ts `setMemoryAttributes`), memslots accepted as given.
 */
class TableKvm implements KvmBackend {
  readonly kind = "linux" as const;
  readonly capabilities = new SimKvm().capabilities;
  #attributes = new SimMemoryAttributes(KVM_MEMORY_ATTRIBUTE_PRIVATE, PAGE);
  constructor(readonly makeFile: (size: number) => GuestMemfd) {}
  createGuestMemfd(size: number): GuestMemfd {
    return this.makeFile(size);
  }
  createSharedMemory(size: number): MemoryFile {
    return this.makeFile(size);
  }
  setUserMemoryRegion2(): void {}
  setMemoryAttributes(gpa: number, size: number, attributes: number): void {
    checkU64("kvm.setMemoryAttributes", "gpa", gpa);
    checkU64("kvm.setMemoryAttributes", "size", size);
    checkU64("kvm.setMemoryAttributes", "attributes", attributes);
    this.#attributes.set(gpa, size, attributes);
  }
  getMemoryAttributes(gpa: number): number {
    return this.#attributes.get(gpa);
  }
  memoryAttributeRuns(gpa: number, size: number) {
    return this.#attributes.runs(gpa, size);
  }
  close(): void {}
  [Symbol.dispose](): void {}
}

/** A memfd dressed as a guest_memfd (what the plugin asks of one in separate mode). */
function memfdAsGuestMemfd(size: number): GuestMemfd {
  return Object.assign(openSharedMemfd(size), {
    flags: 0,
    setAttributes(): void {},
    getAttributes: () => 0,
  });
}

/** One repetition of a loop: `run` is timed, `finish` (which checks and releases) is not. */
interface Repetition {
  run(pages: Uint32Array, toShared: Uint8Array): void;
  finish(): void;
}

interface Loop {
  name: string;
  /** Sets up one repetition. */
  start(): Repetition;
}

/** Throws unless `region` applied every one of `count` conversions. */
function checkApplied(name: string, region: Region, count: number): void {
  if (region.stats.applied !== count) {
    throw new Error(`${name}: ${region.stats.applied} of ${count} conversions applied`);
  }
}

/** Converts each planned page of `region`, in order. */
function convertAll(region: Region, pages: Uint32Array, toShared: Uint8Array): void {
  for (let i = 0; i < pages.length; i++) {
    region.convert(pages[i] * PAGE, PAGE, toShared[i] ? "shared" : "private");
  }
}

/** A region and what checks and releases it after `count` conversions (untimed). */
interface Subject {
  region: Region;
  finish(count: number): void;
}

/** A region with no listener. */
function bareRegion(name: string): Subject {
  const region = new Region({ name: "ram", size: REGION_BYTES, base: 2 ** 32 });
  return { region, finish: (count) => checkApplied(name, region, count) };
}

/**
 * A region with the KVM plugin on files from `makeFile`; `finish` checks one
 * punch per conversion (and the one at attach) and detaches.
 */
function withPlugin(name: string, makeFile: (size: number) => GuestMemfd): Subject {
  const region = new Region({ name: "ram", size: REGION_BYTES, base: 2 ** 32 });
  const kvm = kvmAttributes({ vm: new TableKvm(makeFile) });
  kvm.attach(region);
  return {
    region,
    finish(count) {
      checkApplied(name, region, count);
      const punches = kvm.stats().calls.punchHole;
      if (punches !== count + 1) throw new Error(`${name}: ${punches} punches for ${count}`);
      kvm.detach(region); // punches every shared run and closes the files
    },
  };
}

/** A loop converting every planned page of `make()`'s region. */
function conversions(name: string, make: (name: string) => Subject): Loop {
  return {
    name,
    start() {
      const { region, finish } = make(name);
      let count = 0;
      return {
        run(pages, toShared) {
          count = pages.length;
          convertAll(region, pages, toShared);
        },
        finish: () => finish(count),
      };
    },
  };
}

/**
 * The loops of each case. A loop that calls `getpid` itself has its own
 * function: sharing one with a loop that does not (a flag deciding) read
 * 0.3 µs in some processes and 0.7 µs in others.
 */
const CASES: Record<string, Loop[]> = {
  alone: [
    conversions("region, no listener", bareRegion),
    conversions("memstate, no system call", (name) => withPlugin(name, (n) => new QuietFile(n))),
  ],
  getpid: [
    {
      name: "getpid",
      start: () => ({
        run(pages) {
          for (let i = 0; i < pages.length; i++) getpid();
        },
        finish() {},
      }),
    },
    {
      name: "region + getpid",
      start() {
        const { region, finish } = bareRegion(this.name);
        let count = 0;
        return {
          run(pages, toShared) {
            count = pages.length;
            for (let i = 0; i < pages.length; i++) {
              region.convert(pages[i] * PAGE, PAGE, toShared[i] ? "shared" : "private");
              getpid();
            }
          },
          finish: () => finish(count),
        };
      },
    },
    conversions("memstate + getpid", (name) => withPlugin(name, (n) => new GetpidFile(n))),
  ],
  memfd: [
    {
      name: "memfd punch",
      start() {
        const sides = [openSharedMemfd(REGION_BYTES), openSharedMemfd(REGION_BYTES)];
        const fallocate = libc().sym.fallocate;
        return {
          run(pages, toShared) {
            for (let i = 0; i < pages.length; i++) {
              const fd = sides[toShared[i]].fd;
              if (fallocate(fd, PUNCH, BigInt(pages[i] * PAGE), PAGE_BIG) !== 0) {
                throw new Error("fallocate failed");
              }
            }
          },
          finish() {
            for (const side of sides) side.close();
          },
        };
      },
    },
    conversions("memstate on memfds", (name) => withPlugin(name, memfdAsGuestMemfd)),
  ],
};

/** Why `name` is not one of {@link CASES} (one line), or undefined when it is. */
function unknownCase(name: string): string | undefined {
  if (Object.hasOwn(CASES, name)) return undefined;
  return `--case: one of ${Object.keys(CASES).join(", ")}, got ${JSON.stringify(name)}`;
}

/** One loop's microseconds per conversion: every repetition, in the order run. */
export interface PartTiming {
  /** The loop's name. */
  name: string;
  /** Microseconds per conversion of each repetition. */
  times: number[];
}

/** Times every loop of `name`'s case `reps` times, interleaved, over `count` conversions. */
export function measureCase(name: string, count: number, reps: number): PartTiming[] {
  const unknown = unknownCase(name);
  if (unknown !== undefined) throw new RangeError(unknown);
  const loops = CASES[name];
  const library = name === "getpid"
    ? Deno.dlopen("libc.so.6", { getpid: { parameters: [], result: "i32", nonblocking: false } })
    : undefined;
  if (library) getpid = library.symbols.getpid;
  try {
    const { pages, toShared } = plan(count, 11);
    const timings = loops.map((loop) => ({ name: loop.name, times: [] as number[] }));
    for (let r = 0; r < reps; r++) {
      loops.forEach((loop, k) => {
        const repetition = loop.start();
        const t0 = performance.now();
        repetition.run(pages, toShared);
        timings[k].times.push(((performance.now() - t0) * 1000) / count);
        repetition.finish();
      });
    }
    return timings;
  } finally {
    if (library) {
      library.close();
      getpid = closedGetpid;
    }
  }
}

/**
 * The median over repetitions of `a`'s time minus `b`'s: repetitions ran side
 * by side, so a slow stretch of the machine falls on both.
 */
function pairedExcess(a: PartTiming, b: PartTiming): number {
  return median(a.times.map((t, r) => t - b.times[r]));
}

/** Runs `name`'s case in a process of its own and returns its timings. */
async function caseInProcess(name: string, count: number, reps: number): Promise<PartTiming[]> {
  const args = ["--case", name, "--count", String(count), "--reps", String(reps)];
  const timings = await jsonFromProcess<PartTiming[]>(import.meta.url, args);
  if (timings === undefined) throw new Error(`case ${name} failed`);
  return timings;
}

if (import.meta.main) {
  const values = parseOptions("linux_parts", {
    reps: { type: "string" },
    count: { type: "string" },
    case: { type: "string" },
  });
  // The same conversions as linux_rows.ts, so its bounds.
  const count = integerOption("linux_parts", "count", values.count, {
    fallback: 10_000,
    min: 1,
    max: MAX_COUNT,
  });
  const reps = integerOption("linux_parts", "reps", values.reps, {
    fallback: 15,
    min: 1,
    max: MAX_REPS,
  });
  const unknown = values.case === undefined ? undefined : unknownCase(values.case);
  if (unknown !== undefined) usage("linux_parts", unknown);
  if (values.case !== undefined) {
    console.log(JSON.stringify(measureCase(values.case, count, reps)));
  } else {
    const [alone, nextToGetpid, nextToPunch] = [
      await caseInProcess("alone", count, reps),
      await caseInProcess("getpid", count, reps),
      await caseInProcess("memfd", count, reps),
    ];
    for (const p of [...alone, ...nextToGetpid, ...nextToPunch]) {
      const best = Math.min(...p.times);
      console.log(
        `${p.name.padEnd(26)} best ${best.toFixed(3)} µs, median ${median(p.times).toFixed(3)} µs`,
      );
    }
    const [region, memstate] = alone, [pid, regionPid, memstatePid] = nextToGetpid;
    const [punch, memstatePunch] = nextToPunch;
    const us = (x: number) => `${x.toFixed(2)} µs`;
    console.log(
      `the region alone costs ${us(median(region.times))}, ` +
        `${us(pairedExcess(regionPid, pid))} next to getpid`,
    );
    console.log(
      `memstate adds ${us(median(memstate.times))} alone, ${
        us(pairedExcess(memstatePid, pid))
      } next to getpid, ${us(pairedExcess(memstatePunch, punch))} next to a memfd punch (medians)`,
    );
  }
}
