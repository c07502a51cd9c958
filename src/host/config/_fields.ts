/**
 * Field-by-field parsing of JSON objects with zod, collecting every problem
 * with its field path and a message that states the rule and the value.
 *
 * Why not one `z.strictObject(...).safeParse` per file: zod stops producing a
 * value as soon as any field fails, and the cross-field rules (alignment,
 * overlaps, references) need the fields that did parse to report their own
 * problems. Parsing each field separately keeps every good value, so one typo
 * never hides the other mistakes of the file.
 *
 * @module
 */

import type { z } from "npm:zod@^4.1.0";
import type { ConfigIssue } from "./errors.ts";
import { formatPath } from "./errors.ts";
import { describeValue } from "../../util/text.ts";

/** A field path: object keys and array indexes. */
export type FieldPath = readonly (string | number)[];

/** A set of field schemas describing one JSON object. */
export type FieldSchemas = Readonly<Record<string, z.ZodType>>;

/** The fields of an object that parsed; a field that failed (or is absent and optional) is missing. */
export type ParsedFields<F extends FieldSchemas> = { [K in keyof F]?: z.output<F[K]> };

/**
 * Parses `raw` as a strict object with the given `fields`: every field is
 * checked on its own, unknown fields are reported by name with the allowed
 * ones, and every problem is appended to `issues` under `path`.
 *
 * @returns the fields that parsed, or `undefined` when `raw` is not an object
 */
export function parseFields<F extends FieldSchemas>(
  fields: F,
  raw: unknown,
  path: FieldPath,
  issues: ConfigIssue[],
): ParsedFields<F> | undefined {
  if (!isPlainObject(raw)) {
    issues.push({
      path: formatPath(path),
      message: raw === undefined
        ? "is required"
        : `must be a JSON object, got ${describeValue(raw)}`,
    });
    return undefined;
  }
  const allowed = Object.keys(fields);
  for (const key of Object.keys(raw)) {
    if (!Object.hasOwn(fields, key)) {
      issues.push({
        path: formatPath([...path, key]),
        message: `unknown field (allowed: ${allowed.join(", ")})`,
      });
    }
  }
  const parsed: Record<string, unknown> = {};
  for (const key of allowed) {
    const result = fields[key].safeParse(raw[key], { reportInput: true });
    if (result.success) {
      if (result.data !== undefined) parsed[key] = result.data;
      continue;
    }
    for (const issue of tightest(result.error.issues)) {
      issues.push({
        path: formatPath([...path, key, ...issue.path.map(pathPart)]),
        message: issueMessage(issue),
      });
    }
  }
  return parsed as ParsedFields<F>;
}

/**
 * `issues` with one rule per field: `z.number().int().max(M)` reports both the safe integer
 * bound and M for 1e30, and only the tighter is the rule; `z.string().min(1)` reports a list
 * as not a string and also as too short, and only the type is the rule.
 */
function tightest(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  const bound = (issue: z.core.$ZodIssue) =>
    issue.code === "too_big" && (issue.origin === "number" || issue.origin === "int")
      ? Number(issue.maximum)
      : undefined;
  const key = (issue: z.core.$ZodIssue) => issue.path.map(String).join("\u0000");
  const wrongType = new Set(issues.filter((i) => i.code === "invalid_type").map(key));
  return issues.filter((issue) => {
    if (issue.code !== "invalid_type" && wrongType.has(key(issue))) return false;
    const max = bound(issue);
    return max === undefined ||
      !issues.some((other) => {
        const m = bound(other);
        return other !== issue && key(other) === key(issue) && m !== undefined && m < max;
      });
  });
}

/** True for `{...}` (not arrays, not null). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function pathPart(part: PropertyKey): string | number {
  return typeof part === "number" ? part : String(part);
}

const EXPECTED: Readonly<Record<string, string>> = {
  int: "an integer",
  number: "a number",
  string: "a string",
  boolean: "true or false",
  object: "a JSON object",
  record: "a JSON object",
  array: "a list",
};

/** Rewords a zod issue as "rule, got value" in the configuration's vocabulary. */
function issueMessage(issue: z.core.$ZodIssue): string {
  const got = `got ${describeValue(issue.input)}`;
  switch (issue.code) {
    case "invalid_type":
      if (issue.input === undefined) return "is required";
      return `must be ${EXPECTED[issue.expected] ?? issue.expected}, ${got}`;
    case "invalid_value":
      if (issue.input === undefined) return "is required";
      if (issue.values.length === 1) return `must be ${JSON.stringify(issue.values[0])}, ${got}`;
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}, ${got}`;
    case "too_small":
      if (issue.origin === "array") {
        return `must have at least ${issue.minimum} ${
          issue.minimum === 1 ? "entry" : "entries"
        }, ${got}`;
      }
      if (issue.origin === "string") return `must not be empty`;
      return `must be ${issue.inclusive ? "at least" : "greater than"} ${issue.minimum}, ${got}`;
    case "too_big":
      if (issue.origin === "array") return `must have at most ${issue.maximum} entries`;
      return `must be ${issue.inclusive ? "at most" : "less than"} ${issue.maximum}, ${got}`;
    default:
      // custom and union issues carry messages written in this project's words.
      return issue.message;
  }
}
