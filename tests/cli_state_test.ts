// --save-state / --load-state: replaying a trace in two parts, saving after
// the first and loading before the second, ends in the same state as
// replaying it whole; a bad state file is refused (exit 2) with a typed error.
import assert from "node:assert/strict";
import { cli } from "./helpers/cli.ts";
import { decodeSnapshots } from "../src/bus/snapshot_format.ts";
import { buildHost, type Host } from "../src/host/build.ts";
import { PLUGGED } from "../src/bus/state_bits.ts";
import { parseHostConfig } from "../src/host/config/load.ts";
import { runEvents } from "../src/host/event_runner.ts";
import { loadHostState, saveHostState } from "../src/host/state_file.ts";
import { readTrace } from "../src/host/trace/read.ts";
import { SnapshotError } from "../src/bus/snapshot_format.ts";
import type { SimType1Container } from "../src/hw/sim/mod.ts";
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
      assert.match(r.err, /^memstate run: --load-state [^"]*\/bad: saved state: /);
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

// ---- loads the configured host would refuse ----------------------------------------------------
// The rule: a saved state the host cannot take throws a one-line SnapshotError (the CLI: exit 2,
// no output file) and leaves the host exactly as it was, whichever check or refusal stops it.

/** A configuration as a file holds it. */
type Config = Record<string, unknown>;

/** CONFIG with vmem0's fields replaced (or, with null, without vmem0). */
function withVmem(fields: Record<string, unknown> | null): Config {
  const devices: unknown[] = CONFIG.devices.filter((d) => d.type !== "virtio-mem");
  if (fields !== null) devices.unshift({ ...CONFIG.devices[0], ...fields });
  return { ...CONFIG, devices };
}

/** The saved state of `config`'s host after vmem0 plugs `blocks` blocks at each GPA of `plugs`. */
function savedAfterPlugs(config: Config, plugs: [gpa: number, blocks: number][]): Uint8Array {
  using host = buildHost(parseHostConfig(config, "saved.json"));
  const vmem = host.virtioMem.get("vmem0")!;
  for (const [gpa, blocks] of plugs) assert.equal(vmem.plug(gpa, blocks), "ACK");
  return saveHostState(host);
}

/** Everything of `host` a load could change: its saved state, device and plugin counters. */
function hostState(host: ReturnType<typeof buildHost>) {
  return {
    saved: saveHostState(host),
    virtioMem: [...host.virtioMem.values()].map((d) => ({ plugged: d.pluggedSize, ...d.stats() })),
    plugins: host.plugins.map((p) => p.stats()),
    regions: host.regions.map((r) => ({ ...r.stats })),
  };
}

/**
 * Asserts that loading `saved` into a new host of `config` throws `message` and changes nothing:
 * not even a counter, or (`undone`, a refusal met while loading) nothing but counters.
 */
function assertRefused(
  config: Config,
  saved: Uint8Array,
  message: RegExp,
  prepare = (_: Host) => {},
  undone = false,
) {
  using host = buildHost(parseHostConfig(config, "target.json"));
  prepare(host);
  const before = hostState(host);
  assert.throws(() => loadHostState(host, saved), (e: unknown) => {
    assert.ok(e instanceof SnapshotError, String(e));
    assert.equal(e.code, "region");
    assert.match(e.message, message);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
  const after = hostState(host);
  if (undone) {
    // Changes made and undone count their calls; the state itself is as before.
    assert.deepEqual(after.saved, before.saved);
    assert.deepEqual(after.virtioMem.map((d) => d.plugged), before.virtioMem.map((d) => d.plugged));
    assert.deepEqual(after.plugins.map((p) => p.mappings), before.plugins.map((p) => p.mappings));
    for (const p of host.plugins) {
      for (const r of host.regions) assert.deepEqual(p.verify?.(r) ?? [], [], p.name);
    }
  } else assert.deepEqual(after, before, `${message}: the refused load changed the host`);
}

Deno.test("host state: PLUGGED changes virtio-mem would refuse are refused before anything changes", () => {
  const G = 2 ** 32; // hotplug-ram's base, vmem0's first block
  const eightMiB = savedAfterPlugs(CONFIG, [[G, 4]]);
  // A plug beyond the requested size: the device answers NACK.
  assertRefused(
    withVmem({ requestedSize: "2MiB" }),
    eightMiB,
    /^saved state: region hotplug-ram: 8 MiB is plugged in virtio-mem vmem0, more than its requestedSize 2 MiB$/,
  );
  // Blocks of another size: ERROR, for a range that starts inside a block or ends there.
  const fourMiB = withVmem({ blockSize: "4MiB" });
  assertRefused(
    fourMiB,
    savedAfterPlugs(CONFIG, [[G + 2 * MiB, 2]]),
    /\[0x100200000, 0x100600000\) is plugged in partial blocks of virtio-mem vmem0 \(blockSize 4 MiB/,
  );
  assertRefused(
    fourMiB,
    savedAfterPlugs(CONFIG, [[G, 1]]),
    /\[0x100000000, 0x100200000\) is plugged in partial blocks of virtio-mem vmem0/,
  );
  // A block past the usable range (requestedSize + 256 MiB): ERROR.
  assertRefused(
    withVmem({ requestedSize: "4MiB" }),
    savedAfterPlugs(CONFIG, [[G + 512 * MiB, 1]]),
    /\[0x120000000, 0x120200000\) is plugged past the end 0x110400000 of the memory virtio-mem vmem0/,
  );
  // A device busy with a migration: BUSY.
  assertRefused(CONFIG, eightMiB, /is plugged but virtio-mem vmem0 is busy/, (host) => {
    host.virtioMem.get("vmem0")!.busy = true;
  });
});

Deno.test("host state: the device checks a load's plugs in the load's order, counting what the load unplugged and plugged before (hw/virtio/virtio-mem.c virtio_mem_state_change_request)", () => {
  // Rule: a PLUG past the requested size is NACK, counted from the plugged size at that
  // request. The load unplugs first, so the blocks it unplugs make room, and every plug it
  // makes counts against the next: two 4 MiB parts are 8 MiB.
  const G = 2 ** 32;
  const twoParts = savedAfterPlugs(CONFIG, [[G, 2], [G + 64 * MiB, 2]]);
  assertRefused(
    withVmem({ requestedSize: "6MiB" }),
    twoParts,
    /^saved state: region hotplug-ram: 8 MiB is plugged in virtio-mem vmem0, more than its requestedSize 6 MiB$/,
  );
  // 8 MiB plugged elsewhere, requestedSize 8 MiB: the load unplugs those, then plugs its own.
  using host = buildHost(parseHostConfig(withVmem({ requestedSize: "8MiB" }), "full.json"));
  const vmem = host.virtioMem.get("vmem0")!;
  assert.equal(vmem.plug(G + 128 * MiB, 4), "ACK");
  loadHostState(host, twoParts);
  assert.equal(vmem.pluggedSize, 8 * MiB);
  assert.deepEqual(vmem.state(G, 2), { response: "ACK", state: "plugged" });
  assert.deepEqual(vmem.state(G + 128 * MiB, 4), { response: "ACK", state: "unplugged" });
});

Deno.test("host state: a load whose unplug cannot discard the backing and whose putting back a DMA map refuses ends as saved, the device naming the backing it kept", () => {
  // virtio-mem under memstate (docs/semantics.md "virtio-mem"): the listeners hear of an UNPLUG
  // first; when the backing then cannot be discarded the blocks are put back, and a block a
  // listener refuses to take back stays unplugged, answered as such (ACK). The load goes on from
  // what the device holds: here the state it was asked for.
  const G = 2 ** 32;
  using a = buildHost(parseHostConfig(CONFIG, "a.json"));
  a.regions[1].convert(0, 8 * MiB, "shared"); // shared, not plugged
  const saved = saveHostState(a);
  using b = buildHost(parseHostConfig(CONFIG, "b.json"));
  const vmem = b.virtioMem.get("vmem0")!;
  assert.equal(vmem.plug(G, 4), "ACK");
  b.regions[1].convert(0, 8 * MiB, "shared"); // nic0 and gpu0 map it
  const nic = b.devices.get("nic0")!.container.hardware as SimType1Container;
  const map = nic.map.bind(nic);
  let refuseMap = false;
  nic.map = (iova, vaddr, size) => {
    if (refuseMap) {
      refuseMap = false;
      throw new Error("ENOMEM: cannot pin (test)");
    }
    map(iova, vaddr, size);
  };
  b.kvm.discardShared = () => {
    refuseMap = true; // the next map is putting the blocks back
    throw new Error("fallocate: EIO (test)");
  };
  loadHostState(b, saved);
  assert.deepEqual(saveHostState(b), saved);
  assert.equal(vmem.pluggedSize, 0);
  assert.match(
    vmem.stats().warnings?.join("\n") ?? "",
    /^\[0x100000000, 0x100800000\) stays unplugged .*ENOMEM/,
  );
  for (const p of b.plugins) {
    for (const r of b.regions) assert.deepEqual(p.verify?.(r) ?? [], [], p.name);
  }
});

Deno.test("host state: memory outside every virtio-mem device is never unplugged by a load", () => {
  const saved = savedAfterPlugs(CONFIG, [[2 ** 32, 4]]);
  // vmem0 moved to the second half of the region: the first half was unplugged by the old one.
  assertRefused(
    withVmem({ offset: "1GiB", size: "1GiB", requestedSize: "512MiB" }),
    saved,
    /^saved state: region hotplug-ram: \[0x100800000, 0x140000000\) is unplugged outside every virtio-mem device of the region \(vmem0 \[0x140000000, 0x180000000\)\)$/,
  );
  // No virtio-mem device at all.
  assertRefused(
    withVmem(null),
    saved,
    /\[0x100800000, 0x180000000\) is unplugged but the region has no virtio-mem device$/,
  );
  // The other way round is fine: what no device holds back stays plugged, the device plugs.
  using host = buildHost(parseHostConfig(withVmem(null), "no-vmem.json"));
  using moved = buildHost(parseHostConfig(withVmem({ offset: "1GiB", size: "1GiB" }), "m.json"));
  loadHostState(moved, saveHostState(host));
  assert.equal(moved.virtioMem.get("vmem0")!.pluggedSize, GiB);
  assert.equal(moved.regions[1].stateAt(0) & PLUGGED, PLUGGED);
});

/** A 64 MiB host with a type1 NIC whose dmaEntryLimit is `limit` (under `vmm`). */
function dmaConfig(limit: number, vmm = "memstate") {
  return {
    name: "dma",
    vmm,
    regions: [{ name: "ram", size: "64MiB", base: 0 }],
    devices: [{ type: "type1", name: "nic0", dmaEntryLimit: limit }],
    continueOnCapacityError: true,
    workload: { name: "boot" },
  };
}

Deno.test("host state: a change the host refuses while loading is undone with every change before it", () => {
  // 200 shared pages: the 101st map is past a dmaEntryLimit of 100.
  for (const vmm of ["memstate", "qemu-10.1", "qemu-11.1"]) {
    using a = buildHost(parseHostConfig(dmaConfig(1000, vmm), "a.json"));
    for (let i = 0; i < 200; i++) a.regions[0].convert(i * 8192, 4096, "shared");
    const saved = saveHostState(a);
    using b = buildHost(parseHostConfig(dmaConfig(100, vmm), "b.json"));
    const before = saveHostState(b);
    assert.throws(
      () => loadHostState(b, saved),
      (e: unknown) =>
        e instanceof SnapshotError && e.code === "region" &&
        /^saved state: the host refused to load it \(region ram: nic0 refused populate .*ENOSPC.*\); nothing was loaded$/
          .test(e.message),
      vmm,
    );
    // The store, KVM's attributes and the IOMMU are as before, under every policy.
    assert.deepEqual(saveHostState(b), before, vmm);
    for (const p of b.plugins) {
      assert.deepEqual(p.verify?.(b.regions[0]) ?? [], [], `${vmm} ${p.name}`);
    }
    assert.equal(b.plugins.find((p) => p.name === "nic0")!.stats().mappings, 0, vmm);
  }
  // A plug a DMA listener refuses (the device answers BUSY), after plugs and conversions made.
  const G = 2 ** 32;
  using a = buildHost(parseHostConfig(CONFIG, "a.json"));
  const vmemA = a.virtioMem.get("vmem0")!;
  assert.equal(vmemA.plug(G, 4), "ACK");
  assert.equal(vmemA.plug(G + 64 * MiB, 4), "ACK");
  for (let i = 0; i < 200; i++) a.regions[1].convert(64 * MiB + i * 8192, 4096, "shared");
  const saved = saveHostState(a);
  const limited = {
    ...CONFIG,
    continueOnCapacityError: true,
    devices: CONFIG.devices.map((d) => d.type === "type1" ? { ...d, dmaEntryLimit: 100 } : d),
  };
  assertRefused(
    limited,
    saved,
    /^saved state: the host refused to load it \(region hotplug-ram: virtio-mem vmem0 answered BUSY to PLUG of \[0x104000000, 0x104800000\)\); nothing was loaded$/,
    undefined,
    true,
  );
});

Deno.test("host state: a load clears in every region before it sets in any", () => {
  // nic0 holds 300 mappings: region b starts with 256 (shared), the saved state has them in a.
  const two = (limit: number) => ({
    name: "two",
    regions: [
      { name: "a", size: "1MiB", base: 0 },
      { name: "b", size: "1MiB", base: "1MiB", initial: "shared" },
    ],
    devices: [{ type: "type1", name: "nic0", dmaEntryLimit: limit }],
    continueOnCapacityError: true,
    workload: { name: "boot" },
  });
  using a = buildHost(parseHostConfig(two(1000), "a.json"));
  a.regions[1].convert(0, MiB, "private");
  a.regions[0].convert(0, MiB, "shared");
  using b = buildHost(parseHostConfig(two(300), "b.json"));
  loadHostState(b, saveHostState(a));
  assert.deepEqual(saveHostState(b), saveHostState(a));
  assert.equal(b.plugins.find((p) => p.name === "nic0")!.stats().mappings, 256);
});

Deno.test("cli: a saved state the configured host refuses exits 2 in one line and writes nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const write = (name: string, config: unknown) =>
      Deno.writeTextFile(`${dir}/${name}`, JSON.stringify(config));
    await write("resume.json", CONFIG);
    await write("small.json", withVmem({ requestedSize: "2MiB" }));
    await write("moved.json", withVmem({ offset: "1GiB", size: "1GiB", requestedSize: "512MiB" }));
    await write("dma-big.json", dmaConfig(1000));
    await write("dma-small.json", dmaConfig(100));
    const plug = `{"op":"plug","gpa":"0x100000000","size":"0x800000"}\n`;
    await Deno.writeTextFile(`${dir}/plug.jsonl`, plug);
    const share = Array.from(
      { length: 200 },
      (_, i) =>
        JSON.stringify({
          op: "convert",
          gpa: `0x${(i * 8192).toString(16)}`,
          size: 4096,
          to: "shared",
        }),
    );
    await Deno.writeTextFile(`${dir}/share.jsonl`, share.join("\n") + "\n");
    for (const [config, trace, state] of [["resume", "plug", "vm"], ["dma-big", "share", "dma"]]) {
      const r = await cli(
        "run",
        `${dir}/${config}.json`,
        "--trace",
        `${dir}/${trace}.jsonl`,
        "--save-state",
        `${dir}/${state}.state`,
      );
      assert.equal(r.code, 0, r.err);
    }
    const cases: [string, string, RegExp][] = [
      [
        "small",
        "vm",
        /region hotplug-ram: 8 MiB is plugged in virtio-mem vmem0, more than its requestedSize 2 MiB$/,
      ],
      [
        "moved",
        "vm",
        /region hotplug-ram: \[0x100800000, 0x140000000\) is unplugged outside every virtio-mem device/,
      ],
      [
        "dma-small",
        "dma",
        /the host refused to load it \(region ram: nic0 refused populate .*ENOSPC.*\); nothing was loaded$/,
      ],
    ];
    for (const [config, state, message] of cases) {
      const outputs = [
        "--save-state",
        `${dir}/out.state`,
        "--svg",
        `${dir}/out.svg`,
        "--html",
        `${dir}/out.html`,
      ];
      const r = await cli(
        "run",
        `${dir}/${config}.json`,
        "--trace",
        `${dir}/plug.jsonl`,
        "--load-state",
        `${dir}/${state}.state`,
        ...outputs,
      );
      assert.equal(r.code, 2, `${config}: ${r.err}`);
      assert.match(
        r.err,
        new RegExp(`^memstate run: --load-state [^"]*/${state}\\.state: saved state: `),
      );
      assert.match(r.err, message);
      assert.doesNotMatch(r.err, /\n/);
      assert.equal(r.out, "");
      for (const out of ["out.state", "out.svg", "out.html"]) {
        await assert.rejects(
          () => Deno.stat(`${dir}/${out}`),
          Deno.errors.NotFound,
          `${config}: ${out}`,
        );
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
