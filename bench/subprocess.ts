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
 * that an interrupt can end it.
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
  const out = await child.output();
  return out.code === 0 ? JSON.parse(new TextDecoder().decode(out.stdout)) as T : undefined;
}
