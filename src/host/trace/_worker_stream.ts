/**
 * A trace file read on a second thread: a worker (_stream_worker.ts) runs
 * the same reader as {@link openTraceStream} does in-thread and posts each
 * batch, its conversions packed in typed arrays (moved, not copied); this
 * side rebuilds the items and yields them in the same batches, so what a
 * consumer sees is exactly what the in-thread reader gives.
 *
 * Why: reading and classifying a line costs about a quarter of a direct 4 KiB
 * conversion on a simulated host (the `replay 1 TiB: reader` row of `deno
 * task bench:report`), so on one thread a replay cannot come within 25% of
 * the same conversions made directly; with the reader on another core it
 * overlaps with the conversions. A worker costs tens of milliseconds to
 * start, so `openTraceStream` uses one for regular files from
 * {@link WORKER_MIN_BYTES} up (and never when following a growing file).
 *
 * Flow control: the worker posts at most {@link WORKER_CREDIT} batches ahead
 * and one more for each batch taken here, so memory stays flat however large
 * the file is.
 *
 * @module
 */

import type { TraceItem } from "./event.ts";
import { TraceInputError } from "./event.ts";
import type { TraceStats } from "./stats.ts";

/** Files from this size up are read on a worker by default: 8 MiB, about 100,000 lines. */
export const WORKER_MIN_BYTES = 8 * 2 ** 20;

/** How many batches the worker may post before it waits for one to be taken. */
export const WORKER_CREDIT = 4;

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

/** What the worker posts. */
type WorkerMessage =
  | WorkerBatch
  | { kind: "end"; stats: TraceStats }
  | { kind: "error"; message: string; input: boolean };

/**
 * The batches of the file at `path`, read on a worker; `stats` is kept up to
 * date as batches arrive. Stops (and ends the worker) when `signal` aborts,
 * when the consumer stops early, or on {@link WorkerRead.close}.
 */
export interface WorkerRead {
  /** The items, one array per chunk the worker read. */
  batches: AsyncGenerator<TraceItem[]>;
  /** Ends the worker; safe to call more than once. */
  close(): void;
}

/** Starts reading `path` on a worker (see the module documentation). */
export function readOnWorker(
  path: string,
  chunkSize: number,
  stats: TraceStats,
  signal: AbortSignal | undefined,
): WorkerRead {
  let worker: Worker | undefined;
  const close = () => {
    worker?.terminate();
    worker = undefined;
  };
  async function* batches(): AsyncGenerator<TraceItem[]> {
    const queue: WorkerMessage[] = [];
    let wake: (() => void) | undefined;
    const arrive = (message: WorkerMessage) => {
      queue.push(message);
      wake?.();
      wake = undefined;
    };
    worker = new Worker(new URL("./_stream_worker.ts", import.meta.url).href, {
      type: "module",
    });
    worker.onmessage = (e: MessageEvent<WorkerMessage>) => arrive(e.data);
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      arrive({ kind: "error", message: e.message, input: false });
    };
    const stop = () => wake?.();
    signal?.addEventListener("abort", stop, { once: true });
    worker.postMessage({ path, chunkSize });
    try {
      while (true) {
        if (signal?.aborted) return;
        if (queue.length === 0) {
          await new Promise<void>((resolve) => (wake = resolve));
          continue;
        }
        const message = queue.shift()!;
        if (message.kind === "error") {
          throw message.input ? new TraceInputError(path, message.message) : new Error(
            `${path}: the trace reader failed: ${message.message}`,
          );
        }
        Object.assign(stats, message.stats);
        if (message.kind === "end") return;
        worker?.postMessage("more");
        yield unpack(message);
      }
    } finally {
      signal?.removeEventListener("abort", stop);
      close();
    }
  }
  return { batches: batches(), close };
}

/** The items of a posted batch, in order, as the in-thread reader made them. */
function unpack(batch: WorkerBatch): TraceItem[] {
  const { count, gpa, size, shared, line, others } = batch;
  const items: TraceItem[] = [];
  const total = count + others.length;
  let k = 0, o = 0;
  for (let position = 0; position < total; position++) {
    if (o < others.length && others[o][0] === position) {
      items.push(others[o++][1]);
      continue;
    }
    // The same shape, property for property, as the reader's own conversion events.
    items.push({
      op: "convert",
      gpa: gpa[k],
      size: size[k],
      to: shared[k] === 1 ? "shared" : "private",
      line: line[k],
    });
    k++;
  }
  return items;
}
