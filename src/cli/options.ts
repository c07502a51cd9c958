/**
 * The command line's options: parsing `run` and `compare` arguments into the
 * session options and the comparison axes, with one message per mistake.
 *
 * @module
 */

import { WORKLOAD_NAMES, type WorkloadName } from "../host/config/schema.ts";
import type { CompareOptions } from "../host/compare.ts";
import type { SessionOptions } from "../host/session.ts";
import { IOMMU_SETTINGS } from "../settings/iommu.ts";
import { KERNEL_SETTINGS } from "../settings/kernel.ts";
import { VMM_POLICIES } from "../settings/vmm.ts";
import { MAX_SEED } from "../util/prng.ts";
import { excerpt } from "../util/text.ts";
import { UsageError } from "./preflight.ts";

/** The options parseArgs reads for run and compare. */
export const OPTIONS = {
  help: { type: "boolean", short: "h" },
  trace: { type: "string" },
  workload: { type: "string" },
  param: { type: "string", multiple: true },
  seed: { type: "string" },
  store: { type: "string" },
  vmm: { type: "string" },
  kernel: { type: "string" },
  iommu: { type: "string" },
  reps: { type: "string" },
  json: { type: "boolean" },
  svg: { type: "string" },
  html: { type: "string" },
  strict: { type: "boolean" },
  "continue-on-capacity-error": { type: "boolean" },
  "save-state": { type: "string" },
  "load-state": { type: "string" },
  follow: { type: "boolean" },
  plugin: { type: "string", multiple: true },
} as const;

/**
 * Why the command line gives an option more than once, if it does: parseArgs keeps the last
 * value of an option that is not `multiple` (`--svg a.svg --svg b.svg` would write only
 * b.svg), so a repeated one is refused, flags too. `tokens` are parseArgs' (`tokens: true`).
 */
export function repeatedOption(
  tokens: readonly { kind: string; name?: string }[],
): string | undefined {
  const options: Readonly<Record<string, { type: string; multiple?: boolean }>> = OPTIONS;
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== "option" || token.name === undefined) continue;
    if (options[token.name]?.multiple) continue;
    if (seen.has(token.name)) {
      return `--${token.name}: given twice; only --param and --plugin may repeat`;
    }
    seen.add(token.name);
  }
  return undefined;
}

/** The parsed option values. */
export type Values = {
  trace?: string;
  workload?: string;
  param?: string[];
  seed?: string;
  store?: string;
  vmm?: string;
  kernel?: string;
  iommu?: string;
  reps?: string;
  json?: boolean;
  svg?: string;
  html?: string;
  strict?: boolean;
  "continue-on-capacity-error"?: boolean;
  "save-state"?: string;
  "load-state"?: string;
  follow?: boolean;
  plugin?: string[];
};

/** The session options the values ask for; throws naming the option on a mistake. */
export function sessionOptions(v: Values): SessionOptions {
  if (v.trace !== undefined && v.workload !== undefined) {
    throw new UsageError("give --trace or --workload, not both");
  }
  if (v.workload !== undefined && !(WORKLOAD_NAMES as readonly string[]).includes(v.workload)) {
    throw new UsageError(
      `--workload: unknown workload ${excerpt(v.workload)}; known: ${WORKLOAD_NAMES.join(", ")}`,
    );
  }
  if (v.store !== undefined && v.store !== "range-tree" && v.store !== "bitmap") {
    throw new UsageError(`--store: must be range-tree or bitmap, got ${excerpt(v.store)}`);
  }
  let seed: number | undefined;
  if (v.seed !== undefined) {
    // The generator is seeded with 32 bits (src/util/prng.ts), as a config's `seed` is bounded
    // (schema.ts): a larger seed would silently run as another one.
    seed = /^[0-9]+$/.test(v.seed) ? Number(v.seed) : NaN;
    if (!(seed <= MAX_SEED)) {
      throw new UsageError(
        `--seed: must be a decimal integer from 0 to ${MAX_SEED}, got ${excerpt(v.seed)}`,
      );
    }
  }
  if (v.trace === "") {
    throw new UsageError('--trace: the path is empty; give a file, or "-" for standard input');
  }
  if (v.plugin?.includes("")) {
    throw new UsageError("--plugin: the path is empty; give a plugin module's file or URL");
  }
  const params: Record<string, unknown> = {};
  for (const p of v.param ?? []) {
    const m = /^([A-Za-z][\w-]*)=(.+)$/s.exec(p);
    if (!m) throw new UsageError(`--param: must be KEY=VALUE, got ${excerpt(p)}`);
    const [, key, value] = m;
    // The last of two would win silently.
    if (Object.hasOwn(params, key)) {
      throw new UsageError(`--param ${key}: given twice; give each parameter once`);
    }
    // Numbers stay numbers; anything else (a size like 64MiB) is the workload's to read.
    const n = value.trim() === "" ? NaN : Number(value);
    // A whole number past 2^53 would be read as a neighbour (9007199254740993 as ...992).
    if (/^\s*\d+\s*$/.test(value) && !Number.isSafeInteger(n)) {
      throw new UsageError(
        `--param ${key}: must be at most ${Number.MAX_SAFE_INTEGER} (2^53 - 1), got ` +
          excerpt(value.trim()),
      );
    }
    params[key] = Number.isFinite(n) ? n : value;
  }
  const vmm = v.vmm !== undefined && !v.vmm.includes(",")
    ? oneOf("--vmm", v.vmm, VMM_POLICIES)
    : undefined;
  const kernel = v.kernel !== undefined && !v.kernel.includes(",")
    ? oneOf("--kernel", v.kernel, KERNEL_SETTINGS)
    : undefined;
  const iommu = v.iommu !== undefined && !v.iommu.includes(",")
    ? oneOf("--iommu", v.iommu, IOMMU_SETTINGS)
    : undefined;
  if (v.follow && v.trace === undefined) {
    throw new UsageError("--follow: follows a trace; give --trace FILE too");
  }
  return {
    trace: v.trace,
    follow: v.follow,
    workload: v.workload as WorkloadName | undefined,
    params,
    seed,
    store: v.store as SessionOptions["store"],
    strict: v.strict,
    continueOnCapacityError: v["continue-on-capacity-error"],
    ...(v.plugin ? { plugins: v.plugin } : {}),
    ...(vmm ? { vmm } : {}),
    ...(kernel ? { kernel } : {}),
    ...(iommu ? { iommu } : {}),
  };
}

/** `value` if it is one of `allowed`, else an error naming the option and the choices. */
function oneOf<T extends string>(option: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(
      `${option}: must be one of ${allowed.join(", ")}, got ${excerpt(value)}`,
    );
  }
  return value as T;
}

/** A pair `A,B` of distinct values of `allowed`. */
function pairOf<T extends string>(option: string, value: string, allowed: readonly T[]): [T, T] {
  const parts = value.split(",");
  if (parts.length !== 2 || parts[0] === parts[1]) {
    throw new UsageError(
      `${option}: compare takes two different values A,B, got ${excerpt(value)}`,
    );
  }
  return [oneOf(option, parts[0], allowed), oneOf(option, parts[1], allowed)];
}

/** Options `run` refuses: the ones only compare uses. */
export function runOnly(v: Values): void {
  if (v.reps !== undefined) throw new UsageError("--reps: is an option of compare, not of run");
  for (
    const [name, value] of [["--vmm", v.vmm], ["--kernel", v.kernel], ["--iommu", v.iommu]] as const
  ) {
    if (value?.includes(",")) {
      throw new UsageError(
        `${name}: run takes one value; compare takes A,B, got ${excerpt(value)}`,
      );
    }
  }
}

/** The questions compare answers, from its options; refuses options it does not use. */
export function compareAxes(v: Values, options: SessionOptions): CompareOptions {
  if (v.store !== undefined) {
    throw new UsageError("--store: compare runs both stores itself; it does not use --store");
  }
  if (v.svg !== undefined) {
    throw new UsageError("--svg: compare writes no state map; use run --svg for one variant");
  }
  if (v.html !== undefined) {
    throw new UsageError("--html: compare writes no HTML report; use run --html for one variant");
  }
  if (v.follow) throw new UsageError("--follow: compare reads its input several times; use run");
  if (v.trace === "-") {
    throw new UsageError("--trace -: compare reads its input several times; give a file");
  }
  const axes: CompareOptions = {};
  if (v.vmm?.includes(",")) axes.vmm = pairOf("--vmm", v.vmm, VMM_POLICIES);
  if (v.kernel?.includes(",")) axes.kernel = pairOf("--kernel", v.kernel, KERNEL_SETTINGS);
  if (v.iommu?.includes(",")) axes.iommu = pairOf("--iommu", v.iommu, IOMMU_SETTINGS);
  const pairs = (["vmm", "kernel", "iommu"] as const).filter((k) => axes[k]);
  if (pairs.length > 1) {
    throw new UsageError(
      `${pairs.map((k) => `--${k} A,B`).join(" and ")}: compare one of them at a time`,
    );
  }
  if (v.reps !== undefined) {
    const reps = /^[0-9]+$/.test(v.reps) ? Number(v.reps) : NaN;
    if (!(reps >= 1 && reps <= 100)) {
      throw new UsageError(`--reps: must be an integer in [1, 100], got ${excerpt(v.reps)}`);
    }
    axes.reps = reps;
  }
  void options;
  return axes;
}
