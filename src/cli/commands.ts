/**
 * The two commands: `run` prints one report (and writes the state map and
 * saved state it is asked for); `compare` prints one table per question.
 *
 * @module
 */

import type { CliIo } from "./io.ts";
import { progressBar } from "./progress.ts";
import type { HostConfig } from "../host/config/schema.ts";
import { compare, type CompareOptions } from "../host/compare.ts";
import type { Report } from "../host/report/report.ts";
import { renderTextReport } from "../host/report/text.ts";
import { runSession, type SessionOptions } from "../host/session.ts";
import { saveHostState } from "../host/state_file.ts";
import { formatSize } from "../util/bytes.ts";
import { displayPath } from "../util/text.ts";
import { type OutputFile, writeOutputs } from "./output_files.ts";

/**
 * The exit status a report asks for: 0 only when every event was applied, a
 * no-op or ignored; 1 when anything went wrong (an unreadable trace line, a
 * rejected or failed conversion, a refused virtio-mem request, a device that
 * failed to attach, a stop, an invariant violation).
 */
export function exitStatus(report: Report): 0 | 1 {
  const c = report.conversions;
  const r = report.requests;
  const bad = report.invariants.violations.length > 0 || report.stoppedAt !== undefined ||
    c.failed > 0 || c.rejected > 0 || report.errors.length > 0 ||
    (report.errorsOmitted ?? 0) > 0 || r.NACK + r.BUSY + r.ERROR > 0;
  return bad ? 1 : 0;
}

/** The exit status of a run interrupted by Ctrl-C (128 + SIGINT), as shells report it. */
export const INTERRUPTED = 130;

/** Where `run` writes its files; checked before the run. */
export interface RunOutputs {
  /** `--svg FILE`. */
  svg?: string;
  /** `--html FILE`. */
  html?: string;
  /** `--save-state FILE`. */
  saveState?: string;
}

/** `memstate run`: resolves to the exit status. */
export async function run(
  config: HostConfig,
  options: SessionOptions,
  outputs: RunOutputs,
  json: boolean,
  io: CliIo,
): Promise<number> {
  const progress = options.trace
    ? progressBar(io, "trace", 8 << 20)
    : progressBar(io, "events", 50_000);
  // Said once the trace is open and the host built: a refused run says only why.
  const onStart = options.follow
    ? () =>
      io.err(
        `memstate run: following ${displayPath(options.trace!)}; Ctrl-C stops and prints the ` +
          `report`,
      )
    : undefined;
  let result;
  try {
    result = await runSession(config, { ...options, onProgress: progress?.update, onStart });
  } finally {
    progress?.stop();
  }
  const { report } = result;
  io.out(json ? JSON.stringify(report, null, 2) : renderTextReport(report));
  // Checked before the run; a write can still fail (a full disk): one line naming the
  // option and the file, exit 2, and every output file left as it was (output_files.ts).
  type Wanted = Omit<OutputFile, "path"> & { path?: string; said: string };
  const wanted: Wanted[] = [{
    option: "--save-state",
    path: outputs.saveState,
    content: () => saveHostState(result.host),
    said: "state saved to",
  }, {
    option: "--svg",
    path: outputs.svg,
    content: () => result.svg(),
    said: "state map written to",
  }, {
    option: "--html",
    path: outputs.html,
    content: () => result.html(),
    said: "HTML report written to",
  }];
  const files = wanted.filter((f): f is Wanted & OutputFile => f.path !== undefined);
  const problem = await writeOutputs(files);
  if (problem !== undefined) {
    io.err(`memstate run: ${problem}`);
    return 2;
  }
  if (!json) { for (const f of files) io.out(`${f.said} ${displayPath(f.path)}`); }
  // Ctrl-C is how a followed log ends; anywhere else it cuts the run short.
  if (report.interrupted && !options.follow) return INTERRUPTED;
  return exitStatus(report);
}

/** `memstate compare`: resolves to the exit status. */
export async function compareCommand(
  config: HostConfig,
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
          bar = progressBar(io, `${axis} ${label}`, options.trace ? 8 << 20 : 50_000);
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
                iommu: report.iommu,
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
        "fullest / limit",
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
          v.mappingLimit === undefined
            ? "-"
            : `${v.containerPeakMappings!.toLocaleString("en-US")} / ${
              v.mappingLimit.toLocaleString("en-US")
            }`,
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
  if (variants.some((v) => v.report?.interrupted)) return INTERRUPTED;
  return variants.some((v) => v.report !== undefined && exitStatus(v.report) === 1) ? 1 : 0;
}
