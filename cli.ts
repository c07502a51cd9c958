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

// @ts-types="@types/cli-progress"
import cliProgress from "cli-progress";
import { parseArgs } from "node:util";
import { ConfigError } from "./src/host/config/errors.ts";
import { loadHostConfig } from "./src/host/config/load.ts";
import { WORKLOAD_NAMES, type WorkloadName } from "./src/host/config/schema.ts";
import type { Report } from "./src/host/report/report.ts";
import { renderTextReport } from "./src/host/report/text.ts";
import { outputPathProblem } from "./src/host/report/output_path.ts";
import { runSession, type SessionOptions } from "./src/host/session.ts";
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
  memstate compare CONFIG [options]   run the same input with both stores and both DMA plugins
  memstate --help | COMMAND --help

exit status: 0 ok, 1 the run found problems (invariant violations, --strict stop), 2 bad input`;

const RUN_HELP = `memstate run CONFIG [options]

Builds the host CONFIG describes (regions, KVM, type1 / iommufd devices, virtio-mem), runs its
workload or a trace, checks invariants and prints a report.

options:
  --trace FILE          replay a QEMU trace log (kvm_convert_memory lines) or JSON lines
  --workload NAME       run a named workload: ${WORKLOAD_NAMES.join(", ")}
  --param KEY=VALUE     a workload parameter (repeatable)
  --seed N              workload seed (default: the configuration's, else 1)
  --store KIND          range-tree (default) or bitmap, for every region
  --json                print the report as one JSON object
  --svg FILE            write the regions' state map as SVG
  --html FILE           write the interactive, self-contained HTML report (address space,
                        density, zoom, timelines, latency)
  --strict              stop at the first bad trace line or rejected event
  --continue-on-capacity-error
                        start even if a type1 device may run out of DMA entries`;

const COMPARE_HELP = `memstate compare CONFIG [options]

Runs the same input with the range-tree and bitmap stores and, when the host has DMA devices,
with type1 and with iommufd (cut_mapping), and prints time, memory and mapping ratios.

options: --trace, --workload, --param, --seed, --strict, --json, --continue-on-capacity-error
(as for run)`;

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
        json: { type: "boolean" },
        svg: { type: "string" },
        html: { type: "string" },
        strict: { type: "boolean" },
        "continue-on-capacity-error": { type: "boolean" },
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
  try {
    options = sessionOptions(values);
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
      : await compare(config, options, values.json ?? false, io);
  } catch (e) {
    if (
      e instanceof ConfigError || e instanceof CapacityError || e instanceof Deno.errors.NotFound
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
  json?: boolean;
  svg?: string;
  html?: string;
  strict?: boolean;
  "continue-on-capacity-error"?: boolean;
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
  return {
    trace: v.trace,
    workload: v.workload as WorkloadName | undefined,
    params,
    seed,
    store: v.store as SessionOptions["store"],
    strict: v.strict,
    continueOnCapacityError: v["continue-on-capacity-error"],
  };
}

async function run(
  config: Awaited<ReturnType<typeof loadHostConfig>>,
  options: SessionOptions,
  values: Values,
  io: CliIo,
): Promise<number> {
  const progress = progressBar(io);
  let result;
  try {
    result = await runSession(config, { ...options, onProgress: progress?.update });
  } finally {
    progress?.stop();
  }
  const { report } = result;
  io.out(values.json ? JSON.stringify(report, null, 2) : renderTextReport(report));
  if (values.svg) {
    await Deno.writeTextFile(values.svg, result.svg());
    if (!values.json) io.out(`state map written to ${values.svg}`);
  }
  if (values.html) {
    await Deno.writeTextFile(values.html, result.html());
    if (!values.json) io.out(`HTML report written to ${values.html}`);
  }
  return report.invariants.violations.length > 0 || report.stoppedAt ? 1 : 0;
}

async function compare(
  config: Awaited<ReturnType<typeof loadHostConfig>>,
  options: SessionOptions,
  json: boolean,
  io: CliIo,
): Promise<number> {
  const dmaKinds = config.devices.some((d) => d.type !== "virtio-mem")
    ? (["type1", "iommufd"] as const)
    : [undefined];
  const rows: { variant: string; report: Report }[] = [];
  for (const store of ["range-tree", "bitmap"] as const) {
    for (const dmaKind of dmaKinds) {
      const variant = dmaKind ? `${store} + ${dmaKind}` : store;
      const progress = progressBar(io, variant);
      try {
        const { report } = await runSession(config, {
          ...options,
          store,
          dmaKind,
          continueOnCapacityError: true, // comparisons show what would run out
          onProgress: progress?.update,
        });
        rows.push({ variant, report });
      } finally {
        progress?.stop();
      }
    }
  }
  const base = rows.find((r) => r.variant.startsWith("bitmap"))!.report;
  const sum = (r: Report, f: (g: Report["regions"][number]) => number) =>
    r.regions.reduce((n, g) => n + f(g), 0);
  const dma = (r: Report) =>
    r.plugins.filter((p) => p.kind === "vfio-type1" || p.kind === "iommufd");
  const table = rows.map(({ variant, report }) => ({
    variant,
    elapsedMs: report.elapsedMs,
    timeVsBitmap: report.elapsedMs / base.elapsedMs,
    storeBytes: sum(report, (g) => g.storeBytes),
    bytesVsBitmap: sum(report, (g) => g.storeBytes) / sum(base, (g) => g.storeBytes),
    extents: sum(report, (g) => g.extents),
    mappings: dma(report).reduce((n, p) => n + p.mappings, 0),
    peakMappings: dma(report).reduce((n, p) => n + p.peakMappings, 0),
    failed: report.conversions.failed,
    violations: report.invariants.violations.length,
  }));
  if (json) {
    io.out(JSON.stringify(table, null, 2));
  } else {
    io.out(`memstate compare: ${config.name}, input ${rows[0].report.input}`);
    const head = [
      "variant",
      "time",
      "x bitmap",
      "store",
      "x bitmap",
      "extents",
      "mappings",
      "peak",
      "failed",
      "violations",
    ];
    const body = table.map((t) => [
      t.variant,
      `${t.elapsedMs.toFixed(1)} ms`,
      t.timeVsBitmap.toFixed(2),
      formatSize(t.storeBytes),
      t.bytesVsBitmap.toPrecision(3),
      t.extents.toLocaleString("en-US"),
      t.mappings.toLocaleString("en-US"),
      t.peakMappings.toLocaleString("en-US"),
      String(t.failed),
      String(t.violations),
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
    for (const r of [head, ...body]) {
      io.out(r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
    }
  }
  return table.some((t) => t.violations > 0) ? 1 : 0;
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
