/**
 * The `linux 4k` rows taken apart: memstate's own work per 4 KiB conversion,
 * alone and next to a system call. Needs no /dev/kvm, so it runs where the
 * report's real-kernel rows are skipped.
 *
 * Seven loops of the same single-page conversions, interleaved, each timed
 * `--reps` times (the best and the median are printed):
 *
 * - `region, no listener` and `region + getpid`: the bus's and the store's
 *   share, alone and with the cheapest system call after each conversion;
 * - `memstate, no system call`: a Region with the KVM attributes plugin on a
 *   backend that keeps the attribute table `LinuxKvm` keeps where the kernel
 *   has no KVM_SET_MEMORY_ATTRIBUTES and whose files check their arguments as
 *   `LinuxMemoryFile.fallocate` does, then return: every cost but the kernel's;
 * - `getpid` and `memstate + getpid`: the cheapest system call alone, and in
 *   place of the punch;
 * - `memfd punch` and `memstate on memfds`: `fallocate(PUNCH_HOLE)` on two
 *   memfds alone, and through the real `LinuxMemoryFile` (a memfd stands in
 *   for the guest_memfd, which only /dev/kvm can create).
 *
 * What memstate adds next to a system call is the median over repetitions
 * of the time with memstate minus the time of the call alone (the two ran
 * side by side); compare it with the same work alone.
 * Run: `deno run -A bench/linux_parts.ts [--reps N] [--count N]`.
 *
 * @module
 */

import { parseArgs } from "node:util";
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
import { plan, REGION_BYTES } from "./linux_rows.ts";

const PAGE = 4096;
const PUNCH = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
const PAGE_BIG = BigInt(PAGE);

const getpidLibrary = Deno.dlopen("libc.so.6", {
  getpid: { parameters: [], result: "i32", nonblocking: false },
});
const getpid = getpidLibrary.symbols.getpid;

/**
 * A file whose punch checks its arguments as `LinuxMemoryFile.fallocate`
 * does, then makes a `getpid` in place of the `fallocate` or returns. One
 * class for both, so the plugin's call site sees one shape either way.
 */
class QuietFile implements GuestMemfd {
  readonly hostAddress = 0;
  readonly flags = 0;
  constructor(readonly size: number, readonly withGetpid: boolean) {}
  fallocate(mode: number, offset: number, length: number): void {
    u32Arg("bench.fallocate", "mode", mode);
    offArg("bench.fallocate", "offset", offset);
    offArg("bench.fallocate", "length", length);
    if (this.withGetpid) getpid();
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

/** One repetition of a loop: `run` is timed, `finish` (which releases what it made) is not. */
interface Repetition {
  run(pages: Uint32Array, toShared: Uint8Array): void;
  finish(): void;
}

interface Loop {
  name: string;
  /** Sets up one repetition. */
  start(): Repetition;
}

function memstateLoop(name: string, makeFile: (size: number) => GuestMemfd): Loop {
  return {
    name,
    start() {
      const region = new Region({ name: "ram", size: REGION_BYTES, base: 2 ** 32 });
      const kvm = kvmAttributes({ vm: new TableKvm(makeFile) });
      kvm.attach(region);
      return {
        run(pages, toShared) {
          for (let i = 0; i < pages.length; i++) {
            region.convert(pages[i] * PAGE, PAGE, toShared[i] ? "shared" : "private");
          }
        },
        finish() {
          // Detaching punches every shared run: untimed, like the setup.
          const { guestMemfd, shared } = kvm.binding(region)!.backing;
          kvm.detach(region);
          guestMemfd.close();
          shared?.close();
        },
      };
    },
  };
}

/** A region with no listener: the bus's and the store's share of the work. */
function regionLoop(name: string, withGetpid: boolean): Loop {
  return {
    name,
    start() {
      const region = new Region({ name: "ram", size: REGION_BYTES, base: 2 ** 32 });
      return {
        run(pages, toShared) {
          for (let i = 0; i < pages.length; i++) {
            region.convert(pages[i] * PAGE, PAGE, toShared[i] ? "shared" : "private");
            if (withGetpid) getpid();
          }
        },
        finish() {},
      };
    },
  };
}

const LOOPS: Loop[] = [
  regionLoop("region, no listener", false),
  regionLoop("region + getpid", true),
  memstateLoop("memstate, no system call", (size) => new QuietFile(size, false)),
  {
    name: "getpid",
    start: () => ({
      run(pages) {
        for (let i = 0; i < pages.length; i++) getpid();
      },
      finish() {},
    }),
  },
  memstateLoop("memstate + getpid", (size) => new QuietFile(size, true)),
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
  memstateLoop("memstate on memfds", memfdAsGuestMemfd),
];

/** One loop's microseconds per conversion: every repetition, in the order run. */
export interface PartTiming {
  /** The loop's name. */
  name: string;
  /** Microseconds per conversion of each repetition. */
  times: number[];
}

/** Times every loop `reps` times, interleaved, over `count` conversions. */
export function measureParts(count: number, reps: number): PartTiming[] {
  const { pages, toShared } = plan(count, 11);
  const timings = LOOPS.map((loop) => ({ name: loop.name, times: [] as number[] }));
  for (let r = 0; r < reps; r++) {
    LOOPS.forEach((loop, k) => {
      const repetition = loop.start();
      const t0 = performance.now();
      repetition.run(pages, toShared);
      timings[k].times.push(((performance.now() - t0) * 1000) / count);
      repetition.finish();
    });
  }
  return timings;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

/**
 * The median over repetitions of `a`'s time minus `b`'s: repetitions ran side
 * by side, so a slow stretch of the machine falls on both.
 */
function pairedExcess(a: PartTiming, b: PartTiming): number {
  return median(a.times.map((t, r) => t - b.times[r]));
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { reps: { type: "string" }, count: { type: "string" } },
  });
  const parts = measureParts(Number(values.count ?? 10_000), Number(values.reps ?? 15));
  for (const p of parts) {
    const best = Math.min(...p.times);
    console.log(
      `${p.name.padEnd(26)} best ${best.toFixed(3)} µs, median ${median(p.times).toFixed(3)} µs`,
    );
  }
  const [region, regionPid, alone, pid, withPid, punch, withPunch] = parts;
  const us = (x: number) => `${x.toFixed(2)} µs`;
  console.log(
    `the region alone costs ${us(median(region.times))}, ` +
      `${us(pairedExcess(regionPid, pid))} next to getpid`,
  );
  console.log(
    `memstate adds ${us(median(alone.times))} alone, ${us(pairedExcess(withPid, pid))} next to ` +
      `getpid, ${us(pairedExcess(withPunch, punch))} next to a memfd punch (medians)`,
  );
  getpidLibrary.close();
}
