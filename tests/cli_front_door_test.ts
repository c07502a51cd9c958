// The command line as a new user meets it: every mistake is one line and exit
// 2 before any work (usage errors point at --help), outputs never over an input and written
// all or none, exit 0 only when every event was applied, --version,
// progress bars cleared and the cursor given
// back (also on Ctrl-C), --follow stopped by a real SIGINT, standard input.
import assert from "node:assert/strict";
import type { ProgressTerminal } from "../cli.ts";
import { runCli } from "./helpers/cli.ts";
import { VERSION } from "../src/version.ts";

const cli = runCli;

async function temp(name: string, data: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "memstate_cli_" });
  await Deno.writeTextFile(`${dir}/${name}`, data);
  return `${dir}/${name}`;
}

const SMALL = JSON.stringify({
  name: "small",
  regions: [{ name: "ram", size: "256MiB" }],
  devices: [{ type: "iommufd", name: "gpu0" }],
  workload: { name: "dma-scatter", params: { count: 20 } },
});

Deno.test("cli: --version prints the version deno.json declares", async () => {
  const r = await cli(["--version"]);
  assert.equal(r.code, 0);
  const { version } = JSON.parse(await Deno.readTextFile("deno.json"));
  assert.equal(VERSION, version);
  assert.equal(r.out, `memstate ${version}`);
});

Deno.test("cli: a usage error is one line on standard error that points at --help", async () => {
  for (
    const args of [[], ["frobnicate"], ["run", "--bogus", "x.json"], ["run"], ["compare", "a", "b"]]
  ) {
    const r = await cli(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.equal(r.out, "", args.join(" "));
    assert.equal(r.err.split("\n").length, 1, r.err);
    assert.match(r.err, /--help lists (them|the options)\)$/, args.join(" "));
  }
  // parseArgs' own complaints are rewritten to name the option and what to do.
  const parseProblems: [string[], RegExp][] = [
    [["run", "--bogus", "x.json"], /"--bogus": unknown option; a file name that starts with "-"/],
    [["run", "--json=yes", "x.json"], /--json: takes no value/],
    [["run", "x.json", "--seed", "-1"], /--seed: its value is missing or starts with "-"; write/],
  ];
  for (const [args, expected] of parseProblems) {
    const r = await cli(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.err, expected);
    assert.equal(r.err.split("\n").length, 1, r.err);
  }
  const help = await cli(["run", "--help"]);
  assert.equal(help.code, 0);
  assert.equal(help.err, "");
  // The exit statuses are documented where people look.
  for (const text of [help.out, (await cli(["--help"])).out]) {
    assert.match(text, /0 +every event was applied, a no-op or ignored/);
    assert.match(text, /1 +the run found a problem/);
    assert.match(text, /2 +bad input, refused before any work/);
  }
});

Deno.test("cli: every bad input is one line and exit 2, before any work", async () => {
  const dir = await Deno.makeTempDir({ prefix: "memstate_cli_" });
  const config = await temp("small.json", SMALL);
  const json = (name: string, value: unknown) => temp(name, JSON.stringify(value));
  const regions = Array.from({ length: 32765 }, (_, i) => ({
    name: `r${i}`,
    size: 4096,
    base: i * 4096,
  }));
  const cases: [string[], RegExp][] = [
    [["run", config, "--trace", dir], /is a directory; --trace takes a trace file/],
    [
      ["run", config, "--param", "count=100000001"],
      /^memstate run: workload "dma-scatter" would make 100,000,001 events, more than the 100,000,000 a generated workload may: lower it \(--param count = 100000001\), or replay a trace \(--trace\)$/,
    ],
    [["run", config, "--trace", `${dir}/none.log`], /none\.log: file not found/],
    [["run", config, "--svg", dir], /--svg: .* is a directory; give a file name/],
    [
      ["run", config, "--svg", `${dir}/no/map.svg`],
      /--svg: cannot write .*\/no\/map\.svg: its directory does not exist/,
    ],
    [
      ["run", config, "--save-state", `${config}/x.state`],
      /--save-state: cannot write .*: a part of the path is not a directory/,
    ],
    [
      ["run", config, "--load-state", `${dir}/none.state`],
      /--load-state [^"]*none\.state: file not found/,
    ],
    [["run", config, "--load-state", dir], /--load-state [^"]*: is a directory; give a file$/],
    [
      ["run", config, "--svg", `${dir}/a`, "--save-state", `${dir}/a`],
      /--save-state [^"]*\/a: --svg names the same file; both would write it/,
    ],
    [
      ["run", config, "--svg", `${dir}/b.svg`, "--html", `${dir}/./b.svg`],
      /--html [^"]*b\.svg: --svg names the same file; both would write it/,
    ],
    [
      ["run", config, "--html", config],
      /--html .*: CONFIG names the same file; .*overwrite an input/,
    ],
    [
      [
        "run",
        config,
        "--trace",
        `${dir}/../${dir.split("/").at(-1)}/t.log`,
        "--svg",
        `${dir}/t.log`,
      ],
      /--svg [^"]*t\.log: --trace names the same file; it would overwrite an input/,
    ],
    [
      ["run", config, "--seed", "4294967296"],
      /--seed: must be a decimal integer from 0 to 4294967295/,
    ],
    [["run", config, "--seed", ""], /--seed: must be a decimal integer/],
    [["run", config, "--seed", "0x10"], /--seed: must be a decimal integer/],
    [
      ["run", config, "--seed", "-1"],
      /--seed: its value is missing or starts with "-"; write --seed=VALUE/,
    ],
    [["run", config, "--trace", ""], /--trace: the path is empty/],
    [["run", ""], /CONFIG: the path is empty/],
    [["run", config, "--plugin", ""], /--plugin: the path is empty/],
    [["run", config, "--html", "-"], /--html: "-" names no file here/],
    [["run", config, "--svg"], /--svg: needs a value/],
    [
      ["compare", config, "--vmm", "qemu-11.1,memstate", "--reps", "0x2"],
      /--reps: must be an integer in \[1, 100\], got "0x2"/,
    ],
    [
      [
        "run",
        await json("p.json", {
          name: "p",
          regions: [{ name: "ram", size: "1GiB" }],
          workload: { name: "swiotlb-churn", params: { inflight: 1e9 } },
        }),
      ],
      /p\.json: workload\.params\.inflight: must be at most/,
    ],
    [
      [
        "run",
        await json("inf.json", {
          name: "inf",
          regions: [{ name: "ram", size: 1 }],
          workload: { name: "boot" },
        }).then(async (p) => {
          await Deno.writeTextFile(
            p,
            (await Deno.readTextFile(p)).replace('"size":1', '"size":1e400'),
          );
          return p;
        }),
      ],
      /size: .*got Infinity \(out of range\)/,
    ],
    [
      [
        "run",
        await json("huge.json", {
          name: "huge",
          regions: [{ name: "ram", size: "1PiB" }],
          workload: { name: "boot" },
        }),
      ],
      /regions\[0\] "ram": .*need 1 PiB of host address space, more than the 127 TiB/,
    ],
    [
      ["run", await json("many.json", { name: "many", regions, workload: { name: "boot" } })],
      /regions: has 32765 regions, more than KVM's 32764 memslots/,
    ],
    [
      [
        "run",
        await json("gran.json", {
          name: "gran",
          regions: [{ name: "ram", size: "1MiB" }],
          devices: [{ type: "type1", name: "nic0", granularity: "2MiB" }],
          workload: { name: "boot" },
        }),
      ],
      /devices\[0\]\.granularity: 0x200000 is larger than region "ram" \(size 0x100000\)/,
    ],
    [
      ["run", config, "--workload", "boot", "--param", "swiotlbBytes=1GiB"],
      /--param swiotlbBytes: must be at most 268435456: the SWIOTLB pool goes in region "ram"/,
    ],
    [
      ["run", config, "--workload", "boot", "--param", "swiotlbBytes=64MB"],
      /--param swiotlbBytes: unit "MB" is ambiguous/,
    ],
    [
      ["run", config, "--workload", "swiotlb-churn", "--param", "inflight=5000"],
      /--param inflight: must be at most \d+: each buffer in flight takes one 256 KiB slot/,
    ],
    [["run", config, "--follow"], /--follow: follows a trace; give --trace FILE too/],
    [["compare", config, "--trace", "-"], /--trace -: compare reads its input several times/],
    [["run", config, "--trace", await temp("empty.log", "")], /empty\.log: no events to replay/],
    [
      ["run", config, "--trace", await temp("e2.log", "\n"), "--strict"],
      /no events to replay/,
    ],
    [
      [
        "run",
        "--trace",
        await temp("nomem.log", "kvm_convert_memory start 0x0 size 0x1000 private_to_shared\n"),
      ],
      /no regions to take from the trace: it has no kvm_set_user_memory event/,
    ],
    [
      // A memslot logged after the first conversion is no region (the map is taken at the
      // first event), even in the batch that holds it.
      [
        "run",
        "--trace",
        await temp(
          "late.log",
          "kvm_convert_memory start 0x7a000000 size 0x1000 private_to_shared\n" +
            "1@1.0:kvm_set_user_memory AddrSpace#0 Slot#0 flags=0x4 gpa=0x0 size=0x80000000 " +
            "ua=0x7f0000000000 guest_memfd=27 guest_memfd_offset=0x0 ret=0\n",
        ),
      ],
      /no regions to take from the trace: it has no kvm_set_user_memory event before its first/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args);
    const what = args.join(" ").slice(0, 200);
    assert.equal(r.code, 2, `${what}: ${r.err}`);
    assert.match(r.err, message, what);
    assert.equal(r.err.split("\n").length, 1, `one line: ${r.err}`);
    assert.doesNotMatch(r.err, /Uncaught|^\s+at /m, what);
    assert.equal(r.out, "", `${what}: nothing ran`);
  }
  // A write that fails after the run anyway (here: /proc, which opens for root; /dev/full) is
  // one line naming the option and the file, and exit 2 too (without -A, Deno refuses /proc up
  // front). The device is reached through a link in a temporary directory, so that a bug which
  // replaced the file instead of writing it would replace the link, never /dev/full itself.
  const full = `${await Deno.makeTempDir({ prefix: "memstate_cli_" })}/full`;
  Deno.symlinkSync("/dev/full", full);
  for (const option of ["--save-state", "--svg", "--html"]) {
    for (const path of ["/proc/version", full]) {
      const late = await cli(["run", config, option, path]);
      assert.equal(late.code, 2, `${option} ${path}: ${late.err}`);
      assert.match(
        late.err,
        new RegExp(`^memstate run: ${option}: cannot write ${path}: `),
        `${option} ${path}`,
      );
      assert.equal(late.err.split("\n").length, 1, late.err);
    }
  }
  // The refused output files were not created.
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), []);
});

Deno.test("cli: no output overwrites an input or another output, however the path is spelt", async () => {
  const dir = await Deno.makeTempDir({ prefix: "memstate_cli_" });
  const other = await Deno.makeTempDir({ prefix: "memstate_cli_" });
  const config = `${dir}/c.json`;
  await Deno.writeTextFile(config, SMALL);
  const plugin = `${dir}/p.ts`;
  await Deno.writeTextFile(plugin, "export default () => ({});\n");
  const state = `${dir}/s.state`;
  await Deno.writeTextFile(state, "not decoded before the check\n");
  const withConfig = async (name: string, extra: Record<string, unknown>) => {
    const path = `${dir}/${name}`;
    await Deno.writeTextFile(path, JSON.stringify({ ...JSON.parse(SMALL), ...extra }));
    return path;
  };
  const trace = `${dir}/t.log`;
  await Deno.writeTextFile(trace, "kvm_convert_memory start 0x0 size 0x1000 private_to_shared\n");
  const traced = await withConfig("traced.json", { workload: { trace: "t.log" } });
  const plugged = await withConfig("plugged.json", {
    plugins: [{ module: `file://${plugin}` }],
  });
  Deno.linkSync(config, `${dir}/hard.json`);
  Deno.symlinkSync(dir, `${other}/link`);
  const inputs = [config, plugin, state, trace, traced, plugged];
  const before = await Promise.all(inputs.map((p) => Deno.readTextFile(p)));
  const cases: [string[], RegExp][] = [
    [["run", config, "--html", `${dir}/hard.json`], /CONFIG names the same file/],
    [
      ["run", config, "--plugin", `file://${plugin}`, "--svg", plugin],
      /--svg [^"]*p\.ts: --plugin names the same file; it would overwrite an input/,
    ],
    [
      ["run", config, "--plugin", plugin, "--html", `${other}/link/p.ts`],
      /--plugin names the same/,
    ],
    [["run", plugged, "--html", plugin], /--html .*: plugin module names the same file/],
    [["run", traced, "--svg", trace], /--svg .*: --trace names the same file/],
    [
      ["run", config, "--load-state", state, "--save-state", `${other}/link/s.state`],
      /--save-state .*: --load-state names the same file/,
    ],
    [
      ["run", config, "--svg", `${other}/link/n.svg`, "--html", `${dir}/n.svg`],
      /--html [^"]*n\.svg: --svg names the same file; both would write it/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, message, args.join(" "));
    assert.equal(r.err.split("\n").length, 1, r.err);
  }
  assert.deepEqual(await Promise.all(inputs.map((p) => Deno.readTextFile(p))), before);
  assert.equal([...Deno.readDirSync(dir)].length, inputs.length + 1, "no file was created");
});

Deno.test("cli: outputs are written all or none: a failed write leaves every file as it was", async () => {
  const dir = await Deno.makeTempDir({ prefix: "memstate_cli_" });
  const config = `${dir}/c.json`;
  await Deno.writeTextFile(config, SMALL);
  const svg = `${dir}/old.svg`;
  const names = () => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  const outputs = ["--save-state", `${dir}/new.state`, "--svg", svg, "--html", `${dir}/r.html`];
  // All three land, over an existing map whose permissions stay.
  await Deno.writeTextFile(svg, "the previous map\n");
  await Deno.chmod(svg, 0o640);
  const done = await cli(["run", config, ...outputs]);
  assert.equal(done.code, 0, done.err);
  assert.match(await Deno.readTextFile(svg), /<svg/);
  assert.equal((await Deno.stat(svg)).mode! & 0o777, 0o640);
  assert.deepEqual(names(), ["c.json", "new.state", "old.svg", "r.html"]);
  // A write that fails after the run (the checks before it pass): a file-size limit that the
  // saved state fits under and the map does not. The state, written first, must not land.
  const stateBytes = (await Deno.stat(`${dir}/new.state`)).size;
  const blocks = Math.ceil((stateBytes + 1) / 512); // `ulimit -f` counts 512-byte blocks
  assert.ok((await Deno.stat(svg)).size > blocks * 512, "the map is bigger than the limit");
  await Deno.remove(`${dir}/new.state`);
  await Deno.remove(`${dir}/r.html`);
  await Deno.writeTextFile(svg, "the previous map\n");
  const limited = await new Deno.Command("sh", {
    // SIGXFSZ ignored, so a write past the limit fails with EFBIG instead of killing the process.
    args: ["-c", `trap '' XFSZ; ulimit -f ${blocks}; exec "$@"`, "sh", Deno.execPath(), "run"]
      .concat(["--allow-read", "--allow-write", "--allow-env", "--allow-ffi", "--allow-sys"])
      .concat(["cli.ts", "run", config, ...outputs]),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(limited.stderr).trimEnd();
  assert.equal(limited.code, 2, err);
  assert.match(err, /^memstate run: --svg: cannot write .*old\.svg: file too large$/);
  assert.doesNotMatch(new TextDecoder().decode(limited.stdout), /written to|saved to/);
  assert.equal(await Deno.readTextFile(svg), "the previous map\n");
  assert.deepEqual(names(), ["c.json", "old.svg"]);
  // A device is written in place, never replaced by a rename. It is reached through a link, so
  // that a bug which replaced it would replace the link, not /dev/null.
  const devices = await Deno.makeTempDir({ prefix: "memstate_cli_" });
  Deno.symlinkSync("/dev/null", `${devices}/null`);
  const toNull = await cli(["run", config, "--html", `${devices}/null`]);
  assert.equal(toNull.code, 0, toNull.err);
  assert.ok((await Deno.lstat(`${devices}/null`)).isSymlink, "the link was written through");
  assert.ok((await Deno.stat(`${devices}/null`)).isCharDevice);
});

Deno.test("cli: a device file Deno reads only with --allow-all is refused naming that rule", async () => {
  // With the task's own flags (deno.json "memstate"): --allow-read does not cover /dev/stdin,
  // so the message must not ask for it.
  const flags = ["--allow-read", "--allow-write", "--allow-ffi", "--allow-env"];
  const rule = "not allowed: Deno reads a device file only with --allow-all; give a regular file";
  const cases: [string[], string][] = [
    [
      ["examples/tdx-16g.json", "--trace", "/dev/stdin"],
      `/dev/stdin: ${rule} (standard input: --trace -)`,
    ],
    [["examples/tdx-16g.json", "--load-state", "/dev/stdin"], `--load-state /dev/stdin: ${rule}`],
    [["/dev/stdin"], `/dev/stdin: ${rule}`],
  ];
  for (const [args, message] of cases) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...flags, "cli.ts", "run", ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr).trim();
    assert.equal(out.code, 2, err);
    assert.equal(err, `memstate run: ${message}`);
  }
});

Deno.test("cli: the linux backend without its permissions names the missing flags", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "cli.ts", "run", "examples/linux-kvm.json"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr).trim();
  assert.equal(out.code, 2, err);
  assert.match(err, /backend "linux" needs --allow-ffi --allow-write=\/dev\/kvm \(not granted\)/);
  assert.equal(err.split("\n").length, 1, err);
  assert.doesNotMatch(err, /Uncaught/);
});

Deno.test("cli: a configuration with a byte-order mark reads; sizes and params as in files", async () => {
  const config = await temp("bom.json", "\uFEFF" + SMALL);
  const r = await cli(["run", config, "--workload", "boot", "--param", "swiotlbBytes=16MiB"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /conversions: \d+ requested/);
});

Deno.test("cli: exit 0 only when every event was applied, a no-op or ignored; 1 when one was not", async () => {
  const config = await temp("small.json", SMALL);
  const ok = [
    "kvm_convert_memory start 0x0 size 0x1000 private_to_shared",
    "kvm_convert_memory start 0x0 size 0x1000 private_to_shared", // no-op
    "kvm_convert_memory start 0xfee00000 size 0x1000 private_to_shared", // MMIO: ignored
  ];
  assert.equal(
    (await cli(["run", config, "--trace", await temp("ok.log", ok.join("\n"))])).code,
    0,
  );
  for (
    const bad of [
      "kvm_convert_memory start 0x1000 size 0x1000 sideways", // unreadable
      "kvm_convert_memory start 0x1001 size 0x1000 private_to_shared", // rejected: misaligned
      "kvm_convert_memory start 0xfee00000 size 0x1000 shared_to_private", // rejected: no RAM
    ]
  ) {
    const r = await cli([
      "run",
      config,
      "--json",
      "--trace",
      await temp("bad.log", [...ok, bad].join("\n")),
    ]);
    assert.equal(r.code, 1, bad);
    const report = JSON.parse(r.out);
    assert.equal(report.errors.length, 1, "the report says which line");
    assert.equal(report.errors[0].line, 4);
  }
});

/** A terminal that keeps what is on screen: enough of VT100 for what cli-progress writes. */
class Screen implements ProgressTerminal {
  isTTY = true;
  columns = 100;
  lines: string[] = [""];
  row = 0;
  col = 0;
  saved: [number, number] = [0, 0];
  cursorVisible = true;
  drawn = 0;
  onDraw?: () => void;
  write(text: string): boolean {
    // deno-lint-ignore no-control-regex
    for (const part of text.split(/(\x1b\[[?\d;]*[A-Za-z]|\x1b[78]|\r|\n)/)) {
      if (part === "") continue;
      if (part === "\x1b7") this.saved = [this.row, this.col];
      else if (part === "\x1b8") [this.row, this.col] = this.saved;
      else if (part === "\r") this.col = 0;
      else if (part === "\n") {
        this.row++;
        this.col = 0;
        if (this.lines.length <= this.row) this.lines.push("");
      } else if (part === "\x1b[?25l") this.cursorVisible = false;
      else if (part === "\x1b[?25h") this.cursorVisible = true;
      else if (part.startsWith("\x1b[") && part.endsWith("G")) {
        this.col = Number(part.slice(2, -1) || 1) - 1;
      } else if (part === "\x1b[0K" || part === "\x1b[K") {
        this.lines[this.row] = this.lines[this.row].slice(0, this.col);
      } else if (part === "\x1b[2K") this.lines[this.row] = "";
      else if (part.startsWith("\x1b[")) continue; // wrap mode and the like
      else {
        const line = this.lines[this.row].padEnd(this.col);
        this.lines[this.row] = line.slice(0, this.col) + part + line.slice(this.col + part.length);
        this.col += part.length;
        this.drawn++;
        this.onDraw?.();
      }
    }
    return true;
  }
  /** What is left on screen. */
  text(): string {
    return this.lines.join("\n").trim();
  }
}

Deno.test("cli: a long run's bar is cleared when done and the cursor is shown again", async () => {
  const config = await temp("small.json", SMALL);
  const screen = new Screen();
  const r = await cli(
    ["run", config, "--workload", "dma-scatter", "--param", "count=60000"],
    { interactive: true, terminal: screen },
  );
  assert.equal(r.code, 0, r.err);
  assert.ok(screen.drawn > 0, "a bar was drawn");
  assert.equal(screen.text(), "", "nothing left on screen (no bar stuck at 97%)");
  assert.equal(screen.cursorVisible, true);
});

Deno.test("cli: compare's bars do not stack: each is cleared before the next", async () => {
  const config = await temp("small.json", SMALL);
  const screen = new Screen();
  const r = await cli(
    ["compare", config, "--workload", "dma-scatter", "--param", "count=60000", "--reps", "1"],
    { interactive: true, terminal: screen },
  );
  assert.equal(r.code, 0, r.err);
  assert.ok(screen.drawn >= 4, "one bar per variant");
  assert.equal(screen.text(), "");
  assert.equal(screen.lines.length, 1, "every bar on the same line");
  assert.equal(screen.cursorVisible, true);
});

Deno.test("cli: Ctrl-C stops the run, prints the report so far and gives the cursor back", async () => {
  const config = await temp("small.json", SMALL);
  const screen = new Screen();
  const interrupt = new AbortController();
  screen.onDraw = () => interrupt.abort(); // Ctrl-C as soon as the bar shows
  const r = await cli(
    ["run", config, "--json", "--workload", "dma-scatter", "--param", "count=2000000"],
    { interactive: true, terminal: screen, interrupt: interrupt.signal },
  );
  assert.equal(r.code, 130);
  const report = JSON.parse(r.out);
  assert.equal(report.interrupted, true);
  assert.ok(report.events > 0 && report.events < 2_000_000, `${report.events} events`);
  assert.deepEqual(report.invariants.violations, [], "what was applied is consistent");
  assert.equal(screen.text(), "");
  assert.equal(screen.cursorVisible, true);
});

/** Lines of `stream` as they come. */
async function* linesOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
    }
  }
  if (buffer) yield buffer;
}

Deno.test("cli: --follow reads a growing log until SIGINT, then prints the report (exit 0)", async () => {
  const log = await Deno.readTextFile("examples/traces/tdx-boot.log");
  const lines = log.split("\n");
  const half = lines.findIndex((l) => l.includes("kvm_convert_memory")) + 20;
  const path = await temp("qemu.log", lines.slice(0, half).join("\n") + "\n");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli.ts", "run", "--trace", path, "--follow", "--json"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = linesOf(child.stderr);
  const first = await stderr.next();
  assert.match(first.value ?? "", /following .*qemu\.log; Ctrl-C stops and prints the report/);
  await new Promise((r) => setTimeout(r, 500)); // at the end of the file, waiting
  await Deno.writeTextFile(path, lines.slice(half).join("\n"), { append: true });
  await new Promise((r) => setTimeout(r, 500));
  child.kill("SIGINT");
  const [status, out] = await Promise.all([child.status, new Response(child.stdout).text()]);
  const rest: string[] = [];
  for await (const line of stderr) rest.push(line);
  assert.equal(status.code, 0, rest.join("\n"));
  const report = JSON.parse(out);
  assert.equal(report.interrupted, true);
  assert.equal(report.conversions.requested, 293, "every event of the whole log");
  assert.deepEqual(report.regions.map((r: { name: string }) => r.name), ["slot0", "slot1"]);
});

Deno.test("cli: --trace - reads standard input", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli.ts", "run", "examples/tdx-trace.json", "--trace", "-", "--json"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(await Deno.readFile("examples/traces/tdx-boot.log"));
  await writer.close();
  const out = await child.output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const report = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(report.input, "-");
  assert.equal(report.conversions.requested, 293);
});

Deno.test("cli: run --trace FILE without CONFIG names the regions it found", async () => {
  const r = await cli(["run", "--trace", "examples/traces/tdx-boot.log"]);
  assert.equal(r.code, 0, r.err);
  assert.match(
    r.out,
    /regions from the trace \(kvm_set_user_memory\): slot0 \[0x0, 0x80000000\) 2 GiB \(line 8\), slot1 \[0x100000000, 0x480000000\) 14 GiB \(line 9\)/,
  );
  assert.match(r.out, /skipped: slot 2 .* no guest_memfd \(flags 0x2\)/);
});
