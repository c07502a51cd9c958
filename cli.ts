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

import cliProgress from "npm:cli-progress@^3.12.0";
import { parseArgs } from "node:util";
import { ConfigError } from "./src/host/config/errors.ts";
import { loadHostConfig } from "./src/host/config/load.ts";
import { WORKLOAD_NAMES, type WorkloadName } from "./src/host/config/schema.ts";
import { renderTextReport } from "./src/host/report/text.ts";
import { outputPathProblem } from "./src/host/report/output_path.ts";
import { runSession, type SessionOptions } from "./src/host/session.ts";
import { compare, type CompareOptions } from "./src/host/compare.ts";
import { KERNEL_SETTINGS } from "./src/settings/kernel.ts";
import { VMM_POLICIES } from "./src/settings/vmm.ts";
import { saveHostState } from "./src/host/state_file.ts";
import { SnapshotError } from "./src/bus/snapshot_format.ts";
import { CapacityError } from "./src/plugins/plugin.ts";
import { formatSize } from "./src/util/bytes.ts";

/** Where the CLI writes; tests capture it. */
export interface CliIo {
  /** Standard output. */
  out(text: string): void;
  /** Standard error. */
  err(text: string): void;
  /** True when progress bars may be drawn on standard error. */
  interactive: boolean;
}

const HELP = `memstate: track and propagate a confidential VM's shared / private / plugged memory

usage:
  memstate run CONFIG [options]       run a host configuration and print a report
  memstate compare CONFIG [options]   run the same input on host variants, one question each
  memstate --help | COMMAND --help

exit status: 0 ok, 1 the run found problems (invariant violations, a failed conversion,
a --strict stop), 2 bad input`;

const RUN_HELP = `memstate run CONFIG [options]

Builds the host CONFIG describes (regions, KVM, type1 / iommufd devices, virtio-mem), runs its
workload or a trace, checks invariants and prints a report.

options:
  --trace FILE          replay a QEMU trace log (kvm_convert_memory lines) or JSON lines
  --workload NAME       run a named workload: ${WORKLOAD_NAMES.join(", ")}
  --param KEY=VALUE     a workload parameter (repeatable)
  --seed N              workload seed (default: the configuration's, else 1)
  --store KIND          range-tree (default) or bitmap, for every region
  --vmm POLICY          ${VMM_POLICIES.join(", ")} (default: the configuration's, else memstate)
  --kernel KERNEL       ${
  KERNEL_SETTINGS.join(", ")
} (default: the configuration's, else linux-6.18)
  --json                print the report as one JSON object
  --svg FILE            write the regions' state map as SVG
  --html FILE           write the interactive, self-contained HTML report (address space,
                        density, zoom, timelines, latency)
  --strict              stop at the first bad trace line or rejected event
  --load-state FILE     start from the state saved in FILE (before the first event)
  --save-state FILE     save every region's state to FILE after the run (resume with --load-state)
  --continue-on-capacity-error
                        start even if a type1 device may run out of DMA entries`;

const COMPARE_HELP = `memstate compare CONFIG [options]

Runs the same input on host variants and answers one question each, against its own baseline:
  (default)             store: bitmap against range tree; DMA backend: type1 against iommufd
  --vmm A,B             policy: the same host under two VMM policies (${VMM_POLICIES.join(", ")})
  --kernel A,B          kernel: the same host on two kernels (${KERNEL_SETTINGS.join(", ")})
A single --vmm or --kernel value sets it for every variant instead. Timings are the min and
median of --reps runs (default 3). type1 runs at its configured limit; a variant that would not
start says so and what it would need.

options: --trace, --workload, --param, --seed, --strict, --json, --continue-on-capacity-error
(as for run), --vmm, --kernel, --reps N`;

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
      options: {
        help: { type: "boolean", short: "h" },
        trace: { type: "string" },
        workload: { type: "string" },
        param: { type: "string", multiple: true },
        seed: { type: "string" },
        store: { type: "string" },
        vmm: { type: "string" },
        kernel: { type: "string" },
        reps: { type: "string" },
        json: { type: "boolean" },
        svg: { type: "string" },
        html: { type: "string" },
        strict: { type: "boolean" },
        "continue-on-capacity-error": { type: "boolean" },
        "save-state": { type: "string" },
        "load-state": { type: "string" },
      },
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

type Values = {
  trace?: string;
  workload?: string;
  param?: string[];
  seed?: string;
  store?: string;
  vmm?: string;
  kernel?: string;
  reps?: string;
  json?: boolean;
  svg?: string;
  html?: string;
  strict?: boolean;
  "continue-on-capacity-error"?: boolean;
  "save-state"?: string;
  "load-state"?: string;
};

function sessionOptions(v: Values): SessionOptions {
  if (v.trace !== undefined && v.workload !== undefined) {
    throw new Error("give --trace or --workload, not both");
  }
  if (v.workload !== undefined && !(WORKLOAD_NAMES as readonly string[]).includes(v.workload)) {
    throw new Error(
      `--workload: unknown workload ${JSON.stringify(v.workload)}; known: ${
        WORKLOAD_NAMES.join(", ")
      }`,
    );
  }
  if (v.store !== undefined && v.store !== "range-tree" && v.store !== "bitmap") {
    throw new Error(`--store: must be range-tree or bitmap, got ${JSON.stringify(v.store)}`);
  }
  let seed: number | undefined;
  if (v.seed !== undefined) {
    seed = Number(v.seed);
    if (!Number.isInteger(seed) || seed < 0) {
      throw new Error(`--seed: must be a non-negative integer, got ${JSON.stringify(v.seed)}`);
    }
  }
  const params: Record<string, unknown> = {};
  for (const p of v.param ?? []) {
    const m = /^([A-Za-z][\w-]*)=(.+)$/.exec(p);
    if (!m) throw new Error(`--param: must be KEY=VALUE, got ${JSON.stringify(p)}`);
    const n = Number(m[2]);
    params[m[1]] = Number.isFinite(n) ? n : m[2];
  }
  const vmm = v.vmm !== undefined && !v.vmm.includes(",")
    ? oneOf("--vmm", v.vmm, VMM_POLICIES)
    : undefined;
  const kernel = v.kernel !== undefined && !v.kernel.includes(",")
    ? oneOf("--kernel", v.kernel, KERNEL_SETTINGS)
    : undefined;
  return {
    trace: v.trace,
    workload: v.workload as WorkloadName | undefined,
    params,
    seed,
    store: v.store as SessionOptions["store"],
    strict: v.strict,
    continueOnCapacityError: v["continue-on-capacity-error"],
    ...(vmm ? { vmm } : {}),
    ...(kernel ? { kernel } : {}),
  };
}

/** `value` if it is one of `allowed`, else an error naming the option and the choices. */
function oneOf<T extends string>(option: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new Error(
      `${option}: must be one of ${allowed.join(", ")}, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

/** A pair `A,B` of distinct values of `allowed`. */
function pairOf<T extends string>(option: string, value: string, allowed: readonly T[]): [T, T] {
  const parts = value.split(",");
  if (parts.length !== 2 || parts[0] === parts[1]) {
    throw new Error(
      `${option}: compare takes two different values A,B, got ${JSON.stringify(value)}`,
    );
  }
  return [oneOf(option, parts[0], allowed), oneOf(option, parts[1], allowed)];
}

/** Options `run` refuses: the ones only compare uses. */
function runOnly(v: Values): void {
  if (v.reps !== undefined) throw new Error("--reps: is an option of compare, not of run");
  for (const [name, value] of [["--vmm", v.vmm], ["--kernel", v.kernel]] as const) {
    if (value?.includes(",")) {
      throw new Error(
        `${name}: run takes one value; compare takes A,B, got ${JSON.stringify(value)}`,
      );
    }
  }
}

/** The questions compare answers, from its options; refuses options it does not use. */
function compareAxes(v: Values, options: SessionOptions): CompareOptions {
  if (v.store !== undefined) {
    throw new Error("--store: compare runs both stores itself; it does not use --store");
  }
  if (v.svg !== undefined) {
    throw new Error("--svg: compare writes no state map; use run --svg for one variant");
  }
  const axes: CompareOptions = {};
  if (v.vmm?.includes(",")) axes.vmm = pairOf("--vmm", v.vmm, VMM_POLICIES);
  if (v.kernel?.includes(",")) axes.kernel = pairOf("--kernel", v.kernel, KERNEL_SETTINGS);
  if (axes.vmm && axes.kernel) {
    throw new Error("--vmm A,B and --kernel A,B: compare one of them at a time");
  }
  if (v.reps !== undefined) {
    const reps = Number(v.reps);
    if (!Number.isInteger(reps) || reps < 1 || reps > 100) {
      throw new Error(`--reps: must be an integer in [1, 100], got ${JSON.stringify(v.reps)}`);
    }
    axes.reps = reps;
  }
  void options;
  return axes;
}

async function run(
  config: Awaited<ReturnType<typeof loadHostConfig>>,
  options: SessionOptions,
  values: Values,
  io: CliIo,
): Promise<number> {
  // Saved state: loaded before the first event, saved after the last (issue 15).
  const loadState = values["load-state"] ? await Deno.readFile(values["load-state"]) : undefined;
  const progress = progressBar(io);
  let result;
  try {
    result = await runSession(config, { ...options, loadState, onProgress: progress?.update });
  } finally {
    progress?.stop();
  }
  const { report } = result;
  io.out(values.json ? JSON.stringify(report, null, 2) : renderTextReport(report));
  if (values["save-state"]) {
    await Deno.writeFile(values["save-state"], saveHostState(result.host));
    if (!values.json) io.out(`state saved to ${values["save-state"]}`);
  }
  if (values.svg) {
    await Deno.writeTextFile(values.svg, result.svg());
    if (!values.json) io.out(`state map written to ${values.svg}`);
  }
  if (values.html) {
    await Deno.writeTextFile(values.html, result.html());
    if (!values.json) io.out(`HTML report written to ${values.html}`);
  }
  return report.invariants.violations.length > 0 || report.stoppedAt ||
      report.conversions.failed > 0
    ? 1
    : 0;
}

async function compareCommand(
  config: Awaited<ReturnType<typeof loadHostConfig>>,
  options: SessionOptions,
  axes: CompareOptions,
  json: boolean,
  io: CliIo,
): Promise<number> {
  let bar: ReturnType<typeof progressBar>;
  const questions = await (async () => {
    try {
      return await compare(config, options, {
        ...axes,
        onVariant: (axis, label) => {
          bar?.stop();
          bar = progressBar(io, `${axis} ${label}`);
          return bar?.update;
        },
      });
    } finally {
      bar?.stop();
    }
  })();
  const variants = questions.flatMap((q) => q.variants);
  const input = variants.find((v) => v.report)?.report?.input ?? "";
  if (json) {
    io.out(JSON.stringify(
      {
        name: config.name,
        input,
        questions: questions.map((q) => ({
          ...q,
          variants: q.variants.map(({ report, ...rest }) => ({
            ...rest,
            ...(report
              ? {
                vmm: report.vmm,
                kernel: report.kernel,
                store: report.store,
                conversions: report.conversions,
                violations: report.invariants.violations.length,
                stoppedAt: report.stoppedAt,
              }
              : {}),
          })),
        })),
      },
      null,
      2,
    ));
  } else {
    io.out(`memstate compare: ${config.name}, input ${input}`);
    for (const q of questions) {
      io.out("");
      io.out(q.title);
      const head = [
        "variant",
        "time min / median",
        "x base",
        "store",
        "extents",
        "mappings",
        "peak",
        "limit",
        "IO tables",
        "calls",
        "failed",
        "violations",
      ];
      const base = q.variants[0];
      const body = q.variants.map((v) => {
        if (!v.report) return [v.label, "would not start (below)", ...Array(10).fill("-")];
        const r = v.report;
        return [
          v.label,
          `${v.minMs!.toFixed(1)} / ${v.medianMs!.toFixed(1)} ms`,
          base.minMs ? (v.minMs! / base.minMs).toFixed(2) : "-",
          formatSize(v.storeBytes!),
          r.regions.reduce((n, g) => n + g.extents, 0).toLocaleString("en-US"),
          v.mappings!.toLocaleString("en-US"),
          v.peakMappings!.toLocaleString("en-US"),
          v.mappingLimit === undefined ? "-" : v.mappingLimit.toLocaleString("en-US"),
          formatSize(v.tableBytes!),
          v.calls!.toLocaleString("en-US"),
          String(r.conversions.failed) + (r.stoppedAt ? " (stopped)" : ""),
          String(r.invariants.violations.length),
        ];
      });
      const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
      for (const r of [head, ...body]) {
        io.out(r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
      }
      for (const v of q.variants) if (v.refused) io.out(`${v.label}: ${v.refused}`);
      io.out(`verdict: ${q.verdict}`);
    }
  }
  const bad = variants.some((v) =>
    v.report !== undefined &&
    (v.report.invariants.violations.length > 0 || v.report.stoppedAt !== undefined ||
      v.report.conversions.failed > 0)
  );
  return bad ? 1 : 0;
}

/** A progress bar on standard error for long interactive runs; undefined otherwise. */
function progressBar(io: CliIo, label = "events"):
  | { update: (done: number, total: number) => void; stop: () => void }
  | undefined {
  if (!io.interactive) return undefined;
  let bar: cliProgress.SingleBar | undefined;
  return {
    update(done, total) {
      if (!bar) {
        if (total < 50_000) return; // short runs finish before a bar helps
        bar = new cliProgress.SingleBar(
          { format: `${label} [{bar}] {percentage}% {value}/{total} eta {eta}s`, hideCursor: true },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, 0);
      }
      bar.update(done);
    },
    stop() {
      bar?.stop();
    },
  };
}

function defaultIo(): CliIo {
  return {
    out: (t) => console.log(t),
    err: (t) => console.error(t),
    interactive: Deno.stderr.isTerminal(),
  };
}

if (import.meta.main) Deno.exit(await main(Deno.args));
