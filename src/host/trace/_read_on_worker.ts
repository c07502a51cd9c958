/**
 * A trace file read on a second thread: a worker (_reader_worker.ts) runs
 * the same reader as {@link openTraceStream} does in-thread and posts each
 * batch, its conversions packed in typed arrays (moved, not copied); this
 * side rebuilds the items and yields them in the same batches, with the
 * reader's counts as they stood after each, so what a consumer sees is
 * exactly what the in-thread reader gives. The session's runner takes the
 * batches as posted instead ({@link WorkerRead.columns}), without the rebuild.
 *
 * Why: reading and classifying a line costs about a third of a direct 4 KiB
 * conversion on a simulated host (0.32x-0.35x in the `replay 1 TiB: reader`
 * row of `deno task bench:report`, 0.45x-0.50x before round 14's reader), so
 * on one thread a replay cannot come within 25% of the same conversions made
 * directly; with the reader on another core it overlaps with the conversions
 * (the `replay 1 TiB` row). A worker costs tens of milliseconds to start, so
 * `openTraceStream` uses one for regular files from {@link WORKER_MIN_BYTES}
 * up, never when following a growing file, and only when the worker's module
 * can be loaded: a process allowed to read the trace but not memstate's own
 * files reads in-thread instead ({@link workerCanStart}), and a worker that
 * fails to start before its first batch hands over to the in-thread reader.
 *
 * Flow control: the worker posts at most {@link WORKER_CREDIT} batches ahead,
 * and {@link CREDIT_STEP} more for each {@link CREDIT_STEP} batches taken
 * here, so memory stays flat however large the file is.
 *
 * @module
 */

import type { TraceItem } from "./event.ts";
import { TraceInputError } from "./event.ts";
import type { TraceStats } from "./stats.ts";

/**
 * Files from this size up are read on a worker by default: 16 MiB, about
 * 180,000 lines of a QEMU log. A worker costs a fixed 20-30 ms (starting it,
 * its first batch) and saves what reading costs the main thread, about a
 * third of what the conversions cost; `bench/worker_threshold.ts` replays
 * traces of several sizes both ways: at 8.8 MiB the worker took 1.09x-1.15x
 * the in-thread replay's time, at 12 MiB 1.00x-1.04x, at 16 MiB (182,000
 * lines) 0.94x-0.97x, at 35 MiB 0.89x-0.90x (paired medians, two processes of
 * twenty repetitions, with the in-thread reader of round 14; 8 MiB was the
 * size before). Below it a trace reads in-thread.
 */
export const WORKER_MIN_BYTES = 16 * 2 ** 20;

/**
 * How many batches the worker may post before it waits for more credit.
 * 16 rather than 4: on two cores the worker is sometimes descheduled, and
 * with 4 batches of lead the replay then waited for it (the waits between
 * batches of a 1M-conversion replay, `bench/replay_rows.ts`, fell from
 * 122-155 ms to 70-98 ms in one session's runs). A batch holds one chunk's
 * conversions in typed arrays (25 bytes each), so 16 cost a few MB at most.
 */
export const WORKER_CREDIT = 16;

/**
 * How many batches this side takes before it gives the worker as many
 * credits back, in one message. Posting to a worker that waits for credit
 * holds the main thread 11-18 us while it wakes it (`bench/replay_rows.ts
 * --parts`, "a credit message held it"), so one message per batch cost a
 * 1M-conversion replay (352 batches) 4-6 ms of the main thread's time, and
 * one per four costs a quarter of that. While the worker keeps ahead, its
 * lead stays between 12 and {@link WORKER_CREDIT} batches.
 */
export const CREDIT_STEP = 4;

/** The worker's module. */
export const WORKER_MODULE: URL = new URL("./_reader_worker.ts", import.meta.url);

/** One batch as the worker posts it: conversions in columns, every other item as it is. */
export interface WorkerBatch {
  /** Discriminator. */
  kind: "batch";
  /** Conversions in the batch. */
  count: number;
  /** Each conversion's first guest physical address. */
  gpa: Float64Array;
  /** Each conversion's size in bytes. */
  size: Float64Array;
  /** 1 where a conversion goes to shared, 0 to private. */
  shared: Uint8Array;
  /** Each conversion's line. */
  line: Float64Array;
  /** The other items, each with its position in the batch. */
  others: [number, TraceItem][];
  /** The reader's counts after this batch. */
  stats: TraceStats;
}

/** What the worker posts, and what this side tells itself (`failed`). */
export type WorkerMessage =
  | WorkerBatch
  | { kind: "end"; stats: TraceStats }
  | { kind: "error"; message: string; input: boolean }
  | { kind: "failed"; message: string };

/**
 * Whether this process may start the worker: for a worker module on disk,
 * read permission on it (asked without prompting). A remote module (memstate
 * imported from JSR) is tried; {@link readOnWorker} falls back if it fails.
 */
export function workerCanStart(module: URL = WORKER_MODULE): boolean {
  if (module.protocol !== "file:") return true;
  try {
    const path = decodeURIComponent(module.pathname);
    return Deno.permissions.querySync({ name: "read", path }).state === "granted";
  } catch {
    return false;
  }
}

/** A batch as {@link WorkerRead.columns} yields it: as posted, or items from the fallback. */
export type ColumnsOrItems = WorkerBatch | TraceItem[];

/** A read on a worker: its batches, and how to end it. */
export interface WorkerRead {
  /** The items, one array per chunk the worker read. */
  batches: AsyncGenerator<TraceItem[]>;
  /**
   * The same batches with the conversions left in the columns the worker
   * posted (the session's runner takes them so: event_runner.ts
   * `runBatchStream`, a stretch of conversions at a time); items
   * where the read fell back to this thread. Read either this or
   * {@link batches}, not both: they share one read.
   */
  columns: AsyncGenerator<ColumnsOrItems>;
  /**
   * Ends the worker; the batches end too (also when the consumer is waiting
   * for one). Safe to call more than once. A stream abandoned half read must
   * be closed: a running worker keeps the process alive.
   */
  close(): void;
  /** The most batches that waited here at once (for tests: at most {@link WORKER_CREDIT}). */
  readonly maxQueued: number;
}

/** Where and how to read, for {@link readOnWorker}. */
export interface WorkerReadOptions {
  /** Bytes per read. */
  chunkSize: number;
  /** Kept up to date: after each batch, the reader's counts as they stood then. */
  stats: TraceStats;
  /** Ends the read at once when it aborts. */
  signal?: AbortSignal;
  /** The in-thread read to hand over to if the worker fails before its first batch. */
  fallback: () => AsyncGenerator<TraceItem[]>;
  /** The worker's module (default {@link WORKER_MODULE}; tests give their own). */
  module?: URL;
}

/** Starts reading `path` on a worker (see the module documentation). */
export function readOnWorker(path: string, options: WorkerReadOptions): WorkerRead {
  const { chunkSize, stats, signal, fallback } = options;
  const queue: WorkerMessage[] = [];
  let wake: (() => void) | undefined;
  let worker: Worker | undefined;
  let closed = false;
  let maxQueued = 0;
  // Resumes a consumer waiting for a message: one arrived, close() was called, or the signal.
  const wakeUp = () => {
    wake?.();
    wake = undefined;
  };
  const arrive = (message: WorkerMessage) => {
    queue.push(message);
    if (message.kind === "batch") maxQueued = Math.max(maxQueued, queue.length);
    wakeUp();
  };
  const stopWorker = () => {
    worker?.terminate();
    worker = undefined;
  };
  const close = () => {
    closed = true;
    stopWorker();
    wakeUp();
  };
  async function* columns(): AsyncGenerator<ColumnsOrItems> {
    if (closed) return;
    worker = new Worker((options.module ?? WORKER_MODULE).href, { type: "module" });
    worker.onmessage = (e: MessageEvent<WorkerMessage>) => arrive(e.data);
    // A module that cannot load, an uncaught error, a message that cannot be read.
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      arrive({ kind: "failed", message: e.message });
    };
    worker.onmessageerror = () => arrive({ kind: "failed", message: "a message did not decode" });
    signal?.addEventListener("abort", wakeUp, { once: true });
    worker.postMessage({ path, chunkSize });
    let taken = 0;
    try {
      while (true) {
        if (signal?.aborted || closed) return;
        const message = queue.shift();
        if (message === undefined) {
          await new Promise<void>((resolve) => (wake = resolve));
          continue;
        }
        switch (message.kind) {
          case "failed":
            if (taken === 0) {
              // Nothing was handed out yet: read it here instead.
              stopWorker();
              yield* fallback();
              return;
            }
            throw new Error(`${path}: the trace reader's worker failed: ${message.message}`);
          case "error":
            if (message.input) throw new TraceInputError(path, message.message);
            throw new Error(`${path}: the trace reader failed: ${message.message}`);
          case "end":
            Object.assign(stats, message.stats);
            return;
          case "batch":
            Object.assign(stats, message.stats);
            // Credits go back in steps (CREDIT_STEP): the worker's lead stays within one step of full.
            if (++taken % CREDIT_STEP === 0) worker?.postMessage(CREDIT_STEP);
            yield message;
        }
      }
    } finally {
      signal?.removeEventListener("abort", wakeUp);
      closed = true;
      stopWorker();
    }
  }
  const read = columns();
  async function* batches(): AsyncGenerator<TraceItem[]> {
    for await (const batch of read) yield Array.isArray(batch) ? batch : unpack(batch);
  }
  return {
    batches: batches(),
    columns: read,
    close,
    get maxQueued() {
      return maxQueued;
    },
  };
}

/**
 * Walks `batch` in trace order: `onItem` for each item that is not a
 * conversion, `onConversions(first, end)` for each stretch of conversions
 * between them (indices `[first, end)` into the columns, never empty); stops
 * (returning false) at the first call that returns false.
 */
export function forEachInOrder(
  batch: WorkerBatch,
  onItem: (item: TraceItem) => boolean,
  onConversions: (first: number, end: number) => boolean,
): boolean {
  const { count, others } = batch;
  let first = 0;
  for (let o = 0; o <= others.length; o++) {
    // Conversions before the o-th other item: its position less the o items before it.
    const end = o < others.length ? others[o][0] - o : count;
    if (first < end && !onConversions(first, end)) return false;
    first = end;
    if (o < others.length && !onItem(others[o][1])) return false;
  }
  return true;
}

/** Where conversion `k` of `batch`'s columns goes: its `shared` flag, in words. */
export function directionAt(batch: WorkerBatch, k: number): "shared" | "private" {
  return batch.shared[k] === 1 ? "shared" : "private";
}

/** The items of a posted batch, in order, as the in-thread reader made them. */
export function unpack(batch: WorkerBatch): TraceItem[] {
  const items: TraceItem[] = [];
  const { gpa, size, line } = batch;
  forEachInOrder(batch, (item) => items.push(item) > 0, (first, end) => {
    for (let k = first; k < end; k++) {
      const to = directionAt(batch, k);
      // The same shape, property for property, as the reader's own conversion events.
      items.push({ op: "convert", gpa: gpa[k], size: size[k], to, line: line[k] });
    }
    return true;
  });
  return items;
}
