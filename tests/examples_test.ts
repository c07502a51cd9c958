// The shipped traces are one trace in every form the reader takes: gzip,
// QEMU's binary simpletrace and two parts, each replaying to the same state.
import assert from "node:assert/strict";
import { main } from "../cli.ts";
import { simpletraceOf } from "./helpers/log_to_simpletrace.ts";

const LOG = "examples/traces/tdx-boot.log";

async function report(...args: string[]) {
  const out: string[] = [], err: string[] = [];
  const code = await main([...args, "--json"], {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    interactive: false,
  });
  assert.equal(code, 0, `${args.join(" ")}: ${err.join("\n")}`);
  return JSON.parse(out.join("\n"));
}

Deno.test("examples: tdx-boot.log.gz and tdx-boot.simple hold tdx-boot.log", async () => {
  const text = await Deno.readTextFile(LOG);
  const gz = await Deno.open(`${LOG}.gz`);
  const unzipped = await new Response(gz.readable.pipeThrough(new DecompressionStream("gzip")))
    .text();
  assert.equal(unzipped, text);
  assert.deepEqual(await Deno.readFile("examples/traces/tdx-boot.simple"), simpletraceOf(text));
  // Each part is a header comment and then its share of the lines, as they were.
  const parts = ["1", "2"].map((p) => {
    const part = Deno.readTextFileSync(`examples/traces/tdx-boot-${p}.log`);
    return part.slice(part.indexOf("\n") + 1);
  });
  assert.equal(parts.join(""), text);
});

Deno.test("examples: every form of the TDX boot trace replays to the same regions", async () => {
  const whole = await report("run", "examples/tdx-trace.json");
  for (const trace of [`${LOG}.gz`, "examples/traces/tdx-boot.simple"]) {
    const r = await report("run", "examples/tdx-trace.json", "--trace", trace);
    assert.deepEqual(r.conversions, whole.conversions, trace);
    assert.deepEqual(r.regions, whole.regions, trace);
  }
  const dir = await Deno.makeTempDir({ prefix: "memstate_examples_" });
  await report(
    "run",
    "examples/tdx-trace.json",
    "--trace",
    "examples/traces/tdx-boot-1.log",
    "--save-state",
    `${dir}/s`,
  );
  const second = await report(
    "run",
    "examples/tdx-trace.json",
    "--trace",
    "examples/traces/tdx-boot-2.log",
    "--load-state",
    `${dir}/s`,
  );
  assert.deepEqual(
    second.regions.map((g: { extents: number; sharedBytes: number }) => [g.extents, g.sharedBytes]),
    whole.regions.map((g: { extents: number; sharedBytes: number }) => [g.extents, g.sharedBytes]),
  );
});
