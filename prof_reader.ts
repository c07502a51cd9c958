import { openTraceStream } from "./src/host/trace/stream.ts";
const path = Deno.args[0];
for (let r = 0; r < 3; r++) {
  const t0 = performance.now();
  const s = await openTraceStream(path);
  let n = 0;
  for await (const b of s.batches()) n += b.length;
  console.log(n, ((performance.now() - t0) * 1000 / n).toFixed(3), "us/line");
}
