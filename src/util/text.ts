/**
 * Quoting user input in messages: a bounded excerpt, so a 10 MB trace line or
 * a huge JSON value never ends up whole in a report or on a terminal.
 *
 * @module
 */

/** Characters of user input a message quotes at most. */
export const EXCERPT_LENGTH = 80;

/**
 * `text` as a JSON string literal, cut to `max` characters with the number
 * of characters left out, e.g. `"start 0x1000 si..." (10485760 characters)`.
 *
 * @example
 * ```ts
 * import { excerpt } from "./text.ts";
 * excerpt("abc"); // "\"abc\""
 * excerpt("x".repeat(1000), 4); // "\"xxxx...\" (1000 characters)"
 * ```
 */
export function excerpt(text: string, max: number = EXCERPT_LENGTH): string {
  if (text.length <= max) return JSON.stringify(text);
  return `${JSON.stringify(text.slice(0, max) + "...")} (${text.length} characters)`;
}

/** A JSON value as an excerpt: its JSON text cut like {@link excerpt} cuts strings. */
export function excerptJson(value: unknown, max: number = EXCERPT_LENGTH): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length <= max ? text : `${text.slice(0, max)}... (${text.length} characters)`;
}

/**
 * A JSON value as a message quotes it after "got": its kind for lists and
 * objects, the number for numbers JSON cannot write (`1e400` parses to
 * Infinity, which `JSON.stringify` would print as null), else its JSON text cut
 * to 60 characters.
 *
 * @example
 * ```ts
 * import { describeValue } from "./text.ts";
 * import assert from "node:assert/strict";
 * assert.equal(describeValue([1]), "a list");
 * assert.equal(describeValue(Infinity), "Infinity (out of range)");
 * assert.equal(describeValue("4k"), '"4k"');
 * ```
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  if (typeof value === "number" && !Number.isFinite(value)) return `${value} (out of range)`;
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? text.slice(0, 57) + "..." : text;
}
