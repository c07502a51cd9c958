/**
 * Reports of a run: the JSON-ready report, text, SVG and the self-contained
 * HTML report, with per-conversion latency and timelines.
 *
 * @module
 */

export {
  buildReport,
  type PluginReport,
  positionUnit,
  type RegionReport,
  type Report,
  type ReportInput,
} from "./report.ts";
export { renderTextReport } from "./text.ts";
export {
  renderStateSvg,
  type StateSvgInput,
  type StateSvgOptions,
  type SvgRegion,
  svgRegionOf,
  type SvgRun,
} from "./svg.ts";
// The report's latency and timelines, and the interactive HTML report.
export {
  conversionWeight,
  type LatencyBucket,
  LatencyHistogram,
  type LatencyReport,
  SAMPLE_EVERY,
  TIMED_IN_FULL,
} from "./latency.ts";
export {
  type DeviceTimeline,
  type RegionTimeline,
  type RunProbe,
  RunRecorder,
  type TimelineReport,
} from "./recorder.ts";
export {
  type HtmlDevice,
  type HtmlMapping,
  type HtmlRegion,
  type HtmlReportInput,
  type HtmlReportOptions,
  renderHostHtml,
  renderHtmlReport,
} from "./html.ts";
export type { PageRun } from "./density.ts";
