/**
 * The memstate command line. Run `deno run -A jsr:@cvm/memstate/cli --help`.
 *
 * @module
 */

/** Runs the command line with `args`; returns the process exit code. */
export function main(args: string[]): number {
  if (args.length === 0 || args.includes("--help")) {
    console.log("memstate: the command line arrives with the host configuration runner.");
    return 0;
  }
  console.error(`memstate: unknown command ${JSON.stringify(args[0])}; see --help`);
  return 2;
}

if (import.meta.main) Deno.exit(main(Deno.args));
