/**
 * Hooks must be synchronous. memstate calls every listener and plugin hook
 * (`populate`, `discard`, `setup`, `stats`, `verify`, ...) and uses what it
 * did as soon as it returns: it never awaits. An async hook has not done its
 * work when it returns, and what it throws would surface later as an
 * unhandled rejection that kills the process. These helpers refuse such a
 * hook where it is given (an async function) and where it is called (a
 * returned promise).
 *
 * @module
 */

import { errorLine } from "./text.ts";

/**
 * How `fn` fails to be a plain synchronous function, in words ("an async
 * function"), or undefined when it is one (or is not a function at all).
 */
export function notSynchronous(fn: unknown): string | undefined {
  if (typeof fn !== "function") return undefined;
  switch (Object.prototype.toString.call(fn)) {
    case "[object AsyncFunction]":
      return "an async function";
    case "[object AsyncGeneratorFunction]":
      return "an async generator function";
    case "[object GeneratorFunction]":
      return "a generator function";
    default:
      return undefined;
  }
}

/**
 * Throws a TypeError, `"<subject> must be synchronous; it is <how><note>"`,
 * when `fn` is not a plain synchronous function ({@link notSynchronous}): the
 * check every place that takes a hook makes where the hook is given.
 */
export function refuseAsync(fn: unknown, subject: string, note = ""): void {
  const how = notSynchronous(fn);
  if (how) throw new TypeError(`${subject} must be synchronous; it is ${how}${note}`);
}

/** True when `value` is a promise or any other thenable. */
function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null &&
    typeof (value as { then?: unknown }).then === "function";
}

/**
 * Handles the rejection of `value`, a promise a hook returned and nobody will
 * await, so that it cannot end the process as an unhandled rejection.
 */
function ignoreRejection(value: PromiseLike<unknown>): void {
  try {
    value.then(undefined, () => {});
  } catch {
    // A thenable whose then throws has nothing left to reject.
  }
}

/**
 * Throws a TypeError when `returned`, what hook `hook` returned, is a promise
 * (after handling its rejection, so it cannot end the process): memstate
 * never awaits a hook, so its work was not done when it returned. Anything
 * else a hook returns is left alone. Every call of a listener goes through here.
 */
export function refusePromise(returned: unknown, hook: string): void {
  if (returned === undefined) return;
  const problem = promiseProblem(returned, hook);
  if (problem !== undefined) throw new TypeError(`${hook} ${problem}`);
}

/**
 * When `value`, what hook `hook` returned, is a promise: handles its
 * rejection and says so in words; otherwise undefined.
 */
function promiseProblem(value: unknown, hook: string): string | undefined {
  if (!isThenable(value)) return undefined;
  ignoreRejection(value);
  return `returned a Promise; ${hook} must be synchronous (memstate does not await it)`;
}

/**
 * Calls `call`, a hook named `hook` whose result memstate reads at once, and
 * returns what it returned, or the problem in words: "threw: ..." (the
 * error's first line) or "returned a Promise; ..." (its rejection handled).
 */
export function callSync(call: () => unknown, hook: string): { value: unknown } | {
  problem: string;
} {
  let value: unknown;
  try {
    value = call();
  } catch (e) {
    return { problem: `threw: ${errorLine(e)}` };
  }
  const problem = promiseProblem(value, hook);
  return problem === undefined ? { value } : { problem };
}
