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
import { callSync } from "../util/_sync.ts";

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
  const called = callSync(() => plugin.verify!(region), "verify");
  if ("problem" in called) return [`${where} ${called.problem}`];
  const lines = called.value;
  if (!Array.isArray(lines)) {
    return [`${where} returned ${lines === null ? "null" : typeof lines}, not a list of lines`];
  }
  return lines.map(String);
}
