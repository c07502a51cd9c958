/**
 * What this machine can run, checked before a host is built: a configuration
 * can be valid and still be more than the machine has. Each check refuses
 * with one line naming the figure that is wrong and the fix, instead of
 * failing deep inside the run (or being killed by the kernel half an hour
 * in):
 *
 * - the Linux backend needs Deno's FFI and /dev/kvm permissions;
 * - every region's shared backing is mapped into the (simulated) host
 *   process: together they must fit its address space (x86-64 user space,
 *   2^47 bytes, above where mappings start);
 * - a bitmap store takes one bit per page for every state bit it holds, in
 *   memory: it must fit the machine's available memory.
 *
 * @module
 */

import { HOST_ADDRESS_LIMIT } from "../hw/sim/host_memory.ts";
import { missingPermissions } from "../hw/linux/permissions.ts";
import { formatSize } from "../util/bytes.ts";
import { displayPath } from "../util/text.ts";
import type { HostConfig, StoreKind } from "./config/schema.ts";

/** Where the simulated host's first mapping goes (hw/sim/host_memory.ts: 1 TiB). */
const FIRST_MAPPING = 2 ** 40;

/** A host this machine cannot run; the message has one line per problem. */
export class HostLimitError extends Error {
  /** One line per problem, each naming the figure and the fix. */
  readonly problems: string[];

  /** Builds the error from its `problems` (at least one). */
  constructor(problems: string[]) {
    super(problems.join("\n"));
    this.name = "HostLimitError";
    this.problems = problems;
  }
}

/** Options of {@link checkHostLimits}. */
export interface HostLimitOptions {
  /** The store every region uses (overrides the configuration, as `--store` does). */
  store?: StoreKind;
  /**
   * Bytes of memory available for a bitmap store (default: the machine's
   * available memory, from `Deno.systemMemoryInfo()` or /proc/meminfo; no
   * check when neither can be read).
   */
  availableMemory?: number;
}

/**
 * The problems that keep `config` from running on this machine (empty when
 * it can run); see the module documentation.
 */
export function hostLimitProblems(config: HostConfig, options: HostLimitOptions = {}): string[] {
  const problems: string[] = [];
  if (config.backend === "linux") {
    const missing = missingPermissions();
    if (missing.length > 0) {
      problems.push(
        `${displayPath(config.source)}: backend "linux" needs ${
          missing.join(" ")
        } (not granted); run with ` +
          `them, or use "backend": "sim"`,
      );
    }
  } else {
    // Each region maps its shared backing (or its in-place guest_memfd) once.
    const room = HOST_ADDRESS_LIMIT - FIRST_MAPPING;
    let used = 0;
    for (const [i, r] of config.regions.entries()) {
      // As SimHost.reserve aligns: 1 GiB for mappings of 1 GiB and more, else 2 MiB.
      const align = r.size >= 2 ** 30 ? 2 ** 30 : 2 ** 21;
      used += Math.ceil(r.size / align) * align;
      if (used > room) {
        problems.push(
          `${displayPath(config.source)}: regions[${i}] ${
            JSON.stringify(r.name)
          }: the regions up to this one ` +
            `need ${formatSize(used)} of host address space, more than the ${formatSize(room)} ` +
            `a host process can map (x86-64 user space is 2^47 bytes); make the regions smaller`,
        );
        break;
      }
    }
  }
  let bitmap = 0;
  for (const r of config.regions) {
    if ((options.store ?? r.store) !== "bitmap") continue;
    bitmap += Math.ceil(r.size / r.pageSize / 32) * 4; // guest_memfd's shared bit
    for (const d of config.devices) {
      if (d.type === "virtio-mem" && d.region === r.name) {
        bitmap += Math.ceil(d.size / d.blockSize / 32) * 4; // virtio-mem's plugged bit
      }
    }
  }
  if (bitmap > 0) {
    const available = options.availableMemory ?? availableMemory();
    if (available !== undefined && bitmap > available) {
      problems.push(
        `${displayPath(config.source)}: the bitmap store needs ${
          formatSize(bitmap)
        } (one bit per page per ` +
          `state bit), more than the ${formatSize(available)} of memory available; use ` +
          `"store": "range-tree" (or --store range-tree)`,
      );
    }
  }
  return problems;
}

/** Throws a {@link HostLimitError} when {@link hostLimitProblems} finds any. */
export function checkHostLimits(config: HostConfig, options: HostLimitOptions = {}): void {
  const problems = hostLimitProblems(config, options);
  if (problems.length > 0) throw new HostLimitError(problems);
}

/**
 * The machine's available memory in bytes: `Deno.systemMemoryInfo()` when
 * `--allow-sys` grants it, else MemAvailable from /proc/meminfo (the same
 * figure on Linux); undefined when neither can be read.
 */
export function availableMemory(): number | undefined {
  try {
    const sys = Deno.permissions.querySync({ name: "sys", kind: "systemMemoryInfo" });
    if (sys.state === "granted") return Deno.systemMemoryInfo().available;
    const read = Deno.permissions.querySync({ name: "read", path: "/proc/meminfo" });
    if (read.state !== "granted") return undefined;
    const m = /^MemAvailable:\s+(\d+) kB$/m.exec(Deno.readTextFileSync("/proc/meminfo"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
