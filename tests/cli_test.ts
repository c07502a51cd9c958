// The command line: help, usage errors (exit 2, naming what is wrong), run,
// --json, --svg, compare, and config errors naming the file and field.
import assert from "node:assert/strict";
import { main } from "../cli.ts";

async function cli(...args: string[]) {
  const out: string[] = [], err: string[] = [];
  const code = await main(args, {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    interactive: false,
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

Deno.test("cli: --help for the tool and for each command", async () => {
  const top = await cli("--help");
  assert.equal(top.code, 0);
  assert.match(top.out, /memstate run CONFIG/);
  assert.match(top.out, /memstate compare CONFIG/);
  const run = await cli("run", "--help");
  assert.equal(run.code, 0);
  assert.match(run.out, /--trace FILE/);
  assert.match(run.out, /--svg FILE/);
  assert.match((await cli("compare", "--help")).out, /range-tree and bitmap stores/);
  assert.equal((await cli()).code, 2);
});

Deno.test("cli: usage errors exit 2 and say what was wrong", async () => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /unknown command "frobnicate"/],
    [["run"], /expected one CONFIG file, got 0/],
    [["run", "examples/tdx-16g.json", "--bogus"], /bogus/],
    [
      ["run", "examples/tdx-16g.json", "--store", "hashmap"],
      /--store: must be range-tree or bitmap, got "hashmap"/,
    ],
    [["run", "examples/tdx-16g.json", "--workload", "idle"], /--workload: unknown workload "idle"/],
    [
      ["run", "examples/tdx-16g.json", "--seed", "1.5"],
      /--seed: must be a non-negative integer, got "1.5"/,
    ],
    [["run", "examples/tdx-16g.json", "--param", "oops"], /--param: must be KEY=VALUE/],
    [
      ["run", "examples/tdx-16g.json", "--trace", "a", "--workload", "boot"],
      /--trace or --workload, not both/,
    ],
    [["run", "no/such/file.json"], /no\/such\/file\.json/],
  ];
  for (const [args, message] of cases) {
    const r = await cli(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, message, args.join(" "));
  }
});

Deno.test("cli: a configuration error names the file, the field path and the rule", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/bad.json`;
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      name: "bad",
      regions: [{ name: "a", size: "1GiB" }, { name: "b", size: 10000, base: "0x80000000" }],
      workload: { name: "boot" },
    }),
  );
  const r = await cli("run", file);
  assert.equal(r.code, 2);
  assert.match(
    r.err,
    /bad\.json: regions\[1\]\.size: must be a multiple of pageSize 4096, got 10000/,
  );
});

Deno.test("cli: a type1 device that may run out of DMA entries is refused at start, unless accepted", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/small-limit.json`;
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      name: "small-limit",
      regions: [{ name: "ram", size: "1GiB" }],
      devices: [{ type: "type1", name: "nic0", dmaEntryLimit: 1000 }],
      workload: { name: "dma-scatter", params: { count: 100 } },
    }),
  );
  const refused = await cli("run", file);
  assert.equal(refused.code, 2);
  assert.match(refused.err, /nic0/);
  assert.match(refused.err, /262144/); // 1 GiB / 4 KiB entries needed
  const accepted = await cli("run", file, "--continue-on-capacity-error", "--json");
  assert.equal(accepted.code, 0, accepted.err);
  const report = JSON.parse(accepted.out);
  assert.ok(report.warnings.length > 0);
  assert.deepEqual(report.invariants.violations, []);
});

Deno.test("cli: run --json prints one JSON report; --svg writes a state map", async () => {
  const dir = await Deno.makeTempDir();
  const svg = `${dir}/map.svg`;
  const r = await cli("run", "examples/tdx-trace.json", "--json", "--svg", svg);
  assert.equal(r.code, 0, r.err);
  const report = JSON.parse(r.out);
  assert.equal(report.store, "range-tree");
  assert.equal(report.conversions.ignored, 1);
  const text = await Deno.readTextFile(svg);
  assert.match(text, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(text, /ram-above-4g/);
});

Deno.test("cli: run prints the text report with every section", async () => {
  const r = await cli(
    "run",
    "examples/virtio-mem-cvm.json",
    "--param",
    "cycles=2",
    "--store",
    "bitmap",
  );
  assert.equal(r.code, 0, r.err);
  for (
    const part of [
      /store bitmap/,
      /conversions: \d+ requested/,
      /virtio-mem requests: \d+ ACK/,
      /region +size +extents/,
      /plugin +kind +mappings/,
      /invariants: \d+ checked, 0 violations/,
    ]
  ) {
    assert.match(r.out, part);
  }
});

Deno.test("cli: compare runs both stores and both DMA plugins on the same input", async () => {
  const r = await cli("compare", "examples/tdx-trace.json", "--json");
  assert.equal(r.code, 0, r.err);
  const rows = JSON.parse(r.out) as { variant: string; mappings: number; extents: number }[];
  assert.deepEqual(rows.map((x) => x.variant), [
    "range-tree + type1",
    "range-tree + iommufd",
    "bitmap + type1",
    "bitmap + iommufd",
  ]);
  // Same input, same state: extents agree across stores; iommufd needs fewer mappings.
  assert.equal(rows[0].extents, rows[2].extents);
  assert.ok(rows[1].mappings < rows[0].mappings);
});
