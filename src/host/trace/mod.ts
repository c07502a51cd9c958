/**
 * Trace input: QEMU trace logs (text, gzip, simpletrace), JSON lines, read as
 * a stream, with the memory layout a trace may bring and where its events land.
 *
 * @module
 */

export {
  type BadLine,
  type ConvertEvent,
  type MemslotEvent,
  type PlugEvent,
  type RangeTraceEvent,
  type TraceEvent,
  TraceInputError,
  type TraceItem,
  TraceLineError,
  type UnplugAllEvent,
} from "./event.ts";
export { parseQemuMemslotLine, parseQemuTraceLine } from "./qemu.ts";
export { parseJsonlLine } from "./jsonl.ts";
export { classifyTraceLine, readTrace, type TraceProblem, type TraceReadResult } from "./read.ts";
export {
  FOLLOW_POLL_MS,
  MAX_LINE_LENGTH,
  openTraceStream,
  TRACE_CHUNK_SIZE,
  type TraceStream,
  type TraceStreamOptions,
} from "./stream.ts";
export { emptyTraceStats, type TraceStats } from "./stats.ts";
export {
  isSimpletrace,
  readSimpletrace,
  SIMPLETRACE_MAGIC,
  SIMPLETRACE_VERSION,
} from "./simpletrace.ts";
export {
  memoryMapFromMemslots,
  type SkippedMemslot,
  type TraceMemoryMap,
  type TraceMemoryRegion,
} from "./memory_map.ts";
export { locate, type Located, type LocateError, type TraceRegion } from "./locate.ts";
