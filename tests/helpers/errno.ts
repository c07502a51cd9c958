// The tests' checks for kernel errors: a HwError with the expected errno, and a
// refused call that changed nothing.
import assert from "node:assert/strict";
import { type Errno, HwError } from "../../src/hw/errors.ts";

/** What else an expected error must have besides its errno. */
export interface ErrnoExpectation {
  /** A pattern the message must match. */
  message?: RegExp;
  /** The operation that failed (e.g. `"gmem.fallocate"`). */
  op?: string;
  /** Whether a fault injector made the call fail (default false: the kernel's rules did). */
  injected?: boolean;
}

/**
 * An `assert.throws` validator for a {@link HwError} with errno `code`; by
 * default it must come from the rules, not from fault injection. A RegExp as
 * the second argument is the message pattern.
 */
export function errno(code: Errno, expect: RegExp | ErrnoExpectation = {}) {
  const o: ErrnoExpectation = expect instanceof RegExp ? { message: expect } : expect;
  return (e: unknown): true => {
    assert.ok(e instanceof HwError, `expected HwError, got ${e}`);
    assert.equal(e.errno, code, e.message);
    assert.equal(e.injected, o.injected ?? false, e.message);
    if (o.op !== undefined) assert.equal(e.op, o.op);
    if (o.message) assert.match(e.message, o.message);
    return true;
  };
}

/**
 * Asserts that `call` fails with errno `code` (and `message`, if given) and
 * that `state()` reads the same before and after: a refused call changes nothing.
 */
export function refuses(
  state: () => unknown,
  call: () => unknown,
  code: Errno,
  message?: RegExp,
): void {
  const before = state();
  assert.throws(call, errno(code, message));
  assert.deepEqual(state(), before);
}
