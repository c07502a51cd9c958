/**
 * The memstate command line: run a host configuration (a named workload or a
 * replayed QEMU trace, read as a stream: a file, gzip, QEMU's simpletrace
 * format, standard input, or a growing log with `--follow`) and print a
 * report, or compare stores, DMA plugins, VMM policies or kernels on the same
 * input. A trace can bring its own regions (its `kvm_set_user_memory`
 * memslots), and plugin modules of the user's own run like the built-in ones.
 *
 * ```sh
 * deno run -A jsr:@cvm/memstate/cli run examples/tdx-16g.json
 * deno run -A jsr:@cvm/memstate/cli run examples/tdx-trace.json --json
 * deno run -A jsr:@cvm/memstate/cli run --trace qemu-trace.log.gz --plugin ./my_plugin.ts
 * deno run -A jsr:@cvm/memstate/cli compare examples/iommufd-1t.json
 * ```
 *
 * Exit status: 0 when every event was applied, a no-op or ignored; 1 when the
 * report found a problem; 2 for bad input, refused before any work in one
 * line; 130 when interrupted (see `memstate --help`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { basename } from "node:path";
import { ConfigError } from "./src/host/config/errors.ts";
import { loadHostConfig, parseHostConfig } from "./src/host/config/load.ts";
import type { HostConfig } from "./src/host/config/schema.ts";
import { HostLimitError } from "./src/host/limits.ts";
import { TraceInputError } from "./src/host/trace/event.ts";
import { WorkloadError } from "./src/host/workloads/workload.ts";
import { WorkloadParamsError } from "./src/host/workloads/registry.ts";
import { PluginModuleError } from "./src/host/plugin_modules.ts";
import { SnapshotError } from "./src/bus/snapshot_format.ts";
import { CapacityError } from "./src/plugins/plugin.ts";
import type { CliIo } from "./src/cli/io.ts";
import { COMPARE_HELP, HELP, RUN_HELP } from "./src/cli/help.ts";
import {
  compareAxes,
  OPTIONS,
  repeatedOption,
  runOnly,
  sessionOptions,
  type Values,
} from "./src/cli/options.ts";
import { compareCommand, run } from "./src/cli/commands.ts";
import {
  checkDistinctFiles,
  checkOutputFile,
  moduleFile,
  readInputFile,
  UsageError,
} from "./src/cli/preflight.ts";
import { loadProgress, SHOW_CURSOR } from "./src/cli/progress.ts";
import { VERSION } from "./src/version.ts";
import { displayPath, escapeControls, excerpt, quoted } from "./src/util/text.ts";

export type { CliIo };
export type { ProgressTerminal } from "./src/cli/io.ts";

/**
 * Runs the command line with `args`; resolves to the exit status (see
 * `memstate --help`: 0 all applied, 1 problems found, 2 bad input, 130
 * interrupted). A user's mistake is one line on `io.err` and status 2, never
 * an exception.
 */
export async function main(args: string[], io: CliIo = defaultIo()): Promise<number> {
  const [command, ...rest] = args;
  const version = command === "--version" || command === "-V" || command === "version";
  if (
    (version || command === "--help" || command === "-h" || command === "help") && rest.length > 0
  ) {
    // `--version --frobnicate` is a mistake to say, not an option to ignore.
    io.err(
      `memstate: ${excerpt(command)} takes nothing after it, got ${excerpt(rest[0])} ` +
        `(memstate --help lists the commands)`,
    );
    return 2;
  }
  if (version) {
    io.out(`memstate ${VERSION}`);
    return 0;
  }
  if (command === "--help" || command === "-h" || command === "help") {
    io.out(HELP);
    return 0;
  }
  // A usage error is one line, which ends by saying where the options are listed.
  if (command === undefined) {
    io.err("memstate: a command is required: run or compare (memstate --help lists them)");
    return 2;
  }
  if (command !== "run" && command !== "compare") {
    io.err(
      `memstate: unknown command ${quoted(command.slice(0, 80))}: ` +
        "the commands are run and compare (memstate --help lists them)",
    );
    return 2;
  }
  const help = command === "run" ? RUN_HELP : COMPARE_HELP;
  const seeHelp = `(memstate ${command} --help lists the options)`;
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      strict: true,
      options: OPTIONS,
      tokens: true,
    });
  } catch (e) {
    io.err(`memstate ${command}: ${parseArgsProblem(e as Error)} ${seeHelp}`);
    return 2;
  }
  const values = parsed.values as Values & { help?: boolean };
  const positionals = parsed.positionals;
  if (values.help) {
    io.out(help);
    return 0;
  }
  const repeated = repeatedOption(parsed.tokens);
  if (repeated !== undefined) {
    io.err(`memstate ${command}: ${repeated} ${seeHelp}`);
    return 2;
  }
  if (positionals.length > 1 || (positionals.length === 0 && values.trace === undefined)) {
    io.err(
      `memstate ${command}: expected one CONFIG file, got ${positionals.length}${
        positionals.length === 0
          ? " (or give --trace FILE to replay a trace on its own regions)"
          : ""
      } ${seeHelp}`,
    );
    return 2;
  }
  const interrupt = listenForInterrupt(io);
  try {
    const options = sessionOptions(values);
    const axes = command === "compare" ? compareAxes(values, options) : {};
    if (command === "run") runOnly(values);
    if (command === "compare" && (values["save-state"] || values["load-state"])) {
      throw new UsageError("--save-state and --load-state are options of run, not of compare");
    }
    // Every file the command writes or reads besides the input, checked before any work.
    const outputs = { svg: values.svg, html: values.html, saveState: values["save-state"] };
    const written = [["--svg", outputs.svg], ["--html", outputs.html], [
      "--save-state",
      outputs.saveState,
    ]].filter((o): o is [string, string] => o[1] !== undefined);
    for (const [option, path] of written) await checkOutputFile(option, path);
    if (positionals[0] === "") {
      throw new UsageError("CONFIG: the path is empty; give a host configuration file");
    }
    if (positionals[0] === "-") {
      throw new UsageError(
        'CONFIG: "-" names no file here; a configuration is read from a file (standard input ' +
          "is for --trace -)",
      );
    }
    const loadState = values["load-state"] === undefined
      ? undefined
      : await readInputFile("--load-state", values["load-state"]);
    const config = positionals.length === 1
      ? await loadHostConfig(positionals[0])
      : traceOnlyConfig(values.trace!);
    // No output may overwrite another output or anything the run reads.
    const trace = values.trace ?? (config.workload.kind === "trace" ? config.workload.trace : "-");
    const named = (option: string, path: string | undefined): [string, string][] =>
      path === undefined ? [] : [[option, path]];
    checkDistinctFiles(written, [
      ...named("CONFIG", positionals[0]),
      ...named("--trace", trace === "-" ? undefined : trace),
      ...named("--load-state", values["load-state"]),
      ...(values.plugin ?? []).flatMap((p) => named("--plugin", moduleFile(p))),
      ...config.plugins.flatMap((p) => named("plugin module", moduleFile(p.module))),
    ]);
    await loadProgress(io);
    const session = {
      ...options,
      ...(loadState ? { loadState } : {}),
      signal: interrupt.signal,
      ...(io.stdin ? { stdin: io.stdin } : {}),
    };
    return command === "run"
      ? await run(config, session, outputs, values.json ?? false, io)
      : await compareCommand(config, session, axes, values.json ?? false, io);
  } catch (e) {
    let message = userError(e);
    if (message === undefined) throw e;
    // A saved state that does not decode: say which option and file it came from.
    if (e instanceof SnapshotError && values["load-state"] !== undefined) {
      message = `--load-state ${displayPath(values["load-state"])}: ${message}`;
    }
    // One line per problem; whatever user input a message quotes, no control character goes
    // out raw (a path's newline or escape sequence).
    io.err(
      message.split("\n").map((line) => `memstate ${command}: ${escapeControls(line)}`).join("\n"),
    );
    return 2;
  } finally {
    interrupt.dispose();
  }
}

/**
 * parseArgs' complaint in one line. A value that starts with "-" (`--seed -1`)
 * is taken for an option, and node's message for it spans three lines.
 */
function parseArgsProblem(e: Error): string {
  const ambiguous = /^Option '(--[\w-]+)[^']*' argument is ambiguous/.exec(e.message);
  if (ambiguous) {
    const option = ambiguous[1];
    return `${option}: its value is missing or starts with "-"; write ${option}=VALUE for one ` +
      `that does`;
  }
  const unknown = /^Unknown option '([^']*)'/.exec(e.message);
  if (unknown) {
    return `${excerpt(unknown[1])}: unknown option; a file name that starts with "-" goes ` +
      `after --`;
  }
  const flag = /^Option '(--[\w-]+)[^']*' does not take an argument/.exec(e.message);
  if (flag) return `${flag[1]}: takes no value`;
  const missing = /^Option '(--[\w-]+)[^']*' argument missing/.exec(e.message);
  if (missing) return `${missing[1]}: needs a value`;
  return escapeControls(e.message.split("\n")[0]);
}

/** The message of an error the user caused (bad input), or undefined for a bug. */
function userError(e: unknown): string | undefined {
  if (
    e instanceof UsageError || e instanceof ConfigError || e instanceof CapacityError ||
    e instanceof SnapshotError || e instanceof TraceInputError || e instanceof HostLimitError ||
    e instanceof WorkloadError || e instanceof WorkloadParamsError ||
    e instanceof PluginModuleError
  ) {
    return e.message;
  }
  if (e instanceof Deno.errors.NotCapable) {
    return `${e.message.split("\n")[0]} (grant it with the --allow-... flag it names)`;
  }
  return undefined;
}

/**
 * The configuration of `memstate run --trace FILE` without CONFIG: the regions
 * the trace's memslots give, no devices, every default.
 */
function traceOnlyConfig(trace: string): HostConfig {
  const name = basename(trace === "-" ? "stdin" : trace).replace(/^[^A-Za-z0-9]+/, "")
    .replace(/[^A-Za-z0-9_.-]/g, "_") || "trace";
  return parseHostConfig(
    { name, regions: "from-trace", workload: { trace } },
    `${trace === "-" ? "standard input" : displayPath(trace)} (no CONFIG: regions from the trace)`,
  );
}

/**
 * Ctrl-C while a command runs: the first stops the run (the report so far is
 * printed), a second exits at once with the cursor shown.
 */
function listenForInterrupt(io: CliIo): { signal: AbortSignal; dispose(): void } {
  if (io.interrupt) return { signal: io.interrupt, dispose() {} };
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) {
      Deno.stderr.writeSync(new TextEncoder().encode(`${SHOW_CURSOR}\n`));
      Deno.exit(130);
    }
    controller.abort();
  };
  try {
    Deno.addSignalListener("SIGINT", onSigint);
  } catch {
    return { signal: controller.signal, dispose() {} }; // no signals here (Windows)
  }
  return {
    signal: controller.signal,
    dispose: () => Deno.removeSignalListener("SIGINT", onSigint),
  };
}

function defaultIo(): CliIo {
  return {
    out: (t) => console.log(t),
    err: (t) => console.error(t),
    interactive: Deno.stderr.isTerminal(),
  };
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    // A bug, not bad input: one line, no stack trace unless asked for.
    const debug = Deno.permissions.querySync({ name: "env", variable: "MEMSTATE_DEBUG" })
          .state === "granted" && Deno.env.get("MEMSTATE_DEBUG") === "1";
    console.error(
      debug && e instanceof Error
        ? e.stack
        : `memstate: internal error: ${
          escapeControls(e instanceof Error ? e.message : String(e))
        } ` +
          `(set MEMSTATE_DEBUG=1 for the stack; please report it)`,
    );
    Deno.exit(70);
  }
}
