// Fuzzing the command line (fast-check): random and mangled configurations,
// traces and options, run through main() in-process and, a few, as the real
// program. Whatever the input, the exit status is 0, 1 or 2, main() never
// throws, and standard error never shows an uncaught error or a stack trace.
// The seed is printed; MEMSTATE_SEED=<n> replays a run.
import assert from "node:assert/strict";
import fc from "fast-check";
import { main } from "../cli.ts";
import { seedFromEnv } from "../src/util/prng.ts";

const DIR = await Deno.makeTempDir({ prefix: "memstate_fuzz_" });
let files = 0;
const file = async (name: string, data: string | Uint8Array) => {
  const path = `${DIR}/${files++}-${name}`;
  if (typeof data === "string") await Deno.writeTextFile(path, data);
  else await Deno.writeFile(path, data);
  return path;
};

// ---------------------------------------------------------------------------
// Generators. Mostly valid (so that runs get far), sometimes anything; valid
// values stay small, so every run is quick.

/** `good` nineteen times in twenty, else `bad`. */
function mostly<T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>): fc.Arbitrary<T | U> {
  return fc.oneof({ arbitrary: good, weight: 19 }, { arbitrary: bad, weight: 1 });
}

const junk = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -5, max: 5 }),
  fc.double({ noNaN: false }),
  fc.string({ maxLength: 12 }),
  fc.constant([]),
  fc.constant({}),
);
const size = mostly(
  fc.constantFrom("4KiB", "64KiB", "2MiB", "64MiB", "1GiB", "16GiB", "1TiB", "0x1000", "16G"),
  fc.oneof(
    fc.constantFrom("1PiB", "0", "-1", "64MB", "1.5KiB", "0.1KiB", "x", ""),
    fc.constantFrom(0, -4096, 10000, 2 ** 53, 1.5),
    junk,
  ),
);
const base = mostly(
  fc.constantFrom(0, "0x100000000", "4GiB", "1TiB"),
  fc.oneof(fc.constantFrom("0x1001", -1), junk),
);
const regionName = mostly(
  fc.constantFrom("ram", "low", "high"),
  fc.constantFrom("a", "bad name", ""),
);
const region = fc.record(
  {
    name: regionName,
    size,
    base,
    pageSize: mostly(
      fc.constantFrom(4096, 4096, 4096, "2MiB"),
      fc.oneof(fc.constantFrom(1000, 0), junk),
    ),
    backing: mostly(fc.constant("separate"), fc.constantFrom("in-place", "weird")),
    initial: mostly(fc.constantFrom("private", "shared"), fc.constant(3)),
    store: mostly(fc.constantFrom("range-tree", "bitmap"), fc.constant("btree")),
    backingPageSize: mostly(
      fc.constantFrom("4KiB", "4KiB", "4KiB", "2MiB", "1GiB"),
      fc.constant("3KiB"),
    ),
    bogus: mostly(fc.constant(undefined), junk),
  },
  { requiredKeys: ["name", "size"], noNullPrototype: true },
);
const device = fc.oneof(
  fc.record({
    type: fc.constant("type1"),
    name: fc.constantFrom("nic0", "nic1", "gpu0"),
    dmaEntryLimit: fc.oneof(fc.constantFrom(1000, 65535, 4194304, 0, -1), junk),
    granularity: fc.oneof(fc.constantFrom("4KiB", "2MiB", "1GiB", 0), junk),
    region: fc.oneof(regionName, fc.array(regionName, { maxLength: 3 })),
    attachAt: fc.oneof(fc.nat(20), junk),
    detachAt: fc.oneof(fc.nat(20), junk),
  }, { requiredKeys: ["type", "name"] }),
  fc.record({
    type: fc.constant("iommufd"),
    name: fc.constantFrom("gpu0", "nic0"),
    cut: fc.oneof(fc.boolean(), junk),
    region: fc.oneof(regionName, fc.array(regionName, { maxLength: 3 })),
  }, { requiredKeys: ["type", "name"] }),
  fc.record({
    type: fc.constant("virtio-mem"),
    name: fc.constantFrom("vmem0", "vmem1"),
    region: regionName,
    blockSize: fc.oneof(fc.constantFrom("2MiB", "4KiB", "3MiB"), junk),
    requestedSize: size,
    offset: fc.oneof(fc.constantFrom(0, "2MiB", "1GiB"), junk),
    size: fc.oneof(size, fc.constant(undefined)),
  }, { requiredKeys: ["type", "name", "region", "blockSize", "requestedSize"] }),
  fc.record({ type: fc.oneof(fc.constantFrom("gpu", "type2"), junk), name: junk }),
).filter(() => true);
/** Small workloads: every count parameter is given, small, or wrong. */
const smallCount = mostly(
  fc.integer({ min: 0, max: 40 }),
  fc.constantFrom(-1, 1.5, "64MiB", "lots", null, 1e300),
);
const workload = fc.oneof(
  fc.record({
    name: fc.constant("dma-scatter"),
    seed: fc.oneof(fc.nat(100), junk),
    params: fc.record({ count: smallCount }),
  }, { requiredKeys: ["name", "params"] }),
  fc.record({
    name: fc.constant("boot"),
    params: fc.record({ buffers: smallCount, swiotlbBytes: size }, { requiredKeys: ["buffers"] }),
  }),
  fc.record({
    name: fc.constant("swiotlb-churn"),
    params: fc.record({
      steps: smallCount,
      swiotlbBytes: size,
      windowBytes: size,
      inflight: smallCount,
    }, { requiredKeys: ["steps"] }),
  }),
  fc.record({
    name: fc.constant("balloon"),
    params: fc.record({ cycles: smallCount, plugs: smallCount, converts: smallCount }, {
      requiredKeys: ["cycles"],
    }),
  }),
  fc.record({
    name: fc.constant("hotplug"),
    params: fc.record({ steps: smallCount, interval: smallCount }, { requiredKeys: ["steps"] }),
  }),
  fc.record({ trace: fc.constantFrom("../no/such.log", "", "/tmp") }),
  fc.record({ name: fc.constantFrom("idle", "boot"), trace: fc.constant("x.log") }),
  junk,
).filter(() => true);
const config = fc.record(
  {
    name: mostly(fc.constantFrom("fuzz", "x.y-z"), junk),
    backend: mostly(fc.constant("sim"), fc.constant("qemu")),
    store: mostly(fc.constantFrom("range-tree", "bitmap"), fc.constant("hash")),
    regions: mostly(
      fc.array(region, { minLength: 1, maxLength: 3 }),
      fc.constantFrom("from-trace", "from-trace", "from-file", [], null),
    ),
    devices: mostly(fc.array(device, { maxLength: 3 }), junk),
    plugins: mostly(
      fc.constant([]),
      fc.oneof(
        fc.constant([{ module: "../no_such_plugin.ts" }]),
        fc.constant([{ options: {} }]),
        junk,
      ),
    ),
    kvm: mostly(
      fc.constant(undefined),
      fc.oneof(fc.record({ mode: fc.constantFrom("separate", "in-place") }), junk),
    ),
    workload,
    vmm: mostly(fc.constantFrom("memstate", "qemu-10.1", "qemu-11.1"), fc.constant("qemu-9")),
    kernel: mostly(fc.constantFrom("linux-6.18", "proposed"), fc.constant("6.18")),
    iommu: mostly(fc.constantFrom("intel-vt-d", "amd-v1"), fc.constant("amd")),
    memlockLimit: size,
    conversionExit: mostly(fc.constantFrom("memory-fault", "tdx-mapgpa"), fc.constant("oops")),
    continueOnCapacityError: mostly(fc.boolean(), junk),
  },
  { requiredKeys: ["name", "regions", "workload"] },
);

/** Small hosts that run; each fuzz case changes at most a field or two of one. */
const VALID: Record<string, unknown>[] = [
  {
    name: "tdx",
    regions: [{ name: "low", size: "64MiB" }, { name: "high", size: "64MiB", base: "4GiB" }],
    devices: [{ type: "iommufd", name: "gpu0" }],
    workload: { name: "dma-scatter", params: { count: 30 } },
  },
  {
    name: "type1",
    regions: [{ name: "ram", size: "16MiB" }],
    devices: [{ type: "type1", name: "nic0", dmaEntryLimit: 100000, granularity: "4KiB" }],
    workload: { name: "boot", params: { buffers: 10, swiotlbBytes: "4MiB" } },
  },
  {
    name: "vmem",
    kernel: "proposed",
    regions: [{ name: "ram", size: "1GiB" }],
    devices: [
      {
        type: "virtio-mem",
        name: "vmem0",
        region: "ram",
        blockSize: "2MiB",
        requestedSize: "256MiB",
      },
      { type: "iommufd", name: "gpu0", cut: true },
    ],
    workload: { name: "balloon", params: { cycles: 2, plugs: 2, converts: 2, unplugs: 1 } },
  },
  {
    name: "hot",
    vmm: "qemu-11.1",
    regions: [{ name: "ram", size: "1GiB" }],
    devices: [{ type: "iommufd", name: "gpu0" }],
    workload: { name: "hotplug", params: { steps: 20, interval: 7, windowBytes: "8MiB" } },
  },
  { name: "trace", regions: "from-trace", workload: { trace: "no-such.log" } },
];
const FIELDS: (string | number)[][] = [
  ["name"],
  ["store"],
  ["vmm"],
  ["kernel"],
  ["iommu"],
  ["backend"],
  ["regions"],
  ["regions", 0],
  ["regions", 0, "size"],
  ["regions", 0, "base"],
  ["regions", 0, "pageSize"],
  ["regions", 0, "initial"],
  ["regions", 1, "base"],
  ["devices"],
  ["devices", 0],
  ["devices", 0, "type"],
  ["devices", 0, "region"],
  ["devices", 0, "granularity"],
  ["devices", 0, "dmaEntryLimit"],
  ["devices", 0, "attachAt"],
  ["plugins"],
  ["workload"],
  ["workload", "name"],
  ["workload", "params", "count"],
  ["workload", "params", "swiotlbBytes"],
  ["workload", "seed"],
  ["memlockLimit"],
  ["conversionExit"],
];
/** A value a field may be set to: good-looking, or anything. */
const fieldValue = fc.oneof(
  size,
  junk,
  regionName,
  fc.constantFrom(
    "bitmap",
    "range-tree",
    "qemu-10.1",
    "proposed",
    "amd-v1",
    "from-trace",
    "tdx-mapgpa",
  ),
  fc.array(region, { maxLength: 2 }),
  fc.array(device, { maxLength: 2 }),
  workload,
);
const nearlyValid = fc.tuple(
  fc.constantFrom(...VALID),
  fc.array(fc.tuple(fc.constantFrom(...FIELDS), fieldValue), { maxLength: 2 }),
).map(([base, changes]) => {
  const c = structuredClone(base);
  for (const [path, value] of changes) {
    let at = c as Record<string | number, unknown>;
    for (const key of path.slice(0, -1)) {
      if (typeof at[key] !== "object" || at[key] === null) at[key] = {};
      at = at[key] as Record<string | number, unknown>;
    }
    at[path[path.length - 1]] = value;
  }
  return c;
});

/** A trace line of any kind, good or bad. */
const traceLine = fc.oneof(
  fc.tuple(fc.nat(0x3fff), fc.constantFrom(1, 2, 512), fc.boolean()).map(([p, n, s]) =>
    `4@1.0:kvm_convert_memory start 0x${(p * 4096).toString(16)} size 0x${
      (n * 4096).toString(16)
    } ${s ? "private_to_shared" : "shared_to_private"}`
  ),
  fc.constantFrom(
    "kvm_set_user_memory AddrSpace#0 Slot#0 flags=0x4 gpa=0x0 size=0x4000000 ua=0x0 ret=0",
    "kvm_set_user_memory AddrSpace#0 Slot#1 flags=0x4 gpa=0x100000000 size=0x4000000 ret=0",
    "kvm_set_user_memory AddrSpace#0 Slot#0 flags=0x4 gpa=0x1001 size=0x0 ret=0",
    "kvm_convert_memory start 0xfee00000 size 0x1000 private_to_shared",
    "kvm_convert_memory start 0xffffffffffffffff size 0x1000 private_to_shared",
    `{"op":"plug","gpa":"0x0","size":"2MiB"}`,
    `{"op":"unplug-all"}`,
    `{"op":"convert","gpa":0,"size":4096,"to":"shared"}`,
    "# comment",
    "",
    "\uFEFF",
  ),
  fc.string({ maxLength: 60 }),
  fc.string({ maxLength: 60 }).map((s) => `kvm_convert_memory ${s}`),
  fc.string({ maxLength: 60 }).map((s) => `{"op":${s}`),
);
/** The memslots QEMU logs first, most of the time. */
const memslots = mostly(
  fc.constant([
    "kvm_set_user_memory AddrSpace#0 Slot#0 flags=0x4 gpa=0x0 size=0x4000000 ua=0x0 ret=0",
    "kvm_set_user_memory AddrSpace#0 Slot#1 flags=0x4 gpa=0x100000000 size=0x4000000 ret=0",
  ]),
  fc.constant([]),
);
const trace = mostly(
  fc.tuple(memslots, fc.array(traceLine, { maxLength: 40 })).map(([head, lines]) =>
    [...head, ...lines].join("\n")
  ),
  fc.uint8Array({ maxLength: 400 }),
);

/** Mangles a JSON text: cut short, a character changed, or a BOM. */
const mangle = (text: string) =>
  fc.oneof(
    { arbitrary: fc.constant(text), weight: 12 },
    fc.nat(Math.max(0, text.length - 1)).map((n) => text.slice(0, n)),
    fc.tuple(fc.nat(Math.max(0, text.length - 1)), fc.string({ minLength: 1, maxLength: 2 })).map((
      [i, c],
    ) => text.slice(0, i) + c + text.slice(i + 1)),
    fc.constant("\uFEFF" + text),
  );

/** Runs per property: modest for CI; MEMSTATE_FUZZ_RUNS=<n> for a longer hunt. */
const RUNS = Number(
  Deno.permissions.querySync({ name: "env", variable: "MEMSTATE_FUZZ_RUNS" }).state === "granted"
    ? Deno.env.get("MEMSTATE_FUZZ_RUNS") ?? 300
    : 300,
);

/** How many runs ended with each status (printed, to see the fuzz gets past validation). */
const statuses: Record<number, number> = {};

/** Options of any kind, good and bad (never --follow: nothing would stop it). */
const option = mostly(
  fc.constantFrom(
    ["--json"],
    ["--strict"],
    ["--continue-on-capacity-error"],
    ["--seed", "7"],
    ["--vmm", "qemu-11.1"],
    ["--vmm", "qemu-10.1"],
    ["--kernel", "proposed"],
    ["--iommu", "amd-v1"],
    ["--param", "count=5"],
    ["--param", "swiotlbBytes=4MiB"],
    ["--svg", "@out"],
  ),
  fc.oneof(
    fc.constantFrom(
      ["--store", "bitmap"],
      ["--store", "b-tree"],
      ["--seed", "-1"],
      ["--vmm", "qemu-11.1,memstate"],
      ["--kernel", "6.18"],
      ["--iommu", "amd-v2"],
      ["--iommu", "intel-vt-d,amd-v1"],
      ["--workload", "dma-scatter"],
      ["--workload", "idle"],
      ["--param", "count=1e400"],
      ["--param", "oops"],
      ["--reps", "1"],
      ["--reps", "0"],
      ["--svg", DIR],
      ["--save-state", "@out"],
      ["--load-state", "@state"],
      ["--plugin", "@missing"],
      ["--trace", "-"],
      ["--bogus"],
    ),
    fc.tuple(
      fc.constantFrom("--trace", "--seed", "--param", "--store"),
      fc.string({ maxLength: 8 }),
    ).map(([o, v]) => [o, v]),
  ),
);

const command = fc.record({
  command: fc.constantFrom("run", "run", "run", "compare"),
  config: fc.oneof({ arbitrary: nearlyValid, weight: 3 }, { arbitrary: config, weight: 1 })
    .chain((c) => mangle(JSON.stringify(c))),
  trace: fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 3 },
    { arbitrary: trace, weight: 2 },
  ),
  options: fc.array(option, { maxLength: 3 }),
  stdin: trace,
  noConfig: mostly(fc.constant(false), fc.constant(true)),
});

type Command = typeof command extends fc.Arbitrary<infer T> ? T : never;

/** The argument list for one generated command, with its files written. */
async function argsOf(c: Command): Promise<string[]> {
  const args: string[] = [c.command];
  if (!(c.noConfig && c.trace !== undefined)) args.push(await file("config.json", c.config));
  if (c.trace !== undefined) args.push("--trace", await file("trace.log", c.trace));
  for (const o of c.options) {
    for (const part of o) {
      args.push(
        part === "@out"
          ? `${DIR}/${files++}.out`
          : part === "@state"
          ? await file("x.state", new Uint8Array([1, 2, 3, 4, 5]))
          : part === "@missing"
          ? `${DIR}/missing_plugin.ts`
          : part,
      );
    }
  }
  return args;
}

function checkOutcome(args: string[], code: number, stderr: string): void {
  const what = `${args.join(" ")}\n${stderr.slice(0, 500)}`;
  assert.ok([0, 1, 2].includes(code), `exit status ${code}: ${what}`);
  assert.doesNotMatch(stderr, /Uncaught|internal error/, what);
  assert.doesNotMatch(stderr, /^\s+at .*:\d+:\d+/m, `a stack trace: ${what}`);
}

Deno.test("fuzz: main() on random and mangled configurations, traces and options", async () => {
  const seed = seedFromEnv();
  console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  await fc.assert(
    fc.asyncProperty(command, async (c) => {
      const args = await argsOf(c);
      const err: string[] = [];
      const code = await main(args, {
        out: () => {},
        err: (t) => err.push(t),
        interactive: false,
        interrupt: new AbortController().signal,
        stdin: new Blob([c.stdin]).stream(),
      });
      checkOutcome(args, code, err.join("\n"));
      statuses[code] = (statuses[code] ?? 0) + 1;
    }),
    { seed, numRuns: RUNS },
  );
  console.log(`exit statuses: ${JSON.stringify(statuses)}`);
});

Deno.test("fuzz: the program itself, as a subprocess, on a few of the same inputs", async () => {
  const seed = seedFromEnv() + 1;
  console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  await fc.assert(
    fc.asyncProperty(command, async (c) => {
      const args = await argsOf(c);
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", cli, ...args],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      checkOutcome(args, out.code, new TextDecoder().decode(out.stderr));
    }),
    { seed, numRuns: 6 },
  );
});
