// Reads a trace on a worker to its end (or only its first batch with "early") and
// prints how many items it read; the worker test checks that the process then exits.
import { openTraceStream } from "../../src/host/trace/stream.ts";

const [path, mode] = Deno.args;
const stream = await openTraceStream(path, { worker: true, chunkSize: 1024 });
let items = 0;
for await (const batch of stream.batches()) {
  items += batch.length;
  if (mode === "early") break;
}
console.log(items);
