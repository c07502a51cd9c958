/**
 * Host configurations and runs: the configuration schema and loader, the
 * host builder, workloads, trace readers, the runner, invariant checks and
 * reports (text, JSON, SVG).
 *
 * @module
 */

export { formatSize, parseSize } from "./sizes.ts";
export type {
  BackendKind,
  BackingKind,
  ConversionExit,
  DeviceConfig,
  DeviceTiming,
  GeneratorWorkload,
  HostConfig,
  InitialState,
  IommufdDeviceConfig,
  KvmConfig,
  PluginModuleConfig,
  RegionConfig,
  StoreKind,
  TraceWorkload,
  Type1DeviceConfig,
  VirtioMemDeviceConfig,
  WorkloadConfig,
  WorkloadName,
} from "./config/schema.ts";
export { WORKLOAD_NAMES } from "./config/schema.ts";
export { ConfigError, type ConfigIssue } from "./config/errors.ts";
export { loadHostConfig, parseHostConfig, withTraceRegions } from "./config/load.ts";
export {
  availableMemory,
  checkHostLimits,
  HostLimitError,
  type HostLimitOptions,
  hostLimitProblems,
} from "./limits.ts";
export {
  capacityChecks,
  type CapacityFindings,
  type CapacityProblem,
  type1DeviceBudget,
} from "./config/capacity.ts";
export { settingsProblems } from "./config/settings_rules.ts";
export {
  compare,
  type CompareAxis,
  type CompareOptions,
  type CompareQuestion,
  type CompareVariant,
} from "./compare.ts";
export {
  type BadLine,
  type ConvertEvent,
  type MemslotEvent,
  type PlugEvent,
  type RangeTraceEvent,
  type TraceEvent,
  TraceInputError,
  type TraceItem,
  TraceLineError,
  type UnplugAllEvent,
} from "./trace/event.ts";
export { parseQemuMemslotLine, parseQemuTraceLine } from "./trace/qemu.ts";
export { parseJsonlLine } from "./trace/jsonl.ts";
export {
  classifyTraceLine,
  readTrace,
  type TraceProblem,
  type TraceReadResult,
} from "./trace/read.ts";
export {
  FOLLOW_POLL_MS,
  MAX_LINE_LENGTH,
  openTraceStream,
  TRACE_CHUNK_SIZE,
  type TraceStream,
  type TraceStreamOptions,
} from "./trace/stream.ts";
export { emptyTraceStats, type TraceStats } from "./trace/stats.ts";
export {
  isSimpletrace,
  readSimpletrace,
  SIMPLETRACE_MAGIC,
  SIMPLETRACE_VERSION,
} from "./trace/simpletrace.ts";
export {
  memoryMapFromMemslots,
  type SkippedMemslot,
  type TraceMemoryMap,
  type TraceMemoryRegion,
} from "./trace/memory_map.ts";
export { locate, type Located, type LocateError, type TraceRegion } from "./trace/locate.ts";
export {
  renderStateSvg,
  type StateSvgInput,
  type StateSvgOptions,
  type SvgRegion,
  type SvgRun,
} from "./report/svg.ts";
export * from "./workloads/mod.ts";
export { buildHost, type BuildOptions, type Host, type HostDevice } from "./build.ts";
export {
  type ConversionCounts,
  EventRunner,
  MAX_REPORTED_ERRORS,
  runEvents,
  runEventStream,
  type RunItem,
  type RunOptions,
  type RunResult,
} from "./run.ts";
export { checkInvariants, type InvariantReport } from "./invariants.ts";
export {
  buildReport,
  type PluginReport,
  type RegionReport,
  type Report,
  type ReportInput,
} from "./report/report.ts";
export { renderTextReport } from "./report/text.ts";
export { runSession, type SessionOptions, type SessionResult } from "./session.ts";
export {
  type LoadedPlugin,
  loadPluginModules,
  type PluginFactory,
  type PluginModuleContext,
  PluginModuleError,
} from "./plugin_modules.ts";
export { type LoadedState, loadHostState, saveHostState } from "./state_file.ts";

// The report's latency and timelines, and the interactive HTML report.
export { type LatencyBucket, LatencyHistogram, type LatencyReport } from "./report/latency.ts";
export {
  type DeviceTimeline,
  type RegionTimeline,
  type RunProbe,
  RunRecorder,
  type TimelineReport,
} from "./report/recorder.ts";
export {
  type HtmlDevice,
  type HtmlMapping,
  type HtmlRegion,
  type HtmlReportInput,
  type HtmlReportOptions,
  renderHostHtml,
  renderHtmlReport,
} from "./report/html.ts";
export type { PageRun } from "./report/density.ts";
