/**
 * The worker side of a trace read on a second thread (see _read_on_worker.ts):
 * runs the ordinary in-thread reader ({@link openTraceStream} with `worker:
 * false`) over the file it is told, and posts each batch back with its
 * conversions packed into typed arrays, whose buffers move without a copy.
 *
 * Messages in: `{ path, chunkSize }` once, then a number of batches the
 * reader may post beyond those it was allowed so far (the main thread's
 * credit, so a fast reader never runs far ahead of the runner: memory stays
 * flat). Messages
 * out: `WorkerBatch` (_read_on_worker.ts), then `{ kind: "end", stats }` or
 * `{ kind: "error", message, input }`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import type { TraceItem } from "./event.ts";
import { TraceInputError } from "./event.ts";
import type { TraceStats } from "./stats.ts";
import { openTraceStream } from "./stream.ts";
import { WORKER_CREDIT, type WorkerBatch } from "./_read_on_worker.ts";

let credit = WORKER_CREDIT;
let wake: (() => void) | undefined;

self.onmessage = (e: MessageEvent) => {
  if (typeof e.data === "number") {
    credit += e.data;
    wake?.();
    wake = undefined;
    return;
  }
  read(e.data.path, e.data.chunkSize).catch((error) => {
    self.postMessage({
      kind: "error",
      message: error instanceof Error ? error.message : String(error),
      input: error instanceof TraceInputError,
    });
  });
};

async function read(path: string, chunkSize: number): Promise<void> {
  const stream = await openTraceStream(path, { chunkSize, worker: false });
  try {
    for await (const batch of stream.batches()) {
      while (credit === 0) await new Promise<void>((resolve) => (wake = resolve));
      credit--;
      const message = pack(batch, stream.stats);
      const { gpa, size, shared, line } = message;
      // Moved, not copied: the arrays were made for this message alone.
      self.postMessage(message, [gpa, size, shared, line].map((a) => a.buffer as ArrayBuffer));
    }
    self.postMessage({ kind: "end", stats: stream.stats });
  } finally {
    stream.close();
  }
}

function pack(batch: TraceItem[], stats: TraceStats): WorkerBatch {
  let count = 0;
  for (const item of batch) if (item.op === "convert") count++;
  const gpa = new Float64Array(count), size = new Float64Array(count);
  const shared = new Uint8Array(count), line = new Float64Array(count);
  const others: [number, TraceItem][] = [];
  let k = 0;
  // An index loop: `for (const [position, item] of batch.entries())` cost each new worker
  // 20 ms of optimising-compiler time (`--trace-opt`, a 1M-line replay), on the core the
  // main thread shares with the reader.
  for (let position = 0; position < batch.length; position++) {
    const item = batch[position];
    if (item.op !== "convert") {
      others.push([position, item]);
      continue;
    }
    gpa[k] = item.gpa;
    size[k] = item.size;
    shared[k] = item.to === "shared" ? 1 : 0;
    line[k] = item.line;
    k++;
  }
  return { kind: "batch", count, gpa, size, shared, line, others, stats };
}
