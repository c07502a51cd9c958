// The README as a new user reads it: every command in it (and in the
// performance history it links to, docs/performance_history.md) runs as written
// (npx -y deno@2 ..., never a bare deno), writes only where the gate does not
// look, and every file it names is in the repository. Its TypeScript
// examples run as doc tests (`deno test --doc README.md` in the gate).
import assert from "node:assert/strict";
import { main } from "../cli.ts";
import { probe } from "./helpers/linux.ts";
import { runBench } from "./helpers/bench.ts";

const README = await Deno.readTextFile("README.md");
/** The performance history the README links to: held to the same rules as the README. */
const HISTORY = await Deno.readTextFile("docs/performance_history.md");
const NPX = "npx -y deno@2 ";

/**
 * Every command line of the sh blocks of the README and of the performance
 * history it links to (comments and continuation lines joined).
 */
function commands(): string[] {
  const out: string[] = [];
  for (const block of (README + HISTORY).matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const raw of block[1].split("\n")) {
      const line = raw.replace(/\s+#.*$/, "").trim();
      if (line !== "") out.push(line);
    }
  }
  return out;
}

/** Files in the repository the README's commands may create: only under out/. */
async function untracked(): Promise<Set<string>> {
  const out = await new Deno.Command("git", {
    args: ["status", "--porcelain", "--untracked-files=all"],
    stdout: "piped",
  }).output();
  return new Set(
    new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.startsWith("??")),
  );
}

Deno.test("README: every command starts with npx -y deno@2; none is a bare deno", () => {
  const all = commands();
  assert.ok(all.length >= 20, `${all.length} commands`);
  for (const c of all) assert.ok(c.startsWith(NPX), c);
  // Nor in running text, or in the examples' descriptions.
  const bare = /(^|[\s`(])deno (run|task|test|bench|fmt|lint|check|doc|publish|info)\b/;
  const texts: [string, string][] = [["README.md", README], [
    "docs/performance_history.md",
    HISTORY,
  ]];
  for (const e of Deno.readDirSync("examples")) {
    if (e.isFile && /\.(json|ts)$/.test(e.name)) {
      texts.push([e.name, Deno.readTextFileSync(`examples/${e.name}`)]);
    }
  }
  for (const [name, text] of texts) {
    for (const line of text.split("\n")) {
      const m = bare.exec(line.replaceAll(NPX, "npx-deno "));
      assert.equal(m, null, `${name}: a bare deno command: ${line}`);
    }
  }
});

Deno.test("README: every file it (and the performance history) names is in the repository; nothing outside it", async () => {
  for (const [name, text] of [["README.md", README], ["docs/performance_history.md", HISTORY]]) {
    const paths = new Set<string>();
    for (
      const m of text.matchAll(/(?<![\w/.-])((?:examples|src|bench|tests|docs|out)\/[\w./-]*)/g)
    ) {
      paths.add(m[1].replace(/[.,:;)]+$/, ""));
    }
    // The README names dozens; the history fewer, but never none.
    assert.ok(paths.size > (name === "README.md" ? 20 : 5), `${name}: ${paths.size} paths`);
    for (const path of paths) {
      // Files the commands, the browser tests and the benchmark report write.
      if (
        path.startsWith("out/") || path === "bench/report.json" ||
        path === "bench/report_runs.json"
      ) continue;
      await Deno.stat(path).catch(() => assert.fail(`${name} names ${path}, which does not exist`));
    }
    assert.doesNotMatch(text, /\/(var|home|root|etc|tmp)\/|\.\.\/shared|shared\/semantics/, name);
  }
  assert.match(README, /\[docs\/performance_history\.md\]\(docs\/performance_history\.md\)/);
});

Deno.test("README: its commands run as written and write only to out/", async () => {
  const before = await untracked();
  const tasks = JSON.parse(await Deno.readTextFile("deno.json")).tasks as Record<string, string>;
  let ran = 0;
  for (const command of commands()) {
    const words = command.slice(NPX.length).split(/\s+/);
    if (words[0] === "task" && words[1] === "memstate") {
      let args = words.slice(2);
      let stdin: ReadableStream<Uint8Array> | undefined;
      const redirect = args.indexOf("<");
      if (redirect >= 0) {
        stdin = (await Deno.open(args[redirect + 1])).readable;
        args = args.slice(0, redirect);
      }
      // --follow reads until Ctrl-C: here, an interrupt once it has had time to read.
      const interrupt = new AbortController();
      const timer = args.includes("--follow") ? setTimeout(() => interrupt.abort(), 1000) : 0;
      const err: string[] = [];
      const code = await main(args, {
        out: () => {},
        err: (t) => err.push(t),
        interactive: false,
        interrupt: interrupt.signal,
        ...(stdin ? { stdin } : {}),
      });
      clearTimeout(timer);
      assert.equal(code, 0, `${command}: ${err.join("\n")}`);
      ran++;
    } else if (words[0] === "task") {
      assert.ok(tasks[words[1]], `${command}: no task ${words[1]}`);
      if (words[1] === "demo") {
        assert.equal(await main(tasks.demo.split(/\s+/).slice(-2), quiet()), 0, command);
      }
    } else if (words[0] === "run" || words[0] === "bench") {
      const file = words.find((w) => w.endsWith(".ts"))!;
      await Deno.stat(file);
      if (file.startsWith("examples/")) {
        const out = await new Deno.Command(Deno.execPath(), { args: words, stdout: "null" })
          .output();
        assert.equal(out.code, 0, command);
        ran++;
      }
    } else assert.fail(`${command}: not a command this test knows`);
  }
  assert.ok(ran >= 15, `${ran} commands ran`);
  const after = await untracked();
  assert.deepEqual([...after].filter((f) => !before.has(f)), [], "files written outside out/");
  const config = JSON.parse(await Deno.readTextFile("deno.json"));
  assert.ok(config.fmt.exclude.includes("out/") && config.lint.exclude.includes("out/"));
});

Deno.test("README: the benchmark of a multi-GB trace runs (here on 8 MiB)", async () => {
  const { code, out: text, err } = await runBench("trace_stream", ["--gib", String(8 / 1024)]);
  assert.equal(code, 0, err);
  assert.match(text, /^exit 0; 8\.\d MiB of trace, [\d,]+ lines, [\d,]+ conversions/m);
  assert.match(text, /^peak RSS \(VmHWM\) of the replay: [\d.]+ MiB$/m);
});

Deno.test("README: the real-kernel row's parts run without /dev/kvm (here 300 conversions)", async () => {
  const { code, out: text, err } = await runBench("linux_parts", ["--reps", "2", "--count", "300"]);
  assert.equal(code, 0, err);
  const loops = [...text.matchAll(/^(.+?) +best ([\d.]+) µs, median ([\d.]+) µs$/gm)];
  assert.deepEqual(loops.map((m) => m[1]), [
    "region, no listener",
    "memstate, no system call",
    "getpid",
    "region + getpid",
    "memstate + getpid",
    "memfd punch",
    "memstate on memfds",
  ]);
  for (const [, name, best, median] of loops) {
    assert.ok(Number(best) > 0 && Number(best) <= Number(median), `${name}: ${best} / ${median}`);
  }
  assert.match(text, /^the region alone costs [\d.]+ µs, -?[\d.]+ µs next to getpid$/m);
  assert.match(
    text,
    /^memstate adds -?[\d.]+ µs alone, -?[\d.]+ µs next to getpid, -?[\d.]+ µs next to a memfd punch \(medians\)$/m,
  );
});

Deno.test({
  name: "README: the real-kernel row's parts run on /dev/kvm (here 300 conversions)",
  ignore: !probe.available,
  async fn() {
    const { code, out: text, err } = await runBench("linux_rows", [
      "--parts",
      "--reps",
      "2",
      "--count",
      "300",
    ]);
    assert.equal(code, 0, err);
    const parts = [
      ...text.matchAll(
        /^(.+?) +([\d.]+) µs against ([\d.]+) µs raw: ([\d.]+)x \(paired median\)$/gm,
      ),
    ];
    assert.deepEqual(parts.map((m) => m[1]), [
      "memstate",
      "without the attribute call",
      "without the punch's checks",
      "without either",
      "on the bitmap store",
      "punch listener",
      "punch listener + attribute call",
    ]);
    for (const [line, , memstate, raw, ratio] of parts) {
      assert.ok(Number(memstate) > 0 && Number(raw) > 0 && Number(ratio) > 0, line);
    }
  },
});

/** True in a git checkout (the mutation check's scratch copies are not: the A/B needs one). */
const inGitCheckout = new Deno.Command("git", {
  args: ["rev-parse", "--is-inside-work-tree"],
  stdout: "null",
  stderr: "null",
}).outputSync().success;

/** `git worktree list`: an A/B script must leave it as it found it. */
function worktreeList(): string {
  const out = new Deno.Command("git", { args: ["worktree", "list"], stdout: "piped" }).outputSync();
  return new TextDecoder().decode(out.stdout);
}

Deno.test({
  name: "README: the store A/B runs against a revision and leaves no worktree behind",
  ignore: !inGitCheckout,
}, async () => {
  const before = worktreeList();
  const run = async (...args: string[]) => {
    const { code, out, err } = await runBench("store_ab", ["--base", "HEAD", ...args]);
    assert.equal(code, 0, err);
    return out;
  };
  const timed = await run("--reps", "3", "--processes", "2", "--workloads", "churn,boot64");
  assert.match(
    timed,
    /^this checkout against HEAD \([0-9a-f]{12}\), 3 pairs in each of 2 processes$/m,
  );
  for (const name of ["churn", "boot64"]) {
    assert.match(
      timed,
      new RegExp(
        `^${name} +this \\d+ ns, base \\d+ ns \\(best\\); paired medians ` +
          `[\\d.]+ [\\d.]+: median [\\d.]+x$`,
        "m",
      ),
    );
  }
  // A/A: both sides build the same store, so they allocate and end alike.
  const allocated = await run("--allocated", "--workloads", "boot64");
  const m = allocated.match(
    /^boot64 +this (\d+) KiB in (\d+) buffers to end at (\d+) KiB; base (\d+) KiB in (\d+) buffers to end at (\d+) KiB$/m,
  );
  assert.ok(m, allocated);
  assert.deepEqual([m[1], m[2], m[3]], [m[4], m[5], m[6]]);
  assert.ok(Number(m[2]) > 0, "a build allocates buffers");
  assert.ok(Number(m[1]) > Number(m[3]), "a build allocates more than it ends with");
  assert.equal(worktreeList(), before);
  const bad = await runBench("store_ab", ["--base", "no-such-revision"]);
  assert.equal(bad.code, 2);
  assert.equal(
    bad.err,
    'store_ab: --base: "no-such-revision" is not a revision of this repository\n',
  );
  // A value that starts with a dash: node's parseArgs explains it on three lines; one is printed.
  const dash = await runBench("store_ab", ["--base", "HEAD", "--reps", "-5"]);
  assert.equal(dash.code, 2);
  assert.match(dash.err, /^store_ab: Option '--reps' [^\n]*\n$/);
});

Deno.test("README: the replay row's parts run (here 3,000 conversions)", async () => {
  const { code, out: text, err } = await runBench("replay_rows", [
    "--parts",
    "--conversions",
    "3000",
    "--reps",
    "2",
  ]);
  assert.equal(code, 0, err);
  const parts = [...text.matchAll(/^(.+?) +[\d, ]+ ms; paired median ([\d.]+)x direct$/gm)];
  assert.deepEqual(parts.map((m) => m[1]), [
    "direct",
    "direct, reader beside",
    "runner, no probe",
    "runner with probe",
    "probe told every event",
    "whole replay",
  ]);
  assert.equal(parts[0][2], "1.00", "direct against itself");
  assert.match(
    text,
    /^whole replay's main thread: (on a core ([\d.]+x direct's|too short to tell) \(all repetitions\); waiting for a core [\d, ]+ ms; idle [-\d, ]+ ms \(median -?\d+\)|\/proc\/thread-self\/schedstat cannot be read here)$/m,
  );
  assert.match(text, /^new Worker held the main thread \d+, \d+ ms$/m);
  assert.match(text, /^a credit message held it [\d.]+, [\d.]+ us$/m);
});

Deno.test({
  name: "README: the replay A/B runs against a revision in each mode and leaves no worktree behind",
  ignore: !inGitCheckout,
}, async () => {
  const before = worktreeList();
  const small = ["--base", "HEAD", "--conversions", "2000", "--reps", "3", "--processes", "2"];
  for (const mode of ["replay", "worker-read", "thread-read"]) {
    const { code, out, err } = await runBench("replay_ab", [...small, "--mode", mode]);
    assert.equal(code, 0, err);
    assert.match(
      out,
      new RegExp(
        `^this checkout against HEAD \\([0-9a-f]{12}\\): ${mode} of 2,000 conversions, ` +
          `3 repetitions in each of 2 processes$`,
        "m",
      ),
    );
    const direct = mode === "replay"
      ? "; best over its best direct: this [\\d.]+x \\(\\d+ ms\\), base [\\d.]+x \\(\\d+ ms\\)"
      : "";
    for (const n of [1, 2]) {
      assert.match(
        out,
        new RegExp(
          `^process ${n}: this \\d+ ms, base \\d+ ms \\(best\\); paired median [\\d.]+x${direct}$`,
          "m",
        ),
      );
    }
    assert.match(out, /^median of the paired medians: [\d.]+x$/m);
  }
  assert.equal(worktreeList(), before);
  const bad = await runBench("replay_ab", ["--base", "no-such-revision"]);
  assert.equal(bad.code, 2);
  assert.equal(
    bad.err,
    'replay_ab: --base: "no-such-revision" is not a revision of this repository\n',
  );
  const mode = await runBench("replay_ab", ["--base", "HEAD", "--mode", "fast"]);
  assert.equal(mode.code, 2);
  assert.equal(mode.err, 'replay_ab: --mode: one of replay worker-read thread-read, got "fast"\n');
});

function quiet() {
  return { out: () => {}, err: () => {}, interactive: false };
}

Deno.test("README: the host configuration it shows is one the loader takes, devices as described", async () => {
  const { parseHostConfig, planContainers } = await import("../src/host/mod.ts");
  const start = README.indexOf("### Host configuration");
  const block = README.slice(start).match(/```json\n([\s\S]*?)```/)![1];
  const config = parseHostConfig(JSON.parse(block), "README.md");
  // gpu1 names a container of its own: two IOASes, as the text says of different values.
  assert.deepEqual(planContainers(config.devices).map((c) => c.name), ["nic0", "gpu0", "gpu1"]);
});
