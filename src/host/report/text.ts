/**
 * The text report: the same facts as the JSON report, laid out for a terminal.
 *
 * @module
 */

import { formatSize } from "../../util/bytes.ts";
import { formatMicros, timedSummary } from "./latency.ts";
import { positionUnit, type Report } from "./report.ts";

/** Renders `report` as text lines. */
export function renderTextReport(report: Report): string {
  const out: string[] = [];
  const c = report.conversions;
  out.push(`memstate: ${report.name} (${report.source})`);
  out.push(`vmm ${report.vmm}, kernel ${report.kernel}, iommu ${report.iommu}`);
  out.push(
    `backend ${report.backend}, store ${report.store}, input ${report.input}, ` +
      `${report.events} events in ${report.elapsedMs.toFixed(1)} ms ` +
      `(${report.conversionsPerSecond.toLocaleString("en-US")} conversions/s)`,
  );
  if (report.realParts) {
    const parts = Object.entries(report.realParts)
      .map(([k, v]) => `${k} ${v ? "real" : "simulated"}`).join(", ");
    out.push(`real hardware: ${parts}`);
  }
  const t = report.trace;
  if (t) {
    const unit = t.unit === "record" ? "records" : "lines";
    out.push(
      `trace: ${t.format}${t.compressed ? " (gzip)" : ""}, ${t.lines.toLocaleString("en-US")} ` +
        `${unit}: ${t.events.toLocaleString("en-US")} events, ${t.memslots} memslots, ` +
        `${t.other.toLocaleString("en-US")} other, ${t.blank} blank, ${t.unreadable} unreadable`,
    );
  }
  const map = report.regionsFromTrace;
  if (map) {
    const where = positionUnit(report);
    out.push(
      `regions from the trace (kvm_set_user_memory): ${
        map.regions.map((r) =>
          `${r.name} [0x${r.base.toString(16)}, 0x${(r.base + r.size).toString(16)}) ` +
          `${formatSize(r.size)} (${where} ${r.line})`
        ).join(", ")
      }`,
    );
    for (const s of map.skipped) {
      out.push(
        `  skipped: slot ${s.slot} of address space ${s.as} at 0x${s.gpa.toString(16)}, ` +
          `${formatSize(s.size)} (${where} ${s.line}): ${s.reason}`,
      );
    }
  }
  for (const n of report.notices) out.push(`notice: ${n}`);
  for (const w of report.warnings) out.push(`warning (accepted): ${w}`);
  out.push("");
  out.push(
    `conversions: ${c.requested} requested, ${c.applied} applied, ${c.noop} no-op, ` +
      `${c.ignored} ignored, ${c.failed} failed, ${c.rejected} rejected`,
  );
  const lat = report.latency;
  if (lat && lat.count > 0) {
    out.push(
      `conversion latency: p50 ${formatMicros(lat.p50Us)}, p99 ${formatMicros(lat.p99Us)}, ` +
        `max ${formatMicros(lat.maxUs)} (mean ${formatMicros(lat.meanUs)}, ${timedSummary(lat)})`,
    );
  }
  const r = report.requests;
  if (r.ACK + r.NACK + r.BUSY + r.ERROR > 0) {
    out.push(`virtio-mem requests: ${r.ACK} ACK, ${r.NACK} NACK, ${r.BUSY} BUSY, ${r.ERROR} ERROR`);
  }
  if (report.hotplug > 0) out.push(`device hot-plug events: ${report.hotplug}`);
  out.push("");
  out.push(table(
    [
      "region",
      "size",
      "extents",
      "store",
      "QEMU bitmaps",
      "store/bitmaps",
      "shared",
      "private",
      "plugged",
    ],
    report.regions.map((g) => [
      g.name,
      formatSize(g.size),
      g.extents.toLocaleString("en-US"),
      formatSize(g.storeBytes),
      formatSize(g.bitmapBytes),
      `${((100 * g.storeBytes) / g.bitmapBytes).toPrecision(3)}%`,
      formatSize(g.sharedBytes),
      formatSize(g.privateBytes),
      formatSize(g.pluggedBytes),
    ]),
  ));
  out.push("");
  out.push(table(
    [
      "plugin",
      "kind",
      "mappings",
      "peak",
      "limit",
      "IO page tables",
      "mapped",
      "failures",
      "calls",
    ],
    report.plugins.map((p) => [
      p.name,
      p.kind,
      p.mappings.toLocaleString("en-US"),
      p.peakMappings.toLocaleString("en-US"),
      p.mappingLimit === undefined
        ? "-"
        : `${p.mappingLimit.toLocaleString("en-US")} (peak ${
          ((100 * p.peakMappings) / Math.max(1, p.mappingLimit)).toPrecision(3)
        }%)`,
      p.tableBytes === undefined
        ? "-"
        : `${formatSize(p.tableBytes)} (peak ${formatSize(p.peakTableBytes ?? p.tableBytes)})`,
      formatSize(p.mappedBytes),
      String(p.failures),
      Object.entries(p.calls).map(([k, v]) => `${k} ${v}`).join(", "),
    ]),
  ));
  for (const p of report.plugins) {
    for (const w of p.warnings ?? []) out.push(`warning (${p.name}): ${w}`);
  }
  out.push("");
  const inv = report.invariants;
  out.push(
    `invariants: ${inv.checked} checked, ${inv.violations.length} violation${
      inv.violations.length === 1 ? "" : "s"
    }`,
  );
  for (const v of inv.violations) out.push(`  violation: ${v}`);
  const where = positionUnit(report);
  const total = report.errors.length + (report.errorsOmitted ?? 0);
  if (total > 0) {
    out.push(`errors: ${total}`);
    for (const e of report.errors.slice(0, 20)) out.push(`  ${where} ${e.line}: ${e.message}`);
    if (total > 20) {
      out.push(
        `  ... ${total - 20} more (${
          report.errorsOmitted ? `the first ${report.errors.length} in --json` : "see --json"
        })`,
      );
    }
  }
  if (report.stoppedAt) {
    out.push(`stopped at ${where} ${report.stoppedAt.line}: ${report.stoppedAt.message}`);
  }
  if (report.interrupted) out.push("interrupted: the report covers the events applied until then");
  return out.join("\n");
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]))).join("  ");
  return [line(head), ...rows.map(line)].join("\n");
}
