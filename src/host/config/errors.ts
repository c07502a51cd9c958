/**
 * The error a host configuration raises: every problem of the file at once,
 * each naming the file, the field path and the rule it breaks.
 *
 * @module
 */

import { displayPath, escapeControls } from "../../util/text.ts";

/** One problem found in a host configuration. */
export interface ConfigIssue {
  /** Field path such as `regions[1].size`; empty for the file as a whole. */
  path: string;
  /** The rule the field breaks and the value it has. */
  message: string;
}

/**
 * A host configuration that cannot be used. The message lists every issue on
 * its own line as `file: path: message`, so a person fixes the file in one go
 * rather than one error per run.
 */
export class ConfigError extends Error {
  /** The configuration file the issues belong to. */
  readonly file: string;
  /** Every problem found, in file order. */
  readonly issues: ConfigIssue[];

  /** Builds the error for `file` from its `issues` (at least one). */
  constructor(file: string, issues: ConfigIssue[]) {
    super(issues.map((issue) => formatIssue(file, issue)).join("\n"));
    this.name = "ConfigError";
    this.file = file;
    this.issues = issues;
  }
}

/**
 * `file: path: message`, or `file: message` for a whole-file issue. The file is quoted when
 * it holds a character that would not show as itself (a newline, an escape): see
 * {@link displayPath}.
 */
export function formatIssue(file: string, issue: ConfigIssue): string {
  const shown = displayPath(file);
  return issue.path === ""
    ? `${shown}: ${issue.message}`
    : `${shown}: ${issue.path}: ${issue.message}`;
}

/**
 * A field path as written in messages: `["regions", 1, "size"]` -> `regions[1].size`; a key's
 * control characters are written as `\uXXXX`.
 */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const part of path) {
    if (typeof part === "number") text += `[${part}]`;
    else text += (text === "" ? "" : ".") + escapeControls(String(part));
  }
  return text;
}
