/**
 * Host configurations and runs: the configuration schema and loader, the
 * host builder, workloads, trace readers, the runner, invariant checks and
 * reports (text, JSON, SVG).
 *
 * @module
 */

export { formatSize, parseSize } from "./sizes.ts";
export {
  availableMemory,
  checkHostLimits,
  HostLimitError,
  type HostLimitOptions,
  hostLimitProblems,
} from "./limits.ts";
export {
  compare,
  type CompareAxis,
  type CompareOptions,
  type CompareQuestion,
  type CompareVariant,
} from "./compare.ts";
export * from "./config/mod.ts";
export * from "./trace/mod.ts";
export * from "./report/mod.ts";
export * from "./workloads/mod.ts";
export {
  buildHost,
  type BuildOptions,
  type Host,
  type HostContainer,
  type HostDevice,
} from "./build.ts";
export {
  type ConversionCounts,
  EventRunner,
  MAX_REPORTED_ERRORS,
  runEvents,
  runEventStream,
  type RunItem,
  type RunOptions,
  type RunResult,
} from "./event_runner.ts";
export { checkInvariants, type InvariantReport } from "./invariants.ts";
export { runSession, type SessionOptions, type SessionResult } from "./session.ts";
export {
  type LoadedPlugin,
  loadPluginModules,
  type PluginFactory,
  type PluginModuleContext,
  PluginModuleError,
} from "./plugin_modules.ts";
export { type LoadedState, loadHostState, saveHostState } from "./state_file.ts";
