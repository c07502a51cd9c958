// The command line run in-process, its output captured: what every CLI test calls.
import { main } from "../../cli.ts";

/** What one in-process run of the CLI returned and printed. */
export interface CliResult {
  /** The exit status `main` returned. */
  code: number;
  /** Everything written to standard output, lines joined with "\n". */
  out: string;
  /** Everything written to standard error, lines joined with "\n". */
  err: string;
}

/** Runs `memstate ARGS...` non-interactively; `extra` overrides the terminal (progress tests). */
export async function runCli(
  args: string[],
  extra: Partial<Parameters<typeof main>[1]> = {},
): Promise<CliResult> {
  const out: string[] = [], err: string[] = [];
  const code = await main(args, {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    interactive: false,
    ...extra,
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

/** Runs `memstate ARGS...` non-interactively. */
export function cli(...args: string[]): Promise<CliResult> {
  return runCli(args);
}
