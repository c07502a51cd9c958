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
import { type HostEvent, type Workload, type WorkloadContext, WorkloadError } from "./workload.ts";
import { sizeOrProblem } from "../sizes.ts";
import { excerptJson } from "../../util/text.ts";

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

/** Where parameters were written: a path prefix, or the path of each parameter. */
export type ParamField = string | ((param: string) => string);

function fieldOf(field: ParamField): (param: string) => string {
  return typeof field === "string" ? (param) => `${field}.${param}` : field;
}

/** The workload called `name`; throws naming the known ones when there is none. */
export function workloadByName(name: string): Workload {
  if (!Object.hasOwn(WORKLOADS, name)) {
    throw new WorkloadError(
      `unknown workload ${JSON.stringify(name)} (known: ${WORKLOAD_NAMES.join(", ")})`,
    );
  }
  return WORKLOADS[name as WorkloadName];
}

/**
 * Checks `params` for workload `name` and fills the defaults.
 *
 * Every parameter is a non-negative integer; a byte-size parameter (such as
 * `swiotlbBytes`) may also be written as a size string (`"64MiB"`), as sizes
 * are in configuration files. An unknown parameter or a bad value throws a
 * {@link WorkloadParamsError} that names `field.param` and lists the
 * parameters the workload knows; every problem is reported at once.
 *
 * @param name the workload
 * @param params the parameters as written in the configuration
 * @param field where they were written, for messages: a prefix
 *   (`"workload.params"` gives `workload.params.steps`) or the path of each
 * @returns every parameter of the workload, given or default
 */
export function checkParams(
  name: WorkloadName,
  params: Record<string, unknown>,
  field: ParamField = "workload.params",
): Record<string, number> {
  const workload = workloadByName(name);
  const at = fieldOf(field);
  const known = Object.entries(workload.params)
    .map(([key, p]) => `${key} (default ${p.default})`)
    .join(", ");
  const issues: ConfigIssue[] = [];
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(params)) {
    const spec = Object.hasOwn(workload.params, key) ? workload.params[key] : undefined;
    if (spec === undefined) {
      issues.push({
        path: at(key),
        message: `unknown parameter of workload "${name}" (known: ${known || "none"})`,
      });
      continue;
    }
    if (spec.unit === "bytes") {
      const size = sizeOrProblem(value);
      if (typeof size === "string") {
        issues.push({ path: at(key), message: `${size} (a byte size)` });
      } else out[key] = size.bytes;
    } else if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
      issues.push({
        path: at(key),
        message: `must be a non-negative integer, got ${excerptJson(value)} ` +
          `(parameters of workload "${name}": ${known})`,
      });
    } else out[key] = value;
  }
  if (issues.length > 0) throw new WorkloadParamsError(issues);
  for (const [key, p] of Object.entries(workload.params)) {
    if (!Object.hasOwn(out, key)) out[key] = p.default;
  }
  return out;
}

/**
 * Checks the parameters given explicitly (`given`, a subset of
 * `ctx.params`) against the host: each of them within what the host allows
 * (a SWIOTLB pool no larger than the region it goes in, of whole pages; a DMA
 * window of at least a page). Defaults are fitted to the host silently; a
 * value a person asked for is not.
 *
 * @throws {WorkloadParamsError} naming every parameter out of range, its
 *   limit and why
 * @throws {WorkloadError} when the workload cannot run on the host at all
 */
export function checkParamLimits(
  name: WorkloadName,
  ctx: WorkloadContext,
  given: Iterable<string>,
  field: ParamField = "workload.params",
): void {
  const at = fieldOf(field);
  const limits = workloadByName(name).limits?.(ctx) ?? [];
  const asked = new Set(given);
  const issues: ConfigIssue[] = [];
  for (const limit of limits) {
    const value = ctx.params[limit.param];
    if (!asked.has(limit.param)) continue;
    const problem = value > limit.max
      ? `must be at most ${limit.max}: ${limit.why}`
      : limit.min !== undefined && value < limit.min.value
      ? `must be at least ${limit.min.value}: ${limit.min.why}`
      : limit.multipleOf !== undefined && value % limit.multipleOf.value !== 0
      ? `must be a multiple of ${limit.multipleOf.value}: ${limit.multipleOf.why}`
      : undefined;
    if (problem !== undefined) {
      issues.push({ path: at(limit.param), message: `${problem}; got ${value}` });
    }
  }
  if (issues.length > 0) throw new WorkloadParamsError(issues);
}

/**
 * The most events a generated workload may make: 10^8, minutes of a simulated
 * host's work at a few microseconds per event (the end-to-end rows of
 * `bench/e2e_workloads.ts` take 2-9 µs per conversion). A count beyond it is a
 * typo far more often than a plan (`buffers=1000000000000` would run for
 * weeks); a longer run is a trace replay, which has no such bound.
 */
export const MAX_WORKLOAD_EVENTS = 100_000_000;

/**
 * Throws a {@link WorkloadError} when a run of workload `name` would make
 * `events` events, more than {@link MAX_WORKLOAD_EVENTS}; `asked` names the
 * parameters given (`--param count = 1000000000000`), for the message. A
 * session checks its workload so before the first event; `generateWorkload`
 * itself makes what it is asked.
 */
export function checkWorkloadEvents(name: string, events: number, asked: string[]): void {
  if (events <= MAX_WORKLOAD_EVENTS) return;
  const fix = asked.length === 0
    ? "give it smaller parameters, or replay a trace (--trace)"
    : `lower ${asked.length === 1 ? "it" : "them"} (${asked.join(", ")}), or replay a trace ` +
      "(--trace)";
  throw new WorkloadError(
    `workload "${name}" would make ${events.toLocaleString("en-US")} events, more than the ` +
      `${MAX_WORKLOAD_EVENTS.toLocaleString("en-US")} a generated workload may: ${fix}`,
  );
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
