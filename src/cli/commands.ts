/**
 * The two commands: `run` prints one report (and writes the state map and
 * saved state it is asked for); `compare` prints one table per question.
 *
 * @module
 */

import type { CliIo } from "./io.ts";
import type { Values } from "./options.ts";
import { progressBar } from "./progress.ts";
import type { HostConfig } from "../host/config/schema.ts";
import { compare, type CompareOptions } from "../host/compare.ts";
import { renderTextReport } from "../host/report/text.ts";
import { runSession, type SessionOptions } from "../host/session.ts";
import { saveHostState } from "../host/state_file.ts";
import { formatSize } from "../util/bytes.ts";

/** `memstate run`: resolves to the exit status. */
export async function run(
  config: HostConfig,
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
