/**
 * Shared by the tests of the real Linux backend: probe /dev/kvm once, say
 * once why the tests are skipped, and count what the process holds.
 *
 * @module
 */

import { type KvmProbe, probeKvm } from "../../src/hw/linux/mod.ts";

/** The probe result; tests pass `ignore: !probe.available`. */
export const probe: KvmProbe = probeKvm();

/** Prints the skip reason once per test module (call at module level). */
export function announceSkip(module: string): void {
  if (!probe.available) console.log(`${module}: skipping real KVM tests: ${probe.reason}`);
}

// Deno lets only --allow-all read /proc/self, so the fd and mapping checks read
// it through libc instead: they need --allow-ffi, which these tests need anyway.
let procLib: Deno.DynamicLibrary<typeof PROC_SYMBOLS> | undefined;
const PROC_SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
} as const;

function proc(): Deno.DynamicLibrary<typeof PROC_SYMBOLS>["symbols"] {
  procLib ??= Deno.dlopen("libc.so.6", PROC_SYMBOLS);
  return procLib.symbols;
}

const cPath = (path: string) => new TextEncoder().encode(`${path}\0`);

/** The open fds of this process with their /proc/self/fd link targets (fds below 4096). */
function openFds(): { fd: number; target: string }[] {
  const out: { fd: number; target: string }[] = [];
  const buf = new Uint8Array(4096);
  for (let fd = 0; fd < 4096; fd++) {
    const n = Number(proc().readlink(cPath(`/proc/self/fd/${fd}`), buf, BigInt(buf.length)));
    if (n >= 0) out.push({ fd, target: new TextDecoder().decode(buf.subarray(0, n)) });
  }
  return out;
}

/** Number of open fds (the entries of /proc/self/fd). */
export function fdCount(): number {
  return openFds().length;
}

/** The open fds that point at KVM or at this backend's memfds. */
export function kvmFds(): string[] {
  return openFds().filter((f) => /kvm|memstate-shared/.test(f.target)).map((f) =>
    `${f.fd} -> ${f.target}`
  );
}

/** The text of a file under /proc, read through libc. */
function readProc(path: string): string {
  const fd = proc().open(cPath(path), 0);
  if (fd < 0) throw new Error(`cannot open ${path}`);
  const chunks: Uint8Array[] = [];
  try {
    for (;;) {
      const buf = new Uint8Array(65536);
      const n = Number(proc().read(fd, buf, BigInt(buf.length)));
      if (n <= 0) break;
      chunks.push(buf.subarray(0, n));
    }
  } finally {
    proc().close(fd);
  }
  return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
}

/** Mappings of guest_memfds and of this backend's memfds in /proc/self/maps. */
export function kvmMappings(): string[] {
  const text = readProc("/proc/self/maps");
  return text.split("\n").filter((line) => /kvm-gmem|memstate-shared/.test(line));
}

/** The running kernel's release, such as "6.18.44" (/proc/sys/kernel/osrelease). */
export function kernelRelease(): string {
  return readProc("/proc/sys/kernel/osrelease").trim();
}

/** A page-sized pattern: every byte is `seed + index` modulo 251. */
export function pattern(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (seed + i) % 251);
}
