/**
 * The memstate command line: run a host configuration (a named workload or a
 * replayed QEMU trace) and print a report, or compare stores and DMA plugins
 * on the same input.
 *
 * ```sh
 * deno run -A jsr:@cvm/memstate/cli run examples/tdx-16g.json
 * deno run -A jsr:@cvm/memstate/cli run examples/tdx-trace.json --trace examples/traces/tdx-boot.log --json
 * deno run -A jsr:@cvm/memstate/cli compare examples/iommufd-1t.json
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ConfigError } from "./src/host/config/errors.ts";
import { loadHostConfig } from "./src/host/config/load.ts";
import type { SessionOptions } from "./src/host/session.ts";
import type { CompareOptions } from "./src/host/compare.ts";
import { SnapshotError } from "./src/bus/snapshot_format.ts";
import { CapacityError } from "./src/plugins/plugin.ts";
import { outputPathProblem } from "./src/host/report/output_path.ts";
import type { CliIo } from "./src/cli/io.ts";
import { COMPARE_HELP, HELP, RUN_HELP } from "./src/cli/help.ts";
import { compareAxes, OPTIONS, runOnly, sessionOptions } from "./src/cli/options.ts";
import { compareCommand, run } from "./src/cli/commands.ts";
import { loadProgress } from "./src/cli/progress.ts";

export type { CliIo };

/** Runs the command line with `args`; resolves to the exit status. */
export async function main(args: string[], io: CliIo = defaultIo()): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    io.out(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command !== "run" && command !== "compare") {
    io.err(`memstate: unknown command ${JSON.stringify(command)}\n\n${HELP}`);
    return 2;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: OPTIONS,
    });
  } catch (e) {
    io.err(
      `memstate ${command}: ${(e as Error).message}\n\n${
        command === "run" ? RUN_HELP : COMPARE_HELP
      }`,
    );
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(command === "run" ? RUN_HELP : COMPARE_HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    io.err(
      `memstate ${command}: expected one CONFIG file, got ${positionals.length}\n\n${
        command === "run" ? RUN_HELP : COMPARE_HELP
      }`,
    );
    return 2;
  }
  let options: SessionOptions;
  let axes: CompareOptions;
  try {
    options = sessionOptions(values);
    axes = command === "compare" ? compareAxes(values, options) : {};
    if (command === "run") runOnly(values);
    if (command === "compare" && (values["save-state"] || values["load-state"])) {
      throw new Error("--save-state and --load-state are options of run, not of compare");
    }
  } catch (e) {
    io.err(`memstate ${command}: ${(e as Error).message}`);
    return 2;
  }
  // Report files are checked before the run, so a bad path costs nothing.
  for (const [flag, path] of [["--svg", values.svg], ["--html", values.html]] as const) {
    const problem = path === undefined ? undefined : await outputPathProblem(path, flag);
    if (problem) {
      io.err(`memstate ${command}: ${problem}`);
      return 2;
    }
  }
  try {
    await loadProgress(io);
    const config = await loadHostConfig(positionals[0]);
    return command === "run"
      ? await run(config, options, values, io)
      : await compareCommand(config, options, axes, values.json ?? false, io);
  } catch (e) {
    if (
      e instanceof ConfigError || e instanceof CapacityError || e instanceof Deno.errors.NotFound ||
      e instanceof SnapshotError
    ) {
      io.err(`memstate ${command}: ${(e as Error).message}`);
      return 2;
    }
    if (e instanceof Error && /workload|parameter|params/.test(e.message)) {
      io.err(`memstate ${command}: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

function defaultIo(): CliIo {
  return {
    out: (t) => console.log(t),
    err: (t) => console.error(t),
    interactive: Deno.stderr.isTerminal(),
  };
}

if (import.meta.main) Deno.exit(await main(Deno.args));
