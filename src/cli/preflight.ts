/**
 * Checks of the command line's files before any work: every output file
 * (`--svg`, `--save-state`) must be writable where it is named, and every
 * input file (`--load-state`) readable, so a typo costs nothing instead of a
 * whole run.
 *
 * @module
 */

import { outputPathProblem } from "../host/report/output_path.ts";

/** A mistake on the command line: one line naming the option, the value and the rule. */
export class UsageError extends Error {
  /** Builds the error; `message` names the option. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Checks that `option`'s file `path` can be written: not a directory, in a
 * directory that exists, writable (src/host/report/output_path.ts: a file that
 * does not exist is created and removed again to find out).
 *
 * @throws {UsageError} naming the option, the path and why not
 */
export async function checkOutputFile(option: string, path: string): Promise<void> {
  const problem = await outputPathProblem(path, option);
  if (problem !== undefined) throw new UsageError(problem);
}

/**
 * Reads `option`'s input file `path`.
 *
 * @throws {UsageError} naming the option, the path and why it cannot be read
 */
export async function readInputFile(option: string, path: string): Promise<Uint8Array> {
  try {
    const info = await Deno.stat(path);
    if (info.isDirectory) {
      throw new UsageError(`${option} ${JSON.stringify(path)}: is a directory; give a file`);
    }
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${option} ${JSON.stringify(path)}: ${why(e, "read")}`);
  }
}

function why(e: unknown, access: "read" | "write"): string {
  if (e instanceof Deno.errors.NotFound) return "file not found";
  if (e instanceof Deno.errors.PermissionDenied) return `permission denied (cannot ${access} it)`;
  if (e instanceof Deno.errors.NotCapable) return `not allowed: run with --allow-${access}`;
  if (e instanceof Deno.errors.IsADirectory) return "is a directory; give a file name";
  if (e instanceof Deno.errors.NotADirectory) return "a part of the path is not a directory";
  return `cannot ${access} it: ${e instanceof Error ? e.message : String(e)}`;
}
