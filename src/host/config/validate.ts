/**
 * The rules of a host configuration that relate fields to each other, and the
 * normalization that turns a valid file into a {@link HostConfig}.
 *
 * Every rule runs on whatever parsed, and a rule whose inputs failed to parse
 * is skipped rather than reported again, so each mistake appears once, under
 * the field a person has to change.
 *
 * @module
 */

import { dirname, isAbsolute, join } from "node:path";
import type { ConfigIssue } from "./errors.ts";
import { formatPath } from "./errors.ts";
import { type FieldPath, isPlainObject, parseFields } from "./_fields.ts";
import { type Add, hex, isPowerOfTwo, label, type RegionEntry, span } from "./_rule_kit.ts";
import {
  type BackingKind,
  generatorWorkloadFields,
  type HostConfig,
  kvmFields,
  pluginFields,
  type PluginModuleConfig,
  type RegionConfig,
  regionFields,
  topLevelFields,
  traceWorkloadFields,
  type WorkloadConfig,
} from "./schema.ts";
import { checkDevices, normalizeDevice, parseDevice } from "./validate_devices.ts";
import { settingsProblems } from "./settings_rules.ts";
import { KVM_MAX_MEMSLOTS } from "../../settings/kernel.ts";

/** Smallest page size: the x86-64 base page. */
const MIN_PAGE_SIZE = 4096;
/** x86-64 guests address at most 52 bits of physical memory. */
const GPA_LIMIT = 2 ** 52;

/** The outcome of checking one configuration: a config when `issues` is empty. */
export interface CheckResult {
  /** The normalized configuration, present only when there are no issues. */
  config?: HostConfig;
  /** Every problem found, in file order. */
  issues: ConfigIssue[];
}

/** Checks `json` (the parsed file `file`) against every rule and normalizes it. */
export function checkHostConfig(json: unknown, file: string): CheckResult {
  const issues: ConfigIssue[] = [];
  const top = parseFields(topLevelFields, json, [], issues);
  if (top === undefined) return { issues };
  const add = (path: FieldPath, message: string) =>
    issues.push({ path: formatPath(path), message });

  if (top.regions === "from-trace") {
    return checkFromTrace(json as Record<string, unknown>, file, top, issues);
  }
  const regions = (top.regions ?? []).map((raw, index) => checkRegion(raw, index, issues, add));
  if (regions.length > KVM_MAX_MEMSLOTS) {
    add(
      ["regions"],
      `has ${regions.length} regions, more than KVM's ${KVM_MAX_MEMSLOTS} memslots ` +
        `(KVM_CAP_NR_MEMSLOTS on x86; each region takes one)`,
    );
  }
  const regionNames = checkRegionSet(regions, add);

  const rawDevices = top.devices ?? [];
  const devices = rawDevices.flatMap((raw, index) => {
    const entry = parseDevice(raw, index, issues, add);
    return entry ? [entry] : [];
  });
  checkDevices(devices, regions, regionNames, add);
  const plugins = (top.plugins ?? []).map((raw, index) =>
    checkPlugin(raw, index, file, regions, regionNames, issues, add)
  );

  const kvm = parseFields(
    kvmFields,
    absentAsEmpty((json as Record<string, unknown>).kvm),
    ["kvm"],
    issues,
  );
  const kvmMode = checkKvm(kvm?.mode, regions, add);

  const workload = parseWorkload((json as Record<string, unknown>).workload, file, issues, add);

  if (issues.length > 0) return { issues: inFileOrder(issues, json) };
  // Every field parsed and every rule held: the casts below only drop `?`.
  const store = top.store!;
  const config: HostConfig = {
    source: file,
    regionsFrom: "config",
    name: top.name!,
    ...(top.description !== undefined ? { description: top.description } : {}),
    backend: top.backend!,
    store,
    regions: regions.map(({ fields: r }): RegionConfig => ({
      name: r.name!,
      size: r.size!,
      pageSize: r.pageSize!,
      base: r.base!,
      backing: r.backing!,
      initial: r.initial!,
      store: r.store ?? store,
      backingPageSize: r.backingPageSize!,
    })),
    devices: devices.map((d) => normalizeDevice(d, regions)),
    plugins: plugins as PluginModuleConfig[],
    kvm: { mode: kvmMode! },
    workload: workload!,
    continueOnCapacityError: top.continueOnCapacityError!,
    vmm: top.vmm!,
    kernel: top.kernel!,
    iommu: top.iommu!,
    memlockLimit: top.memlockLimit ?? Infinity,
    conversionExit: top.conversionExit!,
  };
  for (const problem of settingsProblems(config, config.vmm, config.kernel)) {
    issues.push(problem);
  }
  return issues.length > 0 ? { issues: inFileOrder(issues, json) } : { config, issues };
}

/**
 * Sorts issues by top-level field in the order the file wrote them, then by
 * entry index; issues of one entry keep the order the rules found them. The
 * rules run section by section, cross-entry rules last, so without this a
 * person would read about regions[3] before regions[1].
 */
function inFileOrder(issues: ConfigIssue[], json: unknown): ConfigIssue[] {
  const keys = isPlainObject(json) ? Object.keys(json) : [];
  const rank = (issue: ConfigIssue): [number, number] => {
    const match = /^([^.[]+)(?:\[(\d+)\])?/.exec(issue.path);
    if (!match) return [-1, -1];
    const section = keys.indexOf(match[1]);
    return [section === -1 ? keys.length : section, match[2] === undefined ? -1 : Number(match[2])];
  };
  return issues
    .map((issue, order) => ({ issue, order, rank: rank(issue) }))
    .sort((a, b) => a.rank[0] - b.rank[0] || a.rank[1] - b.rank[1] || a.order - b.order)
    .map(({ issue }) => issue);
}

function checkRegion(raw: unknown, index: number, issues: ConfigIssue[], add: Add): RegionEntry {
  const path = ["regions", index];
  const fields = parseFields(regionFields, raw, path, issues) ?? {};
  const { pageSize, size, base } = fields;
  let pageSizeOk = false;
  if (pageSize !== undefined) {
    if (pageSize < MIN_PAGE_SIZE || !isPowerOfTwo(pageSize)) {
      add([...path, "pageSize"], `must be a power of two >= ${MIN_PAGE_SIZE}, got ${pageSize}`);
    } else pageSizeOk = true;
  }
  let sizeOk = size !== undefined;
  if (size !== undefined && pageSizeOk) {
    if (size === 0) {
      add([...path, "size"], `must be a positive multiple of pageSize ${pageSize}, got 0`);
      sizeOk = false;
    } else if (size % pageSize! !== 0) {
      add([...path, "size"], `must be a multiple of pageSize ${pageSize}, got ${size}`);
      sizeOk = false;
    }
  }
  const backingPageSize = fields.backingPageSize;
  if (
    backingPageSize !== undefined && backingPageSize !== 4096 && backingPageSize !== 2 ** 21 &&
    backingPageSize !== 2 ** 30
  ) {
    add(
      [...path, "backingPageSize"],
      `must be "4KiB" (shmem folios), "2MiB" or "1GiB" (hugetlb), got ${backingPageSize}`,
    );
  } else if (backingPageSize !== undefined && sizeOk && size! % backingPageSize !== 0) {
    add(
      [...path, "backingPageSize"],
      `region size ${hex(size!)} must be a multiple of the backing page size ${
        hex(backingPageSize)
      } (hugetlb files are)`,
    );
  }
  let baseOk = base !== undefined;
  if (base !== undefined && pageSizeOk && base % pageSize! !== 0) {
    add([...path, "base"], `must be aligned to pageSize ${pageSize}, got ${hex(base)}`);
    baseOk = false;
  }
  if (sizeOk && baseOk && base! + size! > GPA_LIMIT) {
    add(
      [...path, "size"],
      `base ${hex(base!)} + size ${hex(size!)} ends past the 52-bit guest physical ` +
        `address space (${hex(GPA_LIMIT)})`,
    );
    sizeOk = false;
  }
  return { index, fields, pageSizeOk, rangeOk: pageSizeOk && sizeOk && baseOk };
}

/**
 * Unique names and non-overlapping guest physical ranges.
 * @returns the set of region names, or `undefined` when some name did not
 *   parse or no region did (then references to regions cannot be judged and
 *   are not reported)
 */
function checkRegionSet(regions: RegionEntry[], add: Add): Set<string> | undefined {
  const firstByName = new Map<string, number>();
  let allNamed = true;
  for (const { index, fields } of regions) {
    if (fields.name === undefined) {
      allNamed = false;
      continue;
    }
    const first = firstByName.get(fields.name);
    if (first !== undefined) {
      add(
        ["regions", index, "name"],
        `duplicate region name ${JSON.stringify(fields.name)} (also regions[${first}].name)`,
      );
    } else firstByName.set(fields.name, index);
  }
  // Sorted by base, each region can only overlap the one reaching furthest before it:
  // n log n, so a file with thousands of regions is judged at once.
  const ranged = regions.filter((r) => r.rangeOk)
    .sort((a, b) => a.fields.base! - b.fields.base! || a.index - b.index);
  let reach: RegionEntry | undefined;
  for (const r of ranged) {
    const f = r.fields;
    if (reach && f.base! < reach.fields.base! + reach.fields.size!) {
      // Reported at whichever of the two comes later in the file.
      const [early, late] = reach.index < r.index ? [reach, r] : [r, reach];
      const a = early.fields, b = late.fields;
      add(
        ["regions", late.index, "base"],
        `range ${span(b.base!, b.size!)} of region ${label(b.name)} overlaps ` +
          `regions[${early.index}] ${label(a.name)} ${span(a.base!, a.size!)}`,
      );
    }
    if (!reach || f.base! + f.size! > reach.fields.base! + reach.fields.size!) reach = r;
  }
  return allNamed && regions.length > 0 ? new Set(firstByName.keys()) : undefined;
}

/** kvm.mode agrees with every region's backing; returns the effective mode. */
function checkKvm(
  mode: BackingKind | undefined,
  regions: RegionEntry[],
  add: Add,
): BackingKind | undefined {
  const backed = regions.filter((r) => r.fields.backing !== undefined);
  const first = backed[0];
  for (const r of backed) {
    const backing = r.fields.backing!;
    if (mode !== undefined && backing !== mode) {
      add(
        ["regions", r.index, "backing"],
        `is ${JSON.stringify(backing)} but kvm.mode is ${JSON.stringify(mode)}; ` +
          `KVM converts all guest memory one way, so they must agree`,
      );
    } else if (mode === undefined && backing !== first.fields.backing) {
      add(
        ["regions", r.index, "backing"],
        `is ${JSON.stringify(backing)} but regions[${first.index}] is ` +
          `${JSON.stringify(first.fields.backing)}; KVM converts all guest memory one way, ` +
          `so every region needs the same backing`,
      );
    }
  }
  return mode ?? first?.fields.backing ?? "separate";
}

function parseWorkload(
  raw: unknown,
  file: string,
  issues: ConfigIssue[],
  add: Add,
): WorkloadConfig | undefined {
  const path = ["workload"];
  if (raw === undefined) {
    add(path, `is required: {"name": <generator>} or {"trace": <file>}`);
    return undefined;
  }
  if (isPlainObject(raw) && "trace" in raw) {
    if ("name" in raw) {
      add(path, `give either "name" (a generator) or "trace" (a trace file), not both`);
      return undefined;
    }
    const f = parseFields(traceWorkloadFields, raw, path, issues);
    if (f?.trace === undefined) return undefined;
    // Relative trace paths are relative to the configuration file, not the
    // working directory, so a configuration runs the same from anywhere.
    const trace = isAbsolute(f.trace) ? f.trace : join(dirname(file), f.trace);
    return { kind: "trace", trace };
  }
  const f = parseFields(generatorWorkloadFields, raw, path, issues);
  if (f?.name === undefined) return undefined;
  return {
    kind: "generator",
    name: f.name,
    ...(f.seed !== undefined ? { seed: f.seed } : {}),
    params: f.params ?? {},
  };
}

/**
 * A configuration whose regions come from the trace: the top-level fields and
 * the workload are checked now; the regions, and the devices that refer to
 * them, once the trace gave the regions (the loader keeps the document).
 */
function checkFromTrace(
  json: Record<string, unknown>,
  file: string,
  top: NonNullable<ReturnType<typeof parseFields<typeof topLevelFields>>>,
  issues: ConfigIssue[],
): CheckResult {
  const add = (path: FieldPath, message: string) =>
    issues.push({ path: formatPath(path), message });
  const workload = parseWorkload(json.workload, file, issues, add);
  const kvm = parseFields(kvmFields, absentAsEmpty(json.kvm), ["kvm"], issues);
  if (issues.length > 0) return { issues: inFileOrder(issues, json) };
  const config: HostConfig = {
    source: file,
    regionsFrom: "trace",
    document: json,
    name: top.name!,
    ...(top.description !== undefined ? { description: top.description } : {}),
    backend: top.backend!,
    store: top.store!,
    regions: [],
    devices: [],
    plugins: [],
    kvm: { mode: kvm?.mode ?? "separate" },
    workload: workload!,
    continueOnCapacityError: top.continueOnCapacityError!,
    vmm: top.vmm!,
    kernel: top.kernel!,
    iommu: top.iommu!,
    memlockLimit: top.memlockLimit ?? Infinity,
    conversionExit: top.conversionExit!,
  };
  return { config, issues };
}

/**
 * An entry of `plugins`: the module (resolved against the configuration's
 * directory unless it is absolute or a URL), its options and the regions it
 * follows (every region by default; named ones must exist).
 */
function checkPlugin(
  raw: unknown,
  index: number,
  file: string,
  regions: RegionEntry[],
  regionNames: Set<string> | undefined,
  issues: ConfigIssue[],
  add: Add,
): PluginModuleConfig | undefined {
  const path = ["plugins", index];
  const f = parseFields(pluginFields, raw, path, issues);
  if (f?.module === undefined) return undefined;
  const names = f.region === undefined
    ? undefined
    : typeof f.region === "string"
    ? [f.region]
    : f.region;
  if (names !== undefined && names.length === 0) {
    add([...path, "region"], "must name at least one region");
  }
  for (const [k, name] of (names ?? []).entries()) {
    if (regionNames !== undefined && !regionNames.has(name)) {
      add(
        typeof f.region === "string" ? [...path, "region"] : [...path, "region", k],
        `unknown region ${JSON.stringify(name)} (regions: ${[...regionNames].join(", ")})`,
      );
    }
  }
  const module = /^[a-z][a-z0-9+.-]*:/i.test(f.module) || isAbsolute(f.module)
    ? f.module
    : join(dirname(file), f.module);
  return {
    module,
    options: f.options ?? {},
    regions: names ?? regions.map((r) => r.fields.name!),
  };
}

/** An optional object field: absent is `{}`; `null`, like any other non-object, is reported. */
function absentAsEmpty(value: unknown): unknown {
  return value === undefined ? {} : value;
}
