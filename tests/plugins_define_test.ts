// Custom plugins: definePlugin's registration and standard stats (exact under
// every policy, checked against the region's own runs with fast-check), plugin
// modules named by a configuration or --plugin, and the shipped example run
// both ways.
import assert from "node:assert/strict";
import fc from "fast-check";
import { cli } from "./helpers/cli.ts";
import { ConversionError } from "../src/bus/errors.ts";
import { Region } from "../src/bus/region.ts";
import { DMA_VIEW, KVM_VIEW } from "../src/bus/view.ts";
import { parseHostConfig } from "../src/host/config/load.ts";
import { runSession } from "../src/host/session.ts";
import { SimKvm } from "../src/hw/sim/kvm_vm.ts";
import { definePlugin } from "../src/plugins/define.ts";
import { kvmAttributes } from "../src/plugins/kvm_attributes.ts";
import { VMM_POLICIES } from "../src/settings/vmm.ts";
import { seedFromEnv } from "../src/util/prng.ts";

const PAGE = 4096;

/** The maximal populated runs of `region` under `view`, as the region itself replays them. */
function populated(region: Region, view = DMA_VIEW): { runs: number; bytes: number } {
  let runs = 0, bytes = 0;
  region.replayPopulated({ offset: 0, size: region.size }, view, (s) => {
    runs++;
    bytes += s.size;
  });
  return { runs, bytes };
}

Deno.test("definePlugin: mappings and mappedBytes are the populated extents, under every policy (property)", () => {
  const seed = seedFromEnv();
  console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  fc.assert(
    fc.property(
      fc.constantFrom(...VMM_POLICIES),
      fc.array(fc.tuple(fc.nat(63), fc.integer({ min: 1, max: 8 }), fc.boolean()), {
        maxLength: 60,
      }),
      (vmm, changes) => {
        const region = new Region({ name: "ram", size: 64 * PAGE, vmm });
        kvmAttributes({ vm: new SimKvm() }).attach(region);
        const plugin = definePlugin({ name: "p", kind: "test", populate() {}, discard() {} });
        plugin.attach(region);
        let peak = 0;
        for (const [page, pages, shared] of changes) {
          const size = Math.min(pages, 64 - page) * PAGE;
          region.convert(page * PAGE, size, shared ? "shared" : "private");
          const want = populated(region);
          const got = plugin.stats();
          assert.equal(got.mappings, want.runs);
          assert.equal(got.mappedBytes, want.bytes);
          peak = Math.max(peak, want.runs);
        }
        assert.ok(plugin.stats().peakMappings >= peak);
        plugin.detach(region);
        assert.equal(plugin.stats().mappings, 0);
        assert.equal(plugin.stats().mappedBytes, 0);
      },
    ),
    { seed, numRuns: 150 },
  );
});

Deno.test("definePlugin: per-region state, one attachment per region, a refusal rolls KVM back", () => {
  const region = new Region({ name: "ram", size: 2 ** 24 });
  const other = new Region({ name: "ram2", size: 2 ** 24, base: 2 ** 32 });
  const vm = new SimKvm();
  const kvm = kvmAttributes({ vm });
  kvm.attach(region);
  const log: string[] = [];
  const plugin = definePlugin({
    name: "counter",
    kind: "test",
    view: KVM_VIEW,
    setup: (r) => ({ region: r.name, seen: 0 }),
    populate(s, state) {
      if (s.offset === 0x10000) throw new Error("no");
      state.seen++;
    },
    discard(_s, state) {
      state.seen--;
    },
    teardown: (r, state) => log.push(`teardown ${r.name} ${state.seen}`),
    verify: (_r, state) => (state.seen < 0 ? ["negative"] : []),
  });
  region.convert(0, 0x2000, "shared"); // before the attach: replayed to it
  plugin.attach(region);
  plugin.attach(other);
  assert.equal(plugin.state(region)!.seen, 1);
  assert.throws(() => plugin.attach(region), /already attached to region ram/);
  assert.throws(() => region.convert(0x10000, 0x1000, "shared"), ConversionError);
  assert.equal(vm.getMemoryAttributes(region.base + 0x10000), 8, "KVM rolled back to private");
  assert.deepEqual(plugin.verify(region), []);
  assert.equal(plugin.stats().failures, 1);
  plugin.detach(region);
  assert.deepEqual(log, ["teardown ram 0"]);
  assert.throws(() => plugin.detach(region), /not attached to region ram/);
  assert.deepEqual(plugin.attached().map(([r]) => r.name), ["ram2"]);
  assert.throws(
    () => definePlugin({ name: "", kind: "x", populate() {}, discard() {} }),
    /name must be a non-empty string/,
  );
});

Deno.test("plugin modules: a configuration names a module relative to itself, with options and regions", async () => {
  const dir = await Deno.makeTempDir({ prefix: "memstate_plugin_" });
  await Deno.mkdir(`${dir}/plugins`);
  await Deno.writeTextFile(
    `${dir}/plugins/count.ts`,
    `import { definePlugin } from "${new URL("../mod.ts", import.meta.url).href}";
export default (options, context) => definePlugin({
  name: options.name,
  kind: "count:" + context.regions.map((r) => r.name).join("+"),
  priority: options.priority,
  populate() {},
  discard() {},
});
`,
  );
  await Deno.writeTextFile(
    `${dir}/host.json`,
    JSON.stringify({
      name: "with-plugin",
      regions: [{ name: "low", size: "64MiB" }, { name: "high", size: "64MiB", base: "4GiB" }],
      plugins: [{
        module: "plugins/count.ts",
        options: { name: "c", priority: 5 },
        region: "high",
      }],
      workload: { name: "dma-scatter", params: { count: 200 } },
    }),
  );
  const r = await cli("run", `${dir}/host.json`, "--json");
  assert.equal(r.code, 0, r.err);
  const report = JSON.parse(r.out);
  const c = report.plugins.find((p: { name: string }) => p.name === "c");
  assert.equal(c.kind, "count:high");
  const high = report.regions.find((g: { name: string }) => g.name === "high");
  assert.equal(c.mappedBytes, high.sharedBytes, "it follows the high region only");
});

Deno.test("plugin modules: every way a module can be wrong is one line and exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "memstate_plugin_" });
  const mod = new URL("../mod.ts", import.meta.url).href;
  const modules: Record<string, string> = {
    "none.ts": "export const x = 1;",
    "throws.ts": "export default () => { throw new Error('bad options'); };",
    "object.ts": "export default () => ({ name: 'x' });",
    "syntax.ts": "export default (",
    "refuses.ts": `import { definePlugin } from "${mod}";
export default () => definePlugin({ name: "r", kind: "r", setup() { throw new Error("no room"); },
  populate() {}, discard() {} });`,
    "clash.ts": `import { definePlugin } from "${mod}";
export default () => definePlugin({ name: "kvm", kind: "r", populate() {}, discard() {} });`,
  };
  for (const [name, text] of Object.entries(modules)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  const cases: [string, RegExp][] = [
    [`${dir}/missing.ts`, /--plugin .*missing\.ts: cannot load the module: /],
    [`${dir}/none.ts`, /default export must be a function .* got no default export/],
    [`${dir}/throws.ts`, /the factory threw: bad options/],
    [`${dir}/object.ts`, /the factory must return a Plugin; it has no kind, attach, detach, stats/],
    [`${dir}/syntax.ts`, /cannot load the module: /],
    [`${dir}/refuses.ts`, /plugin r refused to attach to region ram: no room/],
    [`${dir}/clash.ts`, /plugin name "kvm" is taken/],
  ];
  const config = `${dir}/host.json`;
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      name: "p",
      regions: [{ name: "ram", size: "16MiB" }],
      workload: { name: "dma-scatter", params: { count: 10 } },
    }),
  );
  for (const [plugin, message] of cases) {
    const r = await cli("run", config, "--plugin", plugin);
    assert.equal(r.code, 2, `${plugin}: ${r.err}`);
    assert.match(r.err, message, plugin);
    assert.equal(r.err.split("\n").length, 1, r.err);
    assert.doesNotMatch(r.err, /Uncaught/);
    assert.equal(r.out, "");
  }
  // A configuration entry that names no module, or an unknown region.
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      name: "p",
      regions: [{ name: "ram", size: "16MiB" }],
      plugins: [{ options: {} }, { module: "x.ts", region: ["ram", "rom"] }],
      workload: { name: "boot" },
    }),
  );
  const bad = await cli("run", config);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /plugins\[0\]\.module: is required/);
  assert.match(bad.err, /plugins\[1\]\.region\[1\]: unknown region "rom" \(regions: ram\)/);
});

Deno.test("examples/custom_listener.ts runs on its own and as a plugin module, by path and from a configuration", async () => {
  const alone = await new Deno.Command(Deno.execPath(), {
    args: ["run", "examples/custom_listener.ts"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(alone.stdout);
  assert.equal(alone.code, 0, new TextDecoder().decode(alone.stderr));
  assert.match(text, /shared 16 MiB: devices may reach 16 MiB/);
  assert.match(text, /refused and rolled back: .*protected memory at 0x104000000/);
  assert.match(text, /KVM still says private there: attributes = 8/);
  const byPath = await cli(
    "run",
    "examples/tdx-trace.json",
    "--plugin",
    "examples/custom_listener.ts",
    "--json",
  );
  assert.equal(byPath.code, 0, byPath.err);
  const fromConfig = await cli("run", "examples/custom-plugin.json", "--json");
  assert.equal(fromConfig.code, 0, fromConfig.err);
  for (const r of [byPath, fromConfig]) {
    const report = JSON.parse(r.out);
    const firewall = report.plugins.find((p: { kind: string }) => p.kind === "dma-firewall");
    assert.ok(firewall.mappings > 0);
    const shared = report.regions.reduce(
      (n: number, g: { sharedBytes: number }) => n + g.sharedBytes,
      0,
    );
    assert.equal(firewall.mappedBytes, shared, "the firewall follows plugged-and-shared memory");
  }
  // Protecting a page the trace shares: that conversion is refused and rolled back (exit 1).
  const config = JSON.parse(await Deno.readTextFile("examples/custom-plugin.json"));
  config.plugins[0].options.protect = [{ gpa: "0x7a000000", size: "4KiB" }];
  config.plugins[0].module = new URL("../examples/custom_listener.ts", import.meta.url).pathname;
  config.workload.trace = new URL("../examples/traces/tdx-boot.log", import.meta.url).pathname;
  const dir = await Deno.makeTempDir({ prefix: "memstate_plugin_" });
  await Deno.writeTextFile(`${dir}/c.json`, JSON.stringify(config));
  const refused = await cli("run", `${dir}/c.json`, "--json");
  assert.equal(refused.code, 1);
  const report = JSON.parse(refused.out);
  assert.equal(report.conversions.failed, 1);
  assert.match(
    report.errors[0].message,
    /firewall refused populate .* protected memory at 0x7a000000/,
  );
});

Deno.test("runSession: plugins given as paths follow every region", async () => {
  const config = parseHostConfig({
    name: "x",
    regions: [{ name: "a", size: "8MiB" }, { name: "b", size: "8MiB", base: "1GiB" }],
    workload: { name: "dma-scatter", params: { count: 100 } },
  }, "x.json");
  const { report } = await runSession(config, { plugins: ["examples/custom_listener.ts"] });
  const firewall = report.plugins.find((p) => p.kind === "dma-firewall")!;
  assert.equal(firewall.mappedBytes, report.regions[0].sharedBytes + report.regions[1].sharedBytes);
});
