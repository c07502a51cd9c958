/**
 * `memstate compare`: one input, several hosts, and one question each. Every
 * question has its own baseline and ends in a one-line verdict:
 *
 * - **store**: range tree against bitmap, DMA backend as configured;
 * - **DMA backend**: type1 against iommufd, on the range tree; type1 runs at
 *   its configured limit (the module default, 65535, when made from an
 *   iommufd device), and where it would not start the row says so with the
 *   limit it would need, instead of raising it silently;
 * - **policy** (`--vmm A,B`) and **kernel** (`--kernel A,B`): the same host
 *   under two VMM policies or two kernels, which is how a user sees what
 *   memstate's policy buys over QEMU today and what the proposed kernel would
 *   buy on top;
 * - **IOMMU** (`--iommu A,B`): the same host on two IOMMUs, which differ in
 *   what its IO page tables cost (when a table page is freed, how many levels
 *   a table starts with).
 *
 * Timings are the minimum and median of `reps` runs; every other figure is
 * deterministic and taken from the last run.
 *
 * @module
 */

import { CapacityError } from "../plugins/plugin.ts";
import { formatSize } from "../util/bytes.ts";
import type { IommuSetting } from "../settings/iommu.ts";
import type { KernelSetting } from "../settings/kernel.ts";
import type { VmmPolicy } from "../settings/vmm.ts";
import { ConfigError } from "./config/errors.ts";
import type { HostConfig } from "./config/schema.ts";
import { HostLimitError } from "./limits.ts";
import type { Report } from "./report/report.ts";
import { runSession, type SessionOptions } from "./session.ts";

/** Which question a comparison answers. */
export type CompareAxis = "store" | "dma" | "vmm" | "kernel" | "iommu";

/** One side of a question: a host variant and how it did. */
export interface CompareVariant {
  /** What differs, e.g. `"bitmap"` or `"qemu-11.1"`. */
  label: string;
  /** The last run's report; absent when the host would not start. */
  report?: Report;
  /** Why the host would not start, when it would not. */
  refused?: string;
  /** Fastest of the runs, in milliseconds. */
  minMs?: number;
  /** Median of the runs, in milliseconds. */
  medianMs?: number;
  /**
   * Kernel calls, summed: the KVM plugin's (attribute ioctls, punches, and one
   * `createRegionBacking` per region for its files and memslot), type1's and iommufd's (maps,
   * unmaps, cuts). Not virtio-mem's backing discards (they are the KVM plugin's punches)
   * nor other plugins' listener calls.
   */
  calls?: number;
  /** Live mappings at the end, summed over the DMA containers. */
  mappings?: number;
  /**
   * Peak mappings summed over the DMA containers' peaks: at least `mappings`,
   * and an upper bound on the host's peak (its containers need not peak at
   * the same moment).
   */
  peakMappings?: number;
  /**
   * The type1 container nearest its limit (the highest peak over
   * `dma_entry_limit`): its peak mappings, and its limit in `mappingLimit`.
   * Absent without type1 (iommufd has no such limit).
   */
  containerPeakMappings?: number;
  /** The `dma_entry_limit` of the container {@link CompareVariant.containerPeakMappings} counts. */
  mappingLimit?: number;
  /** IO page-table memory at the end, over the DMA plugins. */
  tableBytes?: number;
  /** IO page-table memory at its peak, summed over the DMA plugins' peaks. */
  peakTableBytes?: number;
  /** Store bytes over the regions. */
  storeBytes?: number;
}

/** One question, its baseline (the first variant) and verdict. */
export interface CompareQuestion {
  /** Which question. */
  axis: CompareAxis;
  /** The question in words. */
  title: string;
  /** The variants, baseline first. */
  variants: CompareVariant[];
  /** One line that answers the question. */
  verdict: string;
}

/** What to compare. */
export interface CompareOptions {
  /** Two policies to compare (the policy question). */
  vmm?: [VmmPolicy, VmmPolicy];
  /** Two kernels to compare (the kernel question). */
  kernel?: [KernelSetting, KernelSetting];
  /** Two IOMMUs to compare (the IOMMU question). */
  iommu?: [IommuSetting, IommuSetting];
  /** Runs per variant (at least 3 for a median worth printing). */
  reps?: number;
  /** Called when a variant starts, with its question and label. */
  onVariant?: (axis: CompareAxis, label: string) => SessionOptions["onProgress"];
}

/**
 * Runs the comparisons for `config`; `base` are the run options every variant shares.
 *
 * @throws the first variant's refusal (a {@link ConfigError}, {@link CapacityError} or
 *   {@link HostLimitError}, as `run` would raise it) when no variant of any question starts:
 *   then the input is at fault, not a variant, and there is nothing to compare
 */
export async function compare(
  config: HostConfig,
  base: SessionOptions,
  options: CompareOptions = {},
): Promise<CompareQuestion[]> {
  const questions = await askAll(config, base, options);
  const variants = questions.flatMap((q) => q.variants);
  if (variants.every((v) => v.report === undefined)) {
    const first = variants.map((v) => REFUSALS.get(v)).find((e) => e !== undefined);
    if (first !== undefined) throw first;
  }
  return questions;
}

/** Why each refused variant would not start, as its run raised it. */
const REFUSALS = new WeakMap<CompareVariant, Error>();

async function askAll(
  config: HostConfig,
  base: SessionOptions,
  options: CompareOptions,
): Promise<CompareQuestion[]> {
  const reps = options.reps ?? 3;
  const hasDma = config.devices.some((d) => d.type !== "virtio-mem");
  const variant = async (
    axis: CompareAxis,
    label: string,
    extra: SessionOptions,
  ): Promise<CompareVariant> =>
    base.signal?.aborted ? { label, refused: "not run: interrupted" } : await runVariant(
      config,
      { ...base, ...extra },
      reps,
      label,
      options.onVariant?.(axis, label),
    );
  const questions: CompareQuestion[] = [];
  if (options.vmm) {
    const variants: CompareVariant[] = [];
    for (const vmm of options.vmm) variants.push(await variant("vmm", vmm, { vmm }));
    questions.push(question("vmm", `policy: ${options.vmm.join(" against ")}`, variants));
  }
  if (options.kernel) {
    const variants: CompareVariant[] = [];
    for (const kernel of options.kernel) variants.push(await variant("kernel", kernel, { kernel }));
    questions.push(question("kernel", `kernel: ${options.kernel.join(" against ")}`, variants));
  }
  if (options.iommu) {
    const variants: CompareVariant[] = [];
    for (const iommu of options.iommu) variants.push(await variant("iommu", iommu, { iommu }));
    questions.push(question("iommu", `IOMMU: ${options.iommu.join(" against ")}`, variants));
  }
  if (questions.length > 0) return questions;
  questions.push(question("store", "store: range tree against bitmap", [
    await variant("store", "bitmap", { store: "bitmap" }),
    await variant("store", "range-tree", { store: "range-tree" }),
  ]));
  if (hasDma) {
    questions.push(question("dma", "DMA backend: type1 against iommufd", [
      await variant("dma", "type1", { store: "range-tree", dmaKind: "type1" }),
      await variant("dma", "iommufd", { store: "range-tree", dmaKind: "iommufd" }),
    ]));
  }
  return questions;
}

async function runVariant(
  config: HostConfig,
  options: SessionOptions,
  reps: number,
  label: string,
  onProgress: SessionOptions["onProgress"],
): Promise<CompareVariant> {
  const times: number[] = [];
  let report: Report | undefined;
  for (let i = 0; i < reps; i++) {
    try {
      ({ report } = await runSession(config, { ...options, onProgress }));
    } catch (e) {
      const refused = refusal(e);
      if (refused === undefined) throw e;
      const variant = { label, refused };
      REFUSALS.set(variant, e as Error);
      return variant;
    }
    times.push(report.elapsedMs);
    if (report.interrupted) break;
  }
  times.sort((a, b) => a - b);
  const r = report!;
  const dma = r.plugins.filter((p) => p.kind === "vfio-type1" || p.kind === "iommufd");
  // The type1 container nearest its limit: the one whose peak a limit decides first.
  const limited = dma.filter((p) => p.mappingLimit !== undefined);
  const fullest = limited.reduce<(typeof dma)[number] | undefined>(
    (f, p) => f && f.peakMappings / f.mappingLimit! >= p.peakMappings / p.mappingLimit! ? f : p,
    undefined,
  );
  return {
    label,
    report: r,
    minMs: times[0],
    medianMs: times[Math.floor(times.length / 2)],
    // Kernel calls only: virtio-mem's backing discards are the KVM plugin's punches (counted
    // there), and another plugin's calls are listener calls, not the kernel's.
    calls: r.plugins.filter((p) => KERNEL_KINDS.has(p.kind)).reduce(
      (n, p) =>
        n + Object.entries(p.calls)
          .filter(([k]) => k !== "punchedBytes" && !k.includes("."))
          .reduce((m, [, v]) => m + v, 0),
      0,
    ),
    mappings: dma.reduce((n, p) => n + p.mappings, 0),
    peakMappings: dma.reduce((n, p) => n + p.peakMappings, 0),
    ...(fullest
      ? { containerPeakMappings: fullest.peakMappings, mappingLimit: fullest.mappingLimit }
      : {}),
    tableBytes: dma.reduce((n, p) => n + (p.tableBytes ?? 0), 0),
    peakTableBytes: dma.reduce((n, p) => n + (p.peakTableBytes ?? p.tableBytes ?? 0), 0),
    storeBytes: r.regions.reduce((n, g) => n + g.storeBytes, 0),
  };
}

/** The plugins whose calls are the kernel's: KVM's ioctls and punches, type1's and iommufd's maps. */
const KERNEL_KINDS: ReadonlySet<string> = new Set(["kvm-attributes", "vfio-type1", "iommufd"]);

/** Why a variant would not start, from what its run raised; undefined for anything else. */
function refusal(e: unknown): string | undefined {
  if (e instanceof CapacityError) {
    return `would not start: needs dma_entry_limit >= ${e.needed} (limit ${e.available})`;
  }
  if (e instanceof ConfigError) {
    return `would not start: ${e.issues.map((i) => i.message).join("; ")}`;
  }
  if (e instanceof HostLimitError) return `would not start here: ${e.problems.join("; ")}`;
  return undefined;
}

function question(axis: CompareAxis, title: string, variants: CompareVariant[]): CompareQuestion {
  return { axis, title, variants, verdict: verdict(axis, variants) };
}

/** One line answering the question, from the baseline (first) and the other variant. */
function verdict(axis: CompareAxis, variants: CompareVariant[]): string {
  const [a, b] = variants;
  const refused = variants.filter((v) => v.refused);
  if (refused.length === variants.length) return "neither variant starts";
  if (a.refused || b.refused) {
    const ok = a.refused ? b : a, no = a.refused ? a : b;
    return `${ok.label} runs; ${no.label} ${no.refused}`;
  }
  const ratio = (x: number, y: number) => (y === 0 ? "n/a" : `${(x / y).toFixed(2)}x`);
  // A range tree's store is often a thousandth of the bitmap or less, which 0.00x would hide.
  const share = (x: number, y: number) =>
    y === 0 || x / y >= 0.01 ? ratio(x, y) : `${((100 * x) / y).toPrecision(2)}% of`;
  const ra = a.report!, rb = b.report!;
  const outcome = (v: CompareVariant) => {
    const r = v.report!;
    const bad = r.invariants.violations.length;
    return r.stoppedAt
      ? `stops (${r.conversions.failed} failed, ${bad} violations)`
      : r.conversions.failed > 0
      ? `${r.conversions.failed} failed, ${bad} violations`
      : `all applied`;
  };
  switch (axis) {
    case "store":
      return `range tree: ${ratio(b.minMs!, a.minMs!)} the bitmap's time (min of runs), ` +
        `${share(b.storeBytes!, a.storeBytes!)} its memory ` +
        `(${formatSize(b.storeBytes!)} vs ${formatSize(a.storeBytes!)})`;
    case "dma":
      return `iommufd's summed peaks ${b.peakMappings} mappings against type1's ${a.peakMappings}` +
        (a.mappingLimit === undefined
          ? ""
          : a.containerPeakMappings === a.peakMappings
          ? ` (type1 limit ${a.mappingLimit})`
          : ` (type1's fullest container at ${a.containerPeakMappings} of its limit ` +
            `${a.mappingLimit})`) +
        `; IO page tables ${b.tableBytes} vs ${a.tableBytes} bytes; time ${
          ratio(b.minMs!, a.minMs!)
        }`;
    case "iommu":
      return `${b.label}: IO page tables ${formatSize(b.tableBytes!)} at the end (containers' ` +
        `peaks summed: ${formatSize(b.peakTableBytes!)}) against ${a.label}'s ` +
        `${formatSize(a.tableBytes!)} (${formatSize(a.peakTableBytes!)}); ` +
        `${a.label} ${outcome(a)}, ${b.label} ${outcome(b)}`;
    case "vmm":
    case "kernel": {
      const conv = (r: Report) => Math.max(1, r.conversions.requested);
      return `${b.label}: ${
        (b.calls! / conv(rb)).toFixed(2)
      } kernel calls per conversion against ` +
        `${a.label}'s ${
          (a.calls! / conv(ra)).toFixed(2)
        }, summed peak mappings ${b.peakMappings} vs ` +
        `${a.peakMappings}; ${a.label} ${outcome(a)}, ${b.label} ${outcome(b)}`;
    }
  }
}
