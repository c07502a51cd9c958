/**
 * A bench script's part run in a process of its own (so that no part leaves
 * its V8 type feedback in another's): the script runs itself with other
 * arguments and prints its result as JSON on standard output.
 *
 * @module
 */

/**
 * Runs the module at `url` (a script's own `import.meta.url`) with `args` in
 * a new Deno process with every permission, and parses what it printed as
 * JSON; undefined when it failed (it said why on standard error, which is
 * passed through). `started`, if given, gets the process while it runs, so
 * that the caller's interrupt handling can end it; without it, a SIGINT or
 * SIGTERM to this process while the child runs goes to the child too, and
 * this process exits (130 or 143), so that no child is left running alone
 * (as when `bench/report_runs.ts` stops a report).
 */
export async function jsonFromProcess<T>(
  url: string,
  args: string[],
  started?: (child: Deno.ChildProcess) => void,
): Promise<T | undefined> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", url, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  started?.(child);
  const forward = (signal: "SIGINT" | "SIGTERM") => () => {
    try {
      child.kill(signal);
    } catch {
      // it had ended
    }
    Deno.exit(signal === "SIGINT" ? 130 : 143);
  };
  const onInt = forward("SIGINT"), onTerm = forward("SIGTERM");
  if (started === undefined) {
    Deno.addSignalListener("SIGINT", onInt);
    Deno.addSignalListener("SIGTERM", onTerm);
  }
  try {
    const out = await child.output();
    return out.code === 0 ? JSON.parse(new TextDecoder().decode(out.stdout)) as T : undefined;
  } finally {
    if (started === undefined) {
      Deno.removeSignalListener("SIGINT", onInt);
      Deno.removeSignalListener("SIGTERM", onTerm);
    }
  }
}
