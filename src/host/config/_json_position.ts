/**
 * Where a JSON text goes wrong, for error messages: V8 reports the offset for
 * most syntax errors but not all (an unexpected character inside a literal
 * such as `tru }` only gets a snippet), so this small scanner finds the first
 * offending offset itself. It validates only; it builds no values.
 *
 * @module
 */

/** Line and column (both 1-based) of a character offset in `text`. */
export interface TextPosition {
  /** 1-based line. */
  line: number;
  /** 1-based column. */
  column: number;
}

/** The 1-based line and column of `offset` in `text`. */
export function positionOf(text: string, offset: number): TextPosition {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { line, column: offset - before.lastIndexOf("\n") };
}

/**
 * The offset of the first character that makes `text` invalid JSON, `text.length`
 * when it ends too early, or `undefined` when the text is valid.
 */
export function jsonErrorOffset(text: string): number | undefined {
  let i = 0;
  const fail = (at: number): never => {
    throw at;
  };
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  const literal = (word: string) => {
    for (const ch of word) {
      if (text[i] !== ch) fail(i);
      i++;
    }
  };
  const string = () => {
    i++; // opening quote
    while (i < text.length) {
      const ch = text[i];
      if (ch === '"') {
        i++;
        return;
      }
      if (ch < " ") fail(i);
      if (ch === "\\") {
        i++;
        if (text[i] === "u") {
          for (let k = 1; k <= 4; k++) if (!/[0-9a-fA-F]/.test(text[i + k] ?? "")) fail(i + k);
          i += 5;
        } else if (i < text.length && '"\\/bfnrt'.includes(text[i])) i++;
        else fail(i);
      } else i++;
    }
    fail(i);
  };
  const number = () => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!match || match[0] === "-") fail(i);
    i += match![0].length;
  };
  const value = (): void => {
    ws();
    const ch = text[i];
    if (ch === "{") {
      i++;
      ws();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail(i);
        string();
        ws();
        if (text[i] !== ":") fail(i);
        i++;
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") {
          i++;
          return;
        } else fail(i);
      }
    } else if (ch === "[") {
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "]") {
          i++;
          return;
        } else fail(i);
      }
    } else if (ch === '"') string();
    else if (ch === "t") literal("true");
    else if (ch === "f") literal("false");
    else if (ch === "n") literal("null");
    else if (ch === "-" || (ch >= "0" && ch <= "9")) number();
    else fail(i);
  };
  try {
    value();
    ws();
    if (i < text.length) fail(i);
    return undefined;
  } catch (at) {
    if (typeof at === "number") return Math.min(at, text.length);
    throw at;
  }
}

/** A key given twice in one JSON object. */
export interface DuplicateKey {
  /** Where the key is: the path of its object, then the key. */
  path: (string | number)[];
  /** The offset of the repeated key's opening quote. */
  offset: number;
  /** The offset of the same key earlier in the same object. */
  first: number;
}

/**
 * Every key of valid JSON `text` that its object already has (JSON.parse keeps the last
 * silently), in text order. Keys are compared as decoded (`"a"` and `"\u0061"` are one key).
 * Iterative, so nesting as deep as JSON.parse reads costs no stack.
 */
export function duplicateKeys(text: string): DuplicateKey[] {
  type Frame =
    | { object: true; seen: Map<string, number>; key?: string; expectKey: boolean }
    | { object: false; index: number };
  const out: DuplicateKey[] = [];
  const stack: Frame[] = [];
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      const start = i;
      for (i++; text[i] !== '"'; i++) if (text[i] === "\\") i++;
      const top = stack.at(-1);
      if (top?.object && top.expectKey) {
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        const first = top.seen.get(key);
        top.key = key;
        top.expectKey = false;
        if (first === undefined) top.seen.set(key, start);
        else {
          const path = stack.map((f) => (f.object ? f.key! : f.index));
          out.push({ path, offset: start, first });
        }
      }
    } else if (ch === "{") stack.push({ object: true, seen: new Map(), expectKey: true });
    else if (ch === "[") stack.push({ object: false, index: 0 });
    else if (ch === "}" || ch === "]") stack.pop();
    else if (ch === ",") {
      const top = stack.at(-1)!;
      if (top.object) top.expectKey = true;
      else top.index++;
    }
  }
  return out;
}
