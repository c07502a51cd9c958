// Input the command line must not take at its word: a key or an option given twice (JSON and
// parseArgs would keep the last silently), options the input has no use for, control
// characters in a path or in invalid JSON, --follow's banner before a refusal, and a compare
// in which no variant starts. Each is one line on standard error, exit 2, and nothing written.
import assert from "node:assert/strict";
import { runCli } from "./helpers/cli.ts";
import { parseJsonlLine } from "../src/host/trace/jsonl.ts";
import { duplicateKeys } from "../src/host/config/_json_position.ts";
import { TraceLineError } from "../src/host/trace/event.ts";

const cli = runCli;

async function dir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "memstate_rules_" });
}

const SMALL = {
  name: "small",
  regions: [{ name: "ram", size: "256MiB" }],
  devices: [{ type: "type1", name: "nic0", dmaEntryLimit: 4194304 }],
  workload: { name: "boot", params: { buffers: 20 } },
};

/** Exit 2, one line on standard error matching `message`, nothing on standard output. */
function refused(r: { code: number; out: string; err: string }, message: RegExp, what: string) {
  assert.equal(r.code, 2, `${what}: ${r.err}`);
  assert.match(r.err, message, what);
  assert.equal(r.err.split("\n").length, 1, `${what}: one line: ${r.err}`);
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(r.err, /[\u0000-\u001f\u007f-\u009f]/, `${what}: no raw control character`);
  assert.equal(r.out, "", `${what}: nothing ran`);
}

Deno.test("cli: a key given twice in a configuration is refused, naming the key and where", async () => {
  const d = await dir();
  const write = async (name: string, text: string) => {
    await Deno.writeTextFile(`${d}/${name}`, text);
    return `${d}/${name}`;
  };
  const body = JSON.stringify(SMALL).slice(1); // without its "{"
  const cases: [string, RegExp][] = [
    [`{"name":"a",${body}`, /name: duplicate key at line 1, column \d+ \(also at column 2\)$/],
    [
      `{\n"regions":[{"name":"r0","size":"1GiB"}],\n${body}`,
      /: regions: duplicate key at line 3 \(also at line 2\)$/,
    ],
    [
      JSON.stringify(SMALL).replace(
        '"dmaEntryLimit":4194304',
        '"dmaEntryLimit":10,"dmaEntryLimit":4194304',
      ),
      /: devices\[0\]\.dmaEntryLimit: duplicate key at line 1, column \d+ \(also at column \d+\)$/,
    ],
    // The same key however it is spelt: "\u006eame" is "name".
    [`{"\\u006eame":"a",${body}`, /: name: duplicate key/],
  ];
  for (const [text, message] of cases) {
    const config = await write("dup.json", text);
    const r = await cli(["run", config, "--svg", `${d}/map.svg`]);
    refused(r, message, text.slice(0, 80));
  }
  assert.deepEqual([...Deno.readDirSync(d)].map((e) => e.name), ["dup.json"], "no map written");
  // Keys repeated in different objects are not duplicates.
  const twoRegions = await write(
    "ok.json",
    JSON.stringify({
      ...SMALL,
      regions: [{ name: "a", size: "128MiB" }, { name: "b", size: "128MiB", base: "256MiB" }],
    }),
  );
  assert.equal((await cli(["run", twoRegions])).code, 0);
});

Deno.test("duplicateKeys: decoded keys, paths, escapes and deep nesting", () => {
  assert.deepEqual(duplicateKeys('{"a":1,"b":{"c":[{"x":1,"x":2}]},"\\u0061":3}'), [
    { path: ["b", "c", 0, "x"], offset: 24, first: 18 },
    { path: ["a"], offset: 33, first: 1 },
  ]);
  assert.deepEqual(duplicateKeys('{"a\\"":"a\\"","a":{"a\\"":1}}'), []);
  const deep = "[".repeat(200_000) + '{"k":1,"k":2}' + "]".repeat(200_000);
  assert.equal(duplicateKeys(deep)[0].path.length, 200_001);
});

Deno.test("jsonl: a key given twice on a trace line is an error naming the key", async () => {
  const problem = (text: string) => {
    try {
      parseJsonlLine(text, 7);
    } catch (e) {
      assert.ok(e instanceof TraceLineError, String(e));
      return e.message;
    }
    return undefined;
  };
  assert.equal(
    problem('{"op":"convert","gpa":"0x0","size":4096,"to":"shared","op":"plug"}'),
    "line 7: op: duplicate key (JSON would keep only the last); give it once",
  );
  assert.match(
    problem('{"op":"plug","gpa":0,"size":4096,"size":8192}')!,
    /^line 7: size: duplicate/,
  );
  // A colon inside a value, and spaces around one, are no duplicate.
  assert.equal(problem('{"op":"unplug-all","device":"a:b:c"}'), undefined);
  assert.equal(problem('{ "op" : "plug" , "gpa" : 0 , "size" : 4096 }'), undefined);
  // The command line: one line, exit 2, as for any trace without an event.
  const d = await dir();
  await Deno.writeTextFile(
    `${d}/t.jsonl`,
    '{"op":"convert","gpa":"0x0","size":4096,"to":"shared","op":"plug"}\n',
  );
  refused(
    await cli(["run", "examples/tdx-trace.json", "--trace", `${d}/t.jsonl`]),
    /line 1: op: duplicate key/,
    "jsonl",
  );
});

Deno.test("cli: an option given twice is refused, not last-wins; --param and --plugin repeat", async () => {
  const d = await dir();
  const config = `${d}/c.json`;
  await Deno.writeTextFile(config, JSON.stringify(SMALL));
  const cases: [string[], RegExp][] = [
    [["--svg", `${d}/a.svg`, "--svg", `${d}/b.svg`], /^memstate run: --svg: given twice; only/],
    [["--trace", "examples/traces/tdx-boot.log", "--trace", "x.log"], /--trace: given twice/],
    [["--seed", "1", "--seed", "2"], /--seed: given twice/],
    [["--vmm", "qemu-10.1", "--vmm", "memstate"], /--vmm: given twice/],
    [["--json", "--json"], /--json: given twice/],
    [["--strict", "--strict"], /--strict: given twice/],
    [["--param", "buffers=10", "--param", "buffers=20"], /--param buffers: given twice/],
  ];
  for (const [options, message] of cases) {
    refused(await cli(["run", config, ...options]), message, options.join(" "));
  }
  assert.deepEqual([...Deno.readDirSync(d)].map((e) => e.name), ["c.json"], "no map written");
  const ok = await cli(["run", config, "--param", "buffers=10", "--param", "swiotlbBytes=4MiB"]);
  assert.equal(ok.code, 0, ok.err);
});

Deno.test("cli: --param and --seed on a trace input are refused: a trace takes neither", async () => {
  for (
    const [args, message] of [
      [["--param", "buffers=5"], /^memstate run: --param: the input is a trace, which takes no/],
      [["--seed", "5"], /^memstate run: --seed: the input is a trace/],
    ] as const
  ) {
    refused(await cli(["run", "examples/tdx-trace.json", ...args]), message, args.join(" "));
    refused(
      await cli([
        "run",
        "examples/tdx-16g.json",
        "--trace",
        "examples/traces/tdx-boot.log",
        ...args,
      ]),
      message,
      `--trace ${args.join(" ")}`,
    );
  }
});

Deno.test("cli: paths and invalid JSON are quoted or escaped, never printed raw", async () => {
  const d = await dir();
  // V8 cuts a long text as `"..."... is not valid JSON`; the reason may be the character itself.
  const bad: [string, RegExp][] = [
    ["x\x1b]0;PWNED\x07 {" + " ".repeat(100), /line 1, column 1: Unexpected token 'x'$/],
    ["x\x1b]0;PWNED\x07 {", /line 1, column 1: Unexpected token 'x'$/],
    ["\x1b]0;PWNED\x07 {", /Unexpected token '\\u001b'$/],
  ];
  for (const [i, [text, message]] of bad.entries()) {
    await Deno.writeTextFile(`${d}/esc${i}.json`, text);
    refused(await cli(["run", `${d}/esc${i}.json`]), message, JSON.stringify(text));
  }
  const cases: [string[], RegExp][] = [
    [["run", `${d}/no\nsuch.json`], /^memstate run: ".*\/no\\nsuch\.json": file not found$/],
    [["run", `${d}/no\x1bsuch.json`], /^memstate run: ".*\/no\\u001bsuch\.json": file not found$/],
    [
      ["run", "examples/tdx-16g.json", "--svg", `${d}/none/x\n.svg`],
      /--svg: cannot write ".*\/none\/x\\n\.svg": its directory does not exist$/,
    ],
    [["run", "examples/tdx-16g.json", "--trace", `${d}/x\n.log`], /"[^"]*x\\n\.log": file not/],
    [
      ["run", "examples/tdx-16g.json", "--plugin", `${d}/x\x1b.ts`],
      /--plugin ".*\/x\\u001b\.ts": cannot load the module/,
    ],
    [["run", "--trace", `${d}/x\x9b.log`], /"[^"]*x\\u009b\.log": file not found$/],
  ];
  for (const [args, message] of cases) refused(await cli(args), message, JSON.stringify(args));
  // A path that needs no quotes keeps the plain form messages always had.
  refused(
    await cli(["run", `${d}/none.json`]),
    /^memstate run: \/\S+\/none\.json: file not/,
    "plain",
  );
  // The program itself: standard error holds one line for a path with a newline.
  const child = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "cli.ts", "run", `${d}/no\nsuch.json`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(child.stderr);
  assert.equal(child.code, 2, err);
  assert.match(err, /^memstate run: ".*no\\nsuch\.json": file not found\n$/);
});

Deno.test("cli: --follow says it follows only once the trace is open and the host built", async () => {
  const d = await dir();
  refused(
    await cli(["run", "examples/tdx-trace.json", "--trace", `${d}/nope.log`, "--follow"]),
    /^memstate run: \S+nope\.log: file not found$/,
    "missing trace",
  );
  // The trace opens; the host does not build.
  await Deno.writeTextFile(
    `${d}/t.log`,
    "kvm_convert_memory start 0x0 size 0x1000 private_to_shared\n",
  );
  refused(
    await cli(["run", await noStart(d), "--trace", `${d}/t.log`, "--follow"]),
    /^memstate run: \S+nostart\.json: devices\[0\]: gpu0 cannot map/,
    "host refused",
  );
});

/** A host no variant can start: a region that starts shared, too large to pin. */
async function noStart(d: string): Promise<string> {
  const config = `${d}/nostart.json`;
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      name: "nostart",
      regions: [{ name: "ram", size: "1GiB", initial: "shared" }],
      devices: [{ type: "iommufd", name: "gpu0" }],
      memlockLimit: "4KiB",
      kernel: "proposed",
      workload: { name: "boot" },
    }),
  );
  return config;
}

Deno.test("cli: compare on a host that no variant can start is exit 2 with run's reason", async () => {
  const config = await noStart(await dir());
  const run = await cli(["run", config]);
  const message = /nostart\.json: devices\[0\]: gpu0 cannot map what the regions start with/;
  refused(run, message, "run");
  for (const extra of [[], ["--vmm", "qemu-11.1,memstate"], ["--json"]]) {
    const r = await cli(["compare", config, "--reps", "1", ...extra]);
    refused(r, message, `compare ${extra.join(" ")}`);
    assert.equal(r.err, run.err.replace(/^memstate run:/, "memstate compare:"));
  }
});

Deno.test("cli: small input mistakes get a message of their own", async () => {
  const d = await dir();
  const json = async (name: string, value: unknown) => {
    await Deno.writeTextFile(`${d}/${name}`, JSON.stringify(value));
    return `${d}/${name}`;
  };
  const hex = await json("hex.json", { ...SMALL, regions: [{ name: "ram", size: "0x" }] });
  const huge = await json("huge.json", {
    ...SMALL,
    devices: [{ type: "type1", name: "nic0", dmaEntryLimit: 1e30 }],
  });
  Deno.mkdirSync(`${d}/adir`);
  const cases: [string[], RegExp][] = [
    [["run", hex], /regions\[0\]\.size: must have hexadecimal digits after "0x" and no unit/],
    [
      ["run", "examples/tdx-16g.json", "--workload", "boot", "--param", "swiotlbBytes=0x"],
      /--param swiotlbBytes: must have hexadecimal digits after "0x"/,
    ],
    [
      ["run", "examples/tdx-16g.json", "--param", "buffers=9007199254740993"],
      /--param buffers: must be at most 9007199254740991 \(2\^53 - 1\), got "9007199254740993"$/,
    ],
    [["run", huge], /dmaEntryLimit: must be at most 4294967295, got 1e\+30$/],
    [["run", `${d}/adir`], /adir: is a directory; give a host configuration file$/],
    [["compare", `${d}/adir`], /adir: is a directory; give a host configuration file$/],
    [["run", "-"], /CONFIG: "-" names no file here/],
    [["--version", "--frobnicate"], /^memstate: "--version" takes nothing after it, got "--frob/],
  ];
  for (const [args, message] of cases) refused(await cli(args), message, args.join(" "));
});
