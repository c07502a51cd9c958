/**
 * Why a file could not be read, in a few words for a one-line message: the
 * one wording for a configuration, a trace and a saved state alike.
 *
 * @module
 */

import { escapeControls } from "./text.ts";

/**
 * Why reading a file failed, from the error Deno threw: not there, the
 * operating system's refusal, or Deno's own (its permission flags). Deno names
 * the flag it wants in its message, and for a device file such as /dev/stdin
 * that is `--allow-all` whatever `--allow-read` grants, so the flag is taken
 * from the message rather than assumed. `deviceFileHint` is added to that
 * case's message, for a caller that has a way round it (standard input as `-`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readProblem } from "./_file_problem.ts";
 * assert.equal(readProblem(new Deno.errors.NotFound("x")), "file not found");
 * const all = new Deno.errors.NotCapable(
 *   'Requires all access to "/dev/stdin", run again with the --allow-all flag',
 * );
 * assert.match(readProblem(all), /only with --allow-all/);
 * ```
 */
export function readProblem(e: unknown, deviceFileHint = ""): string {
  if (e instanceof Deno.errors.NotFound) return "file not found";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied (cannot read it)";
  if (e instanceof Deno.errors.NotADirectory) return "a part of the path is not a directory";
  const text = e instanceof Error ? e.message : String(e);
  if (e instanceof Deno.errors.NotCapable) {
    const flag = /run again with the (--allow-[a-z-]+) flag/.exec(text)?.[1] ?? "--allow-read";
    return flag === "--allow-all"
      ? "not allowed: Deno reads a device file only with --allow-all; give a regular file" +
        deviceFileHint
      : `not allowed: run with ${flag}`;
  }
  // Deno's messages end with the errno, the syscall and the path: keep what comes before.
  return `cannot read it: ${
    escapeControls(text.split("\n")[0].replace(/\s*\(os error \d+\).*$/s, ""))
  }`;
}
