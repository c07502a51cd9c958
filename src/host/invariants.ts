/**
 * The invariants checked after a run: every region's store is well formed
 * (maximal runs), and every plugin's hardware agrees with its regions' store
 * — no IOMMU mapping of a page that is not plugged-and-shared, KVM attributes
 * equal to the store, backing punched where it must be (each plugin's
 * `verify`; one that throws is a violation too, naming the plugin).
 *
 * @module
 */

import type { Region } from "../bus/region.ts";
import type { Plugin } from "../plugins/plugin.ts";
import { ignoreRejection, isThenable } from "../util/_sync.ts";

/** The outcome of an invariant check. */
export interface InvariantReport {
  /** Number of checks made (one per region store, one per plugin and region). */
  checked: number;
  /** One line per violation; empty when everything agrees. */
  violations: string[];
}

/** Checks `regions` and every plugin that can verify itself against them. */
export function checkInvariants(
  regions: readonly Region[],
  plugins: readonly Plugin[],
): InvariantReport {
  const report: InvariantReport = { checked: 0, violations: [] };
  for (const region of regions) {
    report.checked++;
    let previous: number | undefined;
    let runs = 0;
    for (const run of region.store.runs()) {
      if (run.state === previous) {
        report.violations.push(
          `region ${region.name}: two neighbouring runs share state ${run.state} at page ${run.start}`,
        );
      }
      previous = run.state;
      runs++;
    }
    if (runs !== region.store.runCount) {
      report.violations.push(
        `region ${region.name}: runCount ${region.store.runCount} but ${runs} runs`,
      );
    }
    for (const plugin of plugins) {
      if (!plugin.verify) continue;
      report.checked++;
      report.violations.push(...verifyLines(plugin, region));
    }
  }
  return report;
}

/**
 * What `plugin.verify(region)` found. A verify that throws, or returns a
 * promise or anything but a list, cannot say the hardware agrees: that is one
 * violation naming the plugin, the region and the error (a plugin of the
 * user's own is the user's code, not memstate's).
 */
function verifyLines(plugin: Plugin, region: Region): string[] {
  const where = `plugin ${plugin.name}: verify on region ${region.name}`;
  let lines: unknown;
  try {
    lines = plugin.verify!(region);
  } catch (e) {
    return [`${where} threw: ${thrownLine(e)}`];
  }
  if (isThenable(lines)) {
    ignoreRejection(lines);
    return [`${where} returned a Promise; verify must be synchronous (memstate does not await it)`];
  }
  if (!Array.isArray(lines)) {
    return [`${where} returned ${lines === null ? "null" : typeof lines}, not a list of lines`];
  }
  return lines.map(String);
}

/** What a plugin's hook threw, in one line: its message's first line, at most 200 characters. */
export function thrownLine(e: unknown): string {
  const text = e instanceof Error ? e.message || e.name : String(e);
  const line = text.split("\n").find((l) => l.trim() !== "") ?? text;
  return line.length > 200 ? line.slice(0, 200) + "..." : line;
}
