// A bench script run in a process of its own, as the README runs it, its output captured.

/** What one run of a bench script returned and printed. */
export interface BenchResult {
  /** The process's exit status. */
  code: number;
  /** Standard output. */
  out: string;
  /** Standard error. */
  err: string;
}

/**
 * The environment a bench script runs with here: this process's, less the
 * variables that change what the scripts measure (`MEMSTATE_BENCH_REPS`, set
 * for a quick report pass, must not leak into tests), plus `env`.
 */
function benchEnv(env: Record<string, string>): Record<string, string> {
  const inherited = Deno.env.toObject();
  delete inherited.MEMSTATE_BENCH_REPS;
  return { ...inherited, ...env };
}

/**
 * Runs `deno run -A bench/SCRIPT.ts ARGS...` from the repository root, with
 * `env` added to the environment ({@link benchEnv}); `signal` stops the process
 * (a script that should have refused its options and started its benchmark
 * instead).
 */
export async function runBench(
  script: string,
  args: string[],
  signal?: AbortSignal,
  env: Record<string, string> = {},
): Promise<BenchResult> {
  return await runDeno(["run", "-A", `bench/${script}.ts`, ...args], env, signal);
}

/** `deno ARGS...` in the environment of {@link benchEnv} with `env`, its output captured. */
async function runDeno(
  args: string[],
  env: Record<string, string>,
  signal?: AbortSignal,
): Promise<BenchResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    env: benchEnv(env),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
    signal,
  }).output();
  const text = new TextDecoder();
  return { code: out.code, out: text.decode(out.stdout), err: text.decode(out.stderr) };
}

/**
 * Runs `code` as a script of its own with only the `permissions` given (Deno
 * flags such as `--allow-read`) and `env` added to the environment
 * ({@link benchEnv}); `imports` maps names to bench modules (`{ benchReps:
 * "measurement" }` imports `benchReps` from bench/measurement.ts), so the
 * script runs the code under test as a process restricted that way would.
 */
export async function runSnippet(
  imports: Record<string, string>,
  code: string,
  permissions: string[],
  env: Record<string, string> = {},
): Promise<BenchResult> {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    const lines = Object.entries(imports).map(([name, module]) =>
      `import { ${name} } from "${new URL(`../../bench/${module}.ts`, import.meta.url).href}";`
    );
    await Deno.writeTextFile(script, [...lines, code, ""].join("\n"));
    return await runDeno(["run", ...permissions, script], env);
  } finally {
    await Deno.remove(script);
  }
}
