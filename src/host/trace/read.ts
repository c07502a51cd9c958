/**
 * Reading trace lines: each line is auto-detected (a line starting with `{`
 * is JSON-lines, anything else a QEMU trace log line), so a recorded QEMU log
 * can be annotated with hand-written JSON events. Bad lines are collected with
 * their line numbers rather than thrown, so the caller decides whether one bad
 * line skips or fails the run; a bad line never yields an event.
 *
 * {@link readTrace} reads a whole trace held in a string (small traces and
 * tests); `stream.ts` reads files, standard input, gzip and QEMU's binary
 * simpletrace files a chunk at a time with the same line reader,
 * {@link classifyTraceLine}.
 *
 * @module
 */

import { type TraceEvent, type TraceItem, TraceLineError } from "./event.ts";
import { parseJsonlLine } from "./jsonl.ts";
import { parseQemuMemslotLine, parseQemuTraceLine, quickConvert } from "./qemu.ts";

/** A line that could not be read. */
export interface TraceProblem {
  /** 1-based line number (record number in a binary trace). */
  line: number;
  /** What is wrong with it. */
  message: string;
}

/** Everything read from a trace. */
export interface TraceReadResult {
  /** The events, in trace order. */
  events: TraceEvent[];
  /** The lines that could not be read, in trace order. */
  errors: TraceProblem[];
  /** Lines that were not events and not errors. */
  skipped: {
    /** Blank lines and `#` comments. */
    blank: number;
    /** Other trace events (memslots included) and log output. */
    other: number;
  };
}

/**
 * What one trace line is: an event, a memslot, a bad line, or a line that is
 * none of these (`"blank"` for blank lines and `#` comments, `"other"` for
 * other trace events and log output).
 *
 * @param raw the line, without its newline
 * @param line its 1-based line number
 */
export function classifyTraceLine(raw: string, line: number): TraceItem | "blank" | "other" {
  // Most conversion lines of a replay: no trimming, no regular expression.
  const quick = quickConvert(raw, line);
  if (quick) return quick;
  const trimmed = raw.trim();
  if (trimmed === "" || trimmed.startsWith("#")) return "blank";
  try {
    if (trimmed.startsWith("{")) return parseJsonlLine(trimmed, line);
    // Most lines of a real log are other events: cheap tests before the regexes.
    if (trimmed.includes("kvm_convert_memory")) {
      return parseQemuTraceLine(trimmed, line) ?? parseQemuMemslotLine(trimmed, line) ?? "other";
    }
    if (trimmed.includes("kvm_set_user_memory")) {
      return parseQemuMemslotLine(trimmed, line) ?? "other";
    }
    return "other";
  } catch (error) {
    if (!(error instanceof TraceLineError)) throw error;
    return { op: "bad-line", line, message: error.reason };
  }
}

/**
 * Reads every line of a trace held in a string (QEMU log lines and JSON
 * lines, mixed freely). Memslot events count as `other` here.
 *
 * @param text the whole trace; `\n` or `\r\n` line ends
 * @returns events, per-line errors and counts of skipped lines
 */
export function readTrace(text: string): TraceReadResult {
  const result: TraceReadResult = { events: [], errors: [], skipped: { blank: 0, other: 0 } };
  const lines = text.split("\n");
  // A final newline does not start another line.
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  lines.forEach((raw, index) => {
    const item = classifyTraceLine(raw, index + 1);
    if (item === "blank") result.skipped.blank++;
    else if (item === "other" || item.op === "memslot") result.skipped.other++;
    else if (item.op === "bad-line") result.errors.push({ line: item.line, message: item.message });
    else result.events.push(item);
  });
  return result;
}
