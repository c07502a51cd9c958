/**
 * Checks of the command line's files before any work: every output file
 * (`--svg`, `--save-state`) must be writable where it is named, and every
 * input file (`--load-state`) readable, so a typo costs nothing instead of a
 * whole run.
 *
 * @module
 */

import { basename, dirname, resolve } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { outputPathProblem } from "../host/report/output_path.ts";
import { displayPath } from "../util/text.ts";
import { readProblem } from "../util/_file_problem.ts";

/** A mistake on the command line: one line naming the option, the value and the rule. */
export class UsageError extends Error {
  /** Builds the error; `message` names the option. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Checks that `option`'s file `path` can be written: a file name, not `-`
 * (outputs go to files; the report itself goes to standard output), not a
 * directory, in a directory that exists, writable
 * (src/host/report/output_path.ts: a file that does not exist is created and
 * removed again to find out).
 *
 * @throws {UsageError} naming the option, the path and why not
 */
export async function checkOutputFile(option: string, path: string): Promise<void> {
  if (path === "-") {
    throw new UsageError(
      `${option}: "-" names no file here; give a file name (the report goes to standard output)`,
    );
  }
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
      throw new UsageError(`${option} ${displayPath(path)}: is a directory; give a file`);
    }
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${option} ${displayPath(path)}: ${readProblem(e)}`);
  }
}

/**
 * Checks that no output names the same file as another output or as an
 * input: by where the path leads once links are followed (`out/x.svg`,
 * `./out/x.svg` and `link-to-out/x.svg` are one file, whether or not it
 * exists yet) and, where both exist, by device and inode (hard links). Each
 * pair is `[option, path]`.
 *
 * @throws {UsageError} naming both options and the file
 */
export function checkDistinctFiles(
  outputs: readonly [string, string][],
  inputs: readonly [string, string][],
): void {
  const seen = inputs.map(([option, path]) => ({ option, path, input: true, id: identify(path) }));
  for (const [option, path] of outputs) {
    const id = identify(path);
    const other = seen.find((s) => sameFile(s.id, id));
    if (other) {
      const role = other.input ? "it would overwrite an input" : "both would write it";
      throw new UsageError(
        `${option} ${displayPath(path)}: ${other.option} names the same file; ${role}`,
      );
    }
    seen.push({ option, path, input: false, id });
  }
}

/** Where a path leads, and the file there when it exists (device and inode). */
interface FileIdentity {
  destination: string;
  inode?: string;
}

/**
 * Where `path` leads: the real path of the file when it exists, else the
 * real path of its directory (when that exists) joined with its name; and,
 * for a file that exists, its device and inode (hard links).
 */
function identify(path: string): FileIdentity {
  let inode: string | undefined;
  try {
    const info = Deno.statSync(path);
    if (info.ino !== null) inode = `${info.dev}:${info.ino}`;
  } catch {
    // Not there (yet): its destination says it all.
  }
  return { destination: destination(path), inode };
}

function destination(path: string): string {
  const absolute = resolve(path);
  try {
    return Deno.realPathSync(absolute);
  } catch {
    try {
      return resolve(Deno.realPathSync(dirname(absolute)), basename(absolute));
    } catch {
      return absolute;
    }
  }
}

function sameFile(x: FileIdentity, y: FileIdentity): boolean {
  return x.destination === y.destination || (x.inode !== undefined && x.inode === y.inode);
}

/**
 * The file a module specifier names, for the checks above: a path as it is,
 * a `file:` URL as its path, and undefined for any other URL (`https:`,
 * `npm:`), which names no local file.
 */
export function moduleFile(specifier: string): string | undefined {
  if (specifier.startsWith("/") || !/^[a-z][a-z0-9+.-]*:/i.test(specifier)) return specifier;
  if (!/^file:/i.test(specifier)) return undefined;
  try {
    return fromFileUrl(specifier);
  } catch {
    return undefined; // not a valid file URL: loading it fails with its own message
  }
}
