/**
 * The bench scripts' options: a bad value is one line on standard error that
 * names the option and the rule, with exit status 2, and the script does no
 * work (bench/cli_args.ts `usage`, `integerOption`).
 */

import assert from "node:assert/strict";
import { runBench, runSnippet } from "./helpers/bench.ts";

/** Script, arguments, and the one line it must print. */
const CASES: [string, string[], string][] = [
  ["linux_parts", ["--reps", "0"], 'linux_parts: --reps: an integer from 1 to 1000, got "0"'],
  [
    "linux_parts",
    ["--count", "x"],
    'linux_parts: --count: an integer from 1 to 10000000, got "x"',
  ],
  [
    "linux_parts",
    ["--case", "nope"],
    'linux_parts: --case: one of alone, getpid, memfd, got "nope"',
  ],
  ["replay_rows", ["--reps", "0"], 'replay_rows: --reps: an integer from 1 to 1000, got "0"'],
  [
    "replay_rows",
    ["--conversions", "1.5"],
    'replay_rows: --conversions: an integer from 1 to 10000000, got "1.5"',
  ],
  [
    "e2e_workloads",
    ["--scale", "0"],
    'e2e_workloads: --scale: a number from 0.001 to 100, got "0"',
  ],
  ["e2e_workloads", ["--reps", ""], 'e2e_workloads: --reps: an integer from 1 to 1000, got ""'],
  ["e2e_workloads", ["--bogus"], "e2e_workloads: Unknown option '--bogus'"],
  [
    "trace_stream",
    ["--gib", "2000"],
    'trace_stream: --gib: a number from 0.00390625 (1/256: one 4 MiB block) to 1024, got "2000"',
  ],
  [
    "linux_rows",
    ["--count", "1e8"],
    'linux_rows: --count: an integer from 1 to 10000000, got "1e8"',
  ],
  [
    "e2e_workloads",
    ["--scale", "1e-9"],
    'e2e_workloads: --scale: a number from 0.001 to 100, got "1e-9"',
  ],
  [
    "trace_stream",
    ["--gib", "0.001"],
    'trace_stream: --gib: a number from 0.00390625 (1/256: one 4 MiB block) to 1024, got "0.001"',
  ],
  [
    "linux_rows",
    ["--rows", "--parts"],
    "linux_rows: --rows: the report's rows as JSON, without --part or --parts",
  ],
  ["report", ["--bogus"], "report: Unknown option '--bogus'"],
  [
    "report",
    ["--out", "/nonexistent-dir/report.json"],
    "report: --out: cannot write /nonexistent-dir/report.json: its directory does not exist",
  ],
  ["report_runs", ["--runs", "0"], 'report_runs: --runs: an integer from 1 to 100, got "0"'],
  [
    "report_runs",
    ["--runs", "2", "--from", "bench/report.json"],
    "report_runs: --from summarises reports already written: without --runs or --save",
  ],
  [
    "report_runs",
    ["--save", "/nonexistent-dir"],
    "report_runs: --save /nonexistent-dir: not an existing directory",
  ],
  [
    "report_runs",
    ["--out", "/nonexistent-dir/runs.json"],
    "report_runs: --out: cannot write /nonexistent-dir/runs.json: its directory does not exist",
  ],
  ["report_runs", ["--from", "README.md"], "report_runs: --from README.md: not JSON"],
  [
    "report_runs",
    ["--from", "deno.json"],
    'report_runs: --from deno.json: not a report of bench/report.ts (no "generated" time and "rows" list)',
  ],
  ["snapshot_rows", ["--reps", "3"], "snapshot_rows: Unknown option '--reps'"],
  [
    "store_ab",
    ["--base", "HEAD", "--processes", "0"],
    'store_ab: --processes: an integer from 1 to 100, got "0"',
  ],
  [
    "worker_threshold",
    ["--reps", "0"],
    'worker_threshold: --reps: an integer from 1 to 1000, got "0"',
  ],
  [
    "worker_threshold",
    ["--lines", "100000,2.5"],
    'worker_threshold: --lines: an integer from 1 to 10000000, got "2.5"',
  ],
  [
    "worker_threshold",
    ["--lines", ""],
    'worker_threshold: --lines: an integer from 1 to 10000000, got ""',
  ],
];

Deno.test("bench options: a bad value is one line naming the option and the rule, exit 2", async () => {
  const outcomes = await Promise.all(CASES.map(async ([script, args, line]) => {
    // A check that regressed would start the benchmark itself: stop it instead of waiting.
    const out = await runBench(script, args, AbortSignal.timeout(60_000));
    return { script, args, line, out };
  }));
  for (const { script, args, line, out } of outcomes) {
    const what = `${script} ${args.join(" ")}`;
    assert.equal(out.err, `${line}\n`, what);
    assert.equal(out.code, 2, what);
    assert.equal(out.out, "", `${what} printed nothing else`);
  }
});

/** The one line a bad MEMSTATE_BENCH_REPS value ends `script` with. */
const badReps = (script: string, value: string) =>
  `${script}: MEMSTATE_BENCH_REPS: an integer from 1 to 1000, got ${JSON.stringify(value)}\n`;

Deno.test("MEMSTATE_BENCH_REPS: a bad value is one line naming it and the rule, exit 2", async () => {
  for (const script of ["report", "snapshot_rows"]) {
    for (const value of ["abc", "0", "2.5", "", "1001"]) {
      const out = await runBench(script, [], AbortSignal.timeout(60_000), {
        MEMSTATE_BENCH_REPS: value,
      });
      const what = `${script} with MEMSTATE_BENCH_REPS=${JSON.stringify(value)}`;
      assert.equal(out.err, badReps(script, value), what);
      assert.equal(out.code, 2, what);
      assert.equal(out.out, "", `${what} printed nothing else`);
    }
  }
});

Deno.test("MEMSTATE_BENCH_REPS: every report source reads it (a bad value stops each, naming it)", async () => {
  const scripts: Record<string, string> = {
    store: "store_rows",
    "end-to-end": "e2e_workloads",
    linux: "linux_rows",
    replay: "replay_rows",
    snapshot: "snapshot_rows",
  };
  const out = await runSnippet(
    { SOURCES: "report" },
    "console.log(JSON.stringify(SOURCES.map((s) => s.name)));",
    ["-A"],
  );
  assert.deepEqual(JSON.parse(out.out), Object.keys(scripts), "a source this test does not know");
  for (const [name, script] of Object.entries(scripts)) {
    const out = await runSnippet(
      { SOURCES: "report" },
      `await SOURCES.find((s) => s.name === ${JSON.stringify(name)}).rows();`,
      ["-A"],
      { MEMSTATE_BENCH_REPS: "x" },
    );
    assert.equal(out.err, badReps(script, "x"), `the ${name} source`);
    assert.equal(out.code, 2, `the ${name} source`);
  }
});

Deno.test("benchReps: MEMSTATE_BENCH_REPS or the source's own default, never fewer than three", async () => {
  const repsWith = async (env: Record<string, string>, allowEnv = true) => {
    const permissions = ["--allow-read", ...(allowEnv ? ["--allow-env"] : [])];
    const out = await runSnippet(
      { benchReps: "measurement" },
      `console.log(benchReps("t", 4));`,
      permissions,
      env,
    );
    assert.equal(out.code, 0, out.err);
    return Number(out.out);
  };
  assert.equal(await repsWith({}), 4, "unset: the source's own default");
  assert.equal(await repsWith({ MEMSTATE_BENCH_REPS: "1" }), 3, "the quick pass: three");
  assert.equal(await repsWith({ MEMSTATE_BENCH_REPS: "7" }), 7);
  assert.equal(await repsWith({ MEMSTATE_BENCH_REPS: "7" }, false), 4, "no env permission");
});

Deno.test("linux_rows --rows: the report's two real-kernel rows as JSON, measured or skipped", async () => {
  // The report runs these rows in a process of their own (bench/linux_rows.ts linuxSource).
  const out = await runBench("linux_rows", ["--rows", "--count", "200", "--reps", "1"]);
  assert.equal(out.code, 0, out.err);
  const rows = JSON.parse(out.out) as {
    workload: string;
    results: { store: string; seconds: number | null; note?: string }[];
  }[];
  assert.deepEqual(rows.map((r) => r.workload), [
    "linux 4k (unallocated)",
    "linux 4k (written)",
  ]);
  for (const row of rows) {
    assert.equal(row.results.length, 2, row.workload);
    for (const m of row.results) {
      // Measured where /dev/kvm is usable, else skipped with the reason.
      assert.ok(
        (m.seconds !== null && m.seconds > 0) || /^skipped: /.test(m.note ?? ""),
        `${row.workload} ${m.store}`,
      );
    }
  }
});

Deno.test("the report's real-kernel rows are skipped, with the reason, without --allow-run", async () => {
  const out = await runSnippet(
    { linuxSource: "linux_rows" },
    `console.log(JSON.stringify((await linuxSource.rows()).map((r) => r.results[0].note)));`,
    ["--allow-read", "--allow-env", "--allow-ffi"],
  );
  assert.equal(out.code, 0, out.err);
  assert.deepEqual(JSON.parse(out.out), [
    "skipped: measured in a process of their own, which needs --allow-run",
    "skipped: measured in a process of their own, which needs --allow-run",
  ]);
});
