/**
 * The named workloads, the check of their parameters, and the two calls a
 * runner needs: how many events, and the events.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkParams, generateWorkload } from "./registry.ts";
 * import { Prng } from "../../util/prng.ts";
 *
 * const params = checkParams("dma-scatter", { count: 3 });
 * const events = generateWorkload("dma-scatter", {
 *   regions: [{
 *     name: "ram0", size: 2 ** 30, pageSize: 4096, base: 0,
 *     backing: "separate", initial: "private", store: "range-tree", backingPageSize: 4096,
 *   }],
 *   devices: [],
 *   rng: new Prng(1),
 *   params,
 * });
 * assert.equal([...events].length, 3);
 * ```
 *
 * @module
 */

import type { ConfigIssue } from "../config/errors.ts";
import { WORKLOAD_NAMES, type WorkloadName } from "../config/schema.ts";
import { balloon } from "./balloon.ts";
import { boot } from "./boot.ts";
import { dmaScatter } from "./dma_scatter.ts";
import { hotplug } from "./hotplug.ts";
import { swiotlbChurn } from "./swiotlb_churn.ts";
import type { HostEvent, Workload, WorkloadContext } from "./workload.ts";

/** Every named workload, by name. */
export const WORKLOADS: Record<WorkloadName, Workload> = {
  "boot": boot,
  "swiotlb-churn": swiotlbChurn,
  "dma-scatter": dmaScatter,
  "balloon": balloon,
  "hotplug": hotplug,
};

/**
 * Parameters that do not fit a workload. The message has one line per
 * problem (`path: message`); `issues` holds them for a configuration report.
 */
export class WorkloadParamsError extends Error {
  /** Every problem, each with the field path (like `workload.params.steps`). */
  readonly issues: ConfigIssue[];

  /** Builds the error from its `issues` (at least one). */
  constructor(issues: ConfigIssue[]) {
    super(issues.map((i) => (i.path === "" ? i.message : `${i.path}: ${i.message}`)).join("\n"));
    this.name = "WorkloadParamsError";
    this.issues = issues;
  }
}

/** The workload called `name`; throws naming the known ones when there is none. */
export function workloadByName(name: string): Workload {
  if (!Object.hasOwn(WORKLOADS, name)) {
    throw new Error(
      `unknown workload ${JSON.stringify(name)} (known: ${WORKLOAD_NAMES.join(", ")})`,
    );
  }
  return WORKLOADS[name as WorkloadName];
}

/**
 * Checks `params` for workload `name` and fills the defaults.
 *
 * Every parameter is a non-negative integer. An unknown parameter or a bad
 * value throws a {@link WorkloadParamsError} that names `field.param` and
 * lists the parameters the workload knows; every problem is reported at once.
 *
 * @param name the workload
 * @param params the parameters as written in the configuration
 * @param field where they were written, for messages
 * @returns every parameter of the workload, given or default
 */
export function checkParams(
  name: WorkloadName,
  params: Record<string, unknown>,
  field = "workload.params",
): Record<string, number> {
  const workload = workloadByName(name);
  const known = Object.entries(workload.params)
    .map(([key, p]) => `${key} (default ${p.default})`)
    .join(", ");
  const issues: ConfigIssue[] = [];
  for (const [key, value] of Object.entries(params)) {
    if (!Object.hasOwn(workload.params, key)) {
      issues.push({
        path: `${field}.${key}`,
        message: `unknown parameter of workload "${name}" (known: ${known || "none"})`,
      });
    } else if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
      issues.push({
        path: `${field}.${key}`,
        message: `must be a non-negative integer, got ${JSON.stringify(value) ?? String(value)} ` +
          `(parameters of workload "${name}": ${known})`,
      });
    }
  }
  if (issues.length > 0) throw new WorkloadParamsError(issues);
  const out: Record<string, number> = {};
  for (const [key, p] of Object.entries(workload.params)) {
    out[key] = Object.hasOwn(params, key) ? params[key] as number : p.default;
  }
  return out;
}

/**
 * How many events workload `name` yields for `ctx` (its parameters are
 * checked and completed with defaults first). Draws nothing from `ctx.rng`.
 */
export function estimateWorkload(name: WorkloadName, ctx: WorkloadContext): number {
  return workloadByName(name).estimate({ ...ctx, params: checkParams(name, ctx.params) });
}

/**
 * The events of workload `name` for `ctx`, lazily (its parameters are checked
 * and completed with defaults first). Configuration problems the workload
 * cannot work with (a missing device) throw here, before the first event.
 */
export function generateWorkload(name: WorkloadName, ctx: WorkloadContext): Iterable<HostEvent> {
  return workloadByName(name).generate({ ...ctx, params: checkParams(name, ctx.params) });
}
