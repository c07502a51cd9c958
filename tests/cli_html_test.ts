// memstate run --html: writes the report, says where; an unusable --html or --svg path is one
// clear line and exit 2 before anything runs, and leaves nothing behind; checks of one new
// path made at once (two runs' default outputs) do not trip over each other.
import assert from "node:assert/strict";
import { cli } from "./helpers/cli.ts";
import { outputPathProblem } from "../src/host/report/output_path.ts";

Deno.test("cli: run --html writes a self-contained report and says where", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/report.html`;
  const r = await cli("run", "examples/tdx-trace.json", "--html", file);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`HTML report written to ${file}`));
  assert.match(r.out, /conversion latency: p50/);
  const html = await Deno.readTextFile(file);
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /id="memstate-data"/);
  // With --json the report stays one JSON object on standard output, latency included.
  const j = await cli("run", "examples/tdx-trace.json", "--json", "--html", file);
  assert.equal(j.code, 0, j.err);
  const report = JSON.parse(j.out);
  assert.equal(report.latency.count, report.conversions.requested);
  assert.ok(report.timeline.events.length > 1);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cli: an unusable --html or --svg path is one line and exit 2, before the run", async () => {
  const dir = await Deno.makeTempDir();
  const cases: [string[], RegExp][] = [
    [["--html", dir], /^memstate run: --html: .* is a directory; give a file name$/],
    [["--svg", dir], /^memstate run: --svg: .* is a directory; give a file name$/],
    [
      ["--html", `${dir}/missing/report.html`],
      /^memstate run: --html: cannot write .*missing\/report\.html: its directory does not exist$/,
    ],
    [["--html", ""], /^memstate run: --html: needs a file name$/],
  ];
  for (const [args, pattern] of cases) {
    const r = await cli("run", "examples/tdx-trace.json", ...args);
    assert.equal(r.code, 2, args.join(" "));
    assert.equal(r.err.split("\n").length, 1, r.err);
    assert.match(r.err, pattern);
    assert.equal(r.out, "", "nothing ran");
  }
  // A file under a path component that is a file.
  const plain = `${dir}/plain`;
  await Deno.writeTextFile(plain, "x");
  const r = await cli("run", "examples/tdx-trace.json", "--html", `${plain}/r.html`);
  assert.equal(r.code, 2);
  assert.match(r.err, /^memstate run: --html: cannot write .*plain\/r\.html: /);
  // The check leaves no file behind when the run then fails for another reason.
  const file = `${dir}/never.html`;
  const bad = await cli("run", "examples/no-such-config.json", "--html", file);
  assert.equal(bad.code, 2);
  await assert.rejects(() => Deno.stat(file), Deno.errors.NotFound);
  await Deno.remove(dir, { recursive: true });
});

/** Whether permission bits stop this process from writing (they do not for root). */
async function permissionsApply(): Promise<boolean> {
  if (Deno.build.os === "windows") return false;
  const dir = await Deno.makeTempDir();
  try {
    await Deno.chmod(dir, 0o500);
    return await Deno.writeTextFile(`${dir}/probe`, "").then(() => false, () => true);
  } finally {
    await Deno.chmod(dir, 0o700);
    await Deno.remove(dir, { recursive: true });
  }
}
const enforced = await permissionsApply();

Deno.test({
  name: `cli: an unwritable --html path is refused${
    enforced ? "" : " (skipped: permission bits do not apply to this user)"
  }`,
  ignore: !enforced,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await Deno.chmod(dir, 0o500);
    try {
      const r = await cli("run", "examples/tdx-trace.json", "--html", `${dir}/r.html`);
      assert.equal(r.code, 2);
      assert.match(r.err, /--html: cannot write .*r\.html: permission denied$/);
    } finally {
      await Deno.chmod(dir, 0o700);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("output path: checks of one new path at once all find it writable, and leave nothing", async () => {
  // output_path.ts outputPathProblem: another check may make or remove the file between its
  // steps (two bench runs checking their default output at once). When it was checked with a
  // stat, then a create-new, every check but the first found the file made by another: "file
  // exists".
  const dir = await Deno.makeTempDir();
  const path = `${dir}/report.json`;
  for (let round = 0; round < 5; round++) {
    const problems = await Promise.all(
      Array.from({ length: 16 }, () => outputPathProblem(path, "--out")),
    );
    assert.deepEqual(problems, Array(16).fill(undefined), `round ${round}`);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "no file left behind");
  }
  // An existing file is left as it is, its contents too.
  await Deno.writeTextFile(path, "kept");
  assert.equal(await outputPathProblem(path, "--out"), undefined);
  assert.equal(await Deno.readTextFile(path), "kept");
  await Deno.remove(dir, { recursive: true });
});
