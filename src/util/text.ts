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
  if (text.length <= max) return quoted(text);
  return `${quoted(text.slice(0, max) + "...")} (${text.length} characters)`;
}

/**
 * Characters a terminal acts on or hides rather than shows: C0 and C1 controls, DEL, the
 * Unicode line and paragraph separators and the bidirectional overrides.
 */
// deno-lint-ignore no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** {@link UNPRINTABLE} for a test (no `g`, so no state between calls). */
const HAS_UNPRINTABLE = new RegExp(UNPRINTABLE.source);

/**
 * `text` with every character a terminal would act on (see {@link UNPRINTABLE}) written as
 * `\uXXXX`, so a message that quotes user input stays one harmless line.
 *
 * @example
 * ```ts
 * import { escapeControls } from "./text.ts";
 * import assert from "node:assert/strict";
 * assert.equal(escapeControls("a\x1b[2Jb\n"), "a\\u001b[2Jb\\u000a");
 * ```
 */
export function escapeControls(text: string): string {
  return text.replace(UNPRINTABLE, unicodeEscape);
}

/** `text` as a JSON string literal that also escapes C1 controls and bidi overrides. */
export function quoted(text: string): string {
  return JSON.stringify(text).replace(UNPRINTABLE, unicodeEscape);
}

/**
 * A file path as messages print it: as it is when every character shows as itself, else
 * quoted like a JSON string (a newline, an escape sequence, leading or trailing blanks), so
 * a message stays one line and the path can be told apart from the words around it.
 *
 * @example
 * ```ts
 * import { displayPath } from "./text.ts";
 * import assert from "node:assert/strict";
 * assert.equal(displayPath("out/map.svg"), "out/map.svg");
 * assert.equal(displayPath("no\nsuch.json"), '"no\\nsuch.json"');
 * ```
 */
export function displayPath(path: string): string {
  return path === "" || HAS_UNPRINTABLE.test(path) || path.trim() !== path ? quoted(path) : path;
}

function unicodeEscape(ch: string): string {
  return `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/** A JSON value as an excerpt: its JSON text cut like {@link excerpt} cuts strings. */
export function excerptJson(value: unknown, max: number = EXCERPT_LENGTH): string {
  const text = escapeControls(jsonText(value));
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
 * assert.equal(describeValue(4096n), "4096n");
 * ```
 */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  if (typeof value === "number" && !Number.isFinite(value)) return `${value} (out of range)`;
  if (typeof value === "function") return "a function";
  const text = escapeControls(jsonText(value));
  return text.length > 60 ? text.slice(0, 57) + "..." : text;
}

/**
 * `value`'s JSON text, or what a programmer would write for the values JSON
 * has none for: `4096n` for a BigInt (on which JSON.stringify throws), the
 * symbol's description, `undefined`.
 */
function jsonText(value: unknown): string {
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "symbol") return value.toString();
  try {
    return JSON.stringify(value, (_key, v) => typeof v === "bigint" ? `${v}n` : v) ??
      String(value);
  } catch {
    return Array.isArray(value) ? "a list" : "an object"; // a cycle: no text to show
  }
}

/**
 * What `e` says, in one line: the first non-empty line of its message (an
 * Error's, also one from another realm, or any object's string `message`),
 * else of its own string, else its JSON text (a plain object would print as
 * `[object Object]`), control characters escaped, at most 200 characters. For
 * an error thrown by a user's code (a plugin hook, an imported module) that a
 * message quotes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { errorLine } from "./text.ts";
 * assert.equal(errorLine(new Error("no room\nat line 2")), "no room");
 * assert.equal(errorLine({ code: 7 }), '{"code":7}');
 * ```
 */
export function errorLine(e: unknown): string {
  const text = thrownText(e);
  const line = escapeControls(text.split("\n").find((l) => l.trim() !== "") ?? text);
  return line.length > 200 ? line.slice(0, 200) + "..." : line;
}

/** The text of a thrown value, for {@link errorLine}. */
function thrownText(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  if (typeof e === "string") return e;
  if (typeof e === "object" && e !== null) {
    // An Error from another realm fails instanceof but has its message and name.
    const { message, name } = e as { message?: unknown; name?: unknown };
    if (typeof message === "string" && message !== "") return message;
    if (typeof name === "string" && name !== "" && typeof message === "string") return name;
    try {
      const own = String(e); // an object with its own toString says what it wants said
      if (own !== "[object Object]") return own;
    } catch {
      // No prototype (Object.create(null)), or a toString that throws: its JSON, below.
    }
  }
  return jsonText(e);
}
