/**
 * Host configurations and runs: the configuration schema and loader, the host
 * builder, workloads, trace readers (QEMU logs, QEMU simpletrace files, JSON
 * lines; streamed), the runner, invariant checks, saved state and reports
 * (text, JSON, SVG). The command line is built on this.
 *
 * @example Run a configuration and read its report
 * ```ts
 * import { loadHostConfig, runSession } from "@cvm/memstate/host";
 *
 * const config = await loadHostConfig("examples/tdx-trace.json");
 * const { report } = await runSession(config);
 * console.log(report.conversions, report.invariants.violations);
 * ```
 *
 * @module
 */

export * from "./src/host/mod.ts";
// The types the host's signatures name, documented with the main and /sim entry points.
export type * from "./mod.ts";
export type * from "./sim.ts";
