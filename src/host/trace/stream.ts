/**
 * Reading a trace as a stream, a chunk at a time, so memory stays flat
 * however large the trace is: a file, standard input (`-`), a gzip-compressed
 * file (found by its magic bytes, decompressed with the web
 * `DecompressionStream`), or QEMU's binary simpletrace file (found by its
 * header; see simpletrace.ts). A growing log can be followed (`follow`): at
 * the end of the file the reader waits for more, until `signal` aborts; then
 * it reads what was written up to that moment and stops, so the run ends with
 * everything QEMU had logged.
 *
 * Text is split into lines here and each line goes through the same reader as
 * {@link readTrace} (`classifyTraceLine`; a conversion line whole inside a
 * chunk is read in place by the quick path that reader tries first,
 * `quickConvertAt`). A line longer than
 * {@link MAX_LINE_LENGTH} characters is not kept: it is reported as one bad
 * line and skipped, so a garbage file cannot make the reader hold it whole.
 *
 * @module
 */

import type { BadLine, TraceItem } from "./event.ts";
import { TraceInputError } from "./event.ts";
import { LOG_HEAD, quickConvertAt } from "./qemu.ts";
import { classifyTraceLine } from "./read.ts";
import { isSimpletrace, readSimpletrace } from "./simpletrace.ts";
import { emptyTraceStats, type TraceStats } from "./stats.ts";
import { readProblem } from "../../util/_file_problem.ts";
import { displayPath } from "../../util/text.ts";
import {
  type ColumnsOrItems,
  readOnWorker,
  WORKER_MIN_BYTES,
  workerCanStart,
} from "./_read_on_worker.ts";

/**
 * Bytes read from the file per read call: 256 KiB reads 13% faster than 64 KiB
 * per line, 1 MiB no faster (the `replay 1 TiB` reader row), and memory stays
 * flat either way.
 */
export const TRACE_CHUNK_SIZE = 256 * 1024;
/** The longest line (in characters) the reader keeps; longer ones are skipped as bad lines. */
export const MAX_LINE_LENGTH = 1 << 20;
/** How often a followed file is checked for more data, in milliseconds. */
export const FOLLOW_POLL_MS = 200;

/** How to read a trace. */
export interface TraceStreamOptions {
  /** Wait for more data at the end of the file until `signal` aborts (`tail -f`). */
  follow?: boolean;
  /**
   * Stops the reading. When following, what was written up to the abort is
   * still read; otherwise reading stops at once.
   */
  signal?: AbortSignal;
  /** Standard input, for `-` (default `Deno.stdin.readable`). */
  stdin?: ReadableStream<Uint8Array>;
  /** Bytes per read (default {@link TRACE_CHUNK_SIZE}). */
  chunkSize?: number;
  /** Milliseconds between checks of a followed file (default {@link FOLLOW_POLL_MS}). */
  pollMs?: number;
  /**
   * Read a regular file on a worker thread, so that reading overlaps with
   * what the consumer does with the items (the same items, in the same
   * batches, the same counts after each). Default: for files of 16 MiB and
   * more, when not following. Never for standard input, a pipe or a followed
   * file; and only when the process may read memstate's own worker module
   * (else, or should the worker fail to start, the file is read in-thread).
   */
  worker?: boolean;
}

/** An open trace; read it once with {@link TraceStream.batches}. */
export interface TraceStream {
  /** The path as given (`-` for standard input). */
  readonly name: string;
  /** The file's size when it was opened; undefined for standard input and pipes. */
  readonly size: number | undefined;
  /** True for a regular file, which can be opened and read again. */
  readonly seekable: boolean;
  /**
   * True when the file is read on a worker thread (see
   * {@link TraceStreamOptions.worker}). Such a stream must be read to its end
   * or closed: a running worker keeps the process alive.
   */
  readonly worker: boolean;
  /** What has been read so far (complete once `batches` ends). */
  readonly stats: TraceStats;
  /** The items of the trace in order, one array per chunk read. */
  batches(): AsyncGenerator<TraceItem[]>;
  /** Releases the file (also done when `batches` ends). */
  close(): void;
}

/**
 * Opens `path` (`-`: standard input). A path that is missing, a directory or
 * unreadable is refused here with a {@link TraceInputError}, before anything
 * is read; so is following a gzip file.
 */
export async function openTraceStream(
  path: string,
  options: TraceStreamOptions = {},
): Promise<TraceStream> {
  const stats = emptyTraceStats();
  const chunkSize = options.chunkSize ?? TRACE_CHUNK_SIZE;
  if (path === "-") {
    const stream = options.stdin ?? Deno.stdin.readable;
    return makeStream(
      path,
      undefined,
      false,
      stats,
      streamChunks(stream, options, stats),
      () => {},
    );
  }
  const file = await openFile(path);
  const info = await file.stat();
  const seekable = info.isFile;
  if (options.follow && seekable && await isGzip(file)) {
    file.close();
    throw new TraceInputError(
      path,
      `${
        displayPath(path)
      }: is gzip-compressed; --follow reads a growing plain-text or simpletrace log`,
    );
  }
  if (
    seekable && !options.follow && (options.worker ?? info.size >= WORKER_MIN_BYTES) &&
    workerCanStart()
  ) {
    file.close();
    return makeWorkerStream(path, info.size, stats, chunkSize, options.signal);
  }
  let closed = false;
  const close = () => {
    if (!closed) {
      closed = true;
      file.close();
    }
  };
  const reuse: ChunkReuse = { safe: false };
  return makeStream(
    path,
    seekable ? info.size : undefined,
    seekable,
    stats,
    fileChunks(file, { ...options, chunkSize }, stats, reuse),
    close,
    reuse,
  );
}

/** Opens `path` for reading or throws a {@link TraceInputError} saying why not. */
async function openFile(path: string): Promise<Deno.FsFile> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    throw new TraceInputError(path, `${displayPath(path)}: ${reason(e)}`);
  }
  if (info.isDirectory) {
    throw new TraceInputError(
      path,
      `${displayPath(path)}: is a directory; --trace takes a trace file`,
    );
  }
  try {
    return await Deno.open(path, { read: true });
  } catch (e) {
    throw new TraceInputError(path, `${displayPath(path)}: ${reason(e)}`);
  }
}

/** Whether a seekable file starts with gzip's magic bytes (it is read again from the start). */
async function isGzip(file: Deno.FsFile): Promise<boolean> {
  const head = new Uint8Array(2);
  const n = await file.read(head);
  await file.seek(0, Deno.SeekMode.Start);
  return n === 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** Why the trace file cannot be opened, in words ({@link readProblem}). */
export function reason(e: unknown): string {
  return readProblem(e, " (standard input: --trace -)");
}

function makeStream(
  name: string,
  size: number | undefined,
  seekable: boolean,
  stats: TraceStats,
  chunks: AsyncGenerator<Uint8Array>,
  close: () => void,
  reuse?: ChunkReuse,
): TraceStream {
  let started = false;
  return {
    name,
    size,
    seekable,
    worker: false,
    stats,
    close,
    async *batches() {
      if (started) throw new Error(`trace ${name}: batches() may be called once`);
      started = true;
      try {
        yield* dispatch(name, chunks, stats, reuse);
      } finally {
        await chunks.return(undefined);
        close();
      }
    },
  };
}

/**
 * A regular file read on a worker (_read_on_worker.ts); the worker opens it
 * again by path (a file descriptor cannot cross to a worker). Should the
 * worker fail to start, the file is read here after all.
 */
function makeWorkerStream(
  name: string,
  size: number,
  stats: TraceStats,
  chunkSize: number,
  signal: AbortSignal | undefined,
): TraceStream {
  async function* inThread(): AsyncGenerator<TraceItem[]> {
    const stream = await openTraceStream(name, { chunkSize, signal, worker: false });
    try {
      for await (const batch of stream.batches()) {
        Object.assign(stats, stream.stats);
        yield batch;
      }
      Object.assign(stats, stream.stats);
    } finally {
      stream.close();
    }
  }
  const read = readOnWorker(name, { chunkSize, stats, signal, fallback: inThread });
  let started = false;
  const start = () => {
    if (started) throw new Error(`trace ${name}: batches() may be called once`);
    started = true;
  };
  const stream: TraceStream = {
    name,
    size,
    seekable: true,
    worker: true,
    stats,
    close: read.close,
    async *batches() {
      start();
      yield* read.batches;
    },
  };
  return Object.assign(stream, {
    async *[COLUMNS]() {
      start();
      yield* read.columns;
    },
  });
}

/** Where a worker-read stream keeps its column batches (see {@link runnerBatches}). */
const COLUMNS = Symbol("memstate.traceColumns");

/**
 * The batches of `trace` for the event runner: for a trace read on a worker,
 * as the worker posted them (conversions in columns, which event_runner.ts
 * `runBatchStream` applies without an object per conversion); otherwise `trace.batches()`.
 * Like `batches`, it may be called once per stream.
 */
export function runnerBatches(trace: TraceStream): AsyncGenerator<ColumnsOrItems> {
  const columns = (trace as { [COLUMNS]?: () => AsyncGenerator<ColumnsOrItems> })[COLUMNS];
  return columns !== undefined ? columns.call(trace) : trace.batches();
}

/** Detects gzip and simpletrace from the first bytes and reads the rest accordingly. */
async function* dispatch(
  name: string,
  raw: AsyncGenerator<Uint8Array>,
  stats: TraceStats,
  reuse?: ChunkReuse,
): AsyncGenerator<TraceItem[]> {
  let chunks: AsyncIterable<Uint8Array> = raw;
  try {
    const head = await peek(chunks, 2);
    chunks = head.chunks;
    if (head.bytes.length >= 2 && head.bytes[0] === 0x1f && head.bytes[1] === 0x8b) {
      stats.compressed = true;
      chunks = gunzip(chunks, name);
    }
    const start = await peek(chunks, 16);
    chunks = start.chunks;
    // Both readers are done with a chunk before they ask for the next (readTextLines decodes
    // it, readSimpletrace copies it), and peek copied what it held: the file's reads may share
    // one buffer from here. Not under gzip, whose decompressing stream is not shown to let go
    // of a chunk before it pulls the next.
    if (reuse !== undefined && !stats.compressed) reuse.safe = true;
    if (isSimpletrace(start.bytes)) yield* readSimpletrace(chunks, stats);
    else yield* readTextLines(chunks, stats);
  } catch (e) {
    if (!(e instanceof GzipError)) throw e;
    // What was read stays read; the rest of the file cannot be.
    stats.unreadable++;
    yield [{
      op: "bad-line",
      line: stats.lines + 1,
      message: `${e.message}; the rest is not read`,
    }];
  }
}

/** The first `n` bytes of `chunks` (fewer at its end), and `chunks` with them put back. */
async function peek(
  chunks: AsyncIterable<Uint8Array>,
  n: number,
): Promise<{ bytes: Uint8Array; chunks: AsyncIterable<Uint8Array> }> {
  const iterator = chunks[Symbol.asyncIterator]();
  const taken: Uint8Array[] = [];
  let have = 0;
  let done = false;
  while (have < n) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    taken.push(next.value);
    have += next.value.length;
  }
  const bytes = new Uint8Array(have);
  let at = 0;
  for (const t of taken) {
    bytes.set(t, at);
    at += t.length;
  }
  async function* rest(): AsyncGenerator<Uint8Array> {
    if (bytes.length > 0) yield bytes;
    if (done) return;
    while (true) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { bytes: bytes.subarray(0, Math.min(n, bytes.length)), chunks: rest() };
}

/** Decompresses gzip; corrupt data ends the stream with a {@link GzipError}. */
async function* gunzip(
  chunks: AsyncIterable<Uint8Array>,
  name: string,
): AsyncGenerator<Uint8Array> {
  const stream = ReadableStream.from(chunks as AsyncIterable<Uint8Array<ArrayBuffer>>).pipeThrough(
    new DecompressionStream("gzip"),
  );
  try {
    for await (const chunk of stream) yield chunk;
  } catch (e) {
    throw new GzipError(
      `${displayPath(name)}: the gzip data is corrupt: ${e instanceof Error ? e.message : e}`,
    );
  }
}

/** Corrupt gzip data, found part way through a trace. */
class GzipError extends Error {}

/** Splits text into lines and reads each; see the module documentation. */
async function* readTextLines(
  chunks: AsyncIterable<Uint8Array>,
  stats: TraceStats,
): AsyncGenerator<TraceItem[]> {
  // UTF-8, a BOM dropped, invalid bytes read as U+FFFD (a garbage line, not a crash).
  const decoder = new TextDecoder();
  let partial = "";
  let overlong = 0; // characters of the current line skipped so far (0: none)
  let line = 0;
  const tooLong = (length: number): BadLine => {
    stats.unreadable++;
    return {
      op: "bad-line",
      line,
      message: `line is ${length} characters long, more than ${MAX_LINE_LENGTH}; not read`,
    };
  };
  const read = (text: string, items: TraceItem[]) => {
    stats.lines++;
    const item = classifyTraceLine(text, line);
    if (item === "blank") stats.blank++;
    else if (item === "other") stats.other++;
    else {
      if (item.op === "bad-line") stats.unreadable++;
      else if (item.op === "memslot") stats.memslots++;
      else stats.events++;
      items.push(item);
    }
  };
  // Reads the complete lines of `text`; returns where the unfinished last one starts. A
  // function of its own because the loop is optimised while it runs (on-stack replacement):
  // followed by code that had not run yet, the optimised loop deoptimised on reaching that
  // code, every chunk (21 times in a 1M-line replay on the worker, `--trace-deopt`; now none).
  const takeLines = (text: string, items: TraceItem[]): number => {
    let start = 0;
    // The first conversion head at or after `start`, searched for again only once passed: one
    // search per conversion line, and none for the other lines of a chunk without conversions.
    let head = text.indexOf(LOG_HEAD);
    while (true) {
      const nl = text.indexOf("\n", start);
      if (nl < 0) return start;
      line++;
      if (head >= 0 && head < start) head = text.indexOf(LOG_HEAD, start);
      // A whole line inside this chunk that holds a conversion head: read where it lies, as
      // classifyTraceLine would read it first, without a substring per line (reading in-thread
      // takes 0.80x-0.84x the time it took with one: `bench/replay_ab.ts --mode thread-read`).
      if (
        head >= 0 && head < nl && partial.length === 0 && overlong === 0 &&
        nl - start <= MAX_LINE_LENGTH
      ) {
        const quick = quickConvertAt(text, start, nl, head, line);
        if (quick !== undefined) {
          stats.lines++;
          stats.events++;
          items.push(quick);
          start = nl + 1;
          continue;
        }
      }
      const piece = text.slice(start, nl);
      start = nl + 1;
      if (overlong > 0) {
        stats.lines++;
        items.push(tooLong(overlong + piece.length));
        overlong = 0;
        continue;
      }
      const whole = partial.length > 0 ? partial + piece : piece;
      partial = "";
      if (whole.length > MAX_LINE_LENGTH) {
        stats.lines++;
        items.push(tooLong(whole.length));
      } else read(whole, items);
    }
  };
  const take = (text: string, items: TraceItem[]) => {
    const rest = text.slice(takeLines(text, items));
    if (overlong > 0) overlong += rest.length;
    else if (partial.length + rest.length > MAX_LINE_LENGTH) {
      overlong = partial.length + rest.length;
      partial = "";
    } else partial += rest;
  };
  for await (const chunk of chunks) {
    const items: TraceItem[] = [];
    take(decoder.decode(chunk, { stream: true }), items);
    if (items.length > 0) yield items;
  }
  const items: TraceItem[] = [];
  take(decoder.decode(), items);
  // A last line without a newline is a line too.
  if (overlong > 0 || partial.length > 0) {
    line++;
    if (overlong > 0) {
      stats.lines++;
      items.push(tooLong(overlong));
    } else read(partial, items);
  }
  if (items.length > 0) yield items;
}

/**
 * Whether {@link fileChunks} may read every chunk into the same buffer: set
 * once the consumer is known to be done with each chunk before it asks for
 * the next. A fresh buffer per read put the whole file (92 MB for the
 * replay row's 1M lines) through the allocator in short-lived buffers, and
 * the reader took about 5% longer (`bench/replay_ab.ts --mode thread-read`
 * and `--mode worker-read`, against the code before).
 */
interface ChunkReuse {
  /** True once chunks may share one buffer. */
  safe: boolean;
}

/** Reads `file` a chunk at a time, following it when asked. */
async function* fileChunks(
  file: Deno.FsFile,
  options: TraceStreamOptions & { chunkSize: number },
  stats: TraceStats,
  reuse?: ChunkReuse,
): AsyncGenerator<Uint8Array> {
  let shared: Uint8Array | undefined;
  const { follow = false, signal } = options;
  const pollMs = options.pollMs ?? FOLLOW_POLL_MS;
  let drainTo: number | undefined; // set when a follow is stopped: read up to here
  while (true) {
    if (signal?.aborted) {
      if (!follow) return;
      drainTo ??= (await file.stat()).size;
      if (stats.bytes >= drainTo) return;
    }
    const buf = reuse?.safe
      ? (shared ??= new Uint8Array(options.chunkSize))
      : new Uint8Array(options.chunkSize);
    let n: number | null;
    try {
      n = await file.read(buf);
    } catch (e) {
      throw new TraceInputError("", `cannot read the trace: ${reason(e)}`);
    }
    if (n === null || n === 0) {
      if (!follow || drainTo !== undefined) return;
      await sleep(pollMs, signal);
      continue;
    }
    stats.bytes += n;
    yield buf.subarray(0, n);
  }
}

/** Reads standard input (or any stream); stops at once when `signal` aborts. */
async function* streamChunks(
  stream: ReadableStream<Uint8Array>,
  options: TraceStreamOptions,
  stats: TraceStats,
): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  // Cancelling ends a pending read with `done`, so nothing is left waiting.
  const cancel = () => reader.cancel().catch(() => {});
  if (options.signal?.aborted) cancel();
  options.signal?.addEventListener("abort", cancel, { once: true });
  try {
    while (true) {
      const next = await reader.read();
      if (next.done) return;
      stats.bytes += next.value.length;
      yield next.value;
    }
  } finally {
    options.signal?.removeEventListener("abort", cancel);
    reader.releaseLock();
  }
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
