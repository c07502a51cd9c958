/**
 * Reading a whole trace: each line is auto-detected (a line starting with `{`
 * is JSON-lines, anything else a QEMU trace log line), so a recorded QEMU log
 * can be annotated with hand-written JSON events. Bad lines are collected with
 * their line numbers rather than thrown, so the caller decides whether one bad
 * line skips or fails the run; a bad line never yields an event.
 *
 * @module
 */

import { type TraceEvent, TraceLineError } from "./event.ts";
import { parseJsonlLine } from "./jsonl.ts";
import { parseQemuTraceLine } from "./qemu.ts";

/** A line that could not be read. */
export interface TraceProblem {
  /** 1-based line number. */
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
    /** Other trace events and log output. */
    other: number;
  };
}

/**
 * Reads every line of a trace (QEMU log lines and JSON lines, mixed freely).
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
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) {
      result.skipped.blank++;
      return;
    }
    try {
      const event = trimmed.startsWith("{")
        ? parseJsonlLine(trimmed, line)
        : parseQemuTraceLine(trimmed, line);
      if (event === null) result.skipped.other++;
      else result.events.push(event);
    } catch (error) {
      if (!(error instanceof TraceLineError)) throw error;
      result.errors.push({ line, message: error.reason });
    }
  });
  return result;
}
