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
