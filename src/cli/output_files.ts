/**
 * Writing a run's output files (`--svg`, `--html`, `--save-state`) all or
 * nothing. Each regular file is written beside its destination under a
 * temporary name and renamed over it only once every output has been
 * written, so a write that fails (a full disk) leaves every file as it was:
 * no cut-off SVG where a good one stood, no saved state next to a missing
 * report. A destination that exists and is not a regular file (`/dev/null`,
 * a FIFO) cannot be replaced by a rename and is written in place, before the
 * renames; a symbolic link is written through, as a plain write would.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { writeFailure } from "../host/report/output_path.ts";
import { displayPath } from "../util/text.ts";

/** One output: the option that named it, its path and how to make its content. */
export interface OutputFile {
  /** The option, for the message (e.g. `"--svg"`). */
  option: string;
  /** Where it goes. */
  path: string;
  /** Its content, made only when it is its turn to be written. */
  content: () => Uint8Array | string;
}

/** A file written under a temporary name, waiting to be renamed to `target`. */
interface Staged {
  temporary: string;
  target: string;
}

/**
 * Writes every file of `files`, or none: returns undefined when all were
 * written, else one line naming the option, the path and why, with every
 * destination left as it was (devices and FIFOs aside: what was written to
 * one of them before another output failed stays written).
 */
export async function writeOutputs(files: readonly OutputFile[]): Promise<string | undefined> {
  const staged: Staged[] = [];
  for (const file of files) {
    try {
      const target = await destinationOf(file.path);
      const data = file.content();
      if (target.inPlace) {
        await write(file.path, data);
        continue;
      }
      const temporary = join(
        dirname(target.path),
        `.${basename(target.path)}.memstate-${Deno.pid}-${staged.length}.tmp`,
      );
      staged.push({ temporary, target: target.path });
      await write(temporary, data, target.mode);
    } catch (e) {
      await Promise.all(staged.map((s) => Deno.remove(s.temporary).catch(() => {})));
      return `${file.option}: cannot write ${displayPath(file.path)}: ${writeFailure(e)}`;
    }
  }
  for (const s of staged) await Deno.rename(s.temporary, s.target);
  return undefined;
}

/**
 * Where `path`'s content goes: its real path when it exists (links
 * followed), with its permission bits to keep; `inPlace` when it exists and
 * is not a regular file.
 */
async function destinationOf(
  path: string,
): Promise<{ path: string; inPlace: boolean; mode?: number }> {
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) return { path, inPlace: true };
    return { path: await Deno.realPath(path), inPlace: false, mode: (info.mode ?? 0o644) & 0o7777 };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { path, inPlace: false };
    throw e;
  }
}

async function write(path: string, data: Uint8Array | string, mode?: number): Promise<void> {
  if (typeof data === "string") await Deno.writeTextFile(path, data);
  else await Deno.writeFile(path, data);
  if (mode !== undefined) await Deno.chmod(path, mode);
}
