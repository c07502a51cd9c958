/**
 * The one error type every hardware backend throws, simulated or real.
 *
 * A failed kernel call, whether it came from the simulator or from a real ioctl
 * through FFI, surfaces as a {@link HwError} carrying the kernel's errno name, so
 * plugins and tests handle both backends with the same code.
 *
 * @module
 */

/** The errno names the backends use, as the Linux kernel spells them. */
export type Errno =
  | "EPERM"
  | "ENOENT"
  | "EINTR"
  | "EIO"
  | "EBADF"
  | "EAGAIN"
  | "ENOMEM"
  | "EACCES"
  | "EFAULT"
  | "EBUSY"
  | "EEXIST"
  | "ENODEV"
  | "EINVAL"
  | "ENFILE"
  | "EMFILE"
  | "ENOTTY"
  | "EFBIG"
  | "ENOSPC"
  | "ERANGE"
  | "ENOSYS"
  | "EOPNOTSUPP"
  | "EOVERFLOW";

/** Linux x86-64 errno numbers, for translating real syscall results. */
export const ERRNO_NUMBERS: Readonly<Record<Errno, number>> = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  EFBIG: 27,
  ENOSPC: 28,
  ERANGE: 34,
  ENOSYS: 38,
  EOPNOTSUPP: 95,
  EOVERFLOW: 75,
};

/** Looks up the errno name for a number; unknown numbers map to `"EIO"`. */
export function errnoName(code: number): Errno {
  for (const [name, value] of Object.entries(ERRNO_NUMBERS)) {
    if (value === code) return name as Errno;
  }
  return "EIO";
}

/** Optional details a backend attaches to a {@link HwError}. */
export interface HwErrorDetails {
  /**
   * For in-place conversion (`EAGAIN`): the byte offset of the first page that
   * could not be converted because something else holds a reference to it.
   */
  errorOffset?: number;
  /** True when the error was produced by fault injection, not by a rule. */
  injected?: boolean;
}

/**
 * A failed hardware call. `errno` is the kernel's name for the failure and
 * `op` names the call (for example `"type1.map"` or `"kvm.setMemoryAttributes"`).
 * A failed call changed nothing unless its documentation says otherwise.
 */
export class HwError extends Error {
  /** The errno name, for example `"EEXIST"`. */
  readonly errno: Errno;
  /** The operation that failed, for example `"type1.map"`. */
  readonly op: string;
  /** See {@link HwErrorDetails.errorOffset}. */
  readonly errorOffset?: number;
  /** True when the failure came from fault injection. */
  readonly injected: boolean;

  /** Creates an error for `op` failing with `errno`; `message` says why. */
  constructor(op: string, errno: Errno, message: string, details: HwErrorDetails = {}) {
    super(`${op}: ${errno}: ${message}`);
    this.name = "HwError";
    this.errno = errno;
    this.op = op;
    this.errorOffset = details.errorOffset;
    this.injected = details.injected ?? false;
  }
}
