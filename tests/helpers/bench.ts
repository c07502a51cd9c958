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
 * Runs `deno run -A bench/SCRIPT.ts ARGS...` from the repository root, with
 * `env` added to the environment; `signal` stops the process (a script that
 * should have refused its options and started its benchmark instead).
 */
export async function runBench(
  script: string,
  args: string[],
  signal?: AbortSignal,
  env: Record<string, string> = {},
): Promise<BenchResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `bench/${script}.ts`, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
    signal,
  }).output();
  const text = new TextDecoder();
  return { code: out.code, out: text.decode(out.stdout), err: text.decode(out.stderr) };
}

/**
 * Runs `code` as a script of its own with only the `permissions` given (Deno
 * flags such as `--allow-read`) and `env` added to the environment; `imports`
 * maps names to bench modules (`{ benchReps: "measurement" }` imports
 * `benchReps` from bench/measurement.ts), so the script runs the code under
 * test as a process restricted that way would.
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
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...permissions, script],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder();
    return { code: out.code, out: text.decode(out.stdout), err: text.decode(out.stderr) };
  } finally {
    await Deno.remove(script);
  }
}
