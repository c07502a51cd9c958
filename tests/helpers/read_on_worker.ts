// Reads a trace, asking for a worker, to its end (or only its first batch with "early"),
// and prints the items it read and whether a worker read them: the worker test checks that
// the process then exits, and what it does when it may not read memstate's own files.
import { openTraceStream } from "../../src/host/trace/stream.ts";

const [path, mode] = Deno.args;
const stream = await openTraceStream(path, { worker: true, chunkSize: 1024 });
let items = 0;
for await (const batch of stream.batches()) {
  items += batch.length;
  if (mode === "early") break;
}
console.log(JSON.stringify({ items, worker: stream.worker }));
