/**
 * Checks, before a run starts, that a report file (`--html`, `--svg`) can be
 * written, so a long run is not thrown away for a typo in a path.
 *
 * @module
 */

import { displayPath } from "../../util/text.ts";

/**
 * Returns one line saying why `path` cannot be written as a file, or
 * `undefined` when it can: it must not be a directory, and it must be
 * writable (an existing file is opened for writing without truncating it; a
 * new one is created and removed again, in a directory that exists).
 *
 * @param path the file to check (quoted in the message when it holds a newline or another
 *   control character)
 * @param flag the option that named it, for the message (e.g. `"--html"`)
 */
export async function outputPathProblem(path: string, flag: string): Promise<string | undefined> {
  if (path === "") return `${flag}: needs a file name`;
  const shown = displayPath(path);
  const cannot = (why: string) => `${flag}: cannot write ${shown}: ${why}`;
  try {
    if ((await Deno.stat(path)).isDirectory) {
      return `${flag}: ${shown} is a directory; give a file name`;
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) return cannot(writeFailure(e));
  }
  // Another check may make or remove the file between any two steps here (two runs checking
  // one default path at once, as the bench CLI test's cases do): a step that finds the file
  // changed under it goes back to the first. Of checks racing so, one at least gets through
  // each time round (the one that made the file), so the bound is only a backstop.
  for (let attempt = 0;; attempt++) {
    try {
      (await Deno.open(path, { write: true })).close(); // an existing file, left as it is
      return undefined;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) return cannot(writeFailure(e));
    }
    try {
      (await Deno.open(path, { write: true, createNew: true })).close();
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists && attempt < 100) continue;
      if (e instanceof Deno.errors.NotFound) return cannot("its directory does not exist");
      return cannot(writeFailure(e));
    }
    try {
      await Deno.remove(path); // made here, so removed again
    } catch (e) {
      // Gone already is another check's doing; anything else is said as before this loop.
      if (!(e instanceof Deno.errors.NotFound)) return cannot(writeFailure(e));
    }
    return undefined;
  }
}

/** Why a file could not be written, in a few lower-case words (from a Deno error). */
export function writeFailure(e: unknown): string {
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "it is a directory";
  if (e instanceof Deno.errors.NotADirectory) return "a part of the path is not a directory";
  const m = e instanceof Error ? e.message : String(e);
  // Deno's messages end with the syscall and path: keep the first clause.
  return m.split(/[:,(]/)[0].trim().toLowerCase() || "unknown error";
}
