/**
 * Command-line options of the bench scripts that take them apart or compare
 * revisions (`linux_rows.ts`, `store_ab.ts`): a mistake is one line naming the
 * option and the rule, with exit status 2, never a stack trace.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";

/**
 * Prints `script: message` on standard error, on one line (node's `parseArgs`
 * writes some messages on three), and exits with status 2.
 */
export function usage(script: string, message: string): never {
  console.error(`${script}: ${message.replace(/\s*\n\s*/g, " ")}`);
  Deno.exit(2);
}

/** The values of `options` in `Deno.args`; an unknown or malformed option ends in {@link usage}. */
export function parseOptions<O extends NonNullable<ParseArgsConfig["options"]>>(
  script: string,
  options: O,
): ReturnType<typeof parseArgs<{ args: string[]; options: O }>>["values"] {
  try {
    return parseArgs({ args: Deno.args, options }).values;
  } catch (e) {
    return usage(script, (e as Error).message);
  }
}
