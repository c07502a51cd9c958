/**
 * Command-line options of the bench scripts (those that take none refuse any
 * through {@link parseOptions} too): a mistake is one line naming the option
 * and the rule, with exit status 2, never a stack trace.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { outputPathProblem } from "../src/host/report/output_path.ts";

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

/**
 * `--name`'s value as an integer in [`min`, `max`], `fallback` when the option
 * is absent; anything else ends in {@link usage} ({@link integerIn}).
 */
export function integerOption(
  script: string,
  name: string,
  value: string | undefined,
  { fallback, min, max }: { fallback: number; min: number; max: number },
): number {
  return value === undefined ? fallback : integerIn(script, `--${name}`, value, min, max);
}

/**
 * `value` (of the option or variable `label`) as an integer in [`min`,
 * `max`]; anything else ends in {@link usage}, naming `label` and the rule.
 * (An empty value is refused; `Number("1e3")` is 1000 and `Number("0x10")`
 * 16: those are judged by the bounds, as numbers.)
 */
export function integerIn(
  script: string,
  label: string,
  value: string,
  min: number,
  max: number,
): number {
  const n = value.trim() === "" ? NaN : Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    usage(script, `${label}: an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/**
 * `path`, the value of `option` naming a file to write, once it is known
 * that it can be written (the command line's check for `--html` and
 * `--svg`, src/host/report/output_path.ts); otherwise {@link usage}.
 * Checked before measuring: a typo found after minutes of measuring would
 * lose them.
 */
export async function outputFileOption(
  script: string,
  option: string,
  path: string,
): Promise<string> {
  const problem = await outputPathProblem(path, option);
  if (problem !== undefined) usage(script, problem);
  return path;
}

/** `path`, the value of `option`, when it names an existing directory; otherwise {@link usage}. */
export function directoryOption(script: string, option: string, path: string): string {
  let isDirectory = false;
  try {
    isDirectory = Deno.statSync(path).isDirectory;
  } catch {
    // missing, or not to be looked at: not an existing directory either way
  }
  if (!isDirectory) usage(script, `${option} ${path}: not an existing directory`);
  return path;
}
