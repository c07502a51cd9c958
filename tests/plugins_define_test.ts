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

Deno.test("definePlugin: every hook must be synchronous; an async one is refused when the plugin is defined", () => {
  const hooks = ["populate", "discard", "setup", "teardown", "verify", "stats", "granularity"];
  for (const hook of hooks) {
    for (
      const [how, fn] of [
        ["an async function", async () => {}],
        ["an async generator function", async function* () {}],
        ["a generator function", function* () {}],
      ] as const
    ) {
      const spec = { name: "late", kind: "x", populate() {}, discard() {}, [hook]: fn };
      assert.throws(
        () => definePlugin(spec as unknown as Parameters<typeof definePlugin>[0]),
        (e) =>
          e instanceof TypeError &&
          e.message.startsWith(`definePlugin late: ${hook} must be synchronous; it is ${how} `),
        `${hook}: ${how}`,
      );
    }
  }
});

Deno.test("definePlugin: a hook that returns a promise refuses its call, counted as a failure; the rejection is handled", async () => {
  const rejected = () => Promise.reject(new Error("too late"));
  const region = new Region({ name: "ram", size: 2 ** 24 });
  const before = new Region({ name: "before", size: 2 ** 24 });
  before.convert(0, 0x2000, "shared");
  const populate = definePlugin({
    name: "p",
    kind: "x",
    populate: rejected as () => void,
    discard() {},
  });
  populate.attach(region);
  for (const size of [0x1000, 0x3000]) { // the one-page path and the general one
    assert.throws(() => region.convert(0, size, "shared"), (e) => {
      assert.ok(e instanceof ConversionError);
      assert.match(e.message, /p refused populate .*: populate returned a Promise; populate must/);
      return true;
    });
  }
  assert.equal(region.isPopulated({ offset: 0, size: 0x1000 }), false, "rolled back");
  assert.deepEqual(populate.stats().calls, { populate: 2 });
  assert.equal(populate.stats().failures, 2);
  assert.equal(populate.stats().mappings, 0);
  assert.throws(() => populate.attach(before), ConversionError, "a replay is refused too");
  const discard = definePlugin({ name: "d", kind: "x", populate() {}, discard: rejected });
  populate.detach(region);
  discard.attach(region);
  region.convert(0, 0x1000, "shared");
  assert.throws(() => region.convert(0, 0x1000, "private"), /discard returned a Promise/);
  assert.equal(discard.stats().mappedBytes, 0x1000, "still mapped: the discard was refused");
  const others = definePlugin({
    name: "o",
    kind: "x",
    populate() {},
    discard() {},
    stats: rejected as unknown as () => Record<string, never>,
    verify: rejected as unknown as () => string[],
  });
  others.attach(region);
  assert.throws(() => others.stats(), /^TypeError: stats returned a Promise; stats must be/);
  assert.throws(() => others.verify(region), /^TypeError: verify returned a Promise; verify must/);
  const setup = definePlugin({
    name: "s",
    kind: "x",
    setup: rejected,
    populate() {},
    discard() {},
  });
  assert.throws(() => setup.attach(region), /setup returned a Promise; setup must be synchronous/);
  assert.deepEqual(setup.attached(), []);
  await new Promise((resolve) => setTimeout(resolve, 20)); // no rejection is left unhandled
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
    "async.ts": `import { definePlugin } from "${mod}";
export default () => definePlugin({ name: "a", kind: "r",
  async populate() { await 0; throw new Error("x"); }, discard() {} });`,
    "asyncmethod.ts": `export default () => ({ name: "m", kind: "r", attach() {}, detach() {},
  async stats() { return {}; }, async verify() { return []; } });`,
    "asynclistener.ts": `export default () => ({ name: "l", kind: "r", detach() {}, stats() {},
  attach(region) { region.register({ name: "l", async populate() {}, discard() {} }); } });`,
    "attachpromise.ts": `export default () => ({ name: "t", kind: "r", detach() {}, stats() {},
  attach: () => Promise.reject(new Error("later")) });`,
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
    [
      `${dir}/async.ts`,
      /async\.ts: the factory threw: definePlugin a: populate must be synchronous; it is an async/,
    ],
    [
      `${dir}/asyncmethod.ts`,
      /plugin m: stats is an async function, verify is an async function; a plugin's methods must/,
    ],
    [
      `${dir}/asynclistener.ts`,
      /plugin l refused to attach to region ram: listener l: populate must be synchronous; it is/,
    ],
    [`${dir}/attachpromise.ts`, /plugin t refused to attach .*: attach returned a Promise; attach/],
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

Deno.test("cli: a plugin's async hook is one line and exit 2; a throwing verify or stats a violation and exit 1 with the report; never a stack trace", async () => {
  // As a user runs it (`deno task memstate`), in a process of its own: an unhandled rejection
  // or an internal error would show there, and nowhere in-process.
  const dir = await Deno.makeTempDir({ prefix: "memstate_plugin_" });
  const mod = new URL("../mod.ts", import.meta.url).href;
  const modules: Record<string, string> = {
    "asyncpop.ts": `import { definePlugin } from "${mod}";
export default () => definePlugin({ name: "asyncpop", kind: "mine",
  async populate() { await 0; throw new Error("x"); }, discard() {} });`,
    "rawpromise.ts": `export default () => ({ name: "raw", kind: "raw", detach() {},
  stats: () => ({ name: "raw", kind: "raw", calls: {}, mappings: 0, peakMappings: 0,
    mappedBytes: 0, failures: 0 }),
  attach(region) {
    region.register({ name: "raw", priority: 20, discard() {},
      populate: () => Promise.reject(new Error("raw x")) });
  } });`,
    "badverify.ts": `import { definePlugin } from "${mod}";
export default () => definePlugin({ name: "badverify", kind: "mine", populate() {}, discard() {},
  verify() { throw new Error("verify boom"); } });`,
    "badstats.ts": `import { definePlugin } from "${mod}";
export default () => definePlugin({ name: "badstats", kind: "mine", populate() {}, discard() {},
  stats() { throw new Error("stats boom"); } });`,
  };
  for (const [name, text] of Object.entries(modules)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  const memstate = async (...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-ffi",
        "--allow-env",
        "--allow-sys=systemMemoryInfo",
        "cli.ts",
        ...args,
      ],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decode = (b: Uint8Array) => new TextDecoder().decode(b).trimEnd();
    return { code: out.code, out: decode(out.stdout), err: decode(out.stderr) };
  };
  const config = "examples/tdx-trace.json";
  const [asyncpop, raw, verify, stats, compare] = await Promise.all([
    memstate("run", config, "--plugin", `${dir}/asyncpop.ts`),
    memstate("run", config, "--plugin", `${dir}/rawpromise.ts`),
    memstate("run", config, "--plugin", `${dir}/badverify.ts`),
    memstate("run", config, "--plugin", `${dir}/badstats.ts`),
    memstate("compare", config, "--plugin", `${dir}/badverify.ts`),
  ]);
  // README: exit status 2, one line naming the input and the rule, before any work.
  assert.equal(asyncpop.code, 2, asyncpop.err);
  assert.equal(asyncpop.err.split("\n").length, 1, asyncpop.err);
  assert.match(
    asyncpop.err,
    /^memstate run: --plugin .*asyncpop\.ts: the factory threw: definePlugin asyncpop: populate must be synchronous; it is an async function/,
  );
  assert.equal(asyncpop.out, "");
  // README: exit status 1, the report says which problem. Nothing on standard error.
  for (const r of [raw, verify, stats, compare]) {
    assert.equal(r.code, 1, r.err);
    assert.equal(r.err, "");
  }
  assert.match(
    raw.out,
    /line \d+: region ram-below-4g: raw refused populate .*: populate returned a Promise; populate must be synchronous .*; the change was rolled back/,
  );
  assert.match(raw.out, /conversions: 293 requested, 0 applied, 94 no-op, 1 ignored, 198 failed/);
  assert.match(verify.out, /invariants: \d+ checked, 2 violations/);
  assert.match(
    verify.out,
    /violation: plugin badverify: verify on region ram-below-4g threw: verify boom\n/,
  );
  assert.match(
    stats.out,
    /violation: plugin badstats: stats threw: stats boom; its statistics are left out/,
  );
  assert.match(stats.out, /^kvm +kvm-attributes/m, "the other plugins are reported");
  assert.doesNotMatch(stats.out, /^badstats/m);
  assert.match(compare.out, /^iommufd .* 2$/m, "compare counts the violations");
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
  // Its options come from a user's JSON: each wrong one is named in one line (exit 2).
  const bad: [Record<string, unknown>, string][] = [
    [{ protect: "abc" }, 'protect: must be a list of { gpa, size }, got "abc"'],
    [{ protect: [null] }, "protect[0]: must be { gpa, size }, got null"],
    [{ name: null }, "name: must be a non-empty string, got null"],
  ];
  for (const [options, message] of bad) {
    config.plugins[0].options = options;
    await Deno.writeTextFile(`${dir}/c.json`, JSON.stringify(config));
    const r = await cli("run", `${dir}/c.json`);
    assert.equal(r.code, 2, r.err);
    assert.ok(r.err.endsWith(`: the factory threw: ${message}`), r.err);
    assert.equal(r.err.split("\n").length, 1, r.err);
  }
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

Deno.test("runSession: a plugin whose stats cannot be read is left out of the report's plugins and named among its violations", async () => {
  const dir = await Deno.makeTempDir({ prefix: "memstate_plugin_" });
  const mod = new URL("../mod.ts", import.meta.url).href;
  const modules: Record<string, string> = {
    "throws.ts": `import { definePlugin } from "${mod}";
export default () => definePlugin({ name: "throws", kind: "x", populate() {}, discard() {},
  stats() { throw new Error("stats boom\\nmore"); } });`,
    "late.ts": `export default () => ({ name: "late", kind: "x", attach() {}, detach() {},
  stats: () => Promise.reject(new Error("later")) });`,
    "none.ts": `export default () => ({ name: "none", kind: "x", attach() {}, detach() {},
  stats: () => 7 });`,
  };
  for (const [name, text] of Object.entries(modules)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  const config = parseHostConfig({
    name: "x",
    regions: [{ name: "a", size: "8MiB" }],
    workload: { name: "dma-scatter", params: { count: 10 } },
  }, "x.json");
  const { report } = await runSession(config, {
    plugins: Object.keys(modules).map((m) => `${dir}/${m}`),
  });
  assert.deepEqual(report.plugins.map((p) => p.name), ["kvm"]);
  assert.deepEqual(report.invariants.violations, [
    "plugin throws: stats threw: stats boom; its statistics are left out of the report",
    "plugin late: stats returned a Promise; stats must be synchronous (memstate does not await it); " +
    "its statistics are left out of the report",
    "plugin none: stats returned number, not an object of statistics",
  ]);
  await new Promise((resolve) => setTimeout(resolve, 20)); // the rejection was handled
});

Deno.test("definePlugin: a listener whose replay QEMU refused stays registered, and so does the plugin's attachment: 11.1 keeps it, 10.1's failed region holds it (listenerStayedRegistered)", () => {
  for (const vmm of ["qemu-10.1", "qemu-11.1"] as const) {
    const region = new Region({ name: "r", size: 8 * PAGE, vmm, initial: "shared" });
    const torn: string[] = [];
    const plugin = definePlugin({
      name: "p",
      kind: "test",
      setup: () => ({}),
      teardown: () => void torn.push(vmm),
      populate() {
        throw new Error("refused");
      },
      discard() {},
    });
    assert.throws(() => plugin.attach(region), /refused/, vmm);
    assert.deepEqual(region.listeners.map((l) => l.name), ["p"], vmm);
    assert.deepEqual(torn, [], `${vmm}: the attachment's state is kept`);
    assert.doesNotThrow(() => plugin.detach(region), vmm); // found, and let go
    assert.deepEqual(torn, [vmm]);
  }
});

Deno.test("definePlugin under QEMU 10.1: a plugin refused by a region another listener failed before keeps nothing (the region's error is the other listener's)", () => {
  const region = new Region({ name: "r", size: 8 * PAGE, vmm: "qemu-10.1", initial: "shared" });
  const failing = definePlugin({
    name: "a",
    kind: "test",
    populate() {
      throw new Error("refused");
    },
    discard() {},
  });
  assert.throws(() => failing.attach(region), /refused/);
  const torn: string[] = [];
  const late = definePlugin({
    name: "b",
    kind: "test",
    setup: () => ({}),
    teardown: () => void torn.push("b"),
    populate() {},
    discard() {},
  });
  assert.throws(() => late.attach(region), /has failed/);
  assert.deepEqual(region.listeners.map((l) => l.name), ["a"]);
  assert.deepEqual(torn, ["b"], "b was never registered: its state goes");
  assert.throws(() => late.detach(region), /b: not attached to region r/);
});
