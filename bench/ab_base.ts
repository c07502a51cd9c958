/**
 * The other side of an A/B benchmark (`bench/store_ab.ts`, `bench/replay_ab.ts`):
 * this repository's code at another git revision, checked out into a
 * temporary git worktree for the length of one comparison, and the
 * comparison processes that load both sides.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";
import { usage } from "./cli_args.ts";
import { jsonFromProcess } from "./subprocess.ts";

/** Runs git in `cwd`; its output, trimmed, or an error with what git said. */
export function git(args: string[], cwd: string): string {
  const out = new Deno.Command("git", { args, cwd, stdout: "piped", stderr: "piped" }).outputSync();
  if (out.code !== 0) {
    throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout).trim();
}

/** Removes the worktree at `dir` (and its directory, whatever git says). */
function removeWorktree(dir: string, root: string): void {
  try {
    git(["worktree", "remove", "--force", dir], root);
  } catch {
    Deno.removeSync(dir, { recursive: true });
    git(["worktree", "prune"], root);
  }
}

/**
 * Runs a comparison process ({@link jsonFromProcess}, ended at once by
 * Ctrl-C) and returns what it printed; when it fails (it said why on
 * standard error), the comparison ends there: {@link withBaseWorktree} says
 * so in one line, removes the worktree and exits with status 1.
 */
export type RunProcess = <T>(url: string, args: string[]) => Promise<T>;

/** A comparison process failed: {@link withBaseWorktree} ends the comparison. */
class ComparisonFailed extends Error {}

/**
 * Ends `script` with a usage error unless `dir`, given to a comparison
 * process as `--worktree`, is an absolute path to a checkout holding `file`.
 */
export function checkWorktree(script: string, dir: string, file: string): void {
  if (!isAbsolute(dir) || !existsSync(join(dir, file))) {
    usage(script, `--worktree: an absolute path to a checkout of this repository, got ${dir}`);
  }
}

/** What {@link withBaseWorktree} gives the comparison. */
export interface BaseCheckout {
  /** The worktree's directory (absolute). */
  dir: string;
  /** `this checkout against <base> (<commit>)`, for the first line of output. */
  label: string;
  /** Runs a comparison process that Ctrl-C ends with the worktree. */
  run: RunProcess;
}

/**
 * Checks `base` out into a temporary worktree, calls `compare` with it, and
 * removes the worktree afterwards, also on Ctrl-C (which ends the running
 * comparison process too, with exit status 130). A `base` that is not a
 * revision of this repository is a usage error of `script` (one line, exit
 * status 2); a comparison process that fails ends `script` with status 1
 * ({@link RunProcess}). Resolves to what `compare` resolves to.
 */
export async function withBaseWorktree<T>(
  script: string,
  base: string,
  compare: (checkout: BaseCheckout) => Promise<T>,
): Promise<T> {
  const root = fileURLToPath(new URL("..", import.meta.url));
  let commit: string;
  try {
    commit = git(["rev-parse", "--verify", `${base}^{commit}`], root);
  } catch {
    usage(script, `--base: "${base}" is not a revision of this repository`);
  }
  const dir = Deno.makeTempDirSync({ prefix: "memstate-ab-" });
  let child: Deno.ChildProcess | undefined;
  // An interrupt skips `finally`: end the comparison process and the worktree here too.
  const interrupted = () => {
    try {
      child?.kill("SIGKILL");
    } catch {
      // Ctrl-C reached the child too, and it has ended already.
    }
    removeWorktree(dir, root);
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", interrupted);
  try {
    git(["worktree", "add", "--detach", dir, commit], root);
    const run: RunProcess = async <R>(url: string, args: string[]) => {
      const result = await jsonFromProcess<R>(url, args, (c) => child = c);
      child = undefined;
      if (result === undefined) throw new ComparisonFailed();
      return result;
    };
    return await compare({
      dir,
      label: `this checkout against ${base} (${commit.slice(0, 12)})`,
      run,
    });
  } catch (e) {
    if (!(e instanceof ComparisonFailed)) throw e;
    console.error(`${script}: a comparison process failed (above)`);
  } finally {
    Deno.removeSignalListener("SIGINT", interrupted);
    removeWorktree(dir, root);
  }
  Deno.exit(1); // only after a comparison process failed
}
