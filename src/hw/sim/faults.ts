/**
 * Fault injection for the simulated kernels.
 *
 * Every simulated operation calls {@link FaultInjector.check} with its name
 * before it looks at its arguments, so an injected failure happens exactly where
 * a real ioctl could fail and, like every failed call, changes nothing. Rules
 * either fail the n-th call of an operation (counted from when the rule is
 * added) or fail calls with a seeded probability, so a failing run can be
 * replayed from its seed. The errors carry `injected: true`.
 *
 * @module
 */

import { type Errno, HwError } from "../errors.ts";
import { Prng } from "../../util/prng.ts";
import { describeValue } from "../../util/text.ts";

/**
 * Every operation name the simulators check, for fault-injection sweeps:
 *
 * - `SimKvm`: `kvm.createGuestMemfd`, `kvm.createSharedMemory`,
 *   `kvm.setUserMemoryRegion2`, `kvm.setMemoryAttributes`
 * - `SimGuestMemfd`: `gmem.fallocate` (also `punchHole`), `gmem.setAttributes`
 *   (in-place conversion)
 * - `SimMemoryFile` (the shared memfd): `memfd.fallocate` (also `punchHole`)
 * - `SimType1Container`: `type1.map`, `type1.unmap`
 * - `SimIoas`: `ioas.map`, `ioas.unmap`, `ioas.cutMapping`
 *
 * Reads and writes through a file's host mapping are memory accesses, not
 * kernel calls, and are never injected.
 */
export const SIM_OPERATIONS = [
  "kvm.createGuestMemfd",
  "kvm.createSharedMemory",
  "kvm.setUserMemoryRegion2",
  "kvm.setMemoryAttributes",
  "gmem.fallocate",
  "gmem.setAttributes",
  "memfd.fallocate",
  "type1.map",
  "type1.unmap",
  "ioas.map",
  "ioas.unmap",
  "ioas.cutMapping",
] as const;

/** One of {@link SIM_OPERATIONS}. */
export type SimOperation = typeof SIM_OPERATIONS[number];

/** A rule's target: one operation, or `"*"` for every operation. */
export type FaultTarget = SimOperation | "*";

const KNOWN = new Set<string>(SIM_OPERATIONS);

interface NthRule {
  op: FaultTarget;
  /** The value of the op's call counter (or the total for "*") at which to fail. */
  at: number;
  errno: Errno;
}

interface ProbabilityRule {
  op: FaultTarget;
  p: number;
  prng: Prng;
  errno: Errno;
}

/** Decides which simulated calls fail; share one between simulators to count across them. */
export class FaultInjector {
  #counts = new Map<string, number>();
  #total = 0;
  #nth: NthRule[] = [];
  #probability: ProbabilityRule[] = [];
  #injected = 0;

  /**
   * Fails the `n`-th call (1-based) of `op` counted from now, once, with `errno`.
   * `op` may be `"*"`: the n-th simulated call of any kind.
   */
  failNth(op: FaultTarget, n: number, errno: Errno = "EIO"): void {
    checkTarget(op);
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`failNth: n must be an integer >= 1, got ${n}`);
    }
    const base = op === "*" ? this.#total : (this.#counts.get(op) ?? 0);
    this.#nth.push({ op, at: base + n, errno });
  }

  /**
   * Fails each call of `op` (or of every op with `"*"`) with probability `p`,
   * drawing from a generator seeded with `seed`, until {@link clear}.
   */
  failWithProbability(op: FaultTarget, p: number, seed: number, errno: Errno = "EIO"): void {
    checkTarget(op);
    if (typeof p !== "number" || !(p >= 0 && p <= 1)) {
      throw new RangeError(`failWithProbability: p must be in [0, 1], got ${p}`);
    }
    this.#probability.push({ op, p, prng: new Prng(seed), errno });
  }

  /**
   * Counts a call of `op` and throws an injected {@link HwError} when a rule says
   * so. Simulators call it first thing in every operation.
   */
  check(op: SimOperation): void {
    if (!KNOWN.has(op)) throw new RangeError(`check: unknown operation ${describeValue(op)}`);
    const count = (this.#counts.get(op) ?? 0) + 1;
    this.#counts.set(op, count);
    const total = ++this.#total;
    for (let i = 0; i < this.#nth.length; i++) {
      const rule = this.#nth[i];
      const hit = rule.op === "*" ? rule.at === total : rule.op === op && rule.at === count;
      if (hit) {
        this.#nth.splice(i, 1);
        this.#fail(op, rule.errno, `call #${count} of ${op} was chosen to fail`);
      }
    }
    for (const rule of this.#probability) {
      if ((rule.op === "*" || rule.op === op) && rule.prng.chance(rule.p)) {
        this.#fail(
          op,
          rule.errno,
          `call #${count} of ${op} failed with probability ${rule.p} (seed ${rule.prng.seed})`,
        );
      }
    }
  }

  /** How many times `op` was checked (failed calls included); `"*"` counts every op. */
  calls(op: FaultTarget): number {
    checkTarget(op);
    return op === "*" ? this.#total : (this.#counts.get(op) ?? 0);
  }

  /** How many failures were injected so far. */
  get injectedCount(): number {
    return this.#injected;
  }

  /** Removes every rule and resets the call counters. */
  clear(): void {
    this.#nth = [];
    this.#probability = [];
    this.#counts.clear();
    this.#total = 0;
    this.#injected = 0;
  }

  #fail(op: string, errno: Errno, why: string): never {
    this.#injected++;
    throw new HwError(op, errno, `injected fault: ${why}`, { injected: true });
  }
}

function checkTarget(op: string): void {
  if (op !== "*" && !KNOWN.has(op)) {
    throw new RangeError(
      `op: must be one of SIM_OPERATIONS or "*", got ${describeValue(op)}`,
    );
  }
}
