/**
 * bench/report_runs.ts: the spread of each target over several runs of the
 * report (how many runs met it, the range and median of its ratios, the
 * verdicts flagged as noise), the reports it reads, and the runs it starts.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { checkReport, formatSummary, runReports, summarise } from "../bench/report_runs.ts";
import { rate, type Report, type ReportRow } from "../bench/report.ts";
import { runBench } from "./helpers/bench.ts";

/**
 * A rated report of the rows `times` gives: per workload, the baseline's and
 * the candidate's seconds (null: skipped), against a time target of `max`.
 */
function report(times: Record<string, [number | null, number | null]>, max = 2): Report {
  const rows = Object.entries(times).map(([workload, [base, cand]]): ReportRow => ({
    workload,
    description: workload,
    unit: "conversion",
    results: [
      // A skipped row (as without /dev/kvm) has neither times nor bytes.
      { store: "bitmap", seconds: base, units: 1, bytes: base === null ? 0 : 100, runs: null },
      { store: "range-tree", seconds: cand, units: 1, bytes: cand === null ? 0 : 5, runs: null },
    ],
    targets: [{ metric: "time", max }],
  }));
  return {
    generated: "2026-12-01T00:00:00.000Z",
    command: "test",
    versions: { deno: "x", v8: "y" },
    rows: rows.map(rate),
  };
}

Deno.test("summarise: per target, the runs that met it, its ratios' range and median, run by run", () => {
  const runs = [
    report({ boot: [1, 1.8], churn: [1, 1.0] }),
    report({ boot: [1, 2.2], churn: [1, 1.1] }),
    report({ boot: [1, 1.9], churn: [1, 1.2] }),
    report({ boot: [1, 2.1], churn: [1, 1.3] }),
  ];
  const summary = summarise(runs, ["a", "b", "c", "d"]);
  assert.deepEqual(summary.runs.map((r) => r.source), ["a", "b", "c", "d"]);
  const boot = summary.targets.find((t) => t.workload === "boot")!;
  assert.equal(boot.candidate, "range-tree");
  assert.equal(boot.measured, 4);
  assert.equal(boot.met, 2, "1.8x and 1.9x meet 2x; 2.2x and 2.1x do not");
  assert.deepEqual(boot.timeRatios, [1.8, 2.2, 1.9, 2.1]);
  assert.deepEqual(boot.verdicts, [true, false, true, false]);
  // The median of an even count lies between the middle two (1.9x and 2.1x).
  assert.ok(Math.abs(boot.time!.median - 2.0) < 1e-12, `median ${boot.time!.median}`);
  assert.equal(boot.time!.min, 1.8);
  assert.equal(boot.time!.max, 2.2);
  assert.deepEqual(boot.bytes, { min: 0.05, median: 0.05, max: 0.05 });
  const churn = summary.targets.find((t) => t.workload === "churn")!;
  assert.equal(churn.met, 4);
  assert.ok(Math.abs(churn.time!.median - 1.15) < 1e-12);
  // Only candidates with targets, baselines never.
  assert.deepEqual(summary.targets.map((t) => t.workload), ["boot", "churn"]);
});

Deno.test("summarise: a run that skipped or lacks a row counts as not measured there", () => {
  const runs = [
    report({ boot: [1, 1.5] }),
    report({ boot: [1, 1.6], linux: [null, null] }),
    report({ boot: [1, 1.7], linux: [1, 1.4] }),
    report({ linux: [1, 1.3] }),
  ];
  const summary = summarise(runs, ["1", "2", "3", "4"]);
  const linux = summary.targets.find((t) => t.workload === "linux")!;
  assert.deepEqual(linux.timeRatios, [null, null, 1.4, 1.3]);
  assert.deepEqual(linux.verdicts, [null, null, true, true]);
  assert.equal(linux.measured, 2);
  assert.equal(linux.met, 2);
  const boot = summary.targets.find((t) => t.workload === "boot")!;
  assert.deepEqual(boot.timeRatios, [1.5, 1.6, 1.7, null]);
  assert.deepEqual(boot.verdicts, [true, true, true, null]);
  assert.equal(boot.measured, 3);
  const text = formatSummary(summary);
  assert.match(text, /4 runs; 2 of 2 measured targets met in every run/);
});

Deno.test("summarise: noise flags are counted, and among the misses those flagged", () => {
  // Paired times whose quartiles straddle the 2x bound: the report flags the verdict.
  const flagged = (ratio: number): Report => {
    const r = report({ boot: [1, ratio] });
    r.rows[0].results[1].noiseCanFlip = true;
    return r;
  };
  const summary = summarise([flagged(1.9), flagged(2.1), report({ boot: [1, 2.3] })], [
    "1",
    "2",
    "3",
  ]);
  const boot = summary.targets[0];
  assert.equal(boot.met, 1);
  assert.equal(boot.noiseFlagged, 2);
  assert.equal(boot.flaggedMisses, 1, "the 2.1x miss was flagged, the 2.3x one was not");
  const text = formatSummary(summary);
  assert.match(text, /1 of 3 \(1 of the 2 misses flagged as noise\)/);
  assert.match(text, /boot \/ range-tree, run by run \(\* missed\): 1\.90x, 2\.10x\*, 2\.30x\*/);
  assert.match(text, /1\.90x-2\.30x \(median 2\.10x\)/);
});

Deno.test("formatSummary: a run that missed by less than the printed digits is starred", () => {
  // 1.5004x prints as 1.50x, as does 1.4996x: only the star tells the miss from the hit.
  const summary = summarise([
    report({ linux: [1, 1.5004] }, 1.5),
    report({ linux: [1, 1.4996] }, 1.5),
  ], [
    "1",
    "2",
  ]);
  assert.match(
    formatSummary(summary),
    /linux \/ range-tree, run by run \(\* missed\): 1\.50x\*, 1\.50x$/m,
  );
});

Deno.test("summarise: a ratio without a verdict (no target applied) is not a run that missed", () => {
  const noVerdict = report({ boot: [1, 1.2] });
  noVerdict.rows[0].results[1].met = null;
  const summary = summarise([report({ boot: [1, 1.5] }), noVerdict], ["1", "2"]);
  assert.equal(summary.targets[0].measured, 1);
  assert.equal(summary.targets[0].met, 1);
  assert.deepEqual(summary.targets[0].timeRatios, [1.5, null]);
});

Deno.test("summarise: reports whose targets differ are refused, naming both", () => {
  assert.throws(
    () => summarise([report({ boot: [1, 1.5] }, 2), report({ boot: [1, 1.5] }, 3)], ["a", "b"]),
    /b: "boot" \/ "range-tree" has the target "time <= 3x", where a has "time <= 2x"/,
  );
});

Deno.test("summarise: a report with two rows of one name is refused, naming it", () => {
  const twice = report({ boot: [1, 1.5] });
  twice.rows.push(twice.rows[0]);
  assert.throws(
    () => summarise([report({ boot: [1, 1.5] }), twice], ["first.json", "second.json"]),
    /second\.json: two rows measure "boot" \/ "range-tree"/,
  );
});

Deno.test("checkReport: what is not a report is refused, naming the source", () => {
  assert.throws(() => checkReport({ rows: [] }, "x.json"), /x\.json: not a report/);
  assert.throws(() => checkReport(null, "y.json"), /y\.json: not a report/);
  assert.throws(
    () => checkReport({ generated: "t", rows: [{ workload: "boot" }] }, "z.json"),
    /z\.json: a row without a "workload" name, a "results" list or a "targets" list/,
  );
  assert.throws(
    () =>
      checkReport({ generated: "t", rows: [{ workload: "b", results: [null], targets: [] }] }, "n"),
    /n: row "b" has a result without a "store"/,
  );
  const ok = report({ boot: [1, 1.5] });
  assert.equal(checkReport(ok, "ok.json"), ok);
});

/** A stand-in for bench/report.ts: writes `report` to `--out`, or fails as told. */
async function fakeReportScript(dir: string, body: string): Promise<URL> {
  const path = join(dir, "fake_report.ts");
  await Deno.writeTextFile(path, body);
  return pathToFileURL(path);
}

Deno.test("runReports: one process per run, one after another, each report read from its --out", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // Each run writes a report whose candidate took as long as the runs before it, plus one.
    const script = await fakeReportScript(
      dir,
      `import { rate } from ${JSON.stringify(new URL("../bench/report.ts", import.meta.url).href)};
const out = Deno.args[Deno.args.indexOf("--out") + 1];
const runs = [...Deno.readDirSync(${
        JSON.stringify(dir)
      })].filter((e) => e.name.startsWith("report-")).length;
const row = { workload: "boot", description: "", unit: "conversion", targets: [{ metric: "time", max: 2 }],
  results: [{ store: "bitmap", seconds: 1, units: 1, bytes: 1, runs: null },
            { store: "range-tree", seconds: runs + 1, units: 1, bytes: 1, runs: null }] };
Deno.writeTextFileSync(out, JSON.stringify({ generated: "g" + runs, command: "", versions: {}, rows: [rate(row)] }));
`,
    );
    const heard: number[] = [];
    const started: Deno.ChildProcess[] = [];
    const { reports, files } = await runReports(3, dir, {
      onRun: (run) => heard.push(run),
      started: (child) => started.push(child),
      script,
    });
    assert.equal(started.length, 3, "each run's process is handed over as it starts");
    assert.deepEqual(heard, [1, 2, 3]);
    assert.deepEqual(files, [1, 2, 3].map((k) => join(dir, `report-${k}.json`)));
    // Run k saw k - 1 reports before it: the runs went one after another.
    assert.deepEqual(reports.map((r) => r.rows[0].results[1].timeRatio), [1, 2, 3]);
    assert.deepEqual(summarise(reports, ["1", "2", "3"]).targets[0].met, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runReports: a run that fails stops the runs, naming it and its last line", async () => {
  const dir = await Deno.makeTempDir();
  const stderr = Deno.stderr.write;
  try {
    const script = await fakeReportScript(
      dir,
      `console.error("linux_rows: the process of the rows failed"); Deno.exit(1);`,
    );
    // The failed run's output is passed on to standard error: keep this test's quiet.
    Deno.stderr.write = (p: Uint8Array) => Promise.resolve(p.length);
    await assert.rejects(
      runReports(2, dir, { onRun: () => assert.fail("no run succeeded"), script }),
      /^Error: run 1 of 2 failed \(exit status 1\): linux_rows: the process of the rows failed$/,
    );
  } finally {
    Deno.stderr.write = stderr;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("report_runs --from: a report it cannot read is one line naming the file, exit 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = (name: string, value: unknown) => {
      const path = join(dir, name);
      Deno.writeTextFileSync(path, JSON.stringify(value));
      return path;
    };
    const good = report({ boot: [1, 1.5] });
    const noTargets = { ...good, rows: [{ ...good.rows[0], targets: undefined }] };
    const twice = { ...good, rows: [good.rows[0], good.rows[0]] };
    const other = report({ boot: [1, 1.5] }, 3);
    const cases: [string[], RegExp][] = [
      [
        ["--from", file("no_targets.json", noTargets)],
        /no_targets\.json: a row without a "workload" name, a "results" list or a "targets" list$/,
      ],
      [["--from", file("twice.json", twice)], /two rows measure "boot" \/ "range-tree"$/],
      [
        ["--from", file("good.json", good), "--from", file("other.json", other)],
        /other\.json: "boot" \/ "range-tree" has the target "time <= 3x"/,
      ],
      [["--from", join(dir, "good.json"), "--from", join(dir, "good.json")], /given twice/],
      [
        ["--from", join(dir, "good.json"), "--out", dir],
        /--out: .* is a directory; give a file name$/,
      ],
    ];
    for (const [args, line] of cases) {
      const out = await runBench("report_runs", args);
      assert.equal(out.code, 2, `${args.join(" ")}: ${out.err}`);
      assert.match(out.err, /^report_runs: [^\n]*\n$/, "one line");
      assert.match(out.err.trimEnd(), line);
      assert.equal(out.out, "", "nothing else printed");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("report_runs --from: summarises saved reports and writes the summary to --out", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = [1.5, 2.5].map((ratio, k) => {
      const file = join(dir, `r${k}.json`);
      Deno.writeTextFileSync(file, JSON.stringify(report({ boot: [1, ratio] })));
      return file;
    });
    const out = join(dir, "summary.json");
    const result = await runBench("report_runs", [
      "--from",
      files[0],
      "--from",
      files[1],
      "--out",
      out,
    ]);
    assert.equal(result.code, 0, result.err);
    assert.match(result.out, /boot \/ range-tree .*1\.50x-2\.50x \(median 2\.00x\).* 1 of 2/);
    const summary = JSON.parse(await Deno.readTextFile(out));
    assert.deepEqual(summary.runs.map((r: { source: string }) => r.source), files);
    assert.deepEqual(summary.targets[0].timeRatios, [1.5, 2.5]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
