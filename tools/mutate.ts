/**
 * The mutation check: plants each bug of {@link MUTANTS} (tools/mutants.ts),
 * one at a time, in a scratch copy of the repository, runs the test suite
 * against it under a time limit and reports which bugs the suite caught.
 *
 * A mutant is *killed* when the suite fails (a hang that hits the time limit
 * counts as killed, and is reported as a timeout) and *survives* when the
 * suite passes. Mutants marked `equivalent` (the change cannot alter what any
 * caller sees; the list says why) are not run unless `--all` is given. The
 * score is killed / (mutants - equivalents). The exit status is 0 when every
 * mutant that was run was killed, 1 when one survived, 2 on bad input (an
 * unknown option, a mutant whose search text is not found exactly once, a
 * suite that fails before any bug is planted).
 *
 * The suite runs as `deno test --doc --fail-fast` with `MEMSTATE_EXHAUSTIVE=1`
 * (every fault-sweep call index) and a fixed `MEMSTATE_SEED`, so a result
 * can be reproduced. To find a kill sooner, the test files closest to the
 * mutated source ({@link NEAR_TESTS}, or the mutant's own `tests`) run first;
 * only when they pass does the whole suite run, so a survivor has passed
 * every test. The scratch copies hold the files git tracks plus the
 * untracked ones it does not ignore, as they are in the working tree; the
 * working tree itself is never written.
 *
 * Usage:
 *
 * ```sh
 * deno task mutate                      # every mutant, two at a time
 * deno task mutate --only type1-enospc-limit,virtio-mem-nack-before-error
 * deno task mutate --list               # the list, nothing run
 * deno task mutate --jobs 1 --timeout 300 --seed 7 --all
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Mutant, MUTANTS } from "./mutants.ts";

/** Flags of the test run, as `deno task test` passes them, plus `--fail-fast`. */
const TEST_ARGS = [
  "test",
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
  "--allow-env",
  "--allow-run",
  "--doc",
  "--fail-fast",
  // Planting a mutant removes its own search text, so the mutant-list check
  // would fail under every mutant and count as killing the ones the
  // behaviour tests miss. The list is checked here before anything is planted.
  "--ignore=tests/tools_mutants_test.ts",
];

/**
 * Test files (prefixes under tests/) that run first for a mutant of a source
 * under each prefix: the first matching prefix wins.
 */
const NEAR_TESTS: readonly [string, readonly string[]][] = [
  ["src/store/", ["tests/store_"]],
  ["src/bus/", ["tests/bus_", "tests/vmm_policy_test.ts"]],
  ["src/hw/sim/", ["tests/hw_sim_", "tests/plugins_"]],
  ["src/plugins/", ["tests/plugins_", "tests/vmm_policy_test.ts", "tests/host_policy_test.ts"]],
  ["src/host/trace/", ["tests/host_trace_test.ts"]],
  ["src/host/", ["tests/host_"]],
];

/** The time limit is this many times the unmutated suite's time (at least MIN_LIMIT_S). */
const LIMIT_FACTOR = 5;
/** The smallest default time limit per run, in seconds. */
const MIN_LIMIT_S = 300;

/** How one mutant fared. */
interface Outcome {
  mutant: Mutant;
  status: "killed" | "timeout" | "survived";
  /** The first failing test or error line, for a killed mutant. */
  by?: string;
  seconds: number;
}

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

function usage(message?: string): never {
  if (message) console.error(`mutate: ${message}`);
  console.error(
    "usage: deno task mutate [--jobs N] [--timeout SECONDS] [--seed N] [--only ID,ID] [--all] [--list]",
  );
  Deno.exit(2);
}

function positiveInteger(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) usage(`--${name}: must be a positive integer, got ${raw}`);
  return n;
}

/**
 * What is wrong with the mutant list against the sources under `root`: a
 * duplicate id, a replacement equal to its search text, a file that cannot be
 * read, a search text not found there exactly once, a `tests` entry that is
 * no test file nor the prefix of one. Also returns the sources read. `deno
 * task test` runs it (tests/tools_mutants_test.ts), so an edit cannot break
 * the mutation check unseen.
 */
export async function mutantListProblems(
  mutants: readonly Mutant[],
  root: string,
): Promise<{ problems: string[]; sources: Map<string, string> }> {
  const sources = new Map<string, string>();
  const problems: string[] = [];
  const ids = new Set<string>();
  const testFiles = [...Deno.readDirSync(`${root}/tests`)].map((e) => `tests/${e.name}`);
  for (const m of mutants) {
    if (ids.has(m.id)) problems.push(`${m.id}: duplicate id`);
    ids.add(m.id);
    if (m.search === m.replace) problems.push(`${m.id}: replacement equals the search text`);
    for (const test of m.tests ?? []) {
      if (!testFiles.some((file) => file.startsWith(test))) {
        problems.push(`${m.id}: no test file starts with ${test}`);
      }
    }
    let text = sources.get(m.file);
    if (text === undefined) {
      try {
        text = await Deno.readTextFile(`${root}/${m.file}`);
      } catch {
        problems.push(`${m.id}: cannot read ${m.file}`);
        continue;
      }
      sources.set(m.file, text);
    }
    const count = text.split(m.search).length - 1;
    if (count !== 1) {
      problems.push(`${m.id}: the search text occurs ${count} times in ${m.file} (must be once)`);
    }
  }
  return { problems, sources };
}

/** The sources the mutants edit; exits (status 2) naming every problem of the list. */
async function validate(mutants: readonly Mutant[]): Promise<Map<string, string>> {
  const { problems, sources } = await mutantListProblems(mutants, root);
  if (problems.length > 0) {
    console.error("mutate: the mutant list does not match the sources:");
    for (const p of problems) console.error(`  ${p}`);
    Deno.exit(2);
  }
  return sources;
}

/** The files git tracks plus the untracked ones it does not ignore. */
async function repositoryFiles(): Promise<string[]> {
  const out = await new Deno.Command("git", {
    args: ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    usage(`git ls-files failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout).split("\0").filter((f) => f !== "");
}

/** A scratch copy of `files` in a new temporary directory. */
async function scratchCopy(files: readonly string[]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "memstate-mutate-" });
  for (const file of files) {
    const slash = file.lastIndexOf("/");
    if (slash > 0) await Deno.mkdir(`${dir}/${file.slice(0, slash)}`, { recursive: true });
    try {
      await Deno.copyFile(`${root}/${file}`, `${dir}/${file}`);
    } catch (e) {
      // Deleted in the working tree but still tracked: leave it out, as the tree has it.
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return dir;
}

/** The test files that run first for `mutant` (see {@link NEAR_TESTS}), from `all`. */
function nearTests(mutant: Mutant, all: readonly string[]): string[] {
  const prefixes = mutant.tests ??
    NEAR_TESTS.find(([source]) => mutant.file.startsWith(source))?.[1] ?? [];
  return all.filter((f) => prefixes.some((p) => f.startsWith(p)));
}

/** Runs `files` of the suite (every test and doc example when empty) in `dir` under `limit` seconds. */
async function runSuite(
  dir: string,
  limit: number,
  seed: number,
  files: readonly string[] = [],
): Promise<{ code: number; output: string; seconds: number }> {
  const started = performance.now();
  const args = files.length === 0
    ? TEST_ARGS
    : [...TEST_ARGS.filter((a) => a !== "--doc"), ...files];
  const out = await new Deno.Command("timeout", {
    args: ["--kill-after=10", String(limit), Deno.execPath(), ...args],
    cwd: dir,
    env: { MEMSTATE_EXHAUSTIVE: "1", MEMSTATE_SEED: String(seed), NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    output: decoder.decode(out.stdout) + decoder.decode(out.stderr),
    seconds: (performance.now() - started) / 1000,
  };
}

/** The first failing test's name, else the first error line, of a failed run. */
function firstFailure(output: string): string | undefined {
  const failed = /^(.+?) \.\.\. FAILED/m.exec(output);
  if (failed) return failed[1].trim();
  const error = /^error: (.+)$/m.exec(output);
  return error?.[1].trim();
}

function formatSeconds(s: number): string {
  return s >= 60
    ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`
    : `${s.toFixed(1)}s`;
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: Deno.args,
      options: {
        jobs: { type: "string" },
        timeout: { type: "string" },
        seed: { type: "string" },
        only: { type: "string" },
        all: { type: "boolean" },
        list: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: false,
    });
  } catch (e) {
    usage(e instanceof Error ? e.message : String(e));
  }
  const o = parsed.values;
  if (o.help) usage();
  const cores = navigator.hardwareConcurrency ?? 2;
  const jobs = positiveInteger("jobs", o.jobs, Math.max(1, Math.min(2, cores)));
  const seed = positiveInteger("seed", o.seed, 1);
  let mutants = [...MUTANTS];
  if (o.only !== undefined) {
    const wanted = o.only.split(",").map((s) => s.trim()).filter((s) => s !== "");
    const unknown = wanted.filter((id) => !mutants.some((m) => m.id === id));
    if (unknown.length > 0) usage(`--only: no mutant ${unknown.join(", ")}`);
    mutants = mutants.filter((m) => wanted.includes(m.id));
  }
  const sources = await validate(MUTANTS);
  if (o.list) {
    for (const m of mutants) {
      const mark = m.equivalent ? ` [equivalent: ${m.equivalent}]` : "";
      console.log(`${m.id.padEnd(40)} ${m.file}: ${m.what}${mark}`);
    }
    console.log(`${mutants.length} mutants`);
    return;
  }
  const equivalents = mutants.filter((m) => m.equivalent !== undefined);
  const toRun = o.all ? mutants : mutants.filter((m) => m.equivalent === undefined);

  const started = performance.now();
  const files = await repositoryFiles();
  const testFiles = files.filter((f) => /^tests\/.*_test\.ts$/.test(f)).sort();
  const dirs: string[] = [];
  const cleanUp = () => {
    for (const dir of dirs) {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // already gone
      }
    }
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", cleanUp);
  Deno.addSignalListener("SIGTERM", cleanUp);
  try {
    for (let j = 0; j < Math.min(jobs, Math.max(1, toRun.length)); j++) {
      dirs.push(await scratchCopy(files));
    }
    // The unmutated suite must pass, or no result below would mean anything.
    console.log(`mutate: running the unmutated suite (seed ${seed}) ...`);
    const baseline = await runSuite(dirs[0], 3600, seed);
    if (baseline.code !== 0) {
      console.error(baseline.output.split("\n").slice(-40).join("\n"));
      console.error(
        `mutate: the suite fails without any mutant (${
          firstFailure(baseline.output)
        }); fix it first`,
      );
      Deno.exit(2);
    }
    const limit = positiveInteger(
      "timeout",
      o.timeout,
      Math.max(MIN_LIMIT_S, Math.ceil(LIMIT_FACTOR * baseline.seconds)),
    );
    console.log(
      `mutate: suite passes in ${formatSeconds(baseline.seconds)}; ${toRun.length} mutants, ` +
        `${jobs} at a time, ${limit} s limit each`,
    );

    const outcomes: Outcome[] = [];
    let next = 0;
    const worker = async (dir: string) => {
      while (next < toRun.length) {
        const mutant = toRun[next++];
        const original = sources.get(mutant.file)!;
        const path = `${dir}/${mutant.file}`;
        await Deno.writeTextFile(path, original.replace(mutant.search, () => mutant.replace));
        let run;
        try {
          const near = nearTests(mutant, testFiles);
          run = near.length > 0 ? await runSuite(dir, limit, seed, near) : undefined;
          if (run === undefined || run.code === 0) {
            const whole = await runSuite(dir, limit, seed);
            whole.seconds += run?.seconds ?? 0;
            run = whole;
          }
        } finally {
          await Deno.writeTextFile(path, original);
        }
        const status = run.code === 0
          ? "survived"
          : run.code === 124 || run.code === 137
          ? "timeout"
          : "killed";
        const outcome: Outcome = {
          mutant,
          status,
          by: status === "killed" ? firstFailure(run.output) : undefined,
          seconds: run.seconds,
        };
        outcomes.push(outcome);
        const by = status === "timeout"
          ? `hung: stopped after ${limit} s`
          : outcome.by
          ? `by ${outcome.by}`
          : "";
        console.log(
          `[${String(outcomes.length).padStart(2)}/${toRun.length}] ${status.padEnd(8)} ` +
            `${mutant.id.padEnd(40)} ${formatSeconds(run.seconds).padStart(6)}  ${by}`,
        );
      }
    };
    await Promise.all(dirs.map(worker));

    const scored = outcomes.filter((r) => r.mutant.equivalent === undefined);
    const killed = scored.filter((r) => r.status !== "survived");
    const timeouts = scored.filter((r) => r.status === "timeout");
    const survivors = scored.filter((r) => r.status === "survived");
    const total = (performance.now() - started) / 1000;
    console.log("");
    for (const m of equivalents) console.log(`equivalent ${m.id}: ${m.equivalent}`);
    for (const r of outcomes.filter((r) => r.mutant.equivalent && r.status !== "survived")) {
      console.log(`NOT EQUIVALENT ${r.mutant.id}: killed by ${r.by ?? "a timeout"}`);
    }
    for (const r of survivors) {
      console.log(`SURVIVED ${r.mutant.id} (${r.mutant.file}): ${r.mutant.what}`);
    }
    const score = scored.length === 0 ? 100 : (100 * killed.length) / scored.length;
    console.log(
      `mutation score ${score.toFixed(1)}%: ${killed.length} of ${scored.length} killed ` +
        `(${timeouts.length} by the time limit), ${survivors.length} survived, ` +
        `${equivalents.length} equivalent not counted; ${formatSeconds(total)} ` +
        `(seed ${seed}, ${jobs} jobs)`,
    );
    if (survivors.length > 0) Deno.exitCode = 1;
  } finally {
    for (const dir of dirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
