// The command line: help, usage errors (exit 2, naming what is wrong), run,
// --json, --svg, compare, and config errors naming the file and field.
import assert from "node:assert/strict";
import { cli } from "./helpers/cli.ts";
import { compare } from "../src/host/compare.ts";
import { parseHostConfig } from "../src/host/config/load.ts";

/** Writes `config` as NAME.json in a new temporary directory; returns its path. */
async function configFile(name: string, config: Record<string, unknown>): Promise<string> {
  const file = `${await Deno.makeTempDir()}/${name}.json`;
  await Deno.writeTextFile(file, JSON.stringify(config));
  return file;
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
  const compareHelp = (await cli("compare", "--help")).out;
  assert.match(compareHelp, /store: bitmap against range tree; DMA backend: type1 against iommufd/);
  assert.match(compareHelp, /--vmm A,B/);
  assert.match(compareHelp, /--kernel A,B/);
  assert.match(
    compareHelp,
    /--iommu A,B +IOMMU: the same host on two IOMMUs \(intel-vt-d, amd-v1\)/,
  );
  assert.match(run.out, /--vmm POLICY +qemu-10.1, qemu-11.1, memstate/);
  assert.match(run.out, /--kernel KERNEL +linux-6.18, proposed/);
  assert.match(run.out, /--iommu IOMMU +intel-vt-d, amd-v1/);
  assert.equal((await cli()).code, 2);
});

Deno.test("cli: usage errors exit 2 and say what was wrong", async () => {
  const cases: [string[], RegExp][] = [
    [["frobnicate"], /unknown command "frobnicate"/],
    // A C1 control (8-bit CSI) in the command is escaped, not echoed to the terminal.
    [["x\u009b2Jy"], /unknown command "x\\u009b2Jy"/],
    [["run"], /expected one CONFIG file, got 0/],
    [["run", "examples/tdx-16g.json", "--bogus"], /bogus/],
    [
      ["run", "examples/tdx-16g.json", "--store", "hashmap"],
      /--store: must be range-tree or bitmap, got "hashmap"/,
    ],
    [["run", "examples/tdx-16g.json", "--workload", "idle"], /--workload: unknown workload "idle"/],
    [
      ["run", "examples/tdx-16g.json", "--seed", "1.5"],
      /--seed: must be a decimal integer from 0 to 4294967295, got "1.5"/,
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
  const file = await configFile("bad", {
    name: "bad",
    regions: [{ name: "a", size: "1GiB" }, { name: "b", size: 10000, base: "0x80000000" }],
    workload: { name: "boot" },
  });
  const r = await cli("run", file);
  assert.equal(r.code, 2);
  assert.match(
    r.err,
    /bad\.json: regions\[1\]\.size: must be a multiple of pageSize 4096, got 10000/,
  );
});

Deno.test("cli: a virtio-mem block below QEMU's 1 MiB minimum is a configuration error, exit 2, one line (hw/virtio/virtio-mem.c virtio_mem_set_block_size)", async () => {
  // Rule: QEMU's block-size property refuses values below VIRTIO_MEM_MIN_BLOCK_SIZE (1 MiB).
  const file = await configFile("small-block", {
    name: "small-block",
    regions: [{ name: "ram", size: "1GiB" }],
    devices: [{
      type: "virtio-mem",
      name: "vmem0",
      region: "ram",
      blockSize: "4KiB",
      requestedSize: "64MiB",
    }],
    workload: { name: "balloon", params: { cycles: 1 } },
  });
  const r = await cli("run", file);
  assert.equal(r.code, 2);
  assert.equal(r.err.split("\n").length, 1, r.err);
  const rule = "devices[0].blockSize: must be at least 1MiB (QEMU's VIRTIO_MEM_MIN_BLOCK_SIZE, " +
    "hw/virtio/virtio-mem.c virtio_mem_set_block_size), got 4096";
  assert.ok(r.err.endsWith(`small-block.json: ${rule}`), r.err);
});

Deno.test("cli: an unknown iommu is a configuration error, exit 2, one line listing the allowed ones", async () => {
  const file = await configFile("iommu", {
    name: "iommu",
    iommu: "amd-v2",
    regions: [{ name: "ram", size: "64MiB" }],
    workload: { name: "boot" },
  });
  const r = await cli("run", file);
  assert.equal(r.code, 2);
  assert.equal(r.err.split("\n").length, 1, r.err);
  assert.ok(
    r.err.endsWith(`iommu.json: iommu: must be one of "intel-vt-d", "amd-v1", got "amd-v2"`),
    r.err,
  );
});

Deno.test("cli: a type1 device that may run out of DMA entries is refused at start, unless accepted", async () => {
  const file = await configFile("small-limit", {
    name: "small-limit",
    regions: [{ name: "ram", size: "1GiB" }],
    devices: [{ type: "type1", name: "nic0", dmaEntryLimit: 1000 }],
    workload: { name: "dma-scatter", params: { count: 100 } },
  });
  const refused = await cli("run", file);
  assert.equal(refused.code, 2);
  assert.match(refused.err, /nic0/);
  assert.match(refused.err, /262144/); // 1 GiB / 4 KiB entries needed
  // Every line of the refusal names the file.
  for (const line of refused.err.split("\n")) {
    assert.match(line, /^memstate run: .*small-limit\.json: the host cannot start: /);
  }
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

interface CompareJson {
  questions: {
    axis: string;
    verdict: string;
    variants: {
      label: string;
      refused?: string;
      minMs?: number;
      medianMs?: number;
      peakMappings?: number;
      calls?: number;
      storeBytes?: number;
      vmm?: string;
      kernel?: string;
      iommu?: string;
      tableBytes?: number;
      store?: string;
      conversions?: { failed: number; requested: number };
    }[];
  }[];
}

Deno.test("cli: compare answers the store and DMA-backend questions against their own baselines", async () => {
  const r = await cli("compare", "examples/tdx-trace.json", "--json", "--reps", "3");
  assert.equal(r.code, 0, r.err);
  const { questions } = JSON.parse(r.out) as CompareJson;
  assert.deepEqual(questions.map((q) => q.axis), ["store", "dma"]);
  const [store, dma] = questions;
  assert.deepEqual(store.variants.map((v) => [v.label, v.store]), [
    ["bitmap", "bitmap"],
    ["range-tree", "range-tree"],
  ]);
  for (const v of store.variants) assert.ok(v.minMs! <= v.medianMs!);
  assert.match(
    store.verdict,
    /^range tree: [\d.]+x the bitmap's time \(min of runs\), ([\d.]+x|[\d.]+% of) its memory \([\d.]+ [KMG]?i?B vs [\d.]+ [KMG]?i?B\)$/,
  );
  // type1 at the module default limit cannot start on 16 GiB of guest_memfd memory:
  // the row says so and what it would need, instead of raising the limit silently.
  assert.equal(dma.variants[0].label, "type1");
  assert.equal(
    dma.variants[0].refused,
    "would not start: needs dma_entry_limit >= 4194304 (limit 65535)",
  );
  assert.equal(dma.variants[1].label, "iommufd");
  assert.match(dma.verdict, /^iommufd runs; type1 would not start/);
});

Deno.test("cli: compare --vmm qemu-11.1,memstate and --kernel linux-6.18,proposed name both sides", async () => {
  const vmm = await cli(
    "compare",
    "examples/tdx-trace.json",
    "--json",
    "--reps",
    "1",
    "--vmm",
    "qemu-11.1,memstate",
  );
  assert.equal(vmm.code, 0, vmm.err);
  const [policy] = (JSON.parse(vmm.out) as CompareJson).questions;
  assert.equal(policy.axis, "vmm");
  assert.deepEqual(policy.variants.map((v) => v.vmm), ["qemu-11.1", "memstate"]);
  assert.match(policy.verdict, /^memstate: [\d.]+ kernel calls per conversion against qemu-11.1's/);
  const kernel = await cli(
    "compare",
    "examples/tdx-trace.json",
    "--json",
    "--reps",
    "1",
    "--kernel",
    "linux-6.18,proposed",
  );
  assert.equal(kernel.code, 0, kernel.err);
  const [k] = (JSON.parse(kernel.out) as CompareJson).questions;
  assert.deepEqual(k.variants.map((v) => v.kernel), ["linux-6.18", "proposed"]);
  // cut_mapping on the proposed kernel: one area per populated run instead of one per page.
  assert.ok(k.variants[1].peakMappings! * 10 < k.variants[0].peakMappings!, k.verdict);
  const text = await cli(
    "compare",
    "examples/tdx-trace.json",
    "--reps",
    "1",
    "--vmm",
    "qemu-10.1,memstate",
  );
  assert.match(text.out, /^policy: qemu-10.1 against memstate$/m);
  assert.match(text.out, /^verdict: memstate: /m);
});

Deno.test("cli: compare refuses options it does not use; run refuses compare's", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["compare", "examples/tdx-trace.json", "--store", "bitmap"],
      /--store: compare runs both stores itself/,
    ],
    [
      ["compare", "examples/tdx-trace.json", "--svg", "x.svg"],
      /--svg: compare writes no state map/,
    ],
    [
      ["compare", "examples/tdx-trace.json", "--reps", "0"],
      /--reps: must be an integer in \[1, 100\], got "0"/,
    ],
    [
      ["compare", "examples/tdx-trace.json", "--vmm", "qemu-11.1,qemu-11.1"],
      /--vmm: compare takes two different values/,
    ],
    [
      ["compare", "examples/tdx-trace.json", "--vmm", "qemu-9,memstate"],
      /--vmm: must be one of qemu-10.1, qemu-11.1, memstate, got "qemu-9"/,
    ],
    [[
      "compare",
      "examples/tdx-trace.json",
      "--vmm",
      "qemu-11.1,memstate",
      "--kernel",
      "linux-6.18,proposed",
    ], /compare one of them at a time/],
    [[
      "compare",
      "examples/tdx-trace.json",
      "--kernel",
      "linux-6.18,proposed",
      "--iommu",
      "intel-vt-d,amd-v1",
    ], /^memstate compare: --kernel A,B and --iommu A,B: compare one of them at a time$/],
    [
      [
        "compare",
        "examples/tdx-trace.json",
        "--vmm",
        "qemu-11.1,memstate",
        "--iommu",
        "amd-v1,intel-vt-d",
      ],
      /--vmm A,B and --iommu A,B: compare one of them at a time/,
    ],
    [
      ["compare", "examples/tdx-trace.json", "--iommu", "amd-v1,amd-v1"],
      /--iommu: compare takes two different values A,B, got "amd-v1,amd-v1"/,
    ],
    [
      ["compare", "examples/tdx-trace.json", "--iommu", "intel-vt-d,amd-v2"],
      /--iommu: must be one of intel-vt-d, amd-v1, got "amd-v2"/,
    ],
    [
      ["run", "examples/tdx-trace.json", "--iommu", "intel-vt-d,amd-v1"],
      /--iommu: run takes one value; compare takes A,B, got "intel-vt-d,amd-v1"/,
    ],
    [
      ["run", "examples/tdx-trace.json", "--iommu", "amd-v2"],
      /^memstate run: --iommu: must be one of intel-vt-d, amd-v1, got "amd-v2"$/,
    ],
    [
      ["run", "examples/tdx-trace.json", "--vmm", "qemu-11.1,memstate"],
      /--vmm: run takes one value/,
    ],
    [
      ["run", "examples/tdx-trace.json", "--kernel", "6.18"],
      /--kernel: must be one of linux-6.18, proposed, got "6.18"/,
    ],
    [
      ["run", "examples/tdx-trace.json", "--reps", "3"],
      /--reps: is an option of compare, not of run/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = await cli(...args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.err, message, args.join(" "));
  }
});

Deno.test("cli: every example's report names its vmm and kernel; --vmm and --kernel override them", async () => {
  for await (const entry of Deno.readDir("examples")) {
    if (!entry.name.endsWith(".json") || entry.name === "linux-kvm.json") continue;
    const r = await cli(
      "run",
      `examples/${entry.name}`,
      "--json",
      "--workload",
      "dma-scatter",
      "--param",
      "count=50",
    );
    assert.equal(r.code, 0, `${entry.name}: ${r.err}`);
    const report = JSON.parse(r.out);
    assert.match(report.vmm, /^(qemu-10\.1|qemu-11\.1|memstate)$/, entry.name);
    assert.match(report.kernel, /^(linux-6\.18|proposed)$/, entry.name);
  }
  const r = await cli(
    "run",
    "examples/tdx-trace.json",
    "--vmm",
    "qemu-11.1",
    "--kernel",
    "proposed",
  );
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^vmm qemu-11\.1, kernel proposed, iommu intel-vt-d$/m);
  // tdx-16g's limit is exactly its pages: QEMU's memslot headroom pushes it over.
  const headroom = await cli(
    "run",
    "examples/tdx-16g.json",
    "--vmm",
    "qemu-11.1",
    "--workload",
    "dma-scatter",
    "--param",
    "count=10",
  );
  assert.equal(headroom.code, 2);
  assert.match(headroom.err, /headroom: 32764 memslots - 2 sections = 32762/);
  // A file that asks for cut_mapping runs on the proposed kernel, and is refused on mainline.
  const dir = await Deno.makeTempDir({ prefix: "memstate_cli_" });
  try {
    const file = `${dir}/cut.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        name: "cut",
        kernel: "proposed",
        regions: [{ name: "ram", size: "64MiB" }],
        devices: [{ type: "iommufd", name: "gpu0", cut: true }],
        workload: { name: "dma-scatter", params: { count: 20 } },
      }),
    );
    assert.equal((await cli("run", file)).code, 0);
    const refused = await cli("run", file, "--kernel", "linux-6.18");
    assert.equal(refused.code, 2);
    assert.match(
      refused.err,
      /\(vmm memstate, kernel linux-6.18, iommu intel-vt-d\): devices\[0\]\.cut: true \(iommufd cut_mapping\) needs the proposed kernel/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: --iommu overrides the configuration's IOMMU, compare --iommu A,B sets the IO page tables side by side, and the override's reserved IOVA is checked", async () => {
  const text = await cli("run", "examples/tdx-trace.json", "--iommu", "amd-v1");
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /^vmm memstate, kernel linux-6\.18, iommu amd-v1$/m);
  const json = await cli("run", "examples/tdx-trace.json", "--json", "--iommu", "amd-v1");
  assert.equal(json.code, 0, json.err);
  assert.equal(JSON.parse(json.out).iommu, "amd-v1");
  const compareTrace = (iommu: string) =>
    cli("compare", "examples/tdx-trace.json", "--json", "--reps", "1", "--iommu", iommu);
  // A single value on compare sets it for every variant.
  const single = await compareTrace("amd-v1");
  assert.equal(single.code, 0, single.err);
  for (const q of (JSON.parse(single.out) as CompareJson).questions) {
    for (const v of q.variants) if (!v.refused) assert.equal(v.iommu, "amd-v1", v.label);
  }
  const compared = await compareTrace("intel-vt-d,amd-v1");
  assert.equal(compared.code, 0, compared.err);
  const { questions } = JSON.parse(compared.out) as CompareJson;
  assert.deepEqual(questions.map((q) => q.axis), ["iommu"]);
  const [q] = questions;
  assert.deepEqual(q.variants.map((v) => [v.label, v.iommu]), [
    ["intel-vt-d", "intel-vt-d"],
    ["amd-v1", "amd-v1"],
  ]);
  // The same mappings; AMD v1's table starts at 3 levels, one page fewer than VT-d's 4.
  const [vtd, amd] = q.variants;
  assert.equal(vtd.peakMappings, amd.peakMappings);
  assert.equal(vtd.tableBytes! - amd.tableBytes!, 4096);
  assert.match(
    q.verdict,
    /^amd-v1: IO page tables [\d.]+ [KMG]?i?B at the end \(containers' peaks summed: [\d.]+ [KMG]?i?B\) against intel-vt-d's [\d.]+ [KMG]?i?B \([\d.]+ [KMG]?i?B\)/,
  );
  const table = await cli(
    "compare",
    "examples/tdx-trace.json",
    "--reps",
    "1",
    "--iommu",
    "intel-vt-d,amd-v1",
  );
  assert.equal(table.code, 0, table.err);
  assert.match(table.out, /^IOMMU: intel-vt-d against amd-v1$/m);
  assert.match(table.out, /^intel-vt-d .* 192 KiB +[\d,]+ +0 +0$/m);
  assert.match(table.out, /^amd-v1 .* 188 KiB +[\d,]+ +0 +0$/m);
  // 1 TiB above 4 GiB reaches AMD's HyperTransport range: fine on the file's VT-d, refused on
  // AMD v1 with the one-line configuration error, before any work.
  const refused = await cli("run", "examples/type1-1t.json", "--iommu", "amd-v1");
  assert.equal(refused.code, 2);
  assert.match(
    refused.err,
    /^memstate run: examples\/type1-1t\.json \(vmm memstate, kernel linux-6\.18, iommu amd-v1\): regions\[0\]: \[0x100000000, 0x10100000000\) overlaps the HyperTransport range \[0xfd00000000, 0x10000000000\), which the amd-v1 IOMMU reserves .* device "gpu0" could not map it; [^\n]*$/,
  );
});

Deno.test("compare: a store under 1% of the bitmap's memory is given as a percentage, not 0.00x", async () => {
  const config = parseHostConfig({
    name: "sparse",
    regions: [{ name: "ram", size: "64GiB" }],
    workload: { name: "dma-scatter", params: { count: 10 } },
  }, "sparse.json");
  const [store] = await compare(config, {}, { reps: 1 });
  const [bitmap, tree] = store.variants;
  assert.ok(tree.storeBytes! / bitmap.storeBytes! < 0.01, "the case this test is about");
  const percent = (100 * tree.storeBytes! / bitmap.storeBytes!).toPrecision(2);
  assert.match(store.verdict, new RegExp(`, ${percent.replace(".", "\\.")}% of its memory \\(`));
  assert.match(store.verdict, / of its memory \([\d.]+ KiB vs 2 MiB\)$/);
});

Deno.test("compare: mappings and peaks are summed over containers alike; the limit is held against the fullest type1 container; calls are the kernel's", async () => {
  const config = parseHostConfig({
    name: "two-containers",
    regions: [{ name: "ram", size: "64MiB" }, { name: "hot", size: "64MiB", base: "4GiB" }],
    devices: [
      { type: "type1", name: "nic0", dmaEntryLimit: 100_000 },
      { type: "iommufd", name: "gpu0" },
      {
        type: "virtio-mem",
        name: "vmem0",
        region: "hot",
        blockSize: "2MiB",
        requestedSize: "32MiB",
      },
    ],
    workload: { name: "balloon", params: { cycles: 4 } },
  }, "two.json");
  const [store] = await compare(config, {}, { reps: 1 });
  const v = store.variants[1];
  const r = v.report!;
  const dma = r.plugins.filter((p) => p.kind === "vfio-type1" || p.kind === "iommufd");
  assert.equal(dma.length, 2, "two containers");
  assert.equal(v.mappings, dma[0].mappings + dma[1].mappings);
  assert.equal(v.peakMappings, dma[0].peakMappings + dma[1].peakMappings);
  assert.ok(v.peakMappings! >= v.mappings!, "a peak is never below the end");
  const nic = r.plugins.find((p) => p.name === "nic0")!;
  assert.equal(v.containerPeakMappings, nic.peakMappings);
  assert.equal(v.mappingLimit, 100_000);
  // virtio-mem's backing discards are the KVM plugin's punches: counted once, there.
  const vmem = r.plugins.find((p) => p.kind === "virtio-mem")!;
  assert.ok((vmem.calls.discardBacking ?? 0) > 0, "the case this test is about");
  const kernel = (kinds: string[]) =>
    r.plugins.filter((p) => kinds.includes(p.kind)).reduce(
      (n, p) =>
        n + Object.entries(p.calls)
          .filter(([k]) => k !== "punchedBytes" && !k.includes("."))
          .reduce((m, [, c]) => m + c, 0),
      0,
    );
  assert.equal(v.calls, kernel(["kvm-attributes", "vfio-type1", "iommufd"]));
});

Deno.test("compare: the limit column is the type1 container nearest its limit, not the tightest limit nor the highest peak", async () => {
  // nic0 follows every region under a loose limit and peaks highest; nic1 follows only the
  // small region, peaks lower, but under a limit it comes nearer to: nic1 is the fullest.
  const json = {
    name: "two-type1",
    regions: [{ name: "big", size: "256MiB" }, { name: "small", size: "8MiB", base: "4GiB" }],
    devices: [
      { type: "type1", name: "nic0", dmaEntryLimit: 1_000_000 },
      { type: "type1", name: "nic1", container: "apart", region: "small", dmaEntryLimit: 2100 },
    ],
    workload: { name: "dma-scatter", params: { count: 3000 } },
  };
  const [store, dma] = await compare(parseHostConfig(json, "two-type1.json"), {}, { reps: 1 });
  const v = store.variants[1];
  const nic0 = v.report!.plugins.find((p) => p.name === "nic0")!;
  const nic1 = v.report!.plugins.find((p) => p.name === "nic1")!;
  assert.ok(nic1.peakMappings < nic0.peakMappings, "the fullest is not the highest peak");
  assert.ok(nic1.peakMappings / 2100 > nic0.peakMappings / 1_000_000, "nic1 is the fullest");
  assert.equal(v.containerPeakMappings, nic1.peakMappings);
  assert.equal(v.mappingLimit, 2100);
  // Two type1 containers: the verdict names the fullest apart from the summed peaks.
  const type1 = dma.variants[0];
  assert.match(
    dma.verdict,
    new RegExp(
      `^iommufd's summed peaks \\d+ mappings against type1's ${type1.peakMappings} \\(type1's ` +
        `fullest container at ${type1.containerPeakMappings} of its limit 2100\\)`,
    ),
  );
  // The text table shows that container's peak against its limit.
  const dir = await Deno.makeTempDir({ prefix: "memstate_compare_" });
  await Deno.writeTextFile(`${dir}/c.json`, JSON.stringify(json));
  const r = await cli("compare", `${dir}/c.json`, "--reps", "1");
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(` ${nic1.peakMappings} / 2,100 `));
  // And the other way round: the tightest limit (nic1's 60,000) is not the fullest container.
  json.devices[0].dmaEntryLimit = 70_000;
  json.devices[1].dmaEntryLimit = 60_000;
  const [again] = await compare(parseHostConfig(json, "two-type1.json"), {}, { reps: 1 });
  const w = again.variants[1];
  const loose = w.report!.plugins.find((p) => p.name === "nic0")!;
  assert.ok(loose.peakMappings / 70_000 > nic1.peakMappings / 60_000, "nic0 is the fullest now");
  assert.equal(w.containerPeakMappings, loose.peakMappings);
  assert.equal(w.mappingLimit, 70_000);
});
