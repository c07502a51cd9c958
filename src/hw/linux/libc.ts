/**
 * The libc calls the Linux backend makes, loaded lazily through Deno FFI, and
 * the errno translation that turns a failed call into a {@link HwError}.
 *
 * Nothing here runs at import time: `dlopen` happens on the first
 * {@link libc} call, so importing the package needs no permissions and only
 * code that actually opens /dev/kvm needs `--allow-ffi`.
 *
 * ioctl(2) and syscall(2) are variadic in C. On x86-64 a variadic callee reads
 * integer and pointer arguments from the same registers as a fixed-parameter
 * one, so each is declared with fixed parameters under several aliases (FFI's
 * `name` field maps them all to the one symbol): an integer-argument ioctl
 * (KVM_CHECK_EXTENSION, KVM_CREATE_VM take plain integers) and a
 * pointer-argument one (every struct ioctl).
 *
 * @module
 */

import { errnoName, HwError } from "../errors.ts";

const SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32", nonblocking: false },
  close: { parameters: ["i32"], result: "i32", nonblocking: false },
  ioctlInt: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32", nonblocking: false },
  ioctlPtr: {
    name: "ioctl",
    parameters: ["i32", "u64", "buffer"],
    result: "i32",
    nonblocking: false,
  },
  mmap: {
    parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"],
    result: "pointer",
    nonblocking: false,
  },
  munmap: { parameters: ["pointer", "usize"], result: "i32", nonblocking: false },
  memfd_create: { parameters: ["buffer", "u32"], result: "i32", nonblocking: false },
  ftruncate: { parameters: ["i32", "i64"], result: "i32", nonblocking: false },
  fallocate: { parameters: ["i32", "i32", "i64", "i64"], result: "i32", nonblocking: false },
  // syscall(SYS_cachestat, fd, &range, &stat, flags): glibc 2.36 has no wrapper.
  // Every argument is passed as a full 64-bit register value.
  syscall4: {
    name: "syscall",
    parameters: ["i64", "i64", "buffer", "buffer", "i64"],
    result: "i64",
    nonblocking: false,
  },
  __errno_location: { parameters: [], result: "pointer", nonblocking: false },
  pthread_sigmask: { parameters: ["i32", "buffer", "buffer"], result: "i32", nonblocking: false },
  getpagesize: { parameters: [], result: "i32", nonblocking: false },
} as const;

/** The typed FFI symbols of libc this backend uses. */
export type LibcSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** A loaded libc: its symbols, the calling thread's errno and the host page size. */
export interface Libc {
  /** The raw FFI symbols. */
  readonly sym: LibcSymbols;
  /** The host page size in bytes (`getpagesize()`). */
  readonly pageSize: number;
  /** Reads the calling thread's errno. Call it right after the failed call. */
  errno(): number;
}

/** x86-64 syscall number of cachestat(2) (Linux 6.5+). */
export const SYS_CACHESTAT = 451;

let loaded: Libc | undefined;

/**
 * Loads libc on first use. Throws a plain `Error` naming what is missing when
 * the platform or the permission is wrong, so nothing is dlopened by accident.
 */
export function libc(): Libc {
  if (loaded) return loaded;
  if (Deno.build.os !== "linux") {
    throw new Error(`the linux KVM backend needs Linux; this is ${Deno.build.os}`);
  }
  requireFfiPermission();
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen("libc.so.6", SYMBOLS);
  } catch (cause) {
    throw new Error(
      `the linux KVM backend could not load libc.so.6 (glibc is required): ${String(cause)}`,
      { cause },
    );
  }
  const sym = lib.symbols;
  // errno lives in thread-local storage; its address is fixed for the thread,
  // so one view serves every later read without another FFI call in between.
  const errnoView = new Deno.UnsafePointerView(sym.__errno_location()!);
  loaded = { sym, pageSize: sym.getpagesize(), errno: () => errnoView.getInt32() };
  return loaded;
}

function requireFfiPermission(): void {
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    throw new Deno.errors.NotCapable(
      "the linux KVM backend needs --allow-ffi (it calls ioctl, mmap and fallocate in libc)",
    );
  }
}

/**
 * Builds the {@link HwError} for a libc call that just returned -1. Call it
 * right after the failed call, with nothing but string building in between:
 * errno is read through the cached thread-local pointer (no FFI call), and
 * any other libc or system call first could overwrite it. `errnoName` maps
 * numbers it does not know to EIO, so the message keeps the raw number.
 */
export function lastError(op: string, what: string): HwError {
  const code = libc().errno();
  return new HwError(op, errnoName(code), `${what} failed (errno ${code})`);
}

/** pthread_sigmask's `how` values on Linux (asm-generic/signal-defs.h). */
const SIG_BLOCK = 0;
const SIG_SETMASK = 2;
/** glibc's sigset_t: 1024 bits. */
const SIGSET_BYTES = 128;

/**
 * Runs `fn` with every signal blocked on the calling thread, then restores
 * the mask (signals that arrived meanwhile are delivered then, or to another
 * thread). For the rare, slow calls where a signal does harm twice: the
 * kernel gives up with EINTR when one is pending (KVM_CREATE_VM), and a
 * handler that runs between the failed call and the errno read may overwrite
 * errno (Deno's own signal listeners do: a flood of SIGUSR1 turned EINTR into
 * EAGAIN, tests/linux_signals_test.ts). The kernel ignores SIGKILL and SIGSTOP
 * in the mask and glibc keeps its internal signals. Not for the per-conversion
 * path: two more FFI calls would cost more than the call they guard.
 */
export function withSignalsBlocked<T>(fn: () => T): T {
  const { sym } = libc();
  const all = new Uint8Array(SIGSET_BYTES).fill(0xff);
  const old = new Uint8Array(SIGSET_BYTES);
  // pthread_sigmask returns an error number (never sets errno); on failure run unguarded.
  if (sym.pthread_sigmask(SIG_BLOCK, all, old) !== 0) return fn();
  try {
    return fn();
  } finally {
    sym.pthread_sigmask(SIG_SETMASK, old, null);
  }
}

/** ioctl(fd, request, &struct): returns the raw result; on -1 call {@link lastError} next. */
export function ioctlPtr(fd: number, request: number, arg: Uint8Array<ArrayBuffer>): number {
  return libc().sym.ioctlPtr(fd, BigInt(request), arg);
}

/** ioctl(fd, request, integer): returns the raw result; on -1 call {@link lastError} next. */
export function ioctlInt(fd: number, request: number, arg: number): number {
  return libc().sym.ioctlInt(fd, BigInt(request), BigInt(arg));
}

/** A NUL-terminated copy of `text` for a `char *` argument. */
export function cString(text: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`${text}\0`);
}
