/**
 * What a trace reader counts while it streams a trace: the report's `trace`
 * section, and how the runner tells an empty or garbage trace from one whose
 * events were all refused.
 *
 * @module
 */

/** Counts of what was read from a trace. */
export interface TraceStats {
  /** `text` (QEMU log lines and JSON lines) or `simpletrace` (QEMU's binary format). */
  format: "text" | "simpletrace";
  /** Whether the file was gzip-compressed. */
  compressed: boolean;
  /** What numbers in messages count: lines of text, or records of a binary file. */
  unit: "line" | "record";
  /** Lines (or records) read. */
  lines: number;
  /** Events to replay (conversions, virtio-mem requests). */
  events: number;
  /** `kvm_set_user_memory` events (the memory layout; not replayed). */
  memslots: number;
  /** Blank lines and `#` comments. */
  blank: number;
  /** Other trace events and log output. */
  other: number;
  /** Lines that could not be read (each is in the report's errors). */
  unreadable: number;
  /** Bytes read from the file or standard input (compressed bytes for gzip). */
  bytes: number;
}

/** Counts of nothing read yet. */
export function emptyTraceStats(): TraceStats {
  return {
    format: "text",
    compressed: false,
    unit: "line",
    lines: 0,
    events: 0,
    memslots: 0,
    blank: 0,
    other: 0,
    unreadable: 0,
    bytes: 0,
  };
}
