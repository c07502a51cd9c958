/**
 * The JSON-lines trace form: one object per line, written by people, tests
 * and memstate's own recorder.
 *
 * ```text
 * {"op":"convert","gpa":"0x100000","size":4096,"to":"shared"}
 * {"op":"plug","gpa":"0x140000000","size":"0x200000"}
 * {"op":"unplug","gpa":"0x140000000","size":"0x200000"}
 * {"op":"unplug-all","device":"vmem0"}
 * ```
 *
 * `gpa` and `size` are numbers or strings (`"0x..."` hex or decimal digits):
 * hex strings keep addresses readable and carry exact values past 2^53 far
 * enough to be rejected with a clear message instead of being rounded. Unknown
 * fields are errors, so a typo (`"sise"`) never silently replays as something
 * else.
 *
 * @module
 */

import { escapeControls, excerpt, EXCERPT_LENGTH, excerptJson } from "../../util/text.ts";
import { duplicateKeys } from "../config/_json_position.ts";
import { formatPath } from "../config/errors.ts";
import { checkRange, type TraceEvent, traceInteger, TraceLineError } from "./event.ts";

const FIELDS: Readonly<Record<TraceEvent["op"], readonly string[]>> = {
  "convert": ["op", "gpa", "size", "to"],
  "plug": ["op", "gpa", "size"],
  "unplug": ["op", "gpa", "size"],
  "unplug-all": ["op", "device"],
};

/**
 * Reads one JSON-lines trace line.
 *
 * @param text the line, without its newline
 * @param line its 1-based line number
 * @returns the event
 * @throws {TraceLineError} for malformed JSON, a key given twice, a non-object, an unknown `op`,
 *   an unknown or missing field, a bad number, an unknown `to`, or size 0
 */
export function parseJsonlLine(text: string, line: number): TraceEvent {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    // V8's message quotes the input (`"..."... is not valid JSON` when it cuts a long line);
    // keep only the reason, with no raw control character in it.
    const reason = escapeControls(
      (error instanceof Error ? error.message : String(error))
        .replace(/,? ".*"(?:\.\.\.)? is not valid JSON$/s, "")
        .replace(/\s*in JSON at position \d+.*$/s, ""),
    );
    throw new TraceLineError(line, `malformed JSON: ${reason.slice(0, EXCERPT_LENGTH)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TraceLineError(line, `must be a JSON object, got ${excerptJson(value)}`);
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  // JSON.parse keeps the last of a key given twice. Each key in the text has a ":" after it,
  // so a line with no more colons than keys has none twice; only other lines are scanned.
  let colons = 0;
  for (
    let at = text.indexOf(":");
    at >= 0 && colons <= keys.length;
    at = text.indexOf(":", at + 1)
  ) {
    colons++;
  }
  if (colons > keys.length) {
    const twice = duplicateKeys(text)[0];
    if (twice !== undefined) {
      throw new TraceLineError(
        line,
        `${formatPath(twice.path)}: duplicate key (JSON would keep only the last); give it once`,
      );
    }
  }
  const op = record.op;
  if (typeof op !== "string" || !Object.hasOwn(FIELDS, op)) {
    throw new TraceLineError(
      line,
      `op: must be one of "convert", "plug", "unplug", "unplug-all", got ${excerptJson(op)}`,
    );
  }
  const allowed = FIELDS[op as TraceEvent["op"]];
  for (const key of keys) {
    if (!allowed.includes(key)) {
      throw new TraceLineError(
        line,
        `unknown field ${excerpt(key)} for op ${JSON.stringify(op)} ` +
          `(allowed: ${allowed.join(", ")})`,
      );
    }
  }
  if (op === "unplug-all") {
    const device = record.device;
    if (device === undefined) return { op, line };
    if (typeof device !== "string" || device === "") {
      throw new TraceLineError(
        line,
        `device: must be a non-empty string, got ${excerptJson(device)}`,
      );
    }
    return { op, device, line };
  }
  for (const key of ["gpa", "size"]) {
    if (record[key] === undefined) throw new TraceLineError(line, `${key}: is required`);
  }
  const gpa = traceInteger(record.gpa, "gpa", line);
  const size = traceInteger(record.size, "size", line);
  checkRange(gpa, size, line);
  if (op === "convert") {
    const to = record.to;
    if (to !== "shared" && to !== "private") {
      throw new TraceLineError(
        line,
        `to: must be "shared" or "private", got ${excerptJson(to)}`,
      );
    }
    return { op, gpa, size, to, line };
  }
  return { op: op as "plug" | "unplug", gpa, size, line };
}
