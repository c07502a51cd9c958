// --save-state / --load-state: replaying a trace in two parts, saving after
// the first and loading before the second, ends in the same state as
// replaying it whole; a bad state file is refused (exit 2) with a typed error.
import assert from "node:assert/strict";
import { cli } from "./helpers/cli.ts";
import { decodeSnapshots } from "../src/bus/snapshot_format.ts";
import { buildHost } from "../src/host/build.ts";
import { parseHostConfig } from "../src/host/config/load.ts";
import { runEvents } from "../src/host/event_runner.ts";
import { loadHostState, saveHostState } from "../src/host/state_file.ts";
import { readTrace } from "../src/host/trace/read.ts";
import { SnapshotError } from "../src/bus/snapshot_format.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";

const MiB = 2 ** 20, GiB = 2 ** 30;

const CONFIG = {
  name: "resume",
  description: "two regions, virtio-mem in the second, a type1 NIC and an iommufd GPU",
  regions: [
    { name: "ram", size: "1GiB", base: 0 },
    { name: "hotplug-ram", size: "2GiB", base: "0x100000000" },
  ],
  devices: [
    {
      type: "virtio-mem",
      name: "vmem0",
      region: "hotplug-ram",
      blockSize: "2MiB",
      requestedSize: "1GiB",
    },
    { type: "type1", name: "nic0", dmaEntryLimit: 4194304 },
    { type: "iommufd", name: "gpu0" },
  ],
  workload: { name: "boot" },
};

/** A seeded JSON-lines trace: conversions in both regions, plugs and unplugs. */
function trace(seed: number, events: number): string[] {
  const rng = new Prng(seed);
  const lines: string[] = [];
  const plugged = new Set<number>();
  const hex = (n: number) => `0x${n.toString(16)}`;
  for (let i = 0; i < events; i++) {
    const roll = rng.next();
    if (roll < 0.15) {
      const block = rng.int(256); // inside the first 512 MiB of the device
      const gpa = 2 ** 32 + block * 2 * MiB;
      const op = plugged.has(block) ? "unplug" : "plug";
      if (op === "plug") plugged.add(block);
      else plugged.delete(block);
      lines.push(JSON.stringify({ op, gpa: hex(gpa), size: hex(2 * MiB) }));
      continue;
    }
    const inHotplug = roll < 0.4;
    const base = inHotplug ? 2 ** 32 : 0;
    const span = inHotplug ? 512 * MiB : GiB;
    const big = rng.chance(0.2);
    const size = big ? 2 * MiB : 4096;
    const gpa = base + rng.int(span / size) * size;
    const to = rng.chance(0.55) ? "shared" : "private";
    lines.push(JSON.stringify({ op: "convert", gpa: hex(gpa), size, to }));
  }
  return lines;
}

Deno.test("cli: a trace replayed in two parts with --save-state / --load-state equals it whole", async () => {
  const seed = seedFromEnv();
  console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  const dir = await Deno.makeTempDir();
  try {
    const cfg = `${dir}/resume.json`;
    await Deno.writeTextFile(cfg, JSON.stringify(CONFIG));
    const lines = trace(seed, 3000);
    const cut = 1000 + new Prng(seed).int(1000);
    await Deno.writeTextFile(`${dir}/whole.jsonl`, lines.join("\n") + "\n");
    await Deno.writeTextFile(`${dir}/part1.jsonl`, lines.slice(0, cut).join("\n") + "\n");
    await Deno.writeTextFile(`${dir}/part2.jsonl`, lines.slice(cut).join("\n") + "\n");
    for (const store of ["range-tree", "bitmap"]) {
      const note = `seed ${seed} cut ${cut} store ${store}`;
      const whole = await cli(
        "run",
        cfg,
        "--trace",
        `${dir}/whole.jsonl`,
        "--store",
        store,
        "--json",
        "--save-state",
        `${dir}/whole.state`,
      );
      assert.equal(whole.code, 0, `${note}: ${whole.err}`);
      const first = await cli(
        "run",
        cfg,
        "--trace",
        `${dir}/part1.jsonl`,
        "--store",
        store,
        "--save-state",
        `${dir}/part1.state`,
      );
      assert.equal(first.code, 0, `${note}: ${first.err}`);
      assert.match(first.out, /state saved to .*part1\.state/);
      const second = await cli(
        "run",
        cfg,
        "--trace",
        `${dir}/part2.jsonl`,
        "--store",
        store,
        "--json",
        "--load-state",
        `${dir}/part1.state`,
        "--save-state",
        `${dir}/part2.state`,
      );
      assert.equal(second.code, 0, `${note}: ${second.err}`);
      // Same state, byte for byte (shape, bits, sources and runs of both regions).
      const a = await Deno.readFile(`${dir}/whole.state`);
      const b = await Deno.readFile(`${dir}/part2.state`);
      assert.deepEqual(b, a, note);
      assert.deepEqual(decodeSnapshots(a).map((s) => s.name), ["ram", "hotplug-ram"]);
      // Both runs checked the invariants (DMA, KVM and backing follow the state).
      const wholeReport = JSON.parse(whole.out), secondReport = JSON.parse(second.out);
      assert.deepEqual(secondReport.invariants.violations, [], note);
      assert.deepEqual(
        secondReport.regions.map((r: { extents: number }) => r.extents),
        wholeReport.regions.map((r: { extents: number }) => r.extents),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: a bad state file exits 2 naming the problem; compare refuses the options", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cfg = `${dir}/resume.json`;
    await Deno.writeTextFile(cfg, JSON.stringify(CONFIG));
    await Deno.writeTextFile(`${dir}/t.jsonl`, trace(1, 50).join("\n") + "\n");
    const ok = await cli("run", cfg, "--trace", `${dir}/t.jsonl`, "--save-state", `${dir}/s`);
    assert.equal(ok.code, 0, ok.err);
    const bytes = await Deno.readFile(`${dir}/s`);
    const cases: [Uint8Array, RegExp][] = [
      [bytes.subarray(0, bytes.length - 3), /ends|only \d+ are there/],
      [bytes.map((b, i) => (i === 40 ? b ^ 1 : b)), /CRC-32/],
      [new TextEncoder().encode("hello"), /not a memstate snapshot/],
    ];
    for (const [data, message] of cases) {
      await Deno.writeFile(`${dir}/bad`, data);
      const r = await cli("run", cfg, "--trace", `${dir}/t.jsonl`, "--load-state", `${dir}/bad`);
      assert.equal(r.code, 2, r.err);
      assert.match(r.err, /^memstate run: --load-state ".*\/bad": saved state: /);
      assert.match(r.err, message);
    }
    // A file saved from another host's regions.
    const other = `${dir}/other.json`;
    await Deno.writeTextFile(
      other,
      JSON.stringify({ ...CONFIG, regions: [CONFIG.regions[0]], devices: [] }),
    );
    const r = await cli("run", other, "--trace", `${dir}/t.jsonl`, "--load-state", `${dir}/s`);
    assert.equal(r.code, 2);
    assert.match(r.err, /not in the configuration: hotplug-ram/);
    const missing = await cli("run", cfg, "--load-state", `${dir}/nope`);
    assert.equal(missing.code, 2);
    const cmp = await cli("compare", cfg, "--save-state", `${dir}/x`);
    assert.equal(cmp.code, 2);
    assert.match(cmp.err, /options of run/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("host state: loading plugs through the virtio-mem device and changes nothing on bad input", () => {
  const config = parseHostConfig(CONFIG, "resume.json");
  const events = readTrace(trace(7, 800).join("\n")).events;
  using a = buildHost(config);
  runEvents(a, events);
  const saved = saveHostState(a);
  using b = buildHost(config);
  const before = b.regions.map((r) => [...r.store.runs()]);
  // A region of another size: refused before anything changes.
  const wrong = parseHostConfig({
    ...CONFIG,
    regions: [CONFIG.regions[0], { ...CONFIG.regions[1], size: "4GiB" }],
  }, "wrong.json");
  using c = buildHost(wrong);
  assert.throws(
    () => loadHostState(b, saveHostState(c)),
    (e: unknown) => e instanceof SnapshotError && e.code === "shape",
  );
  assert.deepEqual(b.regions.map((r) => [...r.store.runs()]), before);
  loadHostState(b, saved);
  for (const [i, r] of b.regions.entries()) {
    assert.deepEqual([...r.store.runs()], [...a.regions[i].store.runs()]);
  }
  const vmemA = a.virtioMem.get("vmem0")!, vmemB = b.virtioMem.get("vmem0")!;
  assert.ok(vmemA.pluggedSize > 0);
  assert.equal(vmemB.pluggedSize, vmemA.pluggedSize);
  for (const p of b.plugins) {
    for (const r of b.regions) assert.deepEqual(p.verify?.(r) ?? [], [], p.name);
  }
});
